"""The day-2 commands (`twinhost deploy|rollback|status|logs`) run against the booted lab, the
way an operator runs them: from the admin network, through ssh as the admin user, reading the
addresses from a file of stack outputs (the lab has no Pulumi CLI), while a client in the
internet namespace polls the site (`twinhost_lab.poller`).

The commands run on a copy of the project (`<run>/ops-project`): `deploy` records the version in
the stack file, and the lab never edits the checkout it was booted from.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.ops.addresses import stack_facts
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import RunningLab
from twinhost_lab.network import in_namespace


@dataclass(frozen=True)
class OpsFiles:
    project: Path  # the copy the commands read and `deploy` edits
    addresses: Path
    ssh_config: Path
    ca_file: Path


def write_files(lab: RunningLab, project_dir: Path) -> OpsFiles:
    """The scratch project, the stack outputs the lab stands for, an ssh config with the lab's
    admin key (host keys change with every boot: none are kept)."""
    layout, site = lab.layout, lab.site
    base = layout.run_dir / "ops"
    project = base / "project"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    for path in [project_dir / "Pulumi.yaml", *project_dir.glob("Pulumi.*.yaml")]:
        shutil.copy2(path, project / path.name)
    facts = stack_facts(project, layout.stack)
    addresses = layout.address_map()
    outputs: dict[str, Any] = {
        layout.stack: {
            "site": site["site"],
            "failoverHostname": site["failover"],
            "failoverMode": facts.mode,
            "nodeAddresses": {
                "digitalocean": addresses["digitalocean_reserved_ip"],
                "linode": addresses["linode"],
            },
            "domains": site["apexes"],
            "opsZone": site["ops_zone"],
            "primary": site["primary"],
            "certificates": "acme",
        },
        layout.platform_stack: {"redirectorAddress": addresses["redirector"]},
    }
    addresses_file = base / "addresses.json"
    addresses_file.write_text(json.dumps(outputs, indent=2))
    ssh_config = base / "ssh_config"
    ssh_config.touch(mode=0o600)
    ssh_config.write_text(
        "Host *\n"
        f"    IdentityFile {lab_module.admin_key_path(layout)}\n"
        "    IdentitiesOnly yes\n"
        "    StrictHostKeyChecking no\n"
        "    UserKnownHostsFile /dev/null\n"
        "    LogLevel ERROR\n"
    )
    return OpsFiles(project, addresses_file, ssh_config, lab_module.acme_root_file(layout))


def twinhost(
    lab: RunningLab, files: OpsFiles, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`twinhost ARGS --addresses ... --ssh-config ...` from the admin namespace."""
    command = args[0]
    extra = ["--project-dir", str(files.project), "--addresses", str(files.addresses)]
    extra += ["--ssh-config", str(files.ssh_config)]
    if command in ("deploy", "rollback", "status"):
        extra += ["--ca-file", str(files.ca_file)]
    if command == "status":
        extra += ["--resolver", lab.layout.host_address]
    entry = [sys.executable, "-c", "import sys; from infra.cli import main; sys.exit(main())"]
    return subprocess.run(
        in_namespace(lab.layout.admin_namespace, [*entry, command, *extra, *args[1:]]),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Poller:
    """`with Poller(lab) as poller:` ... `poller.summary` once the block ends."""

    def __init__(self, lab: RunningLab, interval: float = 0.1):
        site_addresses = [node.address for node in lab.layout.site_nodes]
        command = [sys.executable, "-m", "twinhost_lab.poller", "--name", lab.site["www"][0]]
        for address in site_addresses:
            command += ["--address", address]
        command += ["--cacert", str(lab.acme_root), "--interval", str(interval)]
        self.command = in_namespace(lab.layout.internet_namespace, command)
        self.summary: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Poller:
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        if first.strip() != "polling":
            raise RuntimeError(
                f"the poller did not start: {first} {self._process.stderr.read() if self._process.stderr else ''}"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        out, err = self._process.communicate(input="", timeout=60)
        try:
            self.summary = json.loads(out.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            self.summary = {"error": f"no summary: {err[-500:]}"}

    def line(self) -> str:
        s = self.summary
        if "error" in s:
            return str(s["error"])
        return (
            f"{s['requests']} requests in {s['seconds']} s, {s['failed']} failed; versions served "
            f"{s['versions']}" + (f"; failures {s['failures'][:3]}" if s["failures"] else "")
        )
