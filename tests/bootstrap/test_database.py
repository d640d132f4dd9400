"""The database on the nodes (infra/bootstrap/database.py): MariaDB Galera over the mesh only, TLS
between members, the app given its connection settings, the witness's garbd as a pure renderer."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.bootstrap import render_user_data
from infra.bootstrap.database import (
    DB_DIR,
    GALERA_CONFIG,
    OPTION_FILE,
    PASSWORD_FILE,
    STAGED_CONFIG,
    cluster_address,
    database_env,
    database_names,
)
from infra.bootstrap.parts import decoded_files, readable
from infra.bootstrap.render import (
    USER_DATA_BUDGET,
    digitalocean_document,
    digitalocean_user_data,
    node_parts,
    provider_user_data_size,
    secret_values,
)
from infra.bootstrap.spec import NodeSpec
from infra.config.fields import DATABASE_ENV
from infra.constants import USER_DATA_LIMITS
from tests.bootstrap.bootstrap_debroot import CODENAMES, cloud_init_package
from tests.bootstrap.bootstrap_specs import DATABASE_PASSWORD, SITE, Keys, make_database, make_spec
from tests.conftest import REPO

SCRIPT = REPO / "cloudinit/site/usr/local/sbin/twinhost-galera"
PASSWORD = DATABASE_PASSWORD


def with_database(spec: NodeSpec, witness: str | None = None) -> NodeSpec:
    return dataclasses.replace(spec, database=make_database(spec.tinc_node_name, witness))


def files_of(spec: NodeSpec) -> dict[str, str]:
    return {f.path: f.content for f in node_parts(spec).files}


@pytest.fixture(scope="module")
def node_a(keys: Keys) -> NodeSpec:
    return with_database(make_spec("digitalocean", keys=keys))


@pytest.fixture(scope="module")
def node_b(keys: Keys) -> NodeSpec:
    return with_database(make_spec("linode", keys=keys))


def test_a_site_without_a_database_gets_nothing_of_it(keys):
    spec = make_spec(keys=keys)
    parts = node_parts(spec)
    assert not any(f.path.startswith(DB_DIR) or "galera" in f.path for f in parts.files)
    assert "mariadb-server" not in parts.packages
    assert "DB_HOST" not in files_of(spec)["/etc/twinhost/app/environment"]


def test_galera_binds_to_the_mesh_address_only_and_sql_to_loopback(node_a):
    config = files_of(node_a)[STAGED_CONFIG]
    mesh, peer = node_a.mesh_address, node_a.peer.mesh_address
    assert "bind-address = 127.0.0.1" in config
    assert f"wsrep_node_address = {mesh}" in config
    assert f"gmcast.listen_addr=tcp://{mesh}:4567" in config
    assert f"ist.recv_addr={mesh}:4568" in config
    assert f"wsrep_sst_receive_address = {mesh}:4444" in config
    assert f"wsrep_cluster_address = gcomm://{','.join(sorted((mesh, peer)))}" in config
    assert node_a.public_address not in config and "0.0.0.0" not in config


def test_replication_ist_and_sst_are_tls_checked_against_the_site_ca(node_a):
    config = files_of(node_a)[STAGED_CONFIG]
    for option in ("socket.ssl_ca=", "socket.ssl_cert=", "socket.ssl_key="):
        assert option + f"{DB_DIR}/tls/" in config
    sst = config.split("[sst]", 1)[1]
    assert "ssl-mode = VERIFY_CA" in sst and f"tca = {DB_DIR}/tls/ca.pem" in sst
    assert "stunnel4" in node_parts(node_a).packages  # wsrep_sst_rsync's TLS


def test_galera_ports_are_opened_on_the_mesh_interface_from_the_peer_only(node_a):
    firewall = files_of(node_a)["/usr/local/sbin/twinhost-firewall"]
    peer = f"{node_a.peer.mesh_address}/32"
    lines = [line for line in firewall.splitlines() if "galera" in line and not line.startswith("#")]
    assert lines and all(f"on tinc0 proto tcp from {peer} to any port" in line for line in lines)
    assert {line.split(" port ")[1].split()[0] for line in lines} == {"4567", "4568,4444"}
    assert "3306" not in firewall


def test_the_witness_is_the_hook_for_the_third_vote(keys):
    spec = with_database(make_spec(keys=keys), witness="10.99.0.3")
    config = files_of(spec)[STAGED_CONFIG]
    assert config.count("wsrep_cluster_address = gcomm://") == 1
    assert config.split("wsrep_cluster_address = ")[1].split()[0].endswith(",10.99.0.3")
    firewall = files_of(spec)["/usr/local/sbin/twinhost-firewall"]
    assert "from 10.99.0.3/32 to any port 4567 " in firewall
    assert "from 10.99.0.3/32 to any port 4568" not in firewall  # no state transfer to the witness


def test_cluster_addresses_are_distinct():
    assert cluster_address(["10.0.0.1", "10.0.0.2"]) == "gcomm://10.0.0.1,10.0.0.2"
    assert cluster_address(["10.0.0.1", "10.0.0.2"], "10.0.0.3") == "gcomm://10.0.0.1,10.0.0.2,10.0.0.3"
    with pytest.raises(ValueError, match="distinct"):
        cluster_address(["10.0.0.1", "10.0.0.1"])


def test_only_the_primary_node_may_bootstrap(node_a, node_b):
    assert "ROLE=bootstrap\n" in files_of(node_a)["/etc/twinhost/db.env"]
    assert "ROLE=join\n" in files_of(node_b)["/etc/twinhost/db.env"]


def test_the_app_gets_its_connection_settings_and_a_password_file(node_a):
    env = database_env(node_a)
    assert tuple(env) == DATABASE_ENV
    assert env["DB_HOST"] == "127.0.0.1"
    assert (env["DB_NAME"], env["DB_USER"]) == database_names(SITE) == ("acme_shop", "acme_shop")
    assert env["DB_PASSWORD_FILE"] == PASSWORD_FILE and env["DB_OPTION_FILE"] == OPTION_FILE
    environment = files_of(node_a)["/etc/twinhost/app/environment"]
    assert 'DB_HOST="127.0.0.1"' in environment and PASSWORD not in environment
    unit = files_of(node_a)["/etc/systemd/system/twinhost-app@.service"]
    assert unit  # the environment file is read by systemd, as for every app setting


def test_secrets_are_secret_files_readable_by_their_users_only(node_a):
    files = {f.path: f for f in node_parts(node_a).files}
    key = files[f"{DB_DIR}/tls/key.pem"]
    password = files[PASSWORD_FILE]
    assert key.secret and key.mode == 0o640 and key.owner == "root:mysql" and key.deferred
    assert password.secret and password.mode == 0o640 and password.owner == "root:twinapp"
    assert password.content == PASSWORD + "\n"
    assert PASSWORD in secret_values(node_a)
    for item in files.values():
        if not item.secret:
            assert (
                PASSWORD not in item.content and node_a.database.private_key_pem.strip() not in item.content
            )


def test_the_galera_config_is_installed_by_the_script_not_at_package_install(node_a):
    # The package's install-time steps never see a config naming a cluster that does not exist.
    assert GALERA_CONFIG not in files_of(node_a)
    script = files_of(node_a)["/usr/local/sbin/twinhost-galera"]
    assert 'install -m 0644 "$STAGED_CONFIG" "$GALERA_CONFIG"' in script


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_user_data_with_a_database_is_valid_for_debians_cloud_init(keys, provider):
    spec = with_database(make_spec(provider, keys=keys))
    document = render_user_data(spec)
    entries = decoded_files(yaml.safe_load(readable(document)))
    assert any(e["path"] == STAGED_CONFIG for e in entries)
    checker = Path(__file__).with_name("cloudinit_schema_check.py")
    for release in sorted(CODENAMES):
        package = cloud_init_package(release)
        env = {**os.environ, "PYTHONPATH": str(package / "usr/lib/python3/dist-packages")}
        result = subprocess.run(
            [sys.executable, str(checker)],
            input=json.dumps({provider: document}),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["results"][provider] in ([], None, {}), result.stdout


@pytest.mark.parametrize("provider", ["digitalocean", "linode"])
def test_user_data_with_a_database_is_within_the_providers_limit(keys, provider):
    size = provider_user_data_size(provider, render_user_data(with_database(make_spec(provider, keys=keys))))
    limit = USER_DATA_LIMITS[provider]
    print(f"database {provider}: {size} B, {100 * size / limit:.1f} % of {limit}")
    assert size <= limit


@pytest.mark.parametrize("proxied", [False, True])
def test_a_digitalocean_node_with_a_database_fits_the_budget(keys, proxied):
    spec = with_database(make_spec("digitalocean", keys=keys, proxied=proxied))
    size = provider_user_data_size("digitalocean", render_user_data(spec))
    assert size <= USER_DATA_BUDGET * USER_DATA_LIMITS["digitalocean"]


def test_digitalocean_documents_within_the_budget_ship_unchanged():
    """Up to the budget's last byte the document is the user data; one byte more, a gzip part.
    (The example site without backups, with short test keys, is within it; with real 4096-bit keys, certificates
    and the witness its packed document is above, and ships gzipped: the budget test.)"""
    budget = int(USER_DATA_BUDGET * USER_DATA_LIMITS["digitalocean"])
    text = render_user_data(make_spec("digitalocean", backup=False))
    assert len(text.encode()) <= budget
    assert digitalocean_user_data(text) == text
    exact = text + "#" * (budget - len(text.encode()))
    assert digitalocean_user_data(exact) == exact
    assert digitalocean_user_data(exact + "#").startswith("Content-Type: multipart/mixed")


CLOUD_INIT_PARTS = """
import json, sys
from cloudinit import user_data
message = user_data.UserDataProcessor({}).process(sys.stdin.read())
print(json.dumps([(p.get_content_type(), p.get_payload(decode=True).decode())
                  for p in message.walk() if not p.is_multipart()]))
"""


def test_above_the_budget_cloud_init_reads_the_same_document_from_one_gzip_mime_part(keys):
    """Debian's own cloud-init (bookworm and trixie) turns what DigitalOcean receives back into
    exactly the rendered #cloud-config."""
    text = render_user_data(with_database(make_spec("digitalocean", keys=keys, proxied=True)))
    received = digitalocean_user_data(text)
    assert received != text and received.startswith("Content-Type: multipart/mixed")
    assert received.isascii() and digitalocean_document(received) == text
    for release in sorted(CODENAMES):
        package = cloud_init_package(release)
        env = {**os.environ, "PYTHONPATH": str(package / "usr/lib/python3/dist-packages")}
        result = subprocess.run(
            [sys.executable, "-c", CLOUD_INIT_PARTS],
            input=received,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == [["text/cloud-config", text]], release


def test_a_linode_node_with_a_database_fits_the_budget(keys):
    spec = with_database(make_spec("linode", keys=keys, proxied=True))
    size = provider_user_data_size("linode", render_user_data(spec))
    assert size <= USER_DATA_BUDGET * USER_DATA_LIMITS["linode"]


def test_the_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
