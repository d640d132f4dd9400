"""Render-time overrides: the few user-data values the local lab changes, as an argument.

The stack config is what an operator writes and `pulumi up` deploys; nothing in it can name
another apt proxy, CA or ACME directory. These values reach the renderers only as an argument of
the render step: `infra.stack.build_stack(overrides)` hands them to the components that render
user data (`SitePair`, the platform's redirector and its watcher). `pulumi up` never passes any
(`infra/__main__.py` calls `build_stack()`); `twinhost plan --lab` does, from the lab's profile
(`infra.plan.lab_profile`), and the lab (`twinhost_lab`) builds that profile.

Why each exists: the lab boots the plan's user data in containers on a private bridge, which
reach Debian's mirror only through a host proxy, get certificates from a lab ACME server with
its own CA, resolve through the lab's DNS, read S3/SSM from a stand-in, share the host's kernel
(no swapon), and whose failover drill moves the record on DNS backends the platform does not use.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from infra.config.fields import https_url, resolver_address

WatcherBackend = Literal["cloudflare", "route53", "rfc2136"]


def _matching(pattern: str, allowed: str) -> AfterValidator:
    """A validator that says what is allowed rather than quoting its regular expression."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"must be {allowed}")
        return value

    return AfterValidator(check)


HttpUrl = Annotated[
    str, _matching(r"http://[A-Za-z0-9.-]+(:\d{1,5})?/?", "an http:// URL: host and port only")
]


class _Frozen(BaseModel):
    # extra="forbid": a misspelled key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class AwsStandIn(_Frozen):
    """An S3/SSM (and Route 53) stand-in such as the lab's moto (`twinhost_lab/aws.py`): where it
    listens and the fixed credentials it is reached with, in place of the instance role. Never a
    real AWS account's keys: nothing real is behind the endpoint."""

    endpoint_url: HttpUrl
    access_key_id: Annotated[str, _matching(r"[A-Z0-9]{16,128}", "16-128 of A-Z and 0-9")]
    secret_access_key: Annotated[
        str, _matching(r"[A-Za-z0-9/+=]{16,128}", "16-128 of A-Z, a-z, 0-9, /, + and ="), Field(repr=False)
    ]


class RenderOverrides(_Frozen):
    """What differs in the user data when it is rendered for the lab. Every field's default is
    production's: `RenderOverrides()` renders exactly what `pulumi up` renders."""

    # apt fetches through this HTTP proxy (the lab's caching proxy to Debian's mirror).
    apt_proxy: HttpUrl | None = None
    # A CA certificate the nodes trust besides the system's (the lab ACME server's CA).
    ca_pem: Annotated[str, _matching(r"-----BEGIN CERTIFICATE-----[\s\S]*", "a PEM certificate")] | None = (
        None
    )
    # The ACME directory certificates come from, in place of Let's Encrypt's (site nodes) or the
    # platform's `aws.acmeDirectory` (the redirector).
    acme_directory: Annotated[str, AfterValidator(https_url)] | None = None
    # The redirector's resolvers, in place of the platform's `aws.resolvers`. Empty: those.
    resolvers: tuple[Annotated[str, AfterValidator(resolver_address)], ...] = ()
    # The redirector's watcher refresh reads S3 and SSM here, with these credentials.
    aws: AwsStandIn | None = None
    # False: no swap file. A container shares the host's kernel and may not swapon (cloud-init 25
    # reports that as an error, 22.4 as a warning).
    swap: bool = True
    # DNS backends the redirector's watcher installs besides the platform's own dnsProvider: the
    # lab's failover drill switches the watcher to a lab Knot server (rfc2136) and to moto's
    # Route 53, so their libraries must be in the watcher's venv.
    watcher_backends: tuple[WatcherBackend, ...] = ()
