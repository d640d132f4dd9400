"""The lab's outside checks. Each takes the running lab and returns a CheckResult with its
figure; `twinhost lab check` prints them, tests/lab asserts them one test each.

Sources (all on the lab bridge, TEST-NET-2): the "internet" namespace (outside every admin
CIDR), the admin namespace (inside the lab's admin CIDR) with one address per purpose, so a
fail2ban ban or a `ufw limit` drop of one source never blocks the others.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from infra.bootstrap.glusterfs import BRICK_DIR, SHARED_DIR, volume_name
from infra.bootstrap.spec import mesh_addresses
from infra.witness import THIN_ARBITER_PORT, witness_mesh_address
from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.containers import Container
from twinhost_lab.graders import graders_python
from twinhost_lab.host import LabError, run
from twinhost_lab.layout import Layout
from twinhost_lab.network import in_namespace

# Admin-namespace source addresses, one per purpose (all inside Layout.admin_network).
AUDIT_SOURCE = "198.51.100.210"
FAIL2BAN_SOURCE = "198.51.100.211"
BURST_SOURCE = "198.51.100.212"
# Ports the outside may reach: the web front (both nodes), the redirector's HTTP(S).
INTENDED_OPEN = {"digitalocean": {80, 443}, "linode": {80, 443}, "redirector": {80, 443}}
LYNIS_TARGET = 80


@dataclass
class CheckResult:
    name: str
    ok: bool
    figure: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<34} {self.figure}"


class RunningLab:
    """A handle on the running lab for the checks: containers, namespaces, trust anchors."""

    def __init__(self, layout: Layout):
        state = lab_module.load_state(layout)
        if state is None:
            raise LabError("no lab is running: `twinhost lab up` first")
        self.layout = layout
        self.site = state.site
        self.files = layout.run_dir / "checks"
        self.files.mkdir(parents=True, exist_ok=True)
        self.acme_root = lab_module.acme_root_file(layout)  # written by `up`
        for address in (FAIL2BAN_SOURCE, BURST_SOURCE):
            run(
                in_namespace(
                    layout.admin_namespace,
                    ["ip", "address", "replace", f"{address}/{layout.prefixlen}", "dev", "thl1-ns"],
                ),
                check=False,
            )

    @property
    def state(self) -> lab_module.LabState:
        """The lab's state as saved now: the drills kill and boot nodes again, each boot with a
        new PID, so a handle kept from the start of a session would name a container gone."""
        state = lab_module.load_state(self.layout)
        if state is None:
            raise LabError("the lab is no longer running (its state is gone)")
        return state

    @property
    def boxes(self) -> dict[str, Container]:
        """The containers by role, with their current PIDs (see `state`)."""
        return lab_module.containers(self.layout, self.state)

    @property
    def site_roles(self) -> tuple[str, str]:
        return ("digitalocean", "linode")

    @property
    def primary(self) -> str:
        return str(self.site["primary"])

    @property
    def standby(self) -> str:
        return next(role for role in self.site_roles if role != self.primary)

    def address(self, role: str) -> str:
        return self.layout.node(role).address

    def outside(
        self, command: list[str], *, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return _run_or_timeout(
            in_namespace(self.layout.internet_namespace, command), timeout=timeout, check=check
        )

    def admin(
        self, command: list[str], *, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return _run_or_timeout(
            in_namespace(self.layout.admin_namespace, command), timeout=timeout, check=check
        )

    def unban(self, role: str, *sources: str) -> None:
        """Lift fail2ban bans a check caused on purpose (or as a side effect), so reruns start clean."""
        for source in sources:
            self.boxes[role].exec(["fail2ban-client", "set", "sshd", "unbanip", source], check=False)

    def curl(self, url: str, host: str, address: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """curl from the internet namespace, `host` resolved to `address`, trusting the lab ACME root."""
        return _run_or_timeout(
            lab_module.internet_curl(self.layout, url, host, address, *extra), timeout=120, check=False
        )

    def ssh_command(
        self, source: str, role: str, command: str, *, user: str | None = None, key: bool = True
    ) -> list[str]:
        options = [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "ServerAliveInterval=3",
            "-o",
            "ServerAliveCountMax=2",
            "-o",
            "LogLevel=ERROR",
            "-b",
            source,
        ]
        if key:
            options += ["-o", "IdentitiesOnly=yes", "-i", str(lab_module.admin_key_path(self.layout))]
        else:
            options += ["-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null"]
        return ["ssh", *options, f"{user or self.site['admin_user']}@{self.address(role)}", command]

    @cached_property
    def mesh(self) -> dict[str, str]:
        return {str(role): address for role, address in mesh_addresses(str(self.site["site"])).items()}


def _run_or_timeout(command: list[str], *, timeout: float, check: bool) -> subprocess.CompletedProcess[str]:
    """`run`, with a timeout as an answer (exit 124), not an error: a connection that a firewall
    starts dropping half way (a fail2ban ban landing mid-handshake) is an outcome the checks read."""
    try:
        return run(command, timeout=timeout, check=check)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(
            command, 124, str(exc.stdout or ""), f"timed out after {timeout:.0f} s"
        )


# --- the checks ---------------------------------------------------------------------------------


def cloud_init_done(lab: RunningLab, role: str) -> CheckResult:
    box = lab.boxes[role]
    status = box.cloud_init_status()
    errors = list(status.get("errors") or [])  # type: ignore[call-overload]
    recoverable = status.get("recoverable_errors") or {}
    failed = box.failed_units()
    ok = status.get("status") == "done" and not errors and not failed
    figure = (
        f"status {status.get('status')}, {len(errors)} errors, {len(failed)} failed units"
        + (f" {failed}" if failed else "")
        + (f" {errors}" if errors else "")
        + (f", recoverable: {json.dumps(recoverable)[:300]}" if recoverable else "")
    )
    return CheckResult(f"cloud-init done: {box.node.name}", ok, figure)


def tinc_mesh(lab: RunningLab) -> CheckResult:
    figures, ok = [], True
    for role in lab.site_roles:
        peer = next(r for r in lab.site_roles if r != role)
        result = lab.boxes[role].exec(
            ["ping", "-c", "3", "-i", "0.3", "-W", "2", lab.mesh[peer]], check=False
        )
        loss = re.search(r"(\d+)% packet loss", result.stdout)
        rtt = re.search(r"= [\d.]+/([\d.]+)/", result.stdout)
        ok &= result.returncode == 0
        figures.append(
            f"{role}->{peer} {loss.group(1) if loss else '?'}% loss" + (f" {rtt.group(1)} ms" if rtt else "")
        )
    return CheckResult("tinc mesh ping both ways", ok, ", ".join(figures))


def witness_in_the_mesh(lab: RunningLab, wait_s: float = 300) -> CheckResult:
    """The redirector is each node's third mesh member: both nodes ping the witness at the
    site's `.3` over tinc and reach its thin-arbiter (24007) there. The witness is applied by the
    redirector's refresh (every minute) after boot, so this waits for it up to `wait_s`."""
    address = witness_mesh_address(str(lab.site["site"]))
    started = time.monotonic()
    figures: list[str] = []
    ok = False
    while True:
        figures, ok = [], True
        for role in lab.site_roles:
            ping = lab.boxes[role].exec(["ping", "-c", "2", "-i", "0.3", "-W", "2", address], check=False)
            port = lab.boxes[role].exec(
                ["timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{THIN_ARBITER_PORT}"], check=False
            )
            rtt = re.search(r"= [\d.]+/([\d.]+)/", ping.stdout)
            ok &= ping.returncode == 0 and port.returncode == 0
            figures.append(
                f"{role}->{address} ping {'ok' if ping.returncode == 0 else 'FAIL'}"
                + (f" {rtt.group(1)} ms" if rtt else "")
                + f", thin-arbiter {'open' if port.returncode == 0 else 'closed'}"
            )
        if ok or time.monotonic() - started > wait_s:
            break
        time.sleep(10)
    return CheckResult(
        "witness in the mesh (tinc .3, thin-arbiter)",
        ok,
        ", ".join(figures) + f" (after {time.monotonic() - started:.0f} s)",
    )


def gluster_replicates(lab: RunningLab) -> CheckResult:
    token = f"{time.time_ns()}"
    figures, ok = [], True
    for writer, reader in (("digitalocean", "linode"), ("linode", "digitalocean")):
        name = f"{SHARED_DIR}/lab-check-{writer}-{token}.txt"
        lab.boxes[writer].exec(f"echo {writer}-{token} > {name} && sync", timeout=60)
        started = time.monotonic()
        seen = ""
        while time.monotonic() - started < 20:
            seen = lab.boxes[reader].exec(["cat", name], check=False).stdout.strip()
            if seen:
                break
            time.sleep(0.5)
        ok &= seen == f"{writer}-{token}"
        figures.append(
            f"{writer}->{reader} {'read' if seen else 'missing'} in {time.monotonic() - started:.1f} s"
        )
    return CheckResult("glusterfs replicates both ways", ok, ", ".join(figures))


def gluster_heals(lab: RunningLab) -> CheckResult:
    """Stop the standby's brick, write (and fsync) on the primary, bring the brick back: every
    acknowledged file must be on the standby's brick after the heal."""
    primary, standby = lab.boxes[lab.primary], lab.boxes[lab.standby]
    # The standby runs exactly one brick process (glusterfsd): its own.
    bricks = standby.exec(["pgrep", "-x", "glusterfsd"], check=False).stdout.split()
    if len(bricks) != 1:
        return CheckResult(
            "glusterfs heals after a brick outage", False, f"brick processes on the standby: {bricks}"
        )
    standby.exec(["kill", bricks[0]])
    count, token = 20, f"{time.time_ns()}"
    acknowledged = []
    for index in range(count):
        name = f"{SHARED_DIR}/heal-{token}-{index}.txt"
        result = primary.exec(
            f"python3 -c \"import os;f=open('{name}','w');f.write('{index}');f.flush();"
            f'os.fsync(f.fileno());f.close()"',
            check=False,
            timeout=60,
        )
        if result.returncode == 0:
            acknowledged.append(name.rsplit("/", 1)[1])
    pending = primary.exec(
        ["gluster", "volume", "heal", volume_name(lab.layout.stack), "info", "summary"], check=False
    ).stdout
    standby.exec(
        ["gluster", "volume", "start", volume_name(lab.layout.stack), "force"], check=False, timeout=60
    )
    started = time.monotonic()
    on_brick: set[str] = set()
    while time.monotonic() - started < 120:
        primary.exec(["gluster", "volume", "heal", volume_name(lab.layout.stack)], check=False, timeout=60)
        listing = standby.exec(f"ls {BRICK_DIR} | grep '^heal-{token}-' || true", check=False).stdout
        on_brick = set(listing.split())
        if set(acknowledged) <= on_brick:
            break
        time.sleep(2)
    healed_s = time.monotonic() - started
    lost = sorted(set(acknowledged) - on_brick)
    pending_count = sum(int(n) for n in re.findall(r"Number of entries in heal pending: (\d+)", pending))
    ok = len(acknowledged) == count and not lost
    return CheckResult(
        "glusterfs heals after a brick outage",
        ok,
        f"{len(acknowledged)}/{count} writes acknowledged with the brick down "
        f"({pending_count} heal entries pending), on the standby brick {healed_s:.1f} s after "
        f"it returned, {len(lost)} lost",
    )


def https_health(lab: RunningLab, role: str) -> CheckResult:
    www = lab.site["www"][0]
    result = lab.curl(f"https://{www}/health", www, lab.address(role), "-w", "\n%{http_code} %{time_total}")
    lines = result.stdout.strip().splitlines()
    code, seconds = ([*lines[-1].split(), "?", "?"])[:2] if lines else ("?", "?")
    ok = result.returncode == 0 and code == "200"
    figure = (
        f"HTTP {code} in {float(seconds) * 1000:.0f} ms"
        if ok
        else f"curl rc {result.returncode}: {(result.stderr.strip().splitlines() or [''])[0][:200]}"
    )
    return CheckResult(f"/health over HTTPS: {lab.boxes[role].node.name}", ok, figure)


def demo_page_shows_shared_file(lab: RunningLab) -> CheckResult:
    """A file written on the primary's shared volume appears on the standby's demo page."""
    token = f"lab-check-{time.time_ns()}"
    lab.boxes[lab.primary].exec(
        f"mkdir -p {SHARED_DIR}/demo && echo {token} > {SHARED_DIR}/demo/lab-check.txt"
    )
    www = lab.site["www"][0]
    started, page = time.monotonic(), ""
    while time.monotonic() - started < 20:
        page = lab.curl(f"https://{www}/", www, lab.address(lab.standby)).stdout
        if token in page:
            break
        time.sleep(0.5)
    return CheckResult(
        "demo page shows the shared file",
        token in page,
        f"written on {lab.primary}, shown by {lab.standby} after {time.monotonic() - started:.1f} s",
    )


def port_scan(lab: RunningLab, role: str) -> CheckResult:
    """Every TCP port from the internet namespace, and the tinc port over UDP."""
    address = lab.address(role)
    xml = lab.files / f"nmap-{role}.xml"
    lab.outside(
        [
            "nmap",
            "-Pn",
            "-n",
            "-sS",
            "-p-",
            "--max-retries",
            "1",
            "--min-rate",
            "4000",
            "-T4",
            "-oX",
            str(xml),
            address,
        ],
        timeout=600,
        check=True,
    )
    open_ports = {int(port) for port in re.findall(r'portid="(\d+)"><state state="open"', xml.read_text())}
    udp = lab.outside(["nmap", "-Pn", "-n", "-sU", "-p", "655", address], timeout=120).stdout
    # "open|filtered" is nmap's word for no answer (dropped); only a reply makes it "open".
    udp_state = (re.search(r"655/udp\s+(\S+)", udp) or [None, "?"])[1]
    tinc_open = udp_state == "open"
    ok = open_ports == INTENDED_OPEN[role] and not tinc_open
    return CheckResult(
        f"port scan from the internet: {lab.boxes[role].node.name}",
        ok,
        f"open tcp {sorted(open_ports)} (intended {sorted(INTENDED_OPEN[role])}), udp 655 {udp_state}",
    )


def ssh_refused_from_internet(lab: RunningLab, role: str) -> CheckResult:
    address = lab.address(role)
    result = lab.outside(
        ["python3", "-c", f"import socket;socket.create_connection(('{address}',22),timeout=5)"]
    )
    ok = result.returncode != 0
    why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "connected"
    return CheckResult(f"ssh refused from the internet: {lab.boxes[role].node.name}", ok, why[:120])


def ssh_audit(lab: RunningLab, role: str) -> CheckResult:
    result = lab.admin(
        [sys.executable, "-m", "ssh_audit", "-j", "--skip-rate-test", lab.address(role)], timeout=120
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return CheckResult(
            f"ssh-audit: {lab.boxes[role].node.name}", False, f"no report: {result.stderr[:200]}"
        )
    fails, warns = _ssh_audit_counts(report)
    return CheckResult(
        f"ssh-audit: {lab.boxes[role].node.name}",
        not fails and not warns,
        f"{len(fails)} fail, {len(warns)} warn"
        + (f" {fails + warns}" if fails or warns else "")
        + f" ({report.get('banner', {}).get('software', '')})",
    )


def _ssh_audit_counts(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    fails, warns = [], []
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            notes = entry.get("notes", {})
            name = entry.get("algorithm", "?")
            fails += [f"{section}:{name}"] * bool(notes.get("fail"))
            warns += [f"{section}:{name}"] * bool(notes.get("warn"))
    return fails, warns


def certificates_are_acme(lab: RunningLab) -> CheckResult:
    """Both nodes serve each site name (www.<apex>, and the failover name the watcher checks)
    with that name's own certificate, issued by the lab's ACME server, which one node obtained
    (HTTP-01) and the other took from the shared volume."""
    ok, details = True, []
    for name in [*lab.site["www"], lab.site["failover"]]:
        served = {}
        for role in lab.site_roles:
            result = lab.outside(
                [
                    "sh",
                    "-c",
                    f"echo | openssl s_client -connect {lab.address(role)}:443 "
                    f"-servername {name} -CAfile {lab.acme_root} -verify_return_error 2>/dev/null"
                    " | openssl x509 -noout -fingerprint -sha256 -issuer -ext subjectAltName",
                ]
            )
            served[role] = result.stdout
        fingerprints = {
            role: (re.search(r"Fingerprint=(\S+)", out) or [None, ""])[1] for role, out in served.items()
        }
        issuer = re.search(r"issuer=(.*)", served[lab.primary])
        names = re.findall(r"DNS:([^,\s]+)", served[lab.primary])
        one = len(set(fingerprints.values())) == 1
        ok = ok and (
            bool(fingerprints[lab.primary])
            and one
            and issuer is not None
            and "Pebble" in issuer.group(1)
            and names == [name]
        )
        details.append(
            f"{name}: issuer {issuer.group(1).strip() if issuer else '?'}, names {names}, "
            f"{'one certificate on both nodes' if one else 'different certificates'}"
        )
    return CheckResult("ACME certificate per name, same on both nodes", ok, "; ".join(details))


def sslyze_grade(lab: RunningLab, role: str) -> CheckResult:
    www = lab.site["www"][0]
    out = lab.files / f"sslyze-{role}.json"
    python = graders_python(lab.layout, Path(lab.state.project_dir))
    result = lab.outside(
        [
            str(python),
            "-m",
            "sslyze",
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={lab.acme_root}",
            "--http_headers",
            f"--json_out={out}",
            f"{www}:443{{{lab.address(role)}}}",
        ],
        timeout=300,
    )
    hsts = False
    try:
        report = json.loads(out.read_text())
        for server in report.get("server_scan_results", []):
            headers = server["scan_result"]["http_headers"]["result"] or {}
            hsts = bool(headers.get("strict_transport_security_header"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    (lab.files / f"sslyze-{role}.txt").write_text(result.stdout + result.stderr)
    compliance = result.stdout.split("COMPLIANCE AGAINST")[-1]
    # sslyze 6: "<server>:443: OK - Compliant." or "<server>:443: FAILED - Not compliant." + reasons
    compliant = bool(re.search(r":443: OK - Compliant\.", compliance)) and "Not compliant" not in compliance
    problems = (
        re.findall(r"\* [^\n]*", compliance)[:4]
        or [line.strip() for line in (compliance + result.stderr).splitlines() if line.strip()][-2:]
    )
    return CheckResult(
        f"sslyze Mozilla intermediate: {lab.boxes[role].node.name}",
        compliant and hsts,
        f"{'compliant' if compliant else 'NOT compliant ' + '; '.join(problems)}, "
        f"HSTS {'present' if hsts else 'missing'}",
    )


def redirector_redirects(lab: RunningLab, apex: str) -> CheckResult:
    address = lab.address("redirector")
    figures, ok = [], True
    for scheme in ("http", "https"):
        result = lab.curl(
            f"{scheme}://{apex}/some/path?q=1&x=y",
            apex,
            address,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        )
        code, _, location = result.stdout.partition(" ")
        expected = f"https://www.{apex}/some/path?q=1&x=y"
        ok &= result.returncode == 0 and code == "301" and location == expected
        figures.append(
            f"{scheme} {code or 'rc ' + str(result.returncode)} -> {location or result.stderr.strip()[:80]}"
        )
    return CheckResult(f"redirector 301: {apex}", ok, "; ".join(figures))


def redirector_refuses_unknown(lab: RunningLab) -> CheckResult:
    apex = lab.site["unknown_apex"]
    result = lab.curl(f"https://{apex}/", apex, lab.address("redirector"), "-o", "/dev/null")
    log = (lab.layout.run_dir / "pebble" / "pebble.log").read_text(errors="replace")
    ordered = apex in log
    ok = result.returncode != 0 and not ordered
    return CheckResult(
        "redirector refuses an unknown apex",
        ok,
        f"TLS to {apex}: curl rc {result.returncode}; ACME order for it: {'yes' if ordered else 'none'}",
    )


def lynis_index(lab: RunningLab, role: str) -> CheckResult:
    """Lynis (installed for the audit through the lab's proxy, as an auditor would) on a node:
    a site node's hardening index must reach LYNIS_TARGET (issue 15's target, on the nodes); the
    redirector's is reported (79 on Debian 13, docs/lab.md)."""
    box = lab.boxes[role]
    box.exec(
        "command -v lynis >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null",
        timeout=600,
    )
    result = box.exec(["lynis", "audit", "system", "--quick", "--no-colors"], check=False, timeout=900)
    found = re.search(r"Hardening index : (\d+)", result.stdout)
    index = int(found.group(1)) if found else -1
    return CheckResult(
        f"lynis hardening index: {box.node.name}",
        index >= (LYNIS_TARGET if role in lab.site_roles else 0),
        f"{index} (target {LYNIS_TARGET}: {'met' if index >= LYNIS_TARGET else 'not met'})"
        if found
        else f"no hardening index in Lynis's output (exit {result.returncode})",
    )


def fail2ban_bans(lab: RunningLab, role: str) -> CheckResult:
    """Bad logins from one admin-network address until fail2ban bans it; then unban."""
    box = lab.boxes[role]
    attempts, banned = 0, False
    for attempts in range(1, 16):
        lab.admin(
            lab.ssh_command(FAIL2BAN_SOURCE, role, "true", user=f"nobody{attempts}", key=False), timeout=30
        )
        status = box.exec(["fail2ban-client", "status", "sshd"], check=False).stdout
        if FAIL2BAN_SOURCE in status:
            banned = True
            break
    refused = False
    if banned:
        refused = lab.admin(lab.ssh_command(FAIL2BAN_SOURCE, role, "true"), timeout=30).returncode != 0
        lab.unban(role, FAIL2BAN_SOURCE)
    return CheckResult(
        f"fail2ban bans bad logins: {box.node.name}",
        banned and refused,
        f"banned after {attempts} bad logins, then {'refused' if refused else 'still let in'}"
        if banned
        else f"not banned after {attempts} bad logins",
    )


def ufw_limit(lab: RunningLab, role: str) -> CheckResult:
    """A burst of SSH connections from one admin address: `ufw limit` drops the 7th and later
    within 30 s (six allowed), while the admin's key login from another address still works."""
    address = lab.address(role)
    script = (
        "import socket,time\nok=0\nfor i in range(12):\n"
        f"  s=socket.socket();s.bind(('{BURST_SOURCE}',0));s.settimeout(2)\n"
        f"  try:\n    s.connect(('{address}',22));ok+=1\n  except OSError:\n    pass\n  s.close()\nprint(ok)"
    )
    accepted = int(lab.admin(["python3", "-c", script], timeout=120).stdout.strip() or -1)
    login = lab.admin(lab.ssh_command(AUDIT_SOURCE, role, "id -un"), timeout=30)
    # fail2ban's aggressive mode counts the burst's pre-auth disconnects too: a side effect.
    lab.unban(role, BURST_SOURCE)
    ok = 0 < accepted < 12 and login.returncode == 0
    return CheckResult(
        f"ufw limit drops an ssh burst: {lab.boxes[role].node.name}",
        ok,
        f"{accepted}/12 connections accepted; admin login from another address "
        f"{'works' if login.returncode == 0 else 'fails: ' + login.stderr.strip()[:100]}",
    )


def all_checks(lab: RunningLab) -> list[tuple[str, Callable[[], CheckResult]]]:
    """In an order that keeps the lab usable: read-only checks first, the disruptive last."""
    roles = ("digitalocean", "linode", "redirector")
    checks: list[tuple[str, Callable[[], CheckResult]]] = []
    checks += [(f"cloud_init_{r}", partial(cloud_init_done, lab, r)) for r in roles]
    checks += [("tinc", partial(tinc_mesh, lab)), ("gluster_replication", partial(gluster_replicates, lab))]
    checks += [("witness", partial(witness_in_the_mesh, lab))]
    checks += [(f"health_{r}", partial(https_health, lab, r)) for r in lab.site_roles]
    checks += [
        ("demo_page", partial(demo_page_shows_shared_file, lab)),
        ("acme", partial(certificates_are_acme, lab)),
    ]
    if database.has_database(lab):  # a site stack with `database: mariadb`
        checks += [
            ("database_cluster", partial(database.cluster_synced, lab)),
            ("database_replication", partial(database.replicates_both_ways, lab)),
        ]
        checks += [
            (f"database_health_{r}", partial(database.health_reports_wsrep, lab, r)) for r in lab.site_roles
        ]
    checks += [(f"sslyze_{r}", partial(sslyze_grade, lab, r)) for r in lab.site_roles]
    checks += [(f"redirect_{a}", partial(redirector_redirects, lab, a)) for a in lab.site["redirect_apexes"]]
    checks += [("redirect_unknown", partial(redirector_refuses_unknown, lab))]
    checks += [(f"ssh_audit_{r}", partial(ssh_audit, lab, r)) for r in roles]
    checks += [(f"ports_{r}", partial(port_scan, lab, r)) for r in roles]
    checks += [(f"ssh_outside_{r}", partial(ssh_refused_from_internet, lab, r)) for r in roles]
    checks += [(f"ufw_limit_{r}", partial(ufw_limit, lab, r)) for r in lab.site_roles]
    checks += [(f"fail2ban_{r}", partial(fail2ban_bans, lab, r)) for r in lab.site_roles]
    checks += [("gluster_heal", partial(gluster_heals, lab))]
    checks += [(f"lynis_{r}", partial(lynis_index, lab, r)) for r in roles]
    return checks


def run_all(layout: Layout, only: str | None = None) -> Iterator[CheckResult]:
    lab = RunningLab(layout)
    for name, check in all_checks(lab):
        if only and only not in name:
            continue
        try:
            yield check()
        except (LabError, subprocess.SubprocessError, OSError, ValueError) as exc:
            yield CheckResult(name, False, f"error: {exc}"[:300])
