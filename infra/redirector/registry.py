"""The apex registry: how a client apex becomes known to the redirector, with no step on it.

A site stack's `pulumi up` creates, in the ops zone, one TXT record per client apex:

    <apex>._apex.<ops zone>.  TXT  "twinhost site=<site>"

The redirector's ask service (`twinhost-apex-ask`) looks that record up before Caddy requests a
certificate for a name or answers a redirect for it; a name without it gets neither. These
helpers are the one definition of the record's name and content: the site side (which writes
it) and the redirector (which reads it) both use them.
"""

from __future__ import annotations

import re

# A leading underscore keeps the registry out of the hostname namespace (RFC 8552 style): no
# site's failover name `<site>.<ops zone>` can collide with it, and no client can be served there.
REGISTRY_LABEL = "_apex"
CONTENT_PREFIX = "twinhost site="
# What the redirector accepts as content; mirrors cloudinit/redirector/opt/twinhost-watcher/lib/twinhost-apex-ask.
CONTENT_PATTERN = re.compile(r"^twinhost site=[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def registry_suffix(ops_zone: str) -> str:
    """`_apex.<ops zone>`: the name under which every client apex is registered."""
    return f"{REGISTRY_LABEL}.{ops_zone.strip('.').lower()}"


def apex_record_name(apex: str, ops_zone: str) -> str:
    """The TXT record that registers `apex` (an ASCII apex such as example.com)."""
    return f"{apex.strip('.').lower()}.{registry_suffix(ops_zone)}"


def apex_record_content(site: str) -> str:
    """The TXT content a site stack writes: which site owns the apex (for operators reading the
    zone; the redirector only checks the form)."""
    content = f"{CONTENT_PREFIX}{site}"
    if not CONTENT_PATTERN.match(content):
        raise ValueError(f"site {site!r} is not a DNS label, so it cannot name an apex record")
    return content
