"""Hardening for any twinhost Debian host: site nodes, and the platform's redirector.

`hardening_parts` is the one entry point. It returns the admin user (keys only, sudo), sshd with
today's algorithms, ufw, fail2ban, unattended security upgrades, rkhunter, sysctl, swap on small
machines, and the apt settings that make first boot predictable. Other concerns add their own
firewall openings through `open_ports`.

Services installed at first boot do not start until the firewall is up: a `policy-rc.d` written
before the packages stops Debian's maintainer scripts from starting them, and this part's
`runcmd` enables ufw, then removes it. Concerns that run after it start their own services.

What it deliberately does not do: auditd (it cannot run in the lab's containers, and a failing
auditd start would fail the package installation), AppArmor profiles, or disk encryption.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template

CODENAMES = {12: "bookworm", 13: "trixie"}
SSH_PORT = 22
SWAP_THRESHOLD_MIB = 1024  # machines with this much memory or less get a swap file
SWAP_BYTES = 1024 * 1024 * 1024
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUDOERS_MODE = 0o440
POLICY_RC_D = "/usr/sbin/policy-rc.d"
FIREWALL = "/usr/local/sbin/twinhost-firewall"
FIREWALL_OR_STOP = (
    f"{FIREWALL} || {{ echo 'twinhost: host firewall failed; first boot stopped, "
    "no service started' >&2; exit 1; }"
)

# Post-quantum hybrid key exchange only: ssh-audit 3.9 warns on every other kex, including
# curve25519-sha256 ("does not provide protection against post-quantum attacks").
SSH_KEX: dict[int, tuple[str, ...]] = {
    # OpenSSH 9.2. Not the suffix-less "sntrup761x25519-sha512": Debian added that name only in
    # 9.2p1-2+deb12u4 (Dec 2024); an older provider image's sshd would refuse the whole line
    # and not start at first boot. Clients offer the @openssh.com name too.
    12: ("sntrup761x25519-sha512@openssh.com",),
    13: ("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"),  # 10.0
}

# What a hardened host installs, each for a reason.
HARDENING_PACKAGES: tuple[tuple[str, str], ...] = (
    ("sudo", "the admin user's way to root (not in minimal images)"),
    ("ufw", "the host firewall"),
    ("fail2ban", "bans sources that keep failing SSH logins"),
    ("python3-systemd", "lets fail2ban read sshd's messages from the journal"),
    ("unattended-upgrades", "installs security updates daily"),
    ("needrestart", "restarts services that still use a replaced library"),
    ("rkhunter", "daily rootkit scan"),
    ("debsums", "verifies installed files against package checksums"),
    ("apt-show-versions", "shows which packages have updates (audits)"),
    # Its python3-apt is already there for unattended-upgrades, which runs it silently.
    ("apt-listchanges", "shows an admin's apt upgrade the packages' NEWS (changed behaviour) first"),
    ("libpam-tmpdir", "a private /tmp directory per login session"),
    ("curl", "health checks and metadata look-ups in the twinhost scripts"),
    ("ca-certificates", "TLS trust for apt, ACME and curl"),
)

# Keys set in /etc/login.defs by common/usr/local/sbin/twinhost-login-defs (Debian has no
# login.defs.d: the script edits the package's file in place and keeps the rest; a rerun changes
# nothing). Lynis AUTH-9328 and AUTH-9230.
LOGIN_DEFS: tuple[tuple[str, str, str], ...] = (
    (
        "UMASK",
        "027",
        "files made in console logins (login(1) reads it) are not world-readable, and homes useradd "
        "makes later are 0750 where HOME_MODE is unset (Debian 12). SSH sessions keep 022: Debian's "
        "PAM stack has no pam_umask, and services use their unit's UMask",
    ),
    (
        "SHA_CRYPT_MIN_ROUNDS",
        "65536",
        "chpasswd/newusers hash SHA-512 passwords with 65536 rounds, not 5000 (Debian 12's "
        "ENCRYPT_METHOD; on 13 whenever SHA-512 is asked for): the accounts are key-only, this "
        "covers a password someone sets later",
    ),
    ("SHA_CRYPT_MAX_ROUNDS", "65536", "the same bound, so the rounds are exactly 65536"),
)


@dataclass(frozen=True)
class FirewallRule:
    """One ufw opening. `sources` empty means from anywhere; `interface` without `port` opens
    everything that arrives on that interface, with `port` only that port arriving there."""

    reason: str
    port: str | None = None  # "22", "80,443"; None with `interface`
    protocols: tuple[str, ...] = ("tcp",)
    sources: tuple[str, ...] = ()
    action: Literal["allow", "limit"] = "allow"
    interface: str | None = None

    def ufw_commands(self) -> list[str]:
        """The arguments after `ufw`, one command per line, shell-quoted."""
        if self.interface is not None and self.port is None:
            return [f"allow in on {shlex.quote(self.interface)} comment {self.comment}"]
        return [line for _, _, line in self.entries()]

    def entries(self) -> list[tuple[str, str, str]]:
        """(protocol, source, command) per ufw rule of a port opening; what `twinhost-converge`
        compares with `ufw show added` to replace a rule the first boot made."""
        on = f"on {shlex.quote(self.interface)} " if self.interface is not None else ""
        return [
            (
                proto,
                source,
                f"{self.action} in {on}proto {proto} from {shlex.quote(source)} to any port "
                f"{self.port} comment {self.comment}",
            )
            for proto in self.protocols
            for source in self.sources or ("any",)
        ]

    @property
    def comment(self) -> str:
        """The ufw comment, shell-quoted (ufw keeps it, and shows it in `ufw show added`)."""
        return shlex.quote(self.reason[:60])


def ssh_rule(admin_cidrs: Sequence[str]) -> FirewallRule:
    return FirewallRule(
        "ssh from admin networks, rate-limited",
        str(SSH_PORT),
        sources=tuple(admin_cidrs),
        action="limit",
    )


def hardening_parts(
    *,
    admin_user: str,
    ssh_keys: Sequence[str],
    admin_cidrs: Sequence[str],
    debian: int,
    memory_mib: int,
    open_ports: Sequence[FirewallRule] = (),
    apt_proxy: str | None = None,
    reboot_time: str | None = None,
    swap: bool = True,
) -> Parts:
    """Everything that hardens a Debian 12/13 host at first boot.

    Args:
        admin_user: the only account that may log in over SSH (sudo without password).
        ssh_keys: its OpenSSH public keys.
        admin_cidrs: networks allowed to reach SSH (ufw `limit`, 6 connections per 30 s).
        debian: 12 or 13; picks the key exchanges the release's OpenSSH offers.
        memory_mib: memory size; at or below 1024 MiB a 1 GiB swap file is made.
        open_ports: further ufw openings (80/443, tinc from the peer, the mesh interface).
        apt_proxy: an HTTP proxy for apt (the lab's), or None.
        reboot_time: "HH:MM" for automatic reboots after kernel updates, or None for never.
        swap: False: no swap file whatever the memory (the lab's containers may not swapon).

    Example (the redirector)::

        hardening_parts(admin_user="ops", ssh_keys=keys, admin_cidrs=["203.0.113.0/24"],
                        debian=12, memory_mib=512,
                        open_ports=[FirewallRule("web", "80,443")])
    """
    problems = _check(admin_user, ssh_keys, admin_cidrs, debian, reboot_time)
    if problems:
        raise ValueError("hardening_parts: " + "; ".join(problems))
    rules = (ssh_rule(admin_cidrs), *open_ports)
    files = (
        File(POLICY_RC_D, static("common/usr/sbin/policy-rc.d"), SCRIPT_MODE),
        File(
            "/etc/apt/apt.conf.d/90twinhost-no-recommends",
            static("common/etc/apt/apt.conf.d/90twinhost-no-recommends"),
        ),
        File(
            "/etc/ssh/sshd_config.d/01-twinhost-hardening.conf",
            template(
                "common/etc/ssh/sshd_config.d/01-twinhost-hardening.conf.j2",
                kex=SSH_KEX[debian],
                admin_user=admin_user,
                debian=debian,
            ),
        ),
        File(
            "/etc/sudoers.d/90-twinhost-admin",
            template("common/etc/sudoers.d/90-twinhost-admin.j2", admin_user=admin_user),
            SUDOERS_MODE,
        ),
        File("/etc/sysctl.d/60-twinhost-net.conf", static("common/etc/sysctl.d/60-twinhost-net.conf")),
        File("/etc/sysctl.d/61-twinhost-kernel.conf", static("common/etc/sysctl.d/61-twinhost-kernel.conf")),
        File("/etc/fail2ban/jail.d/twinhost.local", static("common/etc/fail2ban/jail.d/twinhost.local")),
        File("/etc/modprobe.d/twinhost-unused.conf", static("common/etc/modprobe.d/twinhost-unused.conf")),
        File(
            "/etc/security/limits.d/10-twinhost-no-core.conf",
            static("common/etc/security/limits.d/10-twinhost-no-core.conf"),
        ),
        # Login shells idle at the prompt for 15 minutes close (a forgotten root shell is an open
        # door; a running command is never cut); read-only, so a session cannot switch it off.
        File("/etc/profile.d/twinhost-idle.sh", static("common/etc/profile.d/twinhost-idle.sh")),
        File("/etc/issue", static("common/etc/issue")),
        File("/etc/issue.net", static("common/etc/issue.net")),
        File("/etc/apt/apt.conf.d/20auto-upgrades", static("common/etc/apt/apt.conf.d/20auto-upgrades")),
        File(
            "/etc/apt/apt.conf.d/52twinhost-unattended-upgrades",
            template("common/etc/apt/apt.conf.d/52twinhost-unattended-upgrades.j2", reboot_time=reboot_time),
        ),
        File("/etc/needrestart/conf.d/twinhost.conf", static("common/etc/needrestart/conf.d/twinhost.conf")),
        File(
            "/etc/systemd/system/twinhost-rkhunter.service",
            static("common/etc/systemd/system/twinhost-rkhunter.service"),
        ),
        File(
            "/etc/systemd/system/twinhost-rkhunter.timer",
            static("common/etc/systemd/system/twinhost-rkhunter.timer"),
        ),
        File("/usr/local/sbin/twinhost-sysctl", static("common/usr/local/sbin/twinhost-sysctl"), SCRIPT_MODE),
        File(
            "/usr/local/sbin/twinhost-login-defs",
            static("common/usr/local/sbin/twinhost-login-defs"),
            SCRIPT_MODE,
        ),
        File(
            "/usr/local/sbin/twinhost-sshd-finish",
            static("common/usr/local/sbin/twinhost-sshd-finish"),
            SCRIPT_MODE,
        ),
        File(
            "/usr/local/sbin/twinhost-firewall",
            template("common/usr/local/sbin/twinhost-firewall.j2", rules=rules),
            SCRIPT_MODE,
        ),
    )
    apt: dict[str, object] = {
        # Keep the image's (provider's) mirrors: without this, cloud-init rewrites sources.list.
        "preserve_sources_list": True,
        "debconf_selections": {
            # rkhunter: refresh its file-property database after every apt run (no false alarms
            # after unattended upgrades); daily scans come from our timer, not cron.
            "rkhunter": "\n".join(
                (
                    "rkhunter rkhunter/apt_autogen boolean true",
                    "rkhunter rkhunter/cron_daily_run boolean false",
                    "rkhunter rkhunter/cron_db_update boolean false",
                )
            ),
        },
    }
    if apt_proxy:
        apt["proxy"] = apt_proxy
    config: dict[str, object] = {
        # Minimal images have no `locales`; C.UTF-8 is built into libc.
        "locale": "C.UTF-8",
        "package_update": True,
        # Images are weeks old; first boot starts from today's security fixes.
        "package_upgrade": True,
        "apt": apt,
        "users": [
            {
                "name": admin_user,
                "groups": ["sudo", "adm", "systemd-journal"],
                "shell": "/bin/bash",
                "lock_passwd": True,
                "ssh_authorized_keys": list(ssh_keys),
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        # Only an Ed25519 host key is made (and the image's others are deleted).
        "ssh_deletekeys": True,
        "ssh_genkeytypes": ["ed25519"],
    }
    if swap and memory_mib <= SWAP_THRESHOLD_MIB:
        # 1 GB machines run glusterfs, nginx, fail2ban and the app: swap absorbs peaks instead
        # of the OOM killer.
        config["swap"] = {"filename": "/swapfile", "size": SWAP_BYTES, "maxsize": SWAP_BYTES}
    return Parts(
        name="hardening",
        files=files,
        packages=tuple(name for name, _ in HARDENING_PACKAGES),
        bootcmd=(security_repository_bootcmd(debian),),
        runcmd=(
            ("/usr/local/sbin/twinhost-sysctl",),
            ("/usr/local/sbin/twinhost-login-defs", *(word for item in LOGIN_DEFS for word in item[:2])),
            ("/usr/local/sbin/twinhost-sshd-finish",),
            # cloud-init runs runcmd as one plain `sh` script that goes on after a failure: a
            # firewall that failed after `ufw --force reset` would leave the node open while the
            # next lines start every service. Fail closed: stop the script here, so policy-rc.d
            # stays and nothing below starts (the cloud firewall still fronts the node).
            FIREWALL_OR_STOP,
            # The firewall is up: services may start from now on.
            ("rm", "-f", POLICY_RC_D),
            ("systemctl", "daemon-reload"),
            ("systemctl", "enable", "--now", "fail2ban.service", "twinhost-rkhunter.timer"),
        ),
        config=config,
    )


def security_repository_bootcmd(debian: int) -> tuple[str, ...]:
    """Adds Debian's security repository when the image's apt sources lack it (Lynis warns, and
    unattended-upgrades would have nothing to install). Runs once, before packages."""
    codename = CODENAMES[debian]
    script = (
        "\n".join(
            (
                "grep -rqsE '^[^#]*(security[.]debian[.]org|debian-security)' /etc/apt/sources.list "
                "/etc/apt/sources.list.d/ && exit 0",
                "cat > /etc/apt/sources.list.d/twinhost-security.sources <<EOF",
                "Types: deb",
                f"URIs: {SECURITY_MIRROR}",
                f"Suites: {codename}-security",
                "Components: main",
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
                "EOF",
            )
        )
        + "\n"
    )
    return ("cloud-init-per", "once", "twinhost-security-repo", "sh", "-c", script)


def _check(
    admin_user: str, ssh_keys: Sequence[str], admin_cidrs: Sequence[str], debian: int, reboot_time: str | None
) -> list[str]:
    problems = []
    if not admin_user or not admin_user.replace("-", "").replace("_", "").isalnum() or admin_user == "root":
        problems.append(f"admin_user {admin_user!r} must be a plain user name other than root")
    if not ssh_keys:
        problems.append("ssh_keys must not be empty: the admin could never log in")
    if any("\n" in key for key in ssh_keys):
        problems.append("an ssh key holds a newline")
    if not admin_cidrs:
        problems.append("admin_cidrs must not be empty: SSH would be closed to everyone")
    for cidr in admin_cidrs:
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            problems.append(f"admin_cidrs has {cidr!r}, not a network in CIDR form")
    if debian not in SSH_KEX:
        problems.append(f"debian {debian} is not supported (12 or 13)")
    if reboot_time is not None:
        hours, _, minutes = reboot_time.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            problems.append(f"reboot_time {reboot_time!r} must be HH:MM")
    return problems
