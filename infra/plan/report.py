"""Turning a PlanResult into what `twinhost plan` prints (text tree or JSON) and writes (user data)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from infra.bootstrap import converge
from infra.bootstrap.parts import readable
from infra.bootstrap.render import digitalocean_document, provider_user_data_size
from infra.constants import USER_DATA_LIMITS
from infra.plan.cost import monthly_cost
from infra.plan.runner import PlanResult, RecordedResource, is_secret_value, redact, reveal
from infra.redirector import decompress

# Inputs worth showing per resource, by wire name, in this order; others are left out of the tree.
KEY_SETTINGS = (
    "name",
    "label",
    "region",
    "size",
    "type",
    "instanceType",
    "image",
    "ami",
    "backups",
    "backupsEnabled",
    "monitoring",
    "ipv6",
    "ipAddress",
    "content",
    "records",
    "ttl",
    "proxied",
    "setIdentifier",
    "failoverRoutingPolicies",
    "port",
    "resourcePath",
    "requestInterval",
    "failureThreshold",
    "path",
    "interval",
    "expectedCodes",
    "steeringPolicy",
    "algorithm",
    "rsaBits",
    "ecdsaCurve",
    "hostnames",
    "requestType",
    "requestedValidity",
    "domain",
    "inboundPolicy",
    "outboundPolicy",
    "metadataOptions",
    "rootBlockDevice",
    "length",
    "special",
    "isCaCertificate",
    "validityPeriodHours",
    "ipAddresses",
)
# Outputs that are secrets by type (made by the provider, so not among the inputs): shown as
# `[secret]` so the plan says where each secret comes from.
SECRET_OUTPUTS = {
    "random:index/randomPassword:RandomPassword": "result",
    "tls:index/privateKey:PrivateKey": "privateKeyPem",
    "aws:iam/accessKey:AccessKey": "secret",
}
_ANYWHERE = {"0.0.0.0/0", "::/0"}


def key_settings(resource: RecordedResource) -> dict[str, Any]:
    inputs = resource.inputs
    shown: dict[str, Any] = {}
    for key in KEY_SETTINGS:
        if key in inputs and inputs[key] not in (None, [], {}):
            shown[key] = redact(inputs[key])
    if resource.type in SECRET_OUTPUTS:
        shown[SECRET_OUTPUTS[resource.type]] = "[secret]"
    if "inboundRules" in inputs:
        shown["inbound"] = [
            _rule_summary(r.get("protocol"), r.get("portRange"), r.get("sourceAddresses", []))
            for r in reveal(inputs["inboundRules"])
        ]
    if "inbounds" in inputs:
        shown["inbound"] = [
            _rule_summary(r.get("protocol"), r.get("ports"), [*r.get("ipv4s", []), *r.get("ipv6s", [])])
            for r in reveal(inputs["inbounds"])
        ]
    for key, label in (("ingress", "inbound"), ("egress", "outbound")):
        if isinstance(inputs.get(key), list):  # AWS security group rules
            shown[label] = [
                _rule_summary(
                    r.get("protocol"),
                    _port_range(r.get("fromPort"), r.get("toPort")),
                    [*r.get("cidrBlocks", []), *r.get("ipv6CidrBlocks", [])],
                ).replace(" from ", " from " if key == "ingress" else " to ", 1)
                for r in reveal(inputs[key])
            ]
    for key in ("userData", "metadatas"):
        if key in inputs:
            text = _user_data_text(inputs[key])
            if text is None:
                shown["userData"] = "[secret]"
            elif key == "metadatas":
                shown["userData"] = (
                    f"[secret] {_budget('linode', text)} (base64 of gzip; "
                    f"{len(text.encode())} bytes as cloud-init reads it)"
                )
            elif provider_user_data_size("digitalocean", text) != len(text.encode()):
                shown["userData"] = (
                    f"[secret] {_budget('digitalocean', text)} (one gzip MIME part; "
                    f"{len(text.encode())} bytes as cloud-init reads it)"
                )
            else:
                shown["userData"] = f"[secret] {_budget('digitalocean', text)}"
    if "connection" in inputs:  # pulumi-command's remote commands: the node converge
        shown.update(_remote_command(inputs))
    if "userDataBase64" in inputs:
        packed = reveal(inputs["userDataBase64"])
        if isinstance(packed, str):
            raw = base64.b64decode(packed)
            shown["userData"] = (
                f"[secret] {len(raw)} bytes gzip "
                f"({len(decompress(raw).encode())} bytes as cloud-init reads it)"
            )
        else:
            shown["userData"] = "[secret]"
    return shown


def _remote_command(inputs: dict[str, Any]) -> dict[str, Any]:
    """Where it connects, what it runs, and the desired state it sends with its secret values
    shown as [secret] (the stdin as a whole is a secret: it holds appSecrets)."""
    # The SDK marks the whole connection secret (it may hold a key); only these parts are shown.
    connection = reveal(inputs["connection"])
    shown: dict[str, Any] = {
        "connection": f"ssh {connection.get('user')}@{connection.get('host')} port {_short(connection.get('port'))} "
        f"(key: the ssh-agent of whoever runs pulumi up)",
        "create": _inline_payloads(redact(inputs.get("create"))),
    }
    create = shown["create"]
    if isinstance(create, str) and create != inputs.get("create"):  # it carries a payload
        shown["runs"] = create.rsplit("; ", 1)[-1]  # what it comes to, cut short in the tree
    if inputs.get("update") not in (None, inputs.get("create")):
        shown["update"] = _inline_payloads(redact(inputs["update"]))
    stdin = reveal(inputs.get("stdin"))
    if isinstance(stdin, str):
        shown.update({f"desired {key}": value for key, value in converge.summary(stdin).items()})
    if inputs.get("triggers"):
        shown["runs again when"] = "the desired state changes"
    return shown


def _inline_payloads(command: Any) -> Any:
    """A command with its inline base64 payload (the converge script) named, not printed."""
    if not isinstance(command, str):
        return command
    return re.sub(r"'([A-Za-z0-9+/=]{200,})'", lambda m: f"<{len(m.group(1))} bytes of base64>", command)


def _port_range(start: Any, end: Any) -> str:
    first, last = int(start or 0), int(end or 0)
    return str(first) if first == last else f"{first}-{last}"


def _rule_summary(protocol: Any, ports: Any, sources: list[str]) -> str:
    where = "anywhere" if _ANYWHERE & set(sources) else f"{len(sources)} source(s)"
    if len(sources) <= 2 and not (_ANYWHERE & set(sources)):
        where = ", ".join(sources)
    return f"{str(protocol).lower()}/{ports or 'all'} from {where}"


def _user_data_text(value: Any) -> str | None:
    plain = reveal(value)
    if isinstance(plain, list) and plain and isinstance(plain[0], dict):
        encoded = plain[0].get("userData")
        return decompress(base64.b64decode(encoded)) if encoded else None
    return digitalocean_document(plain) if isinstance(plain, str) else None


def _budget(provider: str, text: str) -> str:
    """`N bytes, P % of the limit`, N counted as the provider counts it (Linode: the base64)."""
    size = provider_user_data_size(provider, text)
    return f"{size} bytes, {100 * size / USER_DATA_LIMITS[provider]:.0f} % of the limit"


def to_dict(result: PlanResult, user_data_paths: dict[str, Path]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for resource in result.resources:
        resources.append(
            {
                "urn": resource.urn,
                "type": resource.type,
                "name": resource.name,
                "parent": resource.parent,
                "component": not resource.custom,
                "protect": resource.protect,
                "ignore_changes": resource.ignore_changes,
                "settings": key_settings(resource),
                "monthly_cost_usd": monthly_cost(resource) if resource.custom else 0.0,
            }
        )
    return {
        "stack": result.stack,
        "role": result.role,
        "resources": resources,
        "outputs": result.outputs,
        "monthly_cost_usd": round(sum(float(r["monthly_cost_usd"]) for r in resources), 2),
        "user_data": {
            node: {"path": str(path), "bytes": len(result.user_data[node].encode())}
            for node, path in user_data_paths.items()
        },
    }


def write_user_data(result: PlanResult, build_dir: Path) -> dict[str, Path]:
    """Write each node's rendered #cloud-config to build/<stack>/<node>.yaml, as cloud-init reads
    it (after the provider's base64 and gzip), and beside it <node>.readable.yaml with the files
    shipped gz+b64 shown decoded. Mode 0600: both hold that node's private keys."""
    target = build_dir / result.stack
    target.mkdir(parents=True, exist_ok=True)
    paths = {}
    for node, text in result.user_data.items():
        path = target / f"{node}.yaml"
        for where, content in ((path, text), (target / f"{node}.readable.yaml", readable(text))):
            where.touch(mode=0o600)
            where.chmod(0o600)
            where.write_text(content, encoding="utf-8")
        paths[node] = path
    return paths


def render_text(plan: dict[str, Any]) -> str:
    lines = [
        f"Stack {plan['stack']} ({plan['role']}): {sum(1 for r in plan['resources'] if not r['component'])} "
        f"resources in {sum(1 for r in plan['resources'] if r['component'])} components, "
        f"${plan['monthly_cost_usd']:.2f}/month"
    ]
    children: dict[str | None, list[dict[str, Any]]] = {}
    urns = {r["urn"] for r in plan["resources"]}
    for resource in plan["resources"]:
        parent = resource["parent"] if resource["parent"] in urns else None
        children.setdefault(parent, []).append(resource)

    def walk(parent: str | None, depth: int) -> None:
        for resource in children.get(parent, []):
            flags = " [protected]" if resource["protect"] else ""
            if resource["ignore_changes"]:
                flags += f" [ignore_changes: {', '.join(resource['ignore_changes'])}]"
            cost = f"  ${resource['monthly_cost_usd']:.2f}/mo" if resource["monthly_cost_usd"] else ""
            lines.append(f"{'  ' * depth}+ {resource['name']}  ({resource['type']}){flags}{cost}")
            for key, value in resource["settings"].items():
                lines.append(f"{'  ' * (depth + 2)}{key}: {_short(value)}")
            walk(resource["urn"], depth + 1)

    walk(None, 1)
    lines.append("Outputs:")
    for name, value in plan["outputs"].items():
        text = value if isinstance(value, str) else json.dumps(value)
        for i, part in enumerate(str(text).splitlines() or [""]):
            lines.append(f"  {name if i == 0 else ' ' * len(name)}: {part}")
    lines.append("Monthly cost (USD, list prices from infra/data/prices.yaml):")
    for resource in plan["resources"]:
        if resource["monthly_cost_usd"]:
            lines.append(
                f"  {resource['monthly_cost_usd']:8.2f}  {resource['name']} ({resource['type'].split(':')[-1]})"
            )
    lines.append(f"  {plan['monthly_cost_usd']:8.2f}  total for stack {plan['stack']}")
    for node, info in plan["user_data"].items():
        lines.append(f"User data {node}: {info['path']} ({info['bytes']} bytes)")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the wire protocol carries every number as a float
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 160 else text[:157] + "..."


def contains_secret(value: Any) -> bool:
    if is_secret_value(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False
