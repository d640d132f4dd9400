"""twinhost-certs (the node's certificate script) run for real with bash and openssl, with fakes on
PATH only for what cannot run here: certbot (the peer holds its lock), the GlusterFS mount check,
name resolution and the webroot probe."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tests.bootstrap.bootstrap_specs import self_signed

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "cloudinit/site/usr/local/sbin/twinhost-certs"
NAMES = "www.acme-shop.example acme.ops.example.net"

FAKES = {
    # The peer node holds certbot's lock on the shared config directory.
    "certbot": 'echo "Another instance of Certbot is already running." >&2\nexit 1\n',
    "findmnt": "exit 0\n",  # the shared volume is a GlusterFS mount
    "getent": 'echo "127.0.0.1 STREAM $2"\n',
    # The webroot probe: every address serves the token it asks for.
    "curl": 'for last; do :; done\necho "${last##*/}"\n',
    "systemctl": "exit 3\n",  # nginx is not running here: nothing to reload
}


def _node(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    shared, tls = tmp_path / "shared", tmp_path / "tls"
    shared.mkdir()
    env_file = tmp_path / "certs.env"
    env_file.write_text(
        f'CERT_MODE=acme\nSERVER_NAMES="{NAMES}"\nACME_EMAIL=ops@example.net\n'
        f"ACME_DIRECTORY=https://acme.invalid/dir\nSHARED_DIR={shared}\n"
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TWINHOST_CERTS_ENV": str(env_file),
        "TWINHOST_TLS_DIR": str(tls),
        "HOME": str(tmp_path),
    }
    return env, shared, tls


def test_losing_certbots_lock_to_the_peer_waits_for_its_certificate_and_is_no_failure(tmp_path) -> None:
    env, shared, tls = _node(tmp_path)
    lineage = shared / "acme/config/live/twinhost"
    cert, key = self_signed(tuple(NAMES.split()))  # valid 90 days: "current" for the script

    def peer_finishes() -> None:  # the peer's certbot writes the lineage a few seconds later
        time.sleep(6)
        lineage.mkdir(parents=True)
        (lineage / "privkey.pem").write_text(key)
        (lineage / "fullchain.pem").write_text(cert)

    peer = threading.Thread(target=peer_finishes)
    peer.start()
    started = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    peer.join()
    assert result.returncode == 0, result.stderr
    assert "the peer is obtaining the certificate; waiting for it" in result.stderr
    # It served the peer's certificate in this run, instead of the self-signed one until the next.
    assert (tls / "live/fullchain.pem").read_text() == cert, result.stderr
    assert 5 <= took < 60
    # Losing the lock is not a failed validation: no back-off for either node.
    assert not (shared / "acme/last-failure").exists()


def test_a_real_certbot_failure_still_backs_off(tmp_path) -> None:
    env, shared, tls = _node(tmp_path)
    (Path(env["PATH"].split(":")[0]) / "certbot").write_text(
        "#!/bin/bash\necho 'Some challenges have failed.' >&2\nexit 1\n"
    )
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "certbot failed" in result.stderr and "Some challenges have failed." in result.stderr
    assert (shared / "acme/last-failure").exists()
    # Meanwhile nginx has a certificate to start with: the self-signed stopgap.
    assert "BEGIN CERTIFICATE" in (tls / "live/fullchain.pem").read_text()
    assert os.stat(tls / "live/privkey.pem").st_mode & 0o077 == 0


def test_a_certificate_whose_key_does_not_match_is_never_installed(tmp_path) -> None:
    """Issue 15: a lineage whose privkey.pem is not the certificate's key (a torn copy, another
    lineage's key) would stop nginx at its next reload: it is refused, loudly, and nginx keeps
    what it serves."""
    env, shared, tls = _node(tmp_path)
    lineage = shared / "acme/config/live/twinhost"
    lineage.mkdir(parents=True)
    cert, _ = self_signed(tuple(NAMES.split()))
    _, other_key = self_signed(tuple(NAMES.split()))
    (lineage / "fullchain.pem").write_text(cert)
    (lineage / "privkey.pem").write_text(other_key)
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "do not match; not installed" in result.stderr
    assert not (tls / "live/fullchain.pem").exists() or (tls / "live/fullchain.pem").read_text() != cert
    assert not (tls / "live/privkey.pem").exists() or (tls / "live/privkey.pem").read_text() != other_key


def test_a_matching_certificate_is_installed(tmp_path) -> None:
    env, shared, tls = _node(tmp_path)
    lineage = shared / "acme/config/live/twinhost"
    lineage.mkdir(parents=True)
    cert, key = self_signed(tuple(NAMES.split()))
    (lineage / "fullchain.pem").write_text(cert)
    (lineage / "privkey.pem").write_text(key)
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tls / "live/fullchain.pem").read_text() == cert
