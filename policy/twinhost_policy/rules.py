"""The safety rules of twinhost, as CrossGuard validation functions.

Each function has the signature pulumi-policy calls: `(args, report_violation) -> None`, with
`ResourceValidationArgs` (one resource's inputs and options, before it is created or updated) or
`StackValidationArgs` (every resource of the stack). They are plain functions so tests call them
directly with arguments built from the program's own resources under mocks; `policies.py` wraps
them into `ResourceValidationPolicy`/`StackValidationPolicy` objects, `../__main__.py` serves them.

Properties use the engine's wire names (camelCase). During `pulumi preview` a value that depends
on a resource not yet created is unknown; reading it raises the SDK's UnknownValueError, which the
SDK reports as "can't run policy during preview" (advisory) and the rule then runs for real, and
blocks, during `pulumi up` (see docs/workflow.md, "What the policy pack sees at preview").

The stack's own config is readable here: the Pulumi CLI hands a policy pack the stack's config the
way it hands it to the program (PULUMI_CONFIG), and pulumi-policy installs it before each
analysis. That is how the loud override `twinhost:dangerouslyAllowSshFromAnywhere` and the
client's apex domains reach the rules (`stack_settings()`).

Limits that the program also checks come from the program's own modules, one source each:
`infra.components.firewall_rules` (firewall limits), `infra.config.fields` (DNS-only TTLs).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi.runtime
from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from infra.components.firewall_rules import (
    DIGITALOCEAN_MAX_RULES,
    LINODE_MAX_ADDRESSES_PER_RULE,
    LINODE_MAX_RULES,
)
from infra.config.fields import TTL_MAX, TTL_MIN

NAMESPACE = "twinhost"
SSH_OVERRIDE_KEY = f"{NAMESPACE}:dangerouslyAllowSshFromAnywhere"
SSH_PORT = 22

# -- resource types (Pulumi type tokens) --------------------------------------------------------
DIGITALOCEAN_FIREWALL = "digitalocean:index/firewall:Firewall"
LINODE_FIREWALL = "linode:index/firewall:Firewall"
AWS_SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
AWS_SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
AWS_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

DROPLET = "digitalocean:index/droplet:Droplet"
LINODE_INSTANCE = "linode:index/instance:Instance"
AWS_INSTANCE = "aws:ec2/instance:Instance"
AWS_LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"

ELASTIC_IP = "aws:ec2/eip:Eip"
RESERVED_IP = "digitalocean:index/reservedIp:ReservedIp"
FLOATING_IP = "digitalocean:index/floatingIp:FloatingIp"  # deprecated name of the same thing
CLOUDFLARE_DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
CLOUDFLARE_RECORD = "cloudflare:index/record:Record"  # deprecated, still a record
ROUTE53_RECORD = "aws:route53/record:Record"
CLOUDFLARE_LOAD_BALANCER = "cloudflare:index/loadBalancer:LoadBalancer"
ORIGIN_CA_CERTIFICATE = "cloudflare:index/originCaCertificate:OriginCaCertificate"

# Addresses every client points at and the names they CNAME to: a careless `pulumi destroy` or a
# rename that replaces one of these takes sites offline, so each must carry `protect`.
PROTECTED_TYPES = frozenset(
    {
        ELASTIC_IP,
        RESERVED_IP,
        FLOATING_IP,
        CLOUDFLARE_DNS_RECORD,
        CLOUDFLARE_RECORD,
        ROUTE53_RECORD,
        CLOUDFLARE_LOAD_BALANCER,
    }
)

# -- provider limits ----------------------------------------------------------------------------
# DigitalOcean: "User data is limited to 64 KiB" (Droplet create API, user_data).
DIGITALOCEAN_USER_DATA_MAX = 64 * 1024
# Linode Metadata: the API takes user_data base64-encoded. Its documentation, as far as we could
# search it, does not state the limit; we assume 64 KiB (65,535) counted on the base64 text the
# API receives (as infra/bootstrap/render.py does).
LINODE_USER_DATA_MAX = 65_535
# AWS EC2: "user data is limited to 16 KB, in raw form, before it is base64-encoded".
AWS_USER_DATA_MAX = 16 * 1024

# DNS-only records that follow a node: long enough to spare resolvers, short enough that a moved
# record is seen within minutes. The bounds are the stack config's own (`twinhost:ttl`), so
# `new-site` and `twinhost plan` refuse what this pack refuses. Cloudflare's ttl=1 means
# "automatic", which is 300 s.
DNS_ONLY_TTL_MIN, DNS_ONLY_TTL_MAX = TTL_MIN, TTL_MAX
CLOUDFLARE_AUTOMATIC_TTL = 1


# ---------------------------------------------------------------------------------------------
# The stack's own config


@dataclass(frozen=True)
class StackSettings:
    """What the rules read from the stack's config (the same values the program reads)."""

    role: str | None
    allow_ssh_from_anywhere: bool
    apex_domains: frozenset[str]


def stack_settings() -> StackSettings:
    """The running stack's settings, from the config the engine hands the policy pack."""
    role = pulumi.runtime.get_config(f"{NAMESPACE}:role")
    override = pulumi.runtime.get_config(SSH_OVERRIDE_KEY)
    return StackSettings(
        role=str(role) if role else None,
        allow_ssh_from_anywhere=str(override).strip().lower() == "true",
        apex_domains=frozenset(_apex_domains(pulumi.runtime.get_config(f"{NAMESPACE}:domains"))),
    )


def _apex_domains(raw: Any) -> Iterator[str]:
    try:
        entries = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except json.JSONDecodeError:
        return
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("name") if isinstance(entry, Mapping) else entry
        if isinstance(name, str):
            yield _fqdn(name)


# ---------------------------------------------------------------------------------------------
# Rule 1: no SSH from the whole internet


def validate_no_ssh_from_anywhere(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No firewall or security group opens port 22 to 0.0.0.0/0 or ::/0, unless the stack sets
    twinhost:dangerouslyAllowSshFromAnywhere (then `validate_ssh_override_in_use` says so)."""
    findings = list(world_ssh_findings(args.resource_type, args.props))
    if findings and not stack_settings().allow_ssh_from_anywhere:
        for finding in findings:
            report_violation(
                f"{finding}: SSH must only be open to the admin networks (twinhost:adminCidrs). "
                f"If this is truly intended, set {SSH_OVERRIDE_KEY}: true in the stack file.",
                None,
            )


def validate_ssh_override_in_use(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Advisory: say loudly, on every preview, that the override is what lets SSH in from anywhere."""
    findings = list(world_ssh_findings(args.resource_type, args.props))
    if findings and stack_settings().allow_ssh_from_anywhere:
        for finding in findings:
            report_violation(f"{finding}: allowed only because {SSH_OVERRIDE_KEY} is true", None)


def world_ssh_findings(resource_type: str, props: Mapping[str, Any]) -> Iterator[str]:
    """Each place in a firewall/security group's inputs that lets port 22 in from anywhere."""
    if resource_type == DIGITALOCEAN_FIREWALL:
        for i, rule in enumerate(props.get("inboundRules") or []):
            if _is_tcp(rule.get("protocol")) and _ports_cover(rule.get("portRange"), SSH_PORT):
                for source in _world(rule.get("sourceAddresses")):
                    yield f"inboundRules[{i}] allows tcp/{rule.get('portRange') or 'all'} from {source}"
    elif resource_type == LINODE_FIREWALL:
        if str(props.get("inboundPolicy") or "").upper() == "ACCEPT":
            yield "inboundPolicy ACCEPT lets every port in from anywhere, SSH included (use DROP)"
        for i, rule in enumerate(props.get("inbounds") or []):
            if (
                str(rule.get("action") or "").upper() == "ACCEPT"
                and _is_tcp(rule.get("protocol"))
                and _ports_cover(rule.get("ports"), SSH_PORT)
            ):
                for source in _world([*(rule.get("ipv4s") or []), *(rule.get("ipv6s") or [])]):
                    yield f"inbounds[{i}] ({rule.get('label')}) allows tcp/{rule.get('ports') or 'all'} from {source}"
    elif resource_type == AWS_SECURITY_GROUP:
        for i, rule in enumerate(props.get("ingress") or []):
            if _aws_rule_covers_ssh(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort")):
                for source in _world([*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]):
                    yield f"ingress[{i}] allows port 22 from {source}"
    elif resource_type == AWS_SECURITY_GROUP_RULE:
        if props.get("type") == "ingress" and _aws_rule_covers_ssh(
            props.get("protocol"), props.get("fromPort"), props.get("toPort")
        ):
            for source in _world([*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])]):
                yield f"ingress rule allows port 22 from {source}"
    elif resource_type == AWS_INGRESS_RULE and _aws_rule_covers_ssh(
        props.get("ipProtocol"), props.get("fromPort"), props.get("toPort")
    ):
        for source in _world([props.get("cidrIpv4"), props.get("cidrIpv6")]):
            yield f"ingress rule allows port 22 from {source}"


def _is_tcp(protocol: Any) -> bool:
    return str(protocol or "").lower() in ("tcp", "6")


def _ports_cover(ports: Any, port: int) -> bool:
    """Whether a DigitalOcean port_range / Linode ports value ("22", "20-25", "22,80", "all",
    empty: all ports) includes `port`."""
    text = str(ports or "").strip().lower()
    if text in ("", "all", "0", "1-65535"):
        return True
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            if int(low) <= port <= int(high or low):
                return True
        except ValueError:
            return True  # unparseable: assume the worst, a reviewer looks at it
    return False


def _aws_rule_covers_ssh(protocol: Any, from_port: Any, to_port: Any) -> bool:
    name = str(protocol if protocol is not None else "").lower()
    if name in ("-1", "all"):
        return True  # every protocol, every port
    if not _is_tcp(name):
        return False
    try:
        return int(from_port) <= SSH_PORT <= int(to_port)
    except (TypeError, ValueError):
        return True


def _world(sources: Iterable[Any] | None) -> Iterator[str]:
    for source in sources or []:
        if not isinstance(source, str):
            continue
        try:
            if ipaddress.ip_network(source.strip(), strict=False).prefixlen == 0:
                yield source
        except ValueError:
            continue


# ---------------------------------------------------------------------------------------------
# Rule 2: addresses and records are protected


def validate_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The Elastic IP, reserved IPs and DNS records carry `protect=True`."""
    if args.resource_type in PROTECTED_TYPES and not args.opts.protect:
        report_violation(
            f"{args.resource_type.rsplit(':', 1)[-1]} {args.name!r} is not protected: clients point "
            "at it, so a destroy or a replacement would take their sites offline. Create it with "
            "ResourceOptions(protect=True); to retire it on purpose, `pulumi state unprotect` first.",
            None,
        )


# ---------------------------------------------------------------------------------------------
# Rule 3: user data fits each provider's limit


def validate_user_data_size(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """First-boot user data stays under the provider's limit (as each provider counts it: Linode
    the base64 it receives, EC2 the bytes before its base64, DigitalOcean the text)."""
    for where, size, limit in user_data_sizes(args.resource_type, args.props):
        if size is None:
            report_violation(f"{where} is not valid base64, so the provider cannot decode it", None)
        elif size > limit:
            report_violation(
                f"{where} is {size} bytes; the provider accepts at most {limit} bytes. Move large "
                "files out of cloud-init (fetch them at boot) or trim the bootstrap.",
                None,
            )


def user_data_sizes(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, int | None, int]]:
    """(where, size in bytes as the provider counts it or None if undecodable, limit) for each
    user data field."""
    if resource_type == DROPLET:
        if props.get("userData") is not None:
            yield "userData", _size(props["userData"]), DIGITALOCEAN_USER_DATA_MAX
    elif resource_type == LINODE_INSTANCE:
        for i, metadata in enumerate(props.get("metadatas") or []):
            if metadata.get("userData") is not None:
                encoded = metadata["userData"]  # counted as received: the base64 text
                yield (
                    f"metadatas[{i}].userData",
                    _size(encoded) if _base64_size(encoded) is not None else None,
                    LINODE_USER_DATA_MAX,
                )
    elif resource_type == AWS_INSTANCE:
        if props.get("userData") is not None:
            yield "userData", _size(props["userData"]), AWS_USER_DATA_MAX
        if props.get("userDataBase64") is not None:
            yield "userDataBase64", _base64_size(props["userDataBase64"]), AWS_USER_DATA_MAX
    elif resource_type == AWS_LAUNCH_TEMPLATE and props.get("userData") is not None:
        # a launch template takes base64
        yield "userData", _base64_size(props["userData"]), AWS_USER_DATA_MAX


def _size(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _base64_size(encoded: Any) -> int | None:
    try:
        return len(base64.b64decode(str(encoded), validate=True))
    except (binascii.Error, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Rule 4: firewall rule counts fit the provider limits


def validate_firewall_rule_count(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """DigitalOcean: at most 50 rules per firewall (in + out). Linode: at most 25 rules in total,
    and at most 255 addresses in one rule. The API refuses more, midway through an update."""
    props = args.props
    if args.resource_type == DIGITALOCEAN_FIREWALL:
        count = len(props.get("inboundRules") or []) + len(props.get("outboundRules") or [])
        if count > DIGITALOCEAN_MAX_RULES:
            report_violation(
                f"{count} rules (inbound + outbound); DigitalOcean allows {DIGITALOCEAN_MAX_RULES} "
                "per firewall",
                None,
            )
    elif args.resource_type == LINODE_FIREWALL:
        inbounds = props.get("inbounds") or []
        count = len(inbounds) + len(props.get("outbounds") or [])
        if count > LINODE_MAX_RULES:
            report_violation(
                f"{count} rules; Linode allows {LINODE_MAX_RULES} in total (inbound + outbound)", None
            )
        for i, rule in enumerate(inbounds):
            addresses = len(rule.get("ipv4s") or []) + len(rule.get("ipv6s") or [])
            if addresses > LINODE_MAX_ADDRESSES_PER_RULE:
                report_violation(
                    f"inbounds[{i}] ({rule.get('label')}) has {addresses} addresses; Linode allows "
                    f"{LINODE_MAX_ADDRESSES_PER_RULE} per rule",
                    None,
                )


# ---------------------------------------------------------------------------------------------
# Rule 5: DNS-only TTLs


def validate_dns_ttl(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """DNS-only records have a TTL of 60..300 s (a failover must be seen within minutes); proxied
    records have none of their own (Cloudflare answers with its edge addresses, TTL automatic).

    Exempt: the client's apex record (a name listed in twinhost:domains). It points at the
    redirector's Elastic IP, which never changes, so a long TTL there is deliberate.
    """
    props = args.props
    if args.resource_type in (CLOUDFLARE_DNS_RECORD, CLOUDFLARE_RECORD, CLOUDFLARE_LOAD_BALANCER):
        ttl = props.get("ttl")
        if props.get("proxied"):
            if ttl not in (None, CLOUDFLARE_AUTOMATIC_TTL):
                report_violation(
                    f"proxied record {props.get('name')!r} has ttl {ttl}; proxied records take the "
                    "automatic TTL (ttl: 1 or unset)",
                    None,
                )
            return
        if args.resource_type == CLOUDFLARE_LOAD_BALANCER and ttl is None:
            return  # an unproxied load balancer answers with Cloudflare's own 30 s
        effective = DNS_ONLY_TTL_MAX if ttl in (None, CLOUDFLARE_AUTOMATIC_TTL) else ttl
        _check_ttl(props.get("name"), props.get("type"), effective, report_violation)
    elif args.resource_type == ROUTE53_RECORD:
        if props.get("aliases"):
            return  # alias records take the target's TTL
        _check_ttl(props.get("name"), props.get("type"), props.get("ttl"), report_violation)


def _check_ttl(name: Any, record_type: Any, ttl: Any, report_violation: ReportViolation) -> None:
    if (
        str(record_type or "").upper() in ("A", "AAAA")
        and _fqdn(str(name or "")) in stack_settings().apex_domains
    ):
        return
    try:
        value = int(ttl)
    except (TypeError, ValueError):
        report_violation(
            f"DNS-only record {name!r} has no TTL; set {DNS_ONLY_TTL_MIN}..{DNS_ONLY_TTL_MAX}", None
        )
        return
    if not DNS_ONLY_TTL_MIN <= value <= DNS_ONLY_TTL_MAX:
        report_violation(
            f"DNS-only record {name!r} has TTL {value}; allowed {DNS_ONLY_TTL_MIN}..{DNS_ONLY_TTL_MAX} "
            "s, so resolvers see a failover within minutes (twinhost:ttl)",
            None,
        )


def _fqdn(name: str) -> str:
    return name.strip().rstrip(".").lower()


# ---------------------------------------------------------------------------------------------
# Rule 6 (stack): Origin CA certificates only on proxied names


def validate_origin_ca_only_on_proxied_names(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    """Every hostname of a Cloudflare Origin CA certificate is a proxied name of this stack.

    Only Cloudflare's proxy trusts the Origin CA: a visitor reaching a DNS-only name that serves
    one gets a certificate error. A name is proxied when a proxied DnsRecord or load balancer of
    this stack has it.
    """
    proxied = {
        _fqdn(str(resource.props.get("name") or ""))
        for resource in args.resources
        if resource.resource_type in (CLOUDFLARE_DNS_RECORD, CLOUDFLARE_RECORD, CLOUDFLARE_LOAD_BALANCER)
        and resource.props.get("proxied")
    }
    for resource in args.resources:
        if resource.resource_type != ORIGIN_CA_CERTIFICATE:
            continue
        for hostname in resource.props.get("hostnames") or []:
            if _fqdn(str(hostname)) not in proxied:
                report_violation(
                    f"Origin CA certificate {resource.name!r} covers {hostname!r}, which no proxied "
                    "record of this stack serves: browsers do not trust the Origin CA, so that name "
                    "must be proxied (or use ACME certificates)",
                    resource.urn,
                )


# ---------------------------------------------------------------------------------------------
# Rule 7 (stack): both providers in every site


def validate_site_has_both_providers(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A site stack has a DigitalOcean droplet and a Linode instance: the whole point of a site is
    to survive the loss of one provider."""
    types = [resource.resource_type for resource in args.resources]
    is_site = stack_settings().role == "site" or any(t.startswith(f"{NAMESPACE}:site:") for t in types)
    if not is_site:
        return
    missing = [
        label
        for label, token in (("DigitalOcean droplet", DROPLET), ("Linode instance", LINODE_INSTANCE))
        if token not in types
    ]
    if missing:
        report_violation(
            f"this site stack has no {' and no '.join(missing)}: every site runs one node on each "
            "provider, so that losing a provider does not take the site down",
            None,
        )


__all__: Sequence[str] = (
    "stack_settings",
    "user_data_sizes",
    "validate_dns_ttl",
    "validate_firewall_rule_count",
    "validate_no_ssh_from_anywhere",
    "validate_origin_ca_only_on_proxied_names",
    "validate_protected",
    "validate_site_has_both_providers",
    "validate_ssh_override_in_use",
    "validate_user_data_size",
    "world_ssh_findings",
)
