"""The policy objects the pack serves, one per rule in `rules.py`.

Every policy is mandatory (a violation stops `pulumi preview`/`pulumi up`), except the notice
that the SSH override is in use, which is advisory: it prints on every preview without blocking,
so the override stays loud for as long as it is set.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

from twinhost_policy import rules

PACK_NAME = "twinhost"

POLICIES: list[Policy] = [
    ResourceValidationPolicy(
        name="no-ssh-from-anywhere",
        description="No firewall or security group opens SSH (22) to 0.0.0.0/0 or ::/0.",
        validate=rules.validate_no_ssh_from_anywhere,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.CRITICAL,
        remediation_steps="List the admin networks in twinhost:adminCidrs. Only if you truly mean "
        "it: twinhost:dangerouslyAllowSshFromAnywhere: true in the stack file.",
    ),
    ResourceValidationPolicy(
        name="ssh-from-anywhere-override-in-use",
        description="Reports every SSH rule open to the world that the stack's override allows.",
        validate=rules.validate_ssh_override_in_use,
        enforcement_level=EnforcementLevel.ADVISORY,
        severity=Severity.HIGH,
    ),
    ResourceValidationPolicy(
        name="addresses-and-records-protected",
        description="Elastic IPs, reserved IPs, DNS records and load balancers are protected.",
        validate=rules.validate_protected,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
        remediation_steps="Create the resource with ResourceOptions(protect=True).",
    ),
    ResourceValidationPolicy(
        name="user-data-under-provider-limit",
        description="User data fits the provider's limit: DigitalOcean 64 KiB, Linode 65,535 "
        "bytes of the base64 it receives, AWS 16 KiB.",
        validate=rules.validate_user_data_size,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
    ),
    ResourceValidationPolicy(
        name="firewall-rules-under-provider-limit",
        description="DigitalOcean firewalls have at most 50 rules (in + out); Linode firewalls at "
        "most 25 rules and 255 addresses per rule.",
        validate=rules.validate_firewall_rule_count,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.MEDIUM,
    ),
    ResourceValidationPolicy(
        name="dns-only-ttl-60-to-300",
        description="DNS-only records have a TTL of 60..300 s (client apex records excepted); "
        "proxied records use the automatic TTL.",
        validate=rules.validate_dns_ttl,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.MEDIUM,
        remediation_steps="Set twinhost:ttl within 60..300 (or leave it unset: 60).",
    ),
    StackValidationPolicy(
        name="origin-ca-only-on-proxied-names",
        description="Cloudflare Origin CA certificates cover only names this stack proxies.",
        validate=rules.validate_origin_ca_only_on_proxied_names,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.HIGH,
    ),
    StackValidationPolicy(
        name="site-on-both-providers",
        description="Every site stack has a DigitalOcean droplet and a Linode instance.",
        validate=rules.validate_site_has_both_providers,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=Severity.CRITICAL,
    ),
]
