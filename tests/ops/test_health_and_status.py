"""The web-front probe against a real TLS server on loopback, and how `status` reads a node's,
GlusterFS's and the watcher's answers."""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.ops import status
from infra.ops.health import HealthChecker, Probe, wait_healthy
from infra.ops.remote import SshSettings, Target
from tests.ops import fakes
from tests.ops.fakes import FakeNode

NAME = "harbourlaw.ops.example.net"
EXPIRES = datetime.datetime(2027, 3, 1, 12, 0, tzinfo=datetime.UTC)


def certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(EXPIRES)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def web_front(tmp_path: Path) -> Iterator[tuple[int, Path, dict[str, int]]]:
    cert, key = certificate(tmp_path)
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "version": "7", "host": self.headers["Host"]}).encode()
            self.send_response(answer["status"] if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert, answer
    server.shutdown()


def test_the_probe_checks_like_the_watcher_and_reads_expiry_and_body(web_front):
    port, cert, _ = web_front
    probe = HealthChecker(ca_file=cert, port=port)("127.0.0.1", NAME)
    assert probe.ok and probe.detail == "200"
    assert probe.certificate_expires == EXPIRES
    assert probe.body == {
        "status": "ok",
        "version": "7",
        "host": NAME,
    }  # SNI name as Host, as the watcher sends


def test_a_503_is_unhealthy(web_front):
    port, cert, answer = web_front
    answer["status"] = 503
    probe = HealthChecker(ca_file=cert, port=port)("127.0.0.1", NAME)
    assert not probe.ok and probe.detail == "503"


def test_a_certificate_that_does_not_verify_is_unhealthy_and_its_expiry_still_shown(web_front):
    port, _, _ = web_front
    probe = HealthChecker(port=port)("127.0.0.1", NAME)  # system CAs: a self-signed cert fails
    assert not probe.ok and probe.detail.startswith("tls:")
    assert probe.certificate_expires == EXPIRES


def test_nothing_listening_is_a_connect_failure():
    probe = HealthChecker(port=1, timeout=1)("127.0.0.1", NAME)
    assert not probe.ok and probe.detail.startswith("connect:")


def test_healthy_needs_the_streak_not_one_lucky_check():
    answers = iter([True, False, True, True])
    seen: list[bool] = []

    def check(address: str, name: str) -> Probe:
        ok = next(answers)
        seen.append(ok)
        return Probe(ok, "200" if ok else "502", 0.0)

    assert wait_healthy(check, "a", NAME, needed=2, timeout=10, interval=0, sleep=lambda _s: None).ok
    assert seen == [True, False, True, True]


GLUSTER = """Number of Peers: 1

Hostname: 10.77.0.2
Uuid: 0f2d
State: Peer in Cluster (Connected)
Status of volume: shared
Gluster process                             TCP Port  RDMA Port  Online  Pid
------------------------------------------------------------------------------
Brick 10.77.0.1:/srv/gluster/shared         49152     0          Y       812
Brick 10.77.0.2:/srv/gluster/shared         49152     0          N       N/A
Self-heal Daemon on localhost               N/A       N/A        Y       830

Brick 10.77.0.1:/srv/gluster/shared
Status: Connected
Total Number of entries: 3
Number of entries in heal pending: 3

Brick 10.77.0.2:/srv/gluster/shared
Status: Transport endpoint is not connected
Total Number of entries: -
"""


def test_gluster_state_is_summed_up_from_peer_volume_and_heal_output():
    assert status.gluster_summary(GLUSTER) == "1/1 peers connected, 1/2 bricks online, 3 to heal"
    assert status.gluster_summary("") is None


def test_galera_state_when_the_node_has_a_database():
    text = "wsrep_cluster_size\t2\nwsrep_cluster_status\tPrimary\nwsrep_local_state_comment\tSynced\n"
    assert status.galera_summary(text) == "Primary, size 2, Synced"
    assert status.galera_summary("") is None


def test_the_watchers_last_events_about_the_site_only():
    journal = "\n".join(
        [
            "not json",
            json.dumps({"ts": "1", "event": "watcher_started"}),
            json.dumps({"ts": "2", "event": "node_down", "site": "harbourlaw", "node": "linode"}),
            json.dumps({"ts": "3", "event": "node_down", "site": "other"}),
            json.dumps({"ts": "4", "event": "record_moved", "site": "harbourlaw", "to": ["192.0.2.10"]}),
        ]
    )
    events = status.watcher_events(journal, "harbourlaw")
    assert [e["ts"] for e in events] == ["2", "4"]


def test_site_status_reads_each_node_over_ssh_and_the_web_front():
    fake = fakes.pair(
        digitalocean=FakeNode(active="2", kept=["1", "2"]), linode=FakeNode(fails_outside={"1"})
    )

    def run(target, command, **kwargs):
        if command[:2] == ["sh", "-c"]:
            node = fake.nodes[target.role][1]
            text = (
                f"{status.MARK}versions\nactive {node.active}\n"
                + "".join(f"kept {v}\n" for v in node.kept)
                + f"{status.MARK}gluster\n{GLUSTER}{status.MARK}galera\n{status.MARK}end\n"
            )
            import subprocess

            return subprocess.CompletedProcess(command, 0, text, "")
        raise AssertionError(command)

    fake.run = run  # type: ignore[method-assign]
    result = status.site_status(
        "harbourlaw",
        "manual",
        "digitalocean",
        NAME,
        fakes.targets(fake, ("digitalocean", "linode")),
        None,
        remote=fake,
        check=fake,
        resolver="127.0.0.1",  # nothing answers: the record is reported as unanswered
    )
    nodes = {n.node: n for n in result.nodes}
    assert nodes["digitalocean"].healthy and nodes["digitalocean"].version == "2"
    assert nodes["digitalocean"].kept == ["1", "2"]
    assert not nodes["linode"].healthy and nodes["linode"].health == "503"
    assert nodes["linode"].gluster == "1/1 peers connected, 1/2 bricks online, 3 to heal"
    assert not result.ok and result.record is None
    text = status.render(result)
    assert "FAIL 503" in text and "no answer" in text
    assert json.loads(json.dumps(result.to_dict()))["ok"] is False


def test_ssh_commands_are_batch_multiplexed_and_quoted():
    argv = SshSettings(config_file=Path("/lab/ssh_config")).argv(
        Target("linode", "192.0.2.20", "ops"), ["sh", "-c", "a b"]
    )
    assert argv[:3] == ["ssh", "-F", "/lab/ssh_config"]
    assert "BatchMode=yes" in argv and "ControlMaster=auto" in argv
    assert argv[-3:] == ["ops@192.0.2.20", "--", "sh -c 'a b'"]


def test_logs_read_the_app_journal_the_web_front_and_cloud_init_as_root():
    from infra.ops import logs

    assert logs.node_command("app", 20, False) == [
        "sh",
        "-c",
        "sudo -n journalctl -u 'twinhost-app@*' --no-pager -n 20",
    ]
    assert "-f" in logs.node_command("app", 20, True)[2]
    assert "/var/log/nginx/*.log" in logs.node_command("web", 5, False)[2]
    assert "tail -n 5 -F /var/log/cloud-init-output.log" in logs.node_command("cloud-init", 5, True)[2]
    assert "journalctl -u twinhost-watcher -o cat" in logs.watcher_command(50, False)[2]
    with pytest.raises(ValueError, match="--unit"):
        logs.node_command("kernel", 5, False)
