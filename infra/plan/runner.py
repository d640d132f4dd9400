"""Run the real Pulumi program under mocks with a stack file's own config, and record everything.

This is `twinhost plan`: no credentials, no network, no Pulumi CLI. The program is the same code
`pulumi up` runs (`infra.stack.build_stack`); only the engine is replaced by
`pulumi.runtime.set_mocks` with a monitor that also records what the engine would receive
(parent, protect, ignore_changes), which the plain mocks do not see.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.bootstrap.render import digitalocean_document
from infra.config import ConfigError, PlatformConfig, SiteConfig
from infra.config.files import SECRET_PLACEHOLDER, platform_stack_file_issue, read_stack_file, stack_name_of
from infra.config.rules import ops_dns_matches_the_platform
from infra.plan.lab_profile import LabProfile
from infra.plan.mocks import DEFAULT_ADDRESSES, SITE_RSA_KEYS, PlanMocks, SecretOutput, prefetch_rsa_keys
from infra.redirector import decompress
from infra.stack import build_stack, load_config

_SECRET_SIG = rpc._special_sig_key  # noqa: SLF001 - the wire marker of a secret value


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    inputs: dict[str, Any]  # secrets are still wrapped (see is_secret_value)
    # URNs this resource waits for (depends_on and the resources its inputs come from).
    dependencies: list[str] = field(default_factory=list)


@dataclass
class PlanResult:
    stack: str
    role: str
    config: SiteConfig | PlatformConfig
    resources: list[RecordedResource]
    outputs: dict[str, Any]  # secret outputs replaced by SECRET_PLACEHOLDER
    user_data: dict[str, str] = field(default_factory=dict)  # node -> rendered #cloud-config
    # The secret outputs' values: only to answer another plan's StackReference in this process
    # (`reference_outputs`: the lab plans the platform again with its site's own outputs).
    secret_outputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def reference_outputs(self) -> dict[str, Any]:
        """The outputs as a StackReference to this stack reads them, secrets marked secret."""
        return {**self.outputs, **{name: SecretOutput(v) for name, v in self.secret_outputs.items()}}


class RecordingMonitor(runtime_mocks.MockMonitor):
    """The SDK's mock monitor, plus a record of every registration request."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]  # pulumi.runtime.mocks has no annotations
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    inputs=rpc.deserialize_properties(request.object),
                    dependencies=list(request.dependencies),
                )
            )
        return response


def is_secret_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SECRET_SIG) == rpc._special_secret_sig  # noqa: SLF001


def reveal(value: Any) -> Any:
    """The value with secret wrappers removed (for writing a node's own user data only)."""
    if is_secret_value(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """The value with every secret replaced by SECRET_PLACEHOLDER (for anything shown)."""
    if is_secret_value(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Running


def run_plan(
    stack_file: Path,
    addresses: Mapping[str, str] | None = None,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    lab: LabProfile | None = None,
    served_elsewhere: Mapping[str, str] | None = None,
) -> PlanResult:
    """Plan one stack file. Raises ConfigError for invalid config (before any resource exists).

    `stack_outputs` answers StackReferences by stack name; when a site references a platform
    stack that is not given, the platform's stack file beside it is planned first (a missing one
    is a ConfigError on `platformStack`). `served_elsewhere` ({apex: stack}, from
    `infra.config.files.served_domains`) refuses a domain another stack file serves. `lab` (the
    local lab's profile): its addresses for the mocks, its admin network and key added to the
    stack's, and its render overrides handed to `build_stack` (never put in the stack config).
    """
    _ensure_event_loop()
    stack = stack_name_of(stack_file)
    config_values, secret_keys = read_stack_file(stack_file)
    if lab is not None:
        config_values = lab.with_lab_admin(config_values)
        config_values, secret_keys = lab.with_lab_webhook(config_values, secret_keys)
        addresses = {**(addresses or DEFAULT_ADDRESSES), **lab.addresses}
    references = dict(stack_outputs or {})

    _reset_runtime()
    pulumi.runtime.set_all_config(config_values, secret_keys)
    config = load_config(served_elsewhere)  # ConfigError here: nothing has been declared yet
    if isinstance(config, SiteConfig):
        prefetch_rsa_keys(SITE_RSA_KEYS)  # generated while the SDKs import (infra/plan/mocks.py)
        referenced = config.platform_stack.rsplit("/", 1)[-1]
        if referenced not in references:
            missing = platform_stack_file_issue(stack_file.parent, config.platform_stack)
            if missing is not None:
                raise ConfigError([missing])
            platform_file = stack_file.parent / f"Pulumi.{referenced}.yaml"
            # Its secret outputs as a StackReference reads them (the lab's notifyWebhook).
            references[referenced] = run_plan(platform_file, addresses, lab=lab).reference_outputs()
            # Re-install this stack's config: planning the platform replaced it.
            _reset_runtime()
            pulumi.runtime.set_all_config(config_values, secret_keys)
        # `pulumi up` finds a mismatch only through the StackReference; the plan knows it now.
        mismatch = ops_dns_matches_the_platform(config.ops_dns, references[referenced].get("opsDnsProvider"))
        if mismatch:
            raise ConfigError(mismatch)

    mocks = PlanMocks(
        addresses=dict(addresses or DEFAULT_ADDRESSES),
        stack_outputs=references,
        project_dir=stack_file.parent,
    )
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="twinhost", stack=stack, preview=False, monitor=monitor)
    overrides = lab.overrides if lab is not None else None
    _sync_await(run_pulumi_func(lambda: build_stack(overrides)))

    root = settings.get_root_resource()
    exported = getattr(root, "outputs", {}) or {}
    outputs = {name: _resolve_output(value) for name, value in exported.items()}
    result = PlanResult(stack, config.role, config, monitor.recorded, outputs)
    result.secret_outputs = {
        name: _sync_await(pulumi.Output.from_input(exported[name]).future())
        for name, value in outputs.items()
        if value == SECRET_PLACEHOLDER and exported[name] is not None
    }
    result.user_data = extract_user_data(monitor.recorded)
    return result


def _ensure_event_loop() -> None:
    """Pulumi's mocks need the main thread's event loop. A fresh process has one; a process that
    ran `asyncio.run()` before (the watcher's health checks, in the same test session) has none
    left, so set one, as a fresh process would have it."""
    policy = asyncio.get_event_loop_policy()
    try:
        policy.get_event_loop()
    except RuntimeError:
        policy.set_event_loop(policy.new_event_loop())


def _reset_runtime() -> None:
    """Forget the previous program's stack and pending work, so stacks can be planned in turn."""
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)  # type: ignore[arg-type]


def _resolve_output(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    resolved = _sync_await(output.future())
    return SECRET_PLACEHOLDER if _sync_await(output.is_secret()) else resolved


# Which resources carry a node's first-boot user data, and under what node name.
_USER_DATA_FIELDS = {
    "digitalocean:index/droplet:Droplet": ("digitalocean", "userData"),
    "linode:index/instance:Instance": ("linode", "metadatas"),
    "aws:ec2/instance:Instance": ("redirector", "userDataBase64"),
}


def extract_user_data(resources: list[RecordedResource]) -> dict[str, str]:
    found: dict[str, str] = {}
    for resource in resources:
        if resource.type not in _USER_DATA_FIELDS:
            continue
        node, key = _USER_DATA_FIELDS[resource.type]
        value = reveal(resource.inputs.get(key))
        if key == "metadatas" and value:
            # Linode: base64 of the gzipped document, written out as cloud-init reads it.
            encoded = value[0].get("userData")
            value = decompress(base64.b64decode(encoded)) if encoded else None
        if key == "userDataBase64" and isinstance(value, str):
            # gzip for the redirector (EC2's 16 KB): written out as cloud-init reads it.
            value = decompress(base64.b64decode(value))
        if key == "userData" and isinstance(value, str):
            # DigitalOcean: above the budget, a gzip MIME part; written out as cloud-init reads it.
            value = digitalocean_document(value)
        if isinstance(value, str):
            found[node] = value
    return found


def is_config_error(exc: BaseException) -> ConfigError | None:
    """The ConfigError behind an exception, if that is what it is (it may arrive wrapped)."""
    current: BaseException | None = exc
    visited: set[int] = set()
    while current is not None and id(current) not in visited:  # chains can loop
        if isinstance(current, ConfigError):
            return current
        visited.add(id(current))
        current = current.__cause__ or current.__context__
    return None
