"""sshd: the rendered drop-in, checked by Debian 12's and 13's own sshd, graded by ssh-audit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.bootstrap.hardening import SSH_KEX
from tests.bootstrap.bootstrap_debroot import chroot
from tests.bootstrap.bootstrap_nodes import free_port, install, rendered_files, scratch_root
from tests.bootstrap.bootstrap_specs import make_spec

DROP_IN = "/etc/ssh/sshd_config.d/01-twinhost-hardening.conf"
FINISH = "/usr/local/sbin/twinhost-sshd-finish"


@pytest.fixture(scope="module", params=[12, 13], ids=["debian12", "debian13"])
def sshd_root(request, tmp_path_factory, keys) -> tuple[int, Path]:
    """Debian's sshd in a chroot with the node's drop-in, finished as at first boot."""
    debian = request.param
    root = scratch_root(debian, tmp_path_factory.mktemp(f"sshd{debian}") / "root")
    install(root, rendered_files(make_spec(debian=debian, keys=keys)), [DROP_IN, FINISH])
    keygen = chroot(
        root, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/ssh_host_ed25519_key"]
    )
    assert keygen.returncode == 0, keygen.stderr
    finish = chroot(root, [FINISH])
    assert finish.returncode == 0, finish.stdout + finish.stderr
    return debian, root


def effective(root: Path) -> dict[str, str]:
    result = chroot(root, ["/usr/sbin/sshd", "-T", "-C", "user=ops,host=client,addr=203.0.113.9"])
    assert result.returncode == 0, result.stderr
    return {
        line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line
    }


def test_rendered_sshd_config_passes_sshd_t(sshd_root):
    _, root = sshd_root
    result = chroot(root, ["/usr/sbin/sshd", "-t"])
    assert result.returncode == 0, result.stderr


def test_sshd_refuses_root_passwords_and_keyboard_interactive(sshd_root):
    _, root = sshd_root
    config = effective(root)
    assert config["permitrootlogin"] == "no"
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["authenticationmethods"] == "publickey"
    assert config["allowusers"] == "ops"


def test_permit_root_login_is_also_in_the_main_config_for_rkhunter(sshd_root):
    _, root = sshd_root
    lines = (root / "etc/ssh/sshd_config").read_text().splitlines()
    assert "PermitRootLogin no" in lines
    assert not [line for line in lines if line.startswith("PermitRootLogin") and line != "PermitRootLogin no"]


def test_sshd_offers_only_modern_algorithms(sshd_root):
    debian, root = sshd_root
    config = effective(root)
    assert config["kexalgorithms"].split(",") == list(SSH_KEX[debian])
    assert "curve25519-sha256" not in config["kexalgorithms"]
    assert config["ciphers"] == "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com"
    assert all(mac.endswith("-etm@openssh.com") for mac in config["macs"].split(","))
    assert config["hostkeyalgorithms"].startswith("ssh-ed25519")
    assert config["hostkey"] == "/etc/ssh/ssh_host_ed25519_key"
    if debian >= 13:
        assert config["kexalgorithms"].startswith("mlkem768x25519-sha256")


def test_ssh_audit_finds_no_failure_and_no_warning(sshd_root):
    """A real sshd of the release, on a loopback port, graded by ssh-audit 3.9."""
    _, root = sshd_root
    port = free_port()
    server = subprocess.Popen(
        ["chroot", str(root), "/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-o", "ListenAddress=127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        audit = None
        for _ in range(50):
            audit = subprocess.run(
                [sys.executable, "-m", "ssh_audit", "-j", "-p", str(port), "127.0.0.1"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if audit.stdout.strip().startswith("{"):
                break
            time.sleep(0.1)
        assert audit is not None and audit.stdout.strip().startswith("{"), (
            audit and audit.stdout + audit.stderr
        )
        report = json.loads(audit.stdout)
    finally:
        server.terminate()
        server.wait(timeout=10)
    problems = [
        f"{kind} {item['algorithm']}: {level} {item['notes'][level]}"
        for kind in ("kex", "key", "enc", "mac")
        for item in report.get(kind, [])
        for level in ("fail", "warn")
        if item.get("notes", {}).get(level)
    ]
    assert not problems, "\n".join(problems)
    recommendations = report.get("recommendations", {})
    assert not {"critical", "warning"} & set(recommendations), recommendations
    assert report.get("cves") == []
    assert report["compression"] == ["none"]


# The key exchange names OpenSSH 9.2p1 knows (kex.c's kexalgs table of the 9.2 release), which is
# what Debian 12's first images ship (9.2p1-2, before +deb12u4 added the suffix-less
# "sntrup761x25519-sha512": openssh-client's changelog.Debian, 1:9.2p1-2+deb12u4, closes #1088873).
# That old sshd is not obtainable here (only the current mirror is reachable), so the rule is
# checked against this list; test_sshd_offers_only_modern_algorithms runs today's sshd.
OPENSSH_9_2_KEX = {
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512@openssh.com",
}


def test_debian_12_kex_names_are_known_to_the_first_debian_12_sshd():
    """An unknown name makes sshd refuse its config: at first boot on an older provider image,
    no sshd at all."""
    assert set(SSH_KEX[12]) <= OPENSSH_9_2_KEX, set(SSH_KEX[12]) - OPENSSH_9_2_KEX
