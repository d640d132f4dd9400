"""A whole lab: `up` (network, host services, root filesystem, the plan's user data, three
containers booted and followed to cloud-init's end), `status`, `down`.

`up` either ends with everything running and a state file, or removes whatever it made.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from infra.bootstrap.overrides import RenderOverrides
from infra.plan.lab_profile import LabProfile
from infra.redirector.registry import apex_record_content, apex_record_name
from infra.site_outputs import SiteOutputs
from twinhost_lab import aws, network, services, webhook
from twinhost_lab.containers import Container, kill_lab_cgroups, remove_lab_cgroups
from twinhost_lab.host import LabError, alive, require_root, run, stop_all
from twinhost_lab.layout import Layout
from twinhost_lab.rootfs import ensure_rootfs

DEVICES = (Path("/dev/fuse"), Path("/dev/net/tun"))
UNKNOWN_APEX = "not-a-client.example"  # points at the redirector but is registered nowhere
# The redirector serves every client's apex, but the lab boots one site: a second client's apex
# stands for the others, registered in the lab DNS as that client's site stack would register it.
SECOND_CLIENT = ("second-client.example", "secondclient")
BOOT_TIMEOUT = 900.0

Log = Callable[[str], None]


@dataclass
class LabState:
    """What a running lab is made of; written to <run>/state.json, read by check/drill/down."""

    stack: str
    platform_stack: str
    debian: int
    services: dict[str, int] = field(default_factory=dict)
    containers: dict[str, int] = field(default_factory=dict)
    ca_pem: str = ""
    acme_root_pem: str = ""
    site: dict[str, Any] = field(default_factory=dict)  # names the checks need (see _site_facts)
    timings: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # per container: summary figures
    project_dir: str = ""  # the checkout `up` rendered from (the checks find their grader pins there)


def state_file(layout: Layout) -> Path:
    return layout.run_dir / "state.json"


def load_state(layout: Layout) -> LabState | None:
    try:
        return LabState(**json.loads(state_file(layout).read_text()))
    except FileNotFoundError:
        return None


def save_state(layout: Layout, state: LabState) -> None:
    path = state_file(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(state), indent=2))


def containers(layout: Layout, state: LabState) -> dict[str, Container]:
    """By role: digitalocean, linode, redirector."""
    return {node.role: Container(node, layout, state.containers.get(node.name)) for node in layout.nodes}


def boot_again(layout: Layout, state: LabState, box: Container) -> None:
    """Boot a container the drills killed, and record its new PID in the lab's state."""
    box.start()
    state.containers[box.node.name] = box.pid or 0
    save_state(layout, state)


def admin_key_path(layout: Layout) -> Path:
    return layout.run_dir / "admin_ed25519"


def _admin_key(layout: Layout) -> str:
    """A throwaway key for the lab's admin namespace; the public half joins the stack's keys."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = admin_key_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " twinhost-lab-admin"


def lab_profile(layout: Layout, ca_pem: str, admin_public_key: str) -> LabProfile:
    """The `twinhost plan --lab` profile: lab addresses, the render overrides (given to the
    render step, never to the stack config), the lab admin network and key."""
    return LabProfile(
        addresses=layout.address_map(),
        overrides=RenderOverrides(
            apt_proxy=layout.proxy_url,
            ca_pem=ca_pem,
            acme_directory=layout.acme_directory,
            resolvers=(layout.host_address,),
            aws=aws.stand_in(layout),
            # Containers share the host's kernel: no swapon.
            swap=False,
            # The failover drill moves the record on Knot and on moto's Route 53.
            watcher_backends=("rfc2136", "route53"),
        ),
        admin_cidrs=(layout.admin_network,),
        ssh_keys=(admin_public_key,),
        # The platform's notifyWebhook: the lab's stand-in (a failed backup's alert lands there).
        notify_webhook=webhook.url(layout),
    )


def with_database(project_dir: Path, stack: str) -> Path:
    """A copy of `project_dir`'s stack files in which `stack` has `database: mariadb` (the lab's
    default: its site runs MariaDB Galera with the witness's garbd); the repository is untouched."""
    return _with_config(project_dir, stack, {"twinhost:database": "mariadb"}, "database")


def with_wordpress(project_dir: Path, stack: str) -> Path:
    """A copy of `project_dir`'s stack files in which `stack` is a WordPress site (`app: {kind:
    wordpress}`, Debian's package under php-fpm) with its database (`database: mariadb`: Galera
    on both nodes and the witness's garbd); the repository is untouched."""
    return _with_config(
        project_dir,
        stack,
        {"twinhost:database": "mariadb", "twinhost:app": {"kind": "wordpress"}},
        "wordpress",
    )


def _with_config(project_dir: Path, stack: str, config: dict[str, Any], name: str) -> Path:
    import tempfile

    import yaml

    project = Path(tempfile.mkdtemp(prefix=f"twinhost-lab-{name}-"))
    # The stack files, and the graders' pins the checks install from (twinhost_lab/graders.py).
    sources = [project_dir / "Pulumi.yaml", *project_dir.glob("Pulumi.*.yaml")]
    sources += [p for p in [project_dir / "requirements-graders.lock"] if p.exists()]
    for source in sources:
        (project / source.name).write_text(source.read_text())
    path = project / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise LabError(f"no stack file Pulumi.{stack}.yaml in {project_dir}")
    document = yaml.safe_load(path.read_text())
    document["config"].update(config)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def render(
    layout: Layout, project_dir: Path, profile: LabProfile
) -> tuple[dict[str, str], dict[str, Any], Any]:
    """The user data `twinhost plan --lab` renders for each container, the site's names, and the
    platform's plan (what the AWS stand-in is seeded with)."""
    from infra.plan.runner import run_plan  # deliberate: loads Pulumi; `lab down`/`status` never need it

    platform = run_plan(project_dir / f"Pulumi.{layout.platform_stack}.yaml", lab=profile)
    site = run_plan(
        project_dir / f"Pulumi.{layout.stack}.yaml",
        lab=profile,
        # Secret outputs as the site's StackReference reads them (the lab's notifyWebhook).
        stack_outputs={layout.platform_stack: platform.reference_outputs()},
    )
    if site.role != "site" or platform.role != "platform":
        raise LabError(
            f"--stack {layout.stack} must be a site stack and {layout.platform_stack} the platform"
        )
    # The platform once more with the site's own outputs, as `pulumi up` of the platform after
    # the site's reads them: the witness's document and its garbd key then come from the site's
    # database CA (the first plan answered the site from its stack file). The redirector's user
    # data does not change (the plan's keys are the same within one process).
    platform = run_plan(
        project_dir / f"Pulumi.{layout.platform_stack}.yaml",
        lab=profile,
        stack_outputs={layout.stack: site.reference_outputs()},
    )
    by_role = {
        "digitalocean": site.user_data["digitalocean"],
        "linode": site.user_data["linode"],
        "redirector": platform.user_data["redirector"],
    }
    out = layout.run_dir / "user-data"  # kept for reading what a container booted
    out.mkdir(parents=True, exist_ok=True)
    for role, text in by_role.items():
        path = out / f"{role}.yaml"
        path.touch(mode=0o600)
        path.write_text(text)
    return by_role, _site_facts(site, platform), platform


def _site_facts(site: Any, platform: Any) -> dict[str, Any]:
    config = site.config
    ops_zone = str(platform.outputs["opsZone"])
    exported = SiteOutputs.from_outputs(site.outputs, default_zone=ops_zone)
    apexes = [domain.name for domain in config.domains]
    second_apex, second_site = SECOND_CLIENT
    registrations = {apex_record_name(apex, ops_zone): apex_record_content(config.site) for apex in apexes}
    registrations[apex_record_name(second_apex, ops_zone)] = apex_record_content(second_site)
    return {
        "site": config.site,
        "apexes": apexes,
        "www": [f"www.{apex}" for apex in apexes],
        "failover": exported.failover_hostname,
        "ops_zone": ops_zone,
        "registrations": registrations,
        "redirect_apexes": [*apexes, second_apex],
        "primary": config.primary,
        "admin_user": config.admin_user,
        "unknown_apex": UNKNOWN_APEX,
    }


def dns_records(layout: Layout, facts: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What the stacks and the client's own DNS would publish, with lab addresses: the failover
    name on both nodes (the watcher narrows it), www at the failover name, apexes at the
    redirector, and the apex registrations the redirector's ask service looks up."""
    nodes = [node.address for node in layout.site_nodes]
    redirector = layout.node("redirector").address
    hosts: dict[str, list[str]] = {facts["failover"]: nodes}
    for www in facts["www"]:
        hosts[www] = nodes
    for apex in [*facts["redirect_apexes"], facts["unknown_apex"]]:
        hosts[apex] = [redirector]
    return hosts, dict(facts["registrations"])


def up(layout: Layout, project_dir: Path, log: Log = print) -> LabState:
    require_root()
    existing = load_state(layout)
    if existing and any(alive(pid) for pid in [*existing.services.values(), *existing.containers.values()]):
        raise LabError("a lab is already running: `twinhost lab down` first")
    down(layout, log=lambda _: None)
    state = LabState(
        stack=layout.stack,
        platform_stack=layout.platform_stack,
        debian=layout.debian,
        project_dir=str(project_dir),
    )
    started = time.monotonic()
    try:
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        network.create(layout)
        state.services["apt-cacher-ng"] = services.start_proxy(layout)
        save_state(layout, state)
        archive, built = ensure_rootfs(layout, log)
        if built is not None:
            state.timings["rootfs_build_s"] = round(built, 1)
            log(f"rootfs: built {archive.name} ({archive.stat().st_size / 2**20:.0f} MiB) in {built:.0f} s")
        ca = services.make_lab_ca(layout.host_address)
        state.ca_pem = ca.cert_pem
        profile = lab_profile(layout, ca.cert_pem, _admin_key(layout))
        user_data, facts, platform_plan = render(layout, project_dir, profile)
        state.site = facts
        hosts, txt = dns_records(layout, facts)
        state.services["dnsmasq"] = services.start_dns(layout, hosts, txt)
        state.services["pebble"] = services.start_pebble(layout, ca)
        # S3 and SSM for the redirector's watcher refresh (moto), seeded as `pulumi up` would.
        state.services["aws"] = aws.start_aws_standin(layout, platform_plan)
        state.services["pypi"] = services.start_pypi(layout)
        # The platform's notification webhook (a failed backup posts its alert there).
        state.services["webhook"] = webhook.start_webhook(
            layout, ca.server_cert_pem, ca.server_key_pem, ca.cert_pem
        )
        state.acme_root_pem = services.acme_issuing_root(layout, ca)
        # pebble makes a new root at every start: what a client of this lab must trust.
        acme_root_file(layout).write_text(state.acme_root_pem)
        save_state(layout, state)
        boxes = containers(layout, state)
        for role, box in boxes.items():
            box.prepare(archive, user_data[role])
        boot_started = time.monotonic()
        state.timings["containers_started_at"] = round(time.time(), 3)  # wall clock, for the benchmark
        for box in boxes.values():
            box.start()
            state.containers[box.node.name] = box.pid or 0
            save_state(layout, state)  # at once: a failure booting the next must still stop this one
        log(f"booted {', '.join(b.node.name for b in boxes.values())}; following cloud-init")
        _follow(boxes, state, boot_started, log, healthy=lambda: healthy_over_tls(layout, state))
        state.timings["up_total_s"] = round(time.monotonic() - started, 1)
        save_state(layout, state)
        return state
    except BaseException:
        log("lab up failed: removing what it made")
        down(layout, log=log)
        raise


def _follow(
    boxes: dict[str, Container], state: LabState, started: float, log: Log, healthy: Callable[[], bool]
) -> None:
    """Progress every 10 s (node, cloud-init stage, elapsed) until every container is done and
    both site nodes answer /health over TLS with the lab ACME certificate (the site is up)."""
    finished: dict[str, str] = {}
    last: dict[str, str] = {}
    next_report = 0.0
    while len(finished) < len(boxes) or "healthy_tls_s" not in state.timings:
        elapsed = time.monotonic() - started
        for role, box in boxes.items():
            if role in finished:
                continue
            stage = box.stage()
            if stage in ("done", "error", "degraded done", "degraded"):
                finished[role] = stage
                state.nodes[box.node.name] = {"cloud_init": stage, "cloud_init_s": round(elapsed, 1)}
                log(f"  {box.node.name:<14} cloud-init {stage} after {elapsed:5.0f} s")
                if stage == "error":  # the site will not come up: say why now, not at the timeout
                    errors = box.cloud_init_status().get("errors")
                    raise LabError(f"cloud-init failed on {box.node.name}: {str(errors)[:1500]}")
            elif stage == "not running" and not alive(box.pid):
                raise LabError(f"{box.node.name} stopped during boot: see {box.log}")
            else:
                last[role] = stage
        if "healthy_tls_s" not in state.timings and healthy():
            state.timings["healthy_tls_s"] = round(time.monotonic() - started, 1)
            log(f"  both site nodes healthy over TLS after {state.timings['healthy_tls_s']:.0f} s")
        if elapsed >= next_report:
            waiting = [f"{boxes[r].node.name}: {s}" for r, s in last.items() if r not in finished]
            if "healthy_tls_s" not in state.timings:
                waiting.append("site: not yet healthy over TLS")
            log(f"  [{elapsed:4.0f} s] {', '.join(waiting)}")
            next_report = elapsed + 10
        if elapsed > BOOT_TIMEOUT:
            raise LabError(
                f"the lab was not up within {BOOT_TIMEOUT:.0f} s: {last}, "
                f"healthy over TLS: {'healthy_tls_s' in state.timings}"
            )
        time.sleep(2)


def acme_root_file(layout: Layout) -> Path:
    return layout.run_dir / "acme-root.pem"


def healthy_over_tls(layout: Layout, state: LabState) -> bool:
    """Both site nodes answer 200 on https://www.<apex>/health from the internet namespace,
    with a certificate that chains to the lab ACME server's root (not the self-signed stand-in)."""
    www = state.site["www"][0]
    for node in layout.site_nodes:
        result = run(
            internet_curl(
                layout,
                f"https://{www}/health",
                www,
                node.address,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                max_time=5,
            ),
            check=False,
            timeout=15,
        )
        if result.stdout.strip() != "200":
            return False
    return True


def internet_curl(
    layout: Layout, url: str, host: str, address: str, *extra: str, max_time: int = 10
) -> list[str]:
    """curl from the internet namespace, `host` resolved to `address`, trusting only the lab
    ACME server's root."""
    port = 443 if url.startswith("https") else 80
    return network.in_namespace(
        layout.internet_namespace,
        [
            "curl",
            "-sS",
            "--max-time",
            str(max_time),
            "--cacert",
            str(acme_root_file(layout)),
            "--resolve",
            f"{host}:{port}:{address}",
            *extra,
            url,
        ],
    )


def summary_table(layout: Layout, state: LabState) -> str:
    rows = [("container", "role", "addresses", "cloud-init", "seconds")]
    for node in layout.nodes:
        info = state.nodes.get(node.name, {})
        rows.append(
            (
                node.name,
                node.role,
                " ".join(node.addresses),
                str(info.get("cloud_init", "-")),
                str(info.get("cloud_init_s", "-")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) for row in rows]
    extra = ", ".join(f"{k} {v}" for k, v in state.timings.items() if k.endswith("_s"))
    return "\n".join(lines + ([extra] if extra else []))


def down(layout: Layout, log: Log = print) -> list[str]:
    """Stop the containers and services this lab started (by PID), remove the network and
    cgroups, restore the device modes. Safe to run twice, and after a failed `up`."""
    require_root()
    state = load_state(layout)
    removed: list[str] = []
    if state:
        boxes = [box for box in containers(layout, state).values() if alive(box.pid)]
        # SIGTERM to nspawn asks each container's PID 1 for an orderly power-off; all at once.
        stop_all([box.pid for box in boxes], grace=60)
        removed += [f"container {box.node.name}" for box in boxes]
        services_running = {name: pid for name, pid in state.services.items() if alive(pid)}
        stop_all(list(services_running.values()))
        removed += [f"service {name}" for name in services_running]
    leftovers = kill_lab_cgroups()
    if leftovers:
        removed.append(f"{len(leftovers)} processes left in the lab's cgroups")
    remove_lab_cgroups()
    removed += network.remove(layout)
    # nspawn's --bind leaves both devices world-writable (mode 0666) on this host: back to 0600.
    for device in DEVICES:
        if device.exists():
            os.chmod(device, 0o600)
    if layout.machines_dir.exists():
        shutil.rmtree(layout.machines_dir)
        removed.append(f"container trees in {layout.machines_dir}")
    if state:
        state_file(layout).unlink(missing_ok=True)
    for line in removed:
        log(f"removed {line}")
    return removed
