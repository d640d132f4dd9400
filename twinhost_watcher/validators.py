"""DNS names and DNS provider ids: one rule each, for the watcher's config and the stack config.

The platform stack writes the watcher's config from its own config and the site stacks' outputs,
so both must accept exactly the same names and zone ids: a value the stack accepts but the node
refuses fails `pulumi up` late (or, worse, the node), and one the node would take but the stack
refuses blocks a valid setup. So the rules live here, in the watcher (which must not import
`infra`), and the stack config (infra/) imports them.

Each validator takes a str and returns it (normalised where said) or raises ValueError with a
message that says what is allowed; pydantic's `AfterValidator` takes them as they are.
"""

from __future__ import annotations

import re

# RFC 1035 host-name labels, lower case (what DNS APIs return and what we compare against).
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# RFC 1035 section 2.3.4: a name is at most 255 octets on the wire, 253 characters as text.
MAX_DNS_NAME = 253
# Cloudflare zone and account ids: 32 lowercase hex characters (a UUID without its dashes).
CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
# Route 53 hosted zone ids: the API documents only "at most 32 characters" (CreateHostedZone's
# HostedZone.Id, and the Id parameter of every call taking one). Ids issued by AWS start with Z
# by custom, not by contract, and emulators do not follow the custom: moto (the lab's Route 53,
# the failover drill's) hands out ids such as K8VANQW3JPQB3EGL5NCSYQ. Requiring a leading Z
# would refuse those and gains nothing (a wrong id that starts with Z passes all the same: only
# the API can say whether a zone exists). So: upper-case letters and digits, 1 to 32 of them, as
# every id seen so far. The "/hostedzone/" prefix of the API's Id fields is not part of the id.
ROUTE53_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}$")


def dns_label(value: str) -> str:
    """One DNS label: a site name, a node name, a user name."""
    if not DNS_LABEL.match(value):
        raise ValueError("must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'")
    return value


def dns_name(value: str) -> str:
    """A fully qualified DNS name of at least two labels, returned lower case without the
    trailing dot. ASCII only: internationalised names are given in their xn-- form."""
    name = value.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(labels) < 2 or any(not DNS_LABEL.match(label) for label in labels) or len(name) > MAX_DNS_NAME:
        raise ValueError("must be a fully qualified DNS name such as site.ops.example.net")
    return name


def cloudflare_zone_id(value: str) -> str:
    """A Cloudflare zone id (the zone's Overview page, "Zone ID")."""
    if not CLOUDFLARE_ID.match(value):
        raise ValueError("must be a Cloudflare zone id: 32 lowercase hex characters")
    return value


def cloudflare_account_id(value: str) -> str:
    """A Cloudflare account id (the dashboard URL after dash.cloudflare.com/)."""
    if not CLOUDFLARE_ID.match(value):
        raise ValueError("must be a Cloudflare account id: 32 lowercase hex characters")
    return value


def route53_zone_id(value: str) -> str:
    """A Route 53 hosted zone id, without the "/hostedzone/" prefix (see ROUTE53_ZONE_ID)."""
    if not ROUTE53_ZONE_ID.match(value):
        raise ValueError(
            "must be a hosted zone id such as Z0123456789ABCDEFGHIJ "
            "(upper-case letters and digits, at most 32)"
        )
    return value
