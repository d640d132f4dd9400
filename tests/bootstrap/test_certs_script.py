"""twinhost-certs (the node's certificate script) run for real with bash and openssl, with fakes on
PATH only for what cannot run here: certbot (a CA that issues, refuses, or whose lock the peer
holds), the GlusterFS mount check, name resolution (a table per test) and the webroot probe (only
this pair's addresses serve the shared webroot)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from tests.bootstrap.bootstrap_specs import self_signed

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "cloudinit/site/usr/local/sbin/twinhost-certs"
WWW, FAILOVER = "www.acme-shop.example", "acme.ops.example.net"
NAMES = f"{WWW} {FAILOVER}"  # as the stack lists them: client names, then the failover name
PAIR = ("192.0.2.10", "198.51.100.20")  # the two nodes: they serve the shared webroot
ELSEWHERE = "203.0.113.9"  # the client's old host: it does not

FAKES = {
    # A CA that issues: a lineage of its own for the one name asked (every call is recorded).
    "certbot": """for ((i = 1; i <= $#; i++)); do
    j=$((i + 1))
    case "${!i}" in --cert-name) name=${!j} ;; --config-dir) config=${!j} ;; esac
done
echo "$*" >> "$TWINHOST_FAKE/certbot-calls"
mkdir -p "$config/live/$name"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \\
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \\
    -keyout "$config/live/$name/privkey.pem" -out "$config/live/$name/fullchain.pem" 2>/dev/null
""",
    "findmnt": "exit 0\n",  # the shared volume is a GlusterFS mount
    # Name resolution from the test's table ("name address..." per line); none: not found.
    "getent": """found=2
while read -r name addresses; do
    [ "$name" = "$2" ] || continue
    for address in $addresses; do echo "$address STREAM $2"; found=0; done
done < "$TWINHOST_FAKE/dns"
exit $found
""",
    # The webroot probe: the pair's addresses serve the token asked for, any other an old site.
    "curl": """for arg; do case "$arg" in *:80:*) address=${arg##*:80:} ;; esac; last=$arg; done
address=${address#[}
address=${address%]}
if grep -qx "$address" "$TWINHOST_FAKE/pair"; then echo "${last##*/}"; else echo "<html>old site</html>"; fi
""",
    "systemctl": "exit 3\n",  # nginx is not running here: nothing to reload
}


class Node:
    """One node's script with its fakes: `run()` it, read what it installed and reported."""

    def __init__(self, tmp_path: Path, dns: dict[str, tuple[str, ...]], names: str = NAMES):
        self.fake = tmp_path / "fake"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.fake.mkdir()
        for name, body in FAKES.items():
            self.fake_command(name, body)
        (self.fake / "pair").write_text("\n".join(PAIR) + "\n")
        self.resolve(dns)
        self.shared, self.tls = tmp_path / "shared", tmp_path / "tls"
        self.shared.mkdir()
        self.status_file = tmp_path / "state/certs-status.json"
        env_file = tmp_path / "certs.env"
        env_file.write_text(
            f'CERT_MODE=acme\nSERVER_NAMES="{names}"\nFAILOVER_NAME={FAILOVER}\n'
            f"ACME_EMAIL=ops@example.net\nACME_DIRECTORY=https://acme.invalid/dir\nSHARED_DIR={self.shared}\n"
        )
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "TWINHOST_CERTS_ENV": str(env_file),
            "TWINHOST_TLS_DIR": str(self.tls),
            "TWINHOST_CERTS_STATUS": str(self.status_file),
            "TWINHOST_FAKE": str(self.fake),
            "HOME": str(tmp_path),
        }

    def fake_command(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)

    def resolve(self, dns: dict[str, tuple[str, ...]]) -> None:
        (self.fake / "dns").write_text("".join(f"{n} {' '.join(a)}\n" for n, a in dns.items()))

    def run(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT)], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def lineage(self, name: str) -> Path:
        return self.shared / "acme/config/live" / name

    def served(self, name: str) -> str:
        return (self.tls / "live" / name / "fullchain.pem").read_text()

    def certbot_names(self) -> list[str]:
        """The names asked of the CA, one list entry per certbot run (its `-d` values)."""
        calls = self.fake / "certbot-calls"
        runs = calls.read_text().splitlines() if calls.exists() else []
        asked = []
        for run in runs:
            args = run.split()
            domains = [args[i + 1] for i, arg in enumerate(args) if arg == "-d"]
            assert len(domains) == 1, f"one name per certificate: {run}"
            asked.append(domains[0])
        return asked

    def status(self) -> dict[str, dict[str, Any]]:
        document = json.loads(self.status_file.read_text())
        assert document["mode"] == "acme" and document["updated"].endswith("Z")
        return {entry["name"]: entry for entry in document["names"]}


def sans(pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


def put_lineage(node: Node, name: str, days: int = 90) -> str:
    """A lineage already on the shared volume (from an earlier run, or the peer's)."""
    cert, key = self_signed((name,), days=days)
    node.lineage(name).mkdir(parents=True)
    (node.lineage(name) / "privkey.pem").write_text(key)
    (node.lineage(name) / "fullchain.pem").write_text(cert)
    return cert


def test_the_failover_name_gets_its_own_certificate_while_www_does_not_resolve(tmp_path) -> None:
    """Issue 15: the client has not set its www CNAME yet. The failover name (what the watcher
    checks) is issued at once, alone on its certificate; www is skipped at once (no wait) and
    reported in the journal and the status file, and nginx has a stand-in to serve for it."""
    node = Node(tmp_path, {FAILOVER: PAIR})
    started = time.monotonic()
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30, "a name that does not resolve is skipped, not waited for"
    assert node.certbot_names() == [FAILOVER]
    assert node.served(FAILOVER) == (node.lineage(FAILOVER) / "fullchain.pem").read_text()
    assert sans(node.served(FAILOVER)) == [FAILOVER]
    assert f"{WWW}: skipped, not asking the CA: does not resolve" in result.stderr
    assert sans(node.served(WWW)) == [WWW, FAILOVER]  # the self-signed stand-in
    assert os.stat(node.tls / "live" / WWW / "privkey.pem").st_mode & 0o077 == 0
    status = node.status()
    assert status[FAILOVER]["state"] == "valid" and status[FAILOVER]["serving"] == "ca"
    assert status[FAILOVER]["failover"] is True and status[FAILOVER]["notAfter"]
    assert status[WWW] | {"notAfter": ""} == {
        "name": WWW,
        "failover": False,
        "state": "skipped",
        "detail": "does not resolve",
        "serving": "self-signed",
        "notAfter": "",
    }


def test_www_is_issued_by_the_next_run_once_it_points_here(tmp_path) -> None:
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: (ELSEWHERE,)})
    first = node.run()
    assert first.returncode == 0, first.stderr
    assert node.certbot_names() == [FAILOVER]
    assert f"{WWW}: skipped, not asking the CA: {ELSEWHERE} does not serve" in first.stderr
    assert node.status()[WWW]["state"] == "skipped"
    failover_cert = node.served(FAILOVER)

    node.resolve({FAILOVER: PAIR, WWW: PAIR})  # the client sets its www CNAME
    second = node.run()
    assert second.returncode == 0, second.stderr
    assert node.certbot_names() == [FAILOVER, WWW]  # the failover name was not asked again
    assert sans(node.served(WWW)) == [WWW]
    assert node.served(FAILOVER) == failover_cert
    status = node.status()
    assert status[WWW]["state"] == "valid" and status[WWW]["serving"] == "ca"
    assert status[FAILOVER]["state"] == "valid"


def test_a_client_who_left_does_not_block_the_failover_names_renewal(tmp_path) -> None:
    """Both certificates are due (10 days left) and www now points at the client's new host: the
    failover name is renewed, www is skipped without a CA order (no failed validation, no
    back-off) and keeps its old certificate meanwhile."""
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: (ELSEWHERE,)})
    old_failover = put_lineage(node, FAILOVER, days=10)
    old_www = put_lineage(node, WWW, days=10)
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert node.certbot_names() == [FAILOVER]
    assert node.served(FAILOVER) != old_failover and sans(node.served(FAILOVER)) == [FAILOVER]
    assert node.served(WWW) == old_www
    assert not (node.shared / "acme/last-failure" / WWW).exists()
    status = node.status()
    assert status[FAILOVER]["state"] == "valid"
    assert status[WWW]["state"] == "skipped" and ELSEWHERE in status[WWW]["detail"]
    assert status[WWW]["serving"] == "ca"  # the old one, until it expires


def test_the_failover_name_waits_for_the_peers_webroot_at_first_boot(tmp_path) -> None:
    """At first boot the peer mounts the volume a little after this node: its address does not
    serve the webroot yet. The failover name is probed again (no CA order, no failed validation)
    until it does, then issued in the same run."""
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: PAIR})
    (node.fake / "pair").write_text(PAIR[0] + "\n")

    def peer_mounts() -> None:
        time.sleep(6)
        (node.fake / "pair").write_text("\n".join(PAIR) + "\n")

    peer = threading.Thread(target=peer_mounts)
    peer.start()
    started = time.monotonic()
    result = node.run(timeout=120)
    took = time.monotonic() - started
    peer.join()
    assert result.returncode == 0, result.stderr
    assert 5 <= took < 60
    assert node.certbot_names() == [FAILOVER, WWW]
    assert {entry["state"] for entry in node.status().values()} == {"valid"}
    assert "skipped" not in result.stderr  # waited for, not skipped


def test_losing_certbots_lock_to_the_peer_waits_for_its_certificate_and_is_no_failure(tmp_path) -> None:
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: PAIR})
    # The peer node holds certbot's lock on the shared config directory.
    node.fake_command("certbot", 'echo "Another instance of Certbot is already running." >&2\nexit 1\n')
    certs = {}

    def peer_finishes() -> None:  # the peer's certbot writes the lineages a few seconds later
        time.sleep(6)
        for name in (FAILOVER, WWW):
            certs[name] = put_lineage(node, name)  # valid 90 days: "current" for the script

    peer = threading.Thread(target=peer_finishes)
    peer.start()
    started = time.monotonic()
    result = node.run(timeout=120)
    took = time.monotonic() - started
    peer.join()
    assert result.returncode == 0, result.stderr
    assert f"{FAILOVER}: the peer is obtaining the certificate; waiting for it" in result.stderr
    # It served the peer's certificates in this run, instead of the self-signed one until the next.
    for name in (FAILOVER, WWW):
        assert node.served(name) == certs[name], result.stderr
    assert 5 <= took < 60
    # Losing the lock is not a failed validation: no back-off for either node.
    assert not any((node.shared / "acme/last-failure").iterdir())


def test_a_real_certbot_failure_still_backs_off(tmp_path) -> None:
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: PAIR})
    node.fake_command("certbot", "echo 'Some challenges have failed.' >&2\nexit 1\n")
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert "certbot failed" in result.stderr and "Some challenges have failed." in result.stderr
    for name in (FAILOVER, WWW):  # each name backs off on its own
        assert (node.shared / "acme/last-failure" / name).exists()
        # Meanwhile nginx has a certificate to start with: the self-signed stopgap.
        assert "BEGIN CERTIFICATE" in node.served(name)
        assert os.stat(node.tls / "live" / name / "privkey.pem").st_mode & 0o077 == 0
        assert node.status()[name]["state"] == "failed"
    # The next run does not ask the CA again within the back-off.
    node.fake_command("certbot", 'echo asked >> "$TWINHOST_FAKE/asked"\nexit 1\n')
    again = node.run()
    assert again.returncode == 0 and not (node.fake / "asked").exists()
    assert "last ACME attempt failed less than 1800 s ago; waiting" in again.stderr


def test_a_certificate_whose_key_does_not_match_is_never_installed(tmp_path) -> None:
    """Issue 15: a lineage whose privkey.pem is not the certificate's key (a torn copy, another
    lineage's key) would stop nginx at its next reload: it is refused, loudly, and nginx keeps
    what it serves. The other name's certificate is still installed."""
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: PAIR})
    node.lineage(FAILOVER).mkdir(parents=True)
    cert, _ = self_signed((FAILOVER,))
    _, other_key = self_signed((FAILOVER,))
    (node.lineage(FAILOVER) / "fullchain.pem").write_text(cert)
    (node.lineage(FAILOVER) / "privkey.pem").write_text(other_key)
    www_cert = put_lineage(node, WWW)
    result = node.run()
    assert result.returncode != 0
    assert "do not match; not installed" in result.stderr
    live = node.tls / "live" / FAILOVER
    assert not (live / "fullchain.pem").exists() or (live / "fullchain.pem").read_text() != cert
    assert not (live / "privkey.pem").exists() or (live / "privkey.pem").read_text() != other_key
    assert node.served(WWW) == www_cert
    assert node.status()[FAILOVER]["state"] == "failed"


def test_a_matching_certificate_is_installed(tmp_path) -> None:
    node = Node(tmp_path, {FAILOVER: PAIR, WWW: PAIR})
    cert = put_lineage(node, FAILOVER)
    result = node.run()
    assert result.returncode == 0, result.stderr
    assert node.served(FAILOVER) == cert


def test_a_server_name_that_is_not_a_host_name_is_refused(tmp_path) -> None:
    """Names become paths in the certificate stores."""
    node = Node(tmp_path, {FAILOVER: PAIR}, names=f"../../etc {FAILOVER}")
    result = node.run()
    assert result.returncode == 1 and "refusing the server name '../../etc'" in result.stderr
    assert not (node.tls / "live").exists()
