"""Build CrossGuard's validation arguments from the program's own resources, planned under mocks.

`infra.plan.runner.run_plan` runs the real program with a stack file's config and records every
resource registration (type, name, inputs as sent on the wire, parent, protect, ...). Here each
recorded resource becomes what the Pulumi CLI's analyzer would hand the pack:
- `ResourceValidationArgs`: the inputs deserialized by pulumi-policy's own `deserialize_properties`
  (secrets unwrapped, as in `Analyze`) behind its `unknown_checking_proxy`, and the options
  (protect, ignore_changes, delete_before_replace, parent) as `PolicyResourceOptions`;
- `StackValidationArgs`: every resource, components included, parents linked.
Under mocks nothing is unknown (a `pulumi up`); `preview_unknown()` makes a value unknown to show
what a preview of a new stack sees.

Stack variants are the shipped example site with some keys changed, written to a scratch project
directory beside a copy of Pulumi.yaml and the platform stack file.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, unknown_checking_proxy

from infra.config.files import read_stack_file
from infra.plan.runner import PlanResult, RecordedResource, run_plan

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_SITE = PROJECT_DIR / "Pulumi.harbourlaw.yaml"
PLATFORM = PROJECT_DIR / "Pulumi.prod.yaml"
ZONE_ID = "0123456789abcdef0123456789abcdef"
ACCOUNT_ID = "fedcba9876543210fedcba9876543210"

# Variant name -> (changes to the example site's twinhost: keys, None = delete the key).
SITE_VARIANTS: dict[str, dict[str, Any]] = {
    "proxied": {"proxied": True, "domains": [{"name": "harbour-law.co.uk", "cloudflareZoneId": ZONE_ID}]},
    "cloudflarelb": {
        "proxied": True,
        "domains": [{"name": "harbour-law.co.uk", "cloudflareZoneId": ZONE_ID}],
        "failover": {"mode": "cloudflare-lb", "accountId": ACCOUNT_ID},
    },
    "manualboth": {
        "failover": {"mode": "manual", "active": "both"},
        "domains": [{"name": "harbour-law.co.uk", "cloudflareZoneId": ZONE_ID}],
    },
    "route53": {
        "opsDns": "route53",
        "failover": {"mode": "route53"},
        "platformStack": "brightpixel/twinhost/prod53",
        "ttl": 300,
    },
    # Violations the config model allows (SSH from anywhere with the loud override), and one it
    # cannot see (the size of the rendered user data). A long TTL is no longer one: the model
    # takes its TTL bounds from the same constants as the pack (test_policy_dns_ttl.py).
    "sshanywhere": {"adminCidrs": ["0.0.0.0/0", "::/0"], "dangerouslyAllowSshFromAnywhere": True},
    "manykeys": {"sshKeys": "GENERATED"},
}
ROUTE53_PLATFORM = {
    "dnsProvider": "route53",
    "route53ZoneId": "Z0123456789ABCDEFGHIJ",
    "cloudflareZoneId": None,
}
# Enough distinct ed25519 keys (~100 bytes each in the user data) to pass 64 KiB on both
# providers: Linode's copy is gzipped (~55 bytes of base64 per key), so 700 no longer did.
MANY_KEYS = 1500


@dataclass
class Plan:
    """One planned stack: what the program declared, and the config it ran with."""

    stack_file: Path
    result: PlanResult
    config: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> list[RecordedResource]:
        return self.result.resources

    def of_type(self, resource_type: str) -> list[RecordedResource]:
        found = [r for r in self.resources if r.type == resource_type]
        assert found, f"{self.stack_file.name} declares no {resource_type}"
        return found

    def first(self, resource_type: str) -> RecordedResource:
        """Any one resource of the type (for rules that hold for each of them)."""
        found = self.of_type(resource_type)
        assert found, f"no {resource_type}"
        return found[0]

    def one(self, resource_type: str) -> RecordedResource:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {[r.name for r in found]}"
        return found[0]

    def install_config(self, drop: tuple[str, ...] = ()) -> None:
        """Make this stack's config what the rules read (as the CLI does for a policy pack)."""
        values = {k: v for k, v in self.config.items() if k not in drop}
        pulumi.runtime.set_all_config(values, [])


class Plans:
    """Plans made on demand and kept for the session (each costs about a second)."""

    def __init__(self, scratch: Path):
        self._scratch = scratch
        self._cache: dict[str, Plan] = {}
        (scratch / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
        (scratch / "Pulumi.prod.yaml").write_text(PLATFORM.read_text())
        # The platform reads the sites it lists (twinhost:sites) when it is planned first.
        (scratch / EXAMPLE_SITE.name).write_text(EXAMPLE_SITE.read_text())
        _write_variant(PLATFORM, scratch / "Pulumi.prod53.yaml", ROUTE53_PLATFORM)

    @property
    def scratch(self) -> Path:
        """The scratch project directory (Pulumi.yaml and the platform stack beside the variants)."""
        return self._scratch

    def file(self, path: Path) -> Plan:
        """Plan any stack file in the scratch directory."""
        return self._plan(path)

    def shipped(self, stack: str) -> Plan:
        return self._plan(PROJECT_DIR / f"Pulumi.{stack}.yaml")

    def variant(self, name: str) -> Plan:
        path = self._scratch / f"Pulumi.{name}.yaml"
        if not path.exists():
            changes = dict(SITE_VARIANTS[name])
            if changes.get("sshKeys") == "GENERATED":
                changes["sshKeys"] = _generated_keys(MANY_KEYS)
            _write_variant(EXAMPLE_SITE, path, changes)
        return self._plan(path)

    def _plan(self, path: Path) -> Plan:
        key = str(path)
        if key not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                result = run_plan(path)
            config, _ = read_stack_file(path)
            self._cache[key] = Plan(path, result, config)
        plan = self._cache[key]
        plan.install_config()
        return plan


def _write_variant(source: Path, target: Path, changes: Mapping[str, Any]) -> None:
    document = yaml.safe_load(source.read_text())
    section = document["config"]
    for key, value in changes.items():
        full = key if ":" in key else f"twinhost:{key}"
        if value is None:
            section.pop(full, None)
        else:
            section[full] = value
    target.write_text(yaml.safe_dump(document, sort_keys=False))


def _generated_keys(count: int) -> list[str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    keys = []
    for i in range(count):
        public = ed25519.Ed25519PrivateKey.generate().public_key()
        line = public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ).decode()
        keys.append(f"{line} admin{i}@example")
    return keys


# ---------------------------------------------------------------------------------------------
# Arguments as the analyzer builds them


def resource_args(
    resource: RecordedResource,
    *,
    protect: bool | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> ResourceValidationArgs:
    """What `Analyze` hands a resource policy for this resource; `protect`/`edit` change the
    options or the (wire-format) inputs first, to build a violation from the program's own."""
    inputs = copy.deepcopy(resource.inputs)
    if edit is not None:
        edit(inputs)
    props = unknown_checking_proxy(deserialize_properties(inputs))
    return ResourceValidationArgs(
        resource.type,
        props,
        resource.urn,
        resource.name,
        _options(resource, protect),
        None,
    )


def stack_args(
    resources: list[RecordedResource],
    edits: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
) -> StackValidationArgs:
    """What `AnalyzeStack` hands a stack policy; `edits` change the inputs of resources by name."""
    by_urn: dict[str, PolicyResource] = {}
    for resource in resources:
        inputs = copy.deepcopy(resource.inputs)
        if edits and resource.name in edits:
            edits[resource.name](inputs)
        props = unknown_checking_proxy(deserialize_properties(inputs))
        by_urn[resource.urn] = PolicyResource(
            resource.type,
            props,
            resource.urn,
            resource.name,
            _options(resource, None),
            None,
            None,
            [],
            {},
        )
    for resource in resources:
        if resource.parent in by_urn:
            by_urn[resource.urn].parent = by_urn[resource.parent]
    return StackValidationArgs(list(by_urn.values()))


def _options(resource: RecordedResource, protect: bool | None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        resource.protect if protect is None else protect,
        list(resource.ignore_changes),
        resource.delete_before_replace,
        [],
        PolicyCustomTimeouts(0, 0, 0),
        [],
        resource.parent,
    )


def preview_unknown(key: str) -> Callable[[dict[str, Any]], None]:
    """An edit that makes an input unknown, as it is in a preview before its source exists."""

    def edit(inputs: dict[str, Any]) -> None:
        inputs[key] = UNKNOWN_ARRAY_VALUE

    return edit


def violations(rule: Callable[[Any, Any], Any], args: Any) -> list[str]:
    """Every message `rule` reports for `args`."""
    found: list[str] = []
    rule(args, lambda message, urn=None: found.append(message))
    return found
