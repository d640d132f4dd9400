"""Converge one running node to the stack config, then gate on its health: the second path.

User data is first-boot only (the droplet and the Linode ignore changes to it, so a config change
never replaces a serving node). What may change later (app version, `app.env`, `appSecrets`,
`sshKeys`, `adminCidrs`, `backups`, the mesh peer's public address) reaches a running node here: a `pulumi-command` remote command installs
and runs `twinhost-converge` over SSH as the admin user, with the desired state (a secret) on
stdin, then a second command (the health gate) asks `/health` through the node's web front. A
change to the desired state is an update of these two commands, never a replacement of the node. The pair chains node B's converge
after node A's health gate: a failure on A stops the `up` before B is touched (site_pair.py).

SSH authentication comes from the ssh-agent of whoever runs `pulumi up` (SSH_AUTH_SOCK, read by
the provider, never stored in the state): a key listed in `sshKeys`, from an address in
`adminCidrs` (docs/converge.md: why, and what CI needs).

Deliberately not here: anything that needs a new node (provider, region, size, Debian release,
the app's kind, image, package, command or port, the domains, the mesh's keys and addresses): those stay first-boot.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command

from infra.bootstrap.parts import static

# Where the converge script lands on a node (its source: cloudinit/site/usr/local/sbin/).
CONVERGE = "/usr/local/sbin/twinhost-converge"
# cloud-init first: a node `pulumi up` has just created is still booting (sudo is not even
# installed yet). `status --wait` exits 1 when the first boot failed (2, Debian 13's "degraded",
# is a boot that finished with warnings).
WAIT_FOR_FIRST_BOOT = (
    "rc=0; if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null || rc=$?; fi; "
    "if [ $rc = 1 ]; then echo 'twinhost-converge: the first boot (cloud-init) failed: "
    "see cloud-init status --long on the node' >&2; exit 1; fi"
)


def converge_command(script: str, target: str = CONVERGE) -> str:
    """Wait for the first boot, install the converge script (it travels inside this command,
    gzip + base64, so a node of any age runs the script of this very `up`, and the user data
    stays within its budget), then run it with the desired state on stdin."""
    packed = base64.b64encode(gzip.compress(script.encode(), compresslevel=9, mtime=0)).decode("ascii")
    new = f"{target}.new"
    install = (
        f"printf %s '{packed}' | sudo -n sh -c 'base64 -d | gzip -dc > {new} && chmod 0755 {new} "
        f"&& mv -f {new} {target}' || {{ echo 'twinhost-converge: could not install {target} "
        "(sudo -n as the admin user)' >&2; exit 1; }"
    )
    return f"{WAIT_FOR_FIRST_BOOT}; {install}; sudo -n {target} -"


CONVERGE_COMMAND = converge_command(static("site/usr/local/sbin/twinhost-converge"))
HEALTH_ROUNDS = 3  # consecutive 200s: one lucky answer from a restarting app is not health
HEALTH_TIMEOUT_SECONDS = 60


def health_command(server_name: str) -> str:
    """/health through the node's own web front (nginx, TLS, the site's name as SNI and Host),
    HEALTH_ROUNDS times in a row within HEALTH_TIMEOUT_SECONDS; run as the admin user (bash)."""
    url = f"https://{server_name}/health"
    curl = f"curl -fsS -o /dev/null --max-time 5 --insecure --resolve {server_name}:443:127.0.0.1 {url}"
    return (
        f"n=0; end=$((SECONDS + {HEALTH_TIMEOUT_SECONDS})); "
        f"while [ $n -lt {HEALTH_ROUNDS} ]; do "
        f"if {curl}; then n=$((n + 1)); else n=0; "
        f"if [ $SECONDS -ge $end ]; then echo 'twinhost health gate: {url} not {HEALTH_ROUNDS} x 200 "
        f"in a row within {HEALTH_TIMEOUT_SECONDS} s' >&2; exit 1; fi; fi; sleep 1; done; "
        f"echo 'twinhost health gate: {HEALTH_ROUNDS} x 200 from {url} through the web front' >&2"
    )


# A node that has just been created takes a minute or two to accept SSH at all.
DIAL_ERROR_LIMIT = 40
PER_DIAL_TIMEOUT_SECONDS = 15
# A first boot (cloud-init) takes 2-3 minutes; a deploy waits up to 60 s per health check.
TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="20m")


@dataclass
class NodeConvergeArgs:
    host: pulumi.Input[str]  # the node's public address (node A: the reserved IP)
    admin_user: str
    server_name: str  # the web front's first name: what the health gate asks for
    # JSON of infra.bootstrap.converge.desired_state; a secret (it holds appSecrets).
    desired_state: pulumi.Input[str]
    # What must be in place first: the node itself, its firewalls, the previous node's gate.
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class NodeConverge(pulumi.ComponentResource):
    """Outputs: `converge` and `health` (the two commands; depend on `health` to wait for a
    node that is converged and healthy)."""

    def __init__(self, name: str, args: NodeConvergeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:NodeConverge", name, None, opts)
        connection = command.remote.ConnectionArgs(
            host=args.host,
            user=args.admin_user,
            dial_error_limit=DIAL_ERROR_LIMIT,
            per_dial_timeout=PER_DIAL_TIMEOUT_SECONDS,
        )
        stdin = pulumi.Output.secret(args.desired_state)
        self.converge = command.remote.Command(
            f"{name}-apply",
            connection=connection,
            create=CONVERGE_COMMAND,
            # Every later change of the desired state runs the same command (it is idempotent).
            update=CONVERGE_COMMAND,
            stdin=stdin,
            # The script prints what it changed (never a secret) on stderr; stdout stays empty.
            logging=command.remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after), custom_timeouts=TIMEOUTS),
        )
        self.health = command.remote.Command(
            f"{name}-health",
            connection=connection,
            create=health_command(args.server_name),
            update=health_command(args.server_name),
            # The desired state as a trigger: the gate runs again whenever the converge did.
            triggers=[stdin],
            logging=command.remote.Logging.STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.converge], custom_timeouts=TIMEOUTS),
        )
        self.register_outputs({})
