"""twinhost-witness (the redirector's witness apply, shipped in the watcher's code archive), run
on a document the platform's plan made, with its paths under a temporary root and recording fakes
for systemctl, ufw and apt-get."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import platform_watcher as pw
from infra import witness as wt
from infra.bootstrap.database import GALERA_PORT, cluster_name
from infra.watcher_install import CLOUDINIT_DIR, ROOT, WITNESS_MEMBER
from tests.conftest import REPO

SCRIPT = CLOUDINIT_DIR / "redirector" / ROOT.lstrip("/") / "lib" / WITNESS_MEMBER
DRIVER = """
import importlib.machinery, importlib.util, json, sys
script, paths = sys.argv[1], json.loads(sys.argv[2])
loader = importlib.machinery.SourceFileLoader("twinhost_witness", script)
module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(module)
for name, value in paths.items():
    setattr(module, name, value)
sys.exit(module.main())
"""
KEY = "-----BEGIN RSA PRIVATE KEY-----\nWITNESS-TEST-KEY\n-----END RSA PRIVATE KEY-----\n"


GARBD_KEY = "-----BEGIN EC PRIVATE KEY-----\nGARBD-TEST-KEY\n-----END EC PRIVATE KEY-----\n"
DATABASE_SITES: set[str] = set()  # the sites `publish` gives a database (set per test)


def site(name: str) -> wt.WitnessedSite:
    database = (
        {"cluster": cluster_name(name), "caPem": f"CA-{name}", "certificatePem": f"CERT-{name}"}
        if name in DATABASE_SITES
        else None
    )
    found = wt.WitnessedSite.from_outputs(
        name,
        {"digitalocean": "203.0.113.10", "linode": "198.51.100.20"},
        {"digitalocean": f"PUBLIC-A-{name}", "linode": f"PUBLIC-B-{name}"},
        database,
    )
    assert found is not None
    return found


@dataclass
class Witness:
    root: Path

    @property
    def paths(self) -> dict[str, Any]:
        r = self.root
        return {
            "DOC": str(r / "etc/twinhost/witness.json"),
            "KEY": str(r / "etc/twinhost/witness-key.pem"),
            "APPLIED": str(r / "var/lib/twinhost-watcher-refresh/witness-applied.json"),
            "STATE": str(r / "var/lib/twinhost-witness/state.json"),
            "TINC": str(r / "etc/tinc"),
            "TA_VOLFILE": str(r / "etc/twinhost/thin-arbiter.vol"),
            "TA_UNIT": str(r / "etc/systemd/system/twinhost-thin-arbiter.service"),
            "SITES": str(r / "etc/twinhost/witness-sites"),
            "GARBD_DIR": str(r / "etc/twinhost/garbd"),
            "GARBD_UNIT": str(r / "etc/systemd/system/garbd@.service"),
            # Present: no apt-get (a test below removes one).
            "BINARIES": [str(r / "bin/tincd-present")],
            "GARBD_BINARIES": [str(r / "bin/garbd-present")],
        }

    def path(self, name: str) -> Path:
        return Path(self.paths[name])

    def publish(self, *sites: str) -> dict[str, Any]:
        document = wt.witness_document(
            [site(s) for s in sites], public_key_pem="PUBLIC-WITNESS", address="192.0.2.10"
        )
        # The thin-arbiter's directory under the root too.
        document["thinArbiter"]["directory"] = str(self.root / "srv/thin-arbiter")
        self.path("DOC").parent.mkdir(parents=True, exist_ok=True)
        self.path("DOC").write_text(json.dumps(document))
        self.path("KEY").write_text(KEY)
        return document

    def deliver_site_secrets(self, site_stack: str, site: str, garbd_key: str | None) -> None:
        """What the refresh writes from the site's SSM parameter."""
        directory = self.path("SITES")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{site_stack}.json").write_text(pw.witness_site_secrets(site, garbd_key) + "\n")

    def run(self) -> subprocess.CompletedProcess[str]:
        self.calls_reset()
        # A copy: loading the script as a module writes its bytecode beside it (not in the repo).
        script = self.root / WITNESS_MEMBER
        script.write_bytes(SCRIPT.read_bytes())
        return subprocess.run(
            [sys.executable, "-c", DRIVER, str(script), json.dumps(self.paths)],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": f"{self.root / 'bin'}:/usr/bin:/bin"},
        )

    def calls(self, tool: str) -> list[list[str]]:
        log = self.root / f"{tool}.calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def calls_reset(self) -> None:
        for log in self.root.glob("*.calls"):
            log.unlink()


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    made = Witness(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tincd-present").touch()
    (fake / "garbd-present").touch()
    DATABASE_SITES.clear()
    for tool in ("systemctl", "ufw", "apt-get"):
        path = fake / tool
        path.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            f"with open({str(tmp_path / (tool + '.calls'))!r}, 'a') as log:\n"
            "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        )
        path.chmod(0o755)
    return made


def test_each_site_becomes_a_tinc_net_with_the_witness_at_dot_3(witness: Witness) -> None:
    witness.publish("harbourlaw", "acme")
    result = witness.run()
    assert result.returncode == 0, result.stderr
    for name in ("harbourlaw", "acme"):
        net = witness.path("TINC") / wt.witness_net(name)
        conf = (net / "tinc.conf").read_text()
        assert f"Name = {wt.WITNESS_TINC_NAME}" in conf and f"Interface = {wt.witness_net(name)}" in conf
        assert f"Port = {wt.witness_port(name)}" in conf
        # No relaying between the pair through the witness: a partition stays one.
        assert "TunnelServer = yes" in conf and "Forwarding = off" in conf
        assert f"ConnectTo = {name}_digitalocean" in conf and f"ConnectTo = {name}_linode" in conf
        up = (net / "tinc-up").read_text()
        assert f"ip addr replace {wt.witness_mesh_address(name)}/24" in up
        node = (net / f"hosts/{name}_linode").read_text()
        assert "Address = 198.51.100.20 655" in node and f"PUBLIC-B-{name}" in node
        assert f"Subnet = {wt.mesh_network(name)[2]}/32" in node
        own = (net / f"hosts/{wt.WITNESS_TINC_NAME}").read_text()
        assert f"Subnet = {wt.witness_mesh_address(name)}/32" in own and "PUBLIC-WITNESS" in own
        key = net / "rsa_key.priv"
        assert key.read_text() == KEY and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert ["restart", f"tinc@{wt.witness_net(name)}.service"] in witness.calls("systemctl")
    assert "WITNESS-TEST-KEY" not in result.stdout + result.stderr


def test_one_thin_arbiter_serves_every_site_and_only_their_nodes(witness: Witness) -> None:
    witness.publish("harbourlaw", "acme")
    assert witness.run().returncode == 0
    volfile = witness.path("TA_VOLFILE").read_text()
    directory = witness.root / "srv/thin-arbiter"
    nodes = sorted(str(wt.mesh_network(s)[h]) for s in ("harbourlaw", "acme") for h in (1, 2))
    (allow,) = [line for line in volfile.splitlines() if ".allow " in line]
    assert sorted(allow.split()[-1].split(",")) == nodes
    assert f"option directory {directory}" in volfile and (directory / ".glusterfs/indices").is_dir()
    # Debian's graph: the thin-arbiter translator under locks, served by protocol/server.
    assert "type features/thin-arbiter" in volfile and "type protocol/server" in volfile
    unit = witness.path("TA_UNIT").read_text()
    assert f"-f {witness.path('TA_VOLFILE')}" in unit and "listen-port=24007" in unit
    assert ["restart", "twinhost-thin-arbiter.service"] in witness.calls("systemctl")


def test_ufw_opens_each_sites_port_to_its_nodes_and_the_thin_arbiter_only_on_the_witness_nets(
    witness: Witness,
) -> None:
    witness.publish("harbourlaw")
    assert witness.run().returncode == 0
    port = str(wt.witness_port("harbourlaw"))
    ufw = witness.calls("ufw")
    opened = [c for c in ufw if c[:1] == ["allow"] and port in c]
    assert sorted(opened) == sorted(
        [
            "allow",
            "proto",
            protocol,
            "from",
            source,
            "to",
            "any",
            "port",
            port,
            "comment",
            "twinhost witness tinc",
        ]
        for protocol in ("tcp", "udp")
        for source in ("203.0.113.10", "198.51.100.20")
    )
    assert [
        "allow", "in", "on", "w+", "from", "10.64.0.0/10", "to", "any", "port", "24007",
        "proto", "tcp", "comment", "twinhost witness thin-arbiter",
    ] in ufw  # fmt: skip


def test_a_second_run_restarts_nothing_and_marks_the_document_applied(witness: Witness) -> None:
    witness.publish("harbourlaw")
    assert witness.run().returncode == 0
    result = witness.run()
    assert result.returncode == 0
    assert not [c for c in witness.calls("systemctl") if c[0] == "restart"]
    applied = json.loads(witness.path("APPLIED").read_text())
    assert applied["sha256"] == hashlib.sha256(witness.path("DOC").read_bytes()).hexdigest()
    assert applied["keySha256"] == hashlib.sha256(KEY.encode()).hexdigest()


def test_a_site_no_longer_listed_is_stopped_removed_and_closed(witness: Witness) -> None:
    witness.publish("harbourlaw", "acme")
    assert witness.run().returncode == 0
    witness.publish("harbourlaw")
    assert witness.run().returncode == 0
    gone = wt.witness_net("acme")
    assert not (witness.path("TINC") / gone).exists()
    assert (witness.path("TINC") / wt.witness_net("harbourlaw")).is_dir()
    assert ["disable", "--now", "--quiet", f"tinc@{gone}.service"] in witness.calls("systemctl")
    port = str(wt.witness_port("acme"))
    deleted = [c for c in witness.calls("ufw") if c[:2] == ["delete", "allow"]]
    assert sorted(deleted) == sorted(
        ["delete", "allow", "proto", protocol, "from", source, "to", "any", "port", port]
        for protocol in ("tcp", "udp")
        for source in ("203.0.113.10", "198.51.100.20")
    )
    # Its nodes may no longer reach the thin-arbiter: restarted with the shorter list.
    assert str(wt.mesh_network("acme")[1]) not in witness.path("TA_VOLFILE").read_text()
    assert ["restart", "twinhost-thin-arbiter.service"] in witness.calls("systemctl")


def test_packages_are_installed_once_when_missing(witness: Witness) -> None:
    witness.publish("harbourlaw")
    paths = witness.paths
    (witness.root / "bin/tincd-present").unlink()
    result = witness.run()
    assert result.returncode == 0, result.stderr
    install = [c for c in witness.calls("apt-get") if c[0] == "install"]
    assert install and install[0][-2:] == ["tinc", "glusterfs-common"]
    assert paths == witness.paths


@pytest.mark.parametrize(
    ("field", "value"),
    [("net", "../../etc"), ("port", 80), ("network", "192.168.0.0/24"), ("name", "bad name")],
)
def test_a_document_that_could_write_elsewhere_is_refused(witness: Witness, field: str, value: Any) -> None:
    document = witness.publish("harbourlaw")
    if field == "name":
        document["sites"][0]["nodes"][0]["name"] = value
    else:
        document["sites"][0][field] = value
    witness.path("DOC").write_text(json.dumps(document))
    result = witness.run()
    assert result.returncode != 0 and "refused" in result.stderr
    assert not witness.path("TINC").exists() and witness.calls("systemctl") == []


def test_the_script_ships_in_the_code_archive() -> None:
    import io
    import tarfile

    from infra.watcher_install import source_archive

    with tarfile.open(fileobj=io.BytesIO(source_archive())) as tar:
        member = tar.extractfile(WITNESS_MEMBER)
        assert member is not None and member.read() == SCRIPT.read_bytes()
    assert REPO in SCRIPT.parents


# -- garbd: one per site with a database -----------------------------------------------------------


def test_garbd_is_one_templated_instance_per_site_listening_on_the_site_mesh_only(witness: Witness) -> None:
    DATABASE_SITES.add("acme-shop")
    witness.publish("acme-shop", "harbourlaw")
    witness.deliver_site_secrets("acme-shop", "acme-shop", GARBD_KEY)
    witness.deliver_site_secrets("harbourlaw", "harbourlaw", None)
    result = witness.run()
    assert result.returncode == 0, result.stderr
    network = wt.mesh_network("acme-shop")
    garbd = witness.path("GARBD_DIR")
    env = (garbd / "acme-shop.env").read_text()
    assert f"GALERA_NODES={network[1]}:4567,{network[2]}:4567\n" in env
    assert "GALERA_GROUP=twinhost-acme-shop\n" in env
    assert f"GALERA_OPTIONS=gmcast.listen_addr=tcp://{network[3]}:4567\n" in env
    unit = witness.path("GARBD_UNIT").read_text()
    assert "EnvironmentFile=/etc/twinhost/garbd/%i.env" in unit
    assert "--group=${GALERA_GROUP}" in unit and "gcomm://${GALERA_NODES}" in unit
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert f"LoadCredential={name}:/etc/twinhost/garbd/%i/{name}" in unit
        assert f"=%d/{name}" in unit
        assert stat.S_IMODE((garbd / "acme-shop" / name).stat().st_mode) == 0o600
    assert "socket.ssl=YES" in unit
    assert "DynamicUser=yes" in unit and "KillSignal=SIGINT" in unit
    assert (garbd / "acme-shop/key.pem").read_text() == GARBD_KEY
    assert (garbd / "acme-shop/ca.pem").read_text() == "CA-acme-shop\n"
    assert (garbd / "acme-shop/cert.pem").read_text() == "CERT-acme-shop\n"
    assert stat.S_IMODE((garbd / "acme-shop").stat().st_mode) == 0o700
    systemctl = witness.calls("systemctl")
    assert ["restart", "garbd@acme-shop.service"] in systemctl
    # A site without a database gets no garbd.
    assert not (garbd / "harbourlaw.env").exists()
    assert not [c for c in systemctl if any("garbd@harbourlaw" in a for a in c)]
    assert "GARBD-TEST-KEY" not in result.stdout + result.stderr


def test_garbd_joins_the_cluster_the_nodes_form() -> None:
    """The witness's document names the cluster the nodes' config names, on the nodes' group port."""
    DATABASE_SITES.clear()
    DATABASE_SITES.add("acme")
    document = wt.witness_document([site("acme")], public_key_pem="P", address="192.0.2.10")
    (entry,) = document["sites"]
    assert entry["database"]["cluster"] == cluster_name("acme")
    assert entry["database"]["port"] == GALERA_PORT == wt.GARBD_PORT
    assert "PRIVATE" not in json.dumps(document)  # the key travels through SSM only
    DATABASE_SITES.clear()


def test_only_the_sites_own_nodes_reach_its_garbd_on_its_own_interface(witness: Witness) -> None:
    DATABASE_SITES.update({"acme", "harbourlaw"})
    witness.publish("acme", "harbourlaw")
    for name in ("acme", "harbourlaw"):
        witness.deliver_site_secrets(name, name, GARBD_KEY)
    assert witness.run().returncode == 0
    opened = [c for c in witness.calls("ufw") if c[:1] == ["allow"] and "4567" in c]
    assert sorted(opened) == sorted(
        ["allow", "in", "on", wt.witness_net(name), "from", str(wt.mesh_network(name)[host]),
         "to", wt.witness_mesh_address(name), "port", "4567", "proto", "tcp", "comment", "twinhost witness garbd"]
        for name in ("acme", "harbourlaw")
        for host in (1, 2)
    )  # fmt: skip


def test_a_site_that_loses_its_database_or_its_listing_has_its_garbd_stopped_and_closed(
    witness: Witness,
) -> None:
    DATABASE_SITES.update({"acme", "harbourlaw"})
    witness.publish("acme", "harbourlaw")
    for name in ("acme", "harbourlaw"):
        witness.deliver_site_secrets(name, name, GARBD_KEY)
    assert witness.run().returncode == 0
    DATABASE_SITES.discard("acme")
    witness.publish("acme")  # acme without a database, harbourlaw no longer listed
    (witness.path("SITES") / "harbourlaw.json").unlink()
    assert witness.run().returncode == 0
    systemctl = witness.calls("systemctl")
    for name in ("acme", "harbourlaw"):
        assert ["disable", "--now", "--quiet", f"garbd@{name}.service"] in systemctl
        assert not (witness.path("GARBD_DIR") / f"{name}.env").exists()
        assert not (witness.path("GARBD_DIR") / name).exists()
    deleted = [c for c in witness.calls("ufw") if c[:2] == ["delete", "allow"] and "4567" in c]
    assert len(deleted) == 4


def test_garbd_waits_for_its_key_and_the_document_is_not_marked_applied(witness: Witness) -> None:
    DATABASE_SITES.add("acme")
    witness.publish("acme")
    result = witness.run()
    assert result.returncode == 1 and "no garbd key" in result.stderr
    assert not witness.path("APPLIED").exists()
    witness.deliver_site_secrets("acme", "acme", GARBD_KEY)
    assert witness.run().returncode == 0
    applied = json.loads(witness.path("APPLIED").read_text())
    assert applied["sitesSha256"]


def test_garbds_package_comes_with_debians_single_instance_unit_masked_first(witness: Witness) -> None:
    DATABASE_SITES.add("acme")
    witness.publish("acme")
    witness.deliver_site_secrets("acme", "acme", GARBD_KEY)
    (witness.root / "bin/garbd-present").unlink()
    witness.run()
    systemctl, apt = witness.calls("systemctl"), witness.calls("apt-get")
    assert ["mask", "--quiet", "garb.service"] in systemctl
    assert ["install", "-y", "-q", "--no-install-recommends", "galera-arbitrator-4"] in apt
    # Masked before the package is installed (the fakes log in order; apt-get runs after).
    assert not [c for c in systemctl if "garbd@acme.service" in c and c[0] == "mask"]


@pytest.mark.parametrize(
    ("where", "value"),
    [("site", "Acme"), ("cluster", "bad name;"), ("address", "node")],
    ids=["site not a label", "cluster name", "listen on a node's address"],
)
def test_garbd_refuses_what_would_not_form_a_cluster(witness: Witness, where: str, value: str) -> None:
    DATABASE_SITES.add("acme")
    document = witness.publish("acme")
    entry = document["sites"][0]
    if where == "site":
        entry["site"] = value
    elif where == "cluster":
        entry["database"]["cluster"] = value
    else:
        entry["address"] = entry["nodes"][0]["meshAddress"]
    witness.path("DOC").write_text(json.dumps(document))
    witness.deliver_site_secrets("acme", "acme", GARBD_KEY)
    result = witness.run()
    assert result.returncode == 1 and "refused" in result.stderr and "garbd" in result.stderr
    assert witness.calls("systemctl") == []
