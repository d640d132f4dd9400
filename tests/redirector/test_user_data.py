"""The redirector's rendered user data and Caddyfile, as data: size, structure, hooks, and the
redirect rules as Caddy itself reads them (`caddy adapt`)."""

from __future__ import annotations

import base64
import gzip
import io
import ipaddress
import json
import os
import shutil
import subprocess
import tarfile
from typing import Any

import pytest
import yaml

from infra import watcher_install as install
from infra.bootstrap.parts import File, MergeError, Parts, merge, static, strip_comments
from infra.redirector import (
    AWS_USER_DATA_LIMIT,
    RedirectorSpec,
    compressed_user_data,
    decompress,
    render_user_data,
)
from infra.redirector.parts import (
    ASK_CONFIG,
    ASK_SCRIPT,
    CADDY_DROPIN,
    CADDYFILE,
    MACHINE,
    render_caddyfile,
)

KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPQ0wQG0XPe8IN9wENY0RVhI1B3Rur+nUXSAQ4yz9Vm1 ana@brightpixel",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5FSg7PbRYglcK525KRN8iSat9Ibyyoy3vXDM1reJeT ops-laptop@brightpixel",
)
SPEC = RedirectorSpec(
    hostname="twinhost-redirector",
    debian=12,
    admin_user="ops",
    ssh_keys=KEYS,
    ops_zone="ops.brightpixel.agency",
    acme_email="hosting@brightpixel.agency",
    admin_cidrs=("203.0.113.0/28", "2001:db8:40::/48"),
)
# The shared hardening's sshd drop-in (infra.bootstrap), which the redirector now uses.
SSHD_DROPIN = "/etc/ssh/sshd_config.d/01-twinhost-hardening.conf"
# What the shared hardening and the watcher may add later must still fit: keep this much free.
HEADROOM = 6 * 1024


def _document(text: str) -> dict[str, Any]:
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def _files(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in document["write_files"]}


def _content(entry: dict[str, Any]) -> str:
    if entry.get("encoding") == "gz+b64":
        return gzip.decompress(base64.b64decode(entry["content"])).decode()
    return str(entry["content"])


def test_user_data_fits_the_ec2_16_kb_limit_with_room_to_grow() -> None:
    text = render_user_data(SPEC)
    size = len(compressed_user_data(text))
    print(f"redirector user data: {size} bytes gzip ({len(text.encode())} raw) of {AWS_USER_DATA_LIMIT}")
    assert size <= AWS_USER_DATA_LIMIT - HEADROOM


def test_compressed_user_data_is_what_cloud_init_reads() -> None:
    text = render_user_data(SPEC)
    data = compressed_user_data(text)
    assert data[:2] == b"\x1f\x8b" and decompress(data) == text
    assert compressed_user_data(text) == data  # reproducible: no timestamp, no spurious diff


def test_user_data_over_16_kb_is_refused_before_any_resource() -> None:
    # Random text: gzip cannot shrink it below the limit (a run of "x" would compress away).
    noise = base64.b64encode(os.urandom(AWS_USER_DATA_LIMIT + 4096)).decode()
    bulky = Parts(name="bulky", files=(File("/opt/bulky", noise),))
    with pytest.raises(ValueError, match="EC2 accepts at most 16384"):
        render_user_data(SPEC, extra_parts=[bulky])


def test_user_data_installs_caddy_and_the_ask_service_and_starts_them() -> None:
    document = _document(render_user_data(SPEC))
    assert {"caddy", "python3-dnspython", "unattended-upgrades"} <= set(document["packages"])
    files = _files(document)
    assert {CADDYFILE, CADDY_DROPIN, ASK_CONFIG, SSHD_DROPIN} <= set(files)
    # The script is not in user data: it comes with the watcher's code archive (next test).
    assert ASK_SCRIPT not in files and "/usr/local/bin/twinhost-apex-ask" not in files
    unit = _content(files["/etc/systemd/system/twinhost-apex-ask.service"])
    assert f"ExecStart=/usr/bin/python3 {ASK_SCRIPT} /etc/twinhost/apex-ask.json" in unit
    # Until the refresh has installed it, the unit does not start: nothing answers Caddy's ask.
    assert f"ConditionPathExists={ASK_SCRIPT}" in unit
    # The shared hardening comes along: firewall, fail2ban, unattended upgrades.
    assert {"ufw", "fail2ban"} <= set(document["packages"])
    assert ["systemctl", "enable", "--now", "twinhost-apex-ask.service"] in document["runcmd"]
    assert document["runcmd"][-1] == ["systemctl", "restart", "caddy.service"]


def test_shipped_script_is_the_repo_script() -> None:
    """It travels in the watcher's code archive (SHA-256 in the release), unpacked into lib/."""
    with tarfile.open(fileobj=io.BytesIO(install.source_archive())) as tar:
        member = tar.extractfile(ASK_SCRIPT.removeprefix(install.ROOT + "/lib/"))
        assert member is not None
        assert member.read().decode() == static(MACHINE + ASK_SCRIPT)


def test_ask_service_config_names_the_registry_and_resolvers() -> None:
    spec = RedirectorSpec(**{**SPEC.__dict__, "resolvers": ("192.0.2.53",), "resolver_port": 5353})
    files = _files(_document(render_user_data(spec)))
    config = json.loads(_content(files[ASK_CONFIG]))
    assert config["registry"] == "_apex.ops.brightpixel.agency"
    assert config["resolvers"] == ["192.0.2.53"] and config["resolver_port"] == 5353
    assert config["listen"] == "127.0.0.1"
    network = _content(files["/etc/systemd/system/twinhost-apex-ask.service.d/network.conf"])
    assert "IPAddressAllow=localhost 192.0.2.53" in network


def test_admin_user_logs_in_with_keys_only() -> None:
    document = _document(render_user_data(SPEC))
    user = next(u for u in document["users"] if isinstance(u, dict) and u.get("name") == "ops")
    assert user["lock_passwd"] is True
    assert user["ssh_authorized_keys"] == list(KEYS)
    assert document["ssh_pwauth"] is False and document["disable_root"] is True
    sshd = _content(_files(document)[SSHD_DROPIN])
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin no" in sshd
    # SSH is open only to the admin networks in the node's own firewall too.
    firewall = _content(_files(document)["/usr/local/sbin/twinhost-firewall"])
    assert "203.0.113.0/28" in firewall and "0.0.0.0/0 port 22" not in firewall


def test_acme_directory_and_email_reach_caddy() -> None:
    spec = RedirectorSpec(
        **{
            **SPEC.__dict__,
            "acme_directory": "https://acme.lab.test/dir",
            "acme_ca_root_pem": "-----BEGIN CERTIFICATE-----\n...\n",
        }
    )
    files = _files(_document(render_user_data(spec)))
    caddyfile = _content(files[CADDYFILE])
    assert "acme_ca https://acme.lab.test/dir" in caddyfile
    assert "acme_ca_root /etc/twinhost/acme-ca-root.pem" in caddyfile
    assert "email hosting@brightpixel.agency" in caddyfile
    assert "/etc/twinhost/acme-ca-root.pem" in files


def test_extra_parts_are_added_after_the_redirector_own() -> None:
    watcher = Parts(
        name="watcher",
        packages=("python3-httpx",),
        files=(File("/etc/twinhost/watcher.json", "{}\n", 0o600),),
        runcmd=(("systemctl", "enable", "--now", "twinhost-watcher.service"),),
    )
    document = _document(render_user_data(SPEC, extra_parts=[watcher]))
    assert document["runcmd"][-1] == ["systemctl", "enable", "--now", "twinhost-watcher.service"]
    assert _files(document)["/etc/twinhost/watcher.json"]["permissions"] == "0600"


def test_two_parts_writing_one_file_is_an_error() -> None:
    one = Parts(name="one", files=(File("/etc/x", "1"),))
    two = Parts(name="two", files=(File("/etc/x", "2"),), config={"hostname": "b"})
    with pytest.raises(MergeError, match="/etc/x is written by both one and two"):
        merge([one, two])
    with pytest.raises(MergeError, match="'hostname' is set by both a and b"):
        merge([Parts(name="a", config={"hostname": "a"}), Parts(name="b", config={"hostname": "b"})])


def test_shipped_config_files_lose_only_comments_and_blank_lines() -> None:
    """The shared stripper (infra.bootstrap.parts.strip_comments) that every redirector file
    goes through; a comment after a directive is part of that line and stays."""
    text = "# why\n[Service]\n    # why too\nA=1\n\n\n# end\nB=2 # kept\n"
    assert strip_comments(text) == "[Service]\nA=1\nB=2 # kept\n"


# -- the redirect rules, as Caddy reads them -----------------------------------------------------


def _adapted(spec: RedirectorSpec, tmp_path: Any) -> dict[str, Any]:
    path = tmp_path / "redirector.Caddyfile"
    path.write_text(render_caddyfile(spec))
    result = subprocess.run(
        ["caddy", "adapt", "--adapter", "caddyfile", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "warn" not in result.stderr.lower(), result.stderr  # e.g. an unformatted or odd file
    return json.loads(result.stdout)


def _flatten(handlers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for handler in handlers:
        if handler.get("handler") == "subroute":
            for route in handler["routes"]:
                flat.extend(_flatten(route["handle"]))
        else:
            flat.append(handler)
    return flat


def test_redirect_rules_ask_the_registry_then_301_to_www_with_path_and_query(
    host_packages: None, tmp_path: Any
) -> None:
    config = _adapted(SPEC, tmp_path)
    servers = config["apps"]["http"]["servers"].values()
    listens = sorted(address for server in servers for address in server["listen"])
    assert listens == [":443", ":80"]
    for server in servers:
        (route,) = server["routes"]
        handlers = _flatten(route["handle"])
        gate, redirect = handlers
        # The gate comes first: no redirect is answered for a name the registry does not know.
        assert gate["handler"] == "reverse_proxy"
        assert gate["upstreams"] == [{"dial": "127.0.0.1:9180"}]
        assert gate["rewrite"]["uri"] == "/gate"
        assert gate["headers"]["request"]["set"]["X-Twinhost-Apex"] == ["{http.request.host}"]
        assert redirect == {
            "handler": "static_response",
            "status_code": 301,
            "headers": {"Location": ["https://www.{http.request.host}{http.request.uri}"]},
        }


def test_certificates_are_on_demand_gated_by_ask_and_rate_limited(host_packages: None, tmp_path: Any) -> None:
    config = _adapted(SPEC, tmp_path)
    automation = config["apps"]["tls"]["automation"]
    on_demand = automation["on_demand"]
    assert on_demand["ask"] == "http://127.0.0.1:9180/ask"
    assert on_demand["rate_limit"]["burst"] == 5
    policies = automation["policies"]
    assert all(policy.get("on_demand") for policy in policies)
    issuers = [issuer for policy in policies for issuer in policy["issuers"]]
    assert {issuer["module"] for issuer in issuers} == {"acme"}
    assert {issuer["ca"] for issuer in issuers} == {"https://acme-v02.api.letsencrypt.org/directory"}
    assert {issuer["email"] for issuer in issuers} == {"hosting@brightpixel.agency"}
    assert config["admin"]["listen"] == "unix//run/caddy/admin.sock"
    assert all(server["protocols"] == ["h1", "h2"] for server in config["apps"]["http"]["servers"].values())


def test_acme_challenges_can_be_pinned_to_one_type(host_packages: None, tmp_path: Any) -> None:
    default = _adapted(SPEC, tmp_path)
    (policy,) = default["apps"]["tls"]["automation"]["policies"]
    assert all("challenges" not in issuer for issuer in policy["issuers"])  # both allowed
    pinned = _adapted(RedirectorSpec(**{**SPEC.__dict__, "acme_challenges": ("http-01",)}), tmp_path)
    (policy,) = pinned["apps"]["tls"]["automation"]["policies"]
    assert [issuer["challenges"] for issuer in policy["issuers"]] == [{"tls-alpn": {"disabled": True}}]
    assert policy["on_demand"] is True


def test_systemd_units_and_drop_ins_are_valid(host_packages: None, tmp_path: Any) -> None:
    """systemd's own parser on the shipped units (with Debian's caddy.service under the drop-in):
    an unknown or misspelt directive would be silently ignored on the node."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    files = _files(_document(render_user_data(SPEC)))
    for path, entry in files.items():
        if path.startswith("/etc/systemd/system/"):
            target = tmp_path / path.removeprefix("/etc/systemd/system/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_content(entry))
    shutil.copy("/lib/systemd/system/caddy.service", tmp_path / "caddy.service")
    result = subprocess.run(
        ["systemd-analyze", "verify", "twinhost-apex-ask.service", "caddy.service"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"},
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def _ip_address_deny(unit_text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network | str]:
    denied: list[Any] = []
    for line in unit_text.splitlines():
        if line.startswith("IPAddressDeny="):
            for item in line.split("=", 1)[1].split():
                denied.append(item if item in ("any", "link-local") else ipaddress.ip_network(item))
    return denied


@pytest.mark.parametrize(
    "unit",
    ["/etc/systemd/system/caddy.service.d/twinhost.conf", "/etc/systemd/system/twinhost-apex-ask.service"],
)
def test_internet_facing_services_cannot_reach_the_instance_metadata_service(unit: str) -> None:
    """The instance role reads SSM, which holds the watcher's DNS token: Caddy and the ask service
    (what the internet talks to) must not reach IMDS (169.254.169.254, fd00:ec2::254)."""
    denied = _ip_address_deny(_content(_files(_document(render_user_data(SPEC)))[unit]))
    for imds in (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")):
        assert any(d == "any" or (not isinstance(d, str) and imds in d) for d in denied), (unit, denied)


def test_a_script_loses_only_its_header_comments():
    """A `#!` script: the comment block after the `#!` line goes (nothing is quoted there);
    from the first command on it ships whole, since a '#' line there may be inside a
    here-document or a string."""
    script = (
        "#!/bin/bash\n# why this script\n\n# more why\nset -eu\ncat <<EOF\n# content\nEOF\n# a comment kept\n"
    )
    assert strip_comments(script) == "#!/bin/bash\nset -eu\ncat <<EOF\n# content\nEOF\n# a comment kept\n"
    assert strip_comments("#!/bin/sh\nexit 0\n") == "#!/bin/sh\nexit 0\n"
