"""The model of the `platform` stack: the redirector, its Elastic IP, the failover watcher."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from infra import catalog
from infra.config.fields import (
    DEFAULT_RESOLVERS,
    AdminAccess,
    CloudflareZoneId,
    Email,
    HttpsUrl,
    ResolverAddress,
    Route53ZoneId,
    SiteStack,
    StrictModel,
    ZoneName,
    one_of,
)
from infra.constants import LETS_ENCRYPT_DIRECTORY

_AWS = catalog.providers()["aws"]


class AwsRedirector(StrictModel):
    """The redirector: its EC2 instance, and where its apex registry check and ACME point."""

    region: Annotated[str, AfterValidator(one_of(_AWS["regions"], "AWS region"))] = "eu-west-1"
    instance_type: Annotated[
        str, AfterValidator(one_of(list(_AWS["instance_types"]), "EC2 instance type"))
    ] = "t4g.nano"
    volume_gib: int = Field(8, ge=8, le=64)
    # The resolvers the redirector asks whether a name is a registered client apex (a TXT record
    # in the ops zone). Public resolvers by default.
    resolvers: list[ResolverAddress] = Field(
        default_factory=lambda: list(DEFAULT_RESOLVERS), min_length=1, max_length=4
    )
    # Where the redirector's certificates come from (ACME, HTTP-01). Let's Encrypt by default.
    acme_directory: HttpsUrl = LETS_ENCRYPT_DIRECTORY

    @property
    def architecture(self) -> str:
        return str(catalog.providers()["aws"]["instance_types"][self.instance_type])


class Watcher(StrictModel):
    """The failover watcher on the redirector (watchdog-mode sites)."""

    interval: int = Field(5, ge=2, le=300)
    failures: int = Field(3, ge=1, le=10)
    recoveries: int = Field(2, ge=1, le=10)


class PlatformConfig(AdminAccess):
    """The agency's shared platform: redirector, Elastic IP, failover watcher, ops zone records."""

    role: Literal["platform"]
    ops_zone: ZoneName
    dns_provider: Literal["cloudflare", "route53"] = "cloudflare"
    cloudflare_zone_id: CloudflareZoneId | None = None
    route53_zone_id: Route53ZoneId | None = None
    acme_email: Email
    aws: AwsRedirector = Field(default_factory=lambda: AwsRedirector())
    watcher: Watcher = Field(default_factory=lambda: Watcher())
    # The site stacks this platform reads (StackReference) to generate the watcher's config.
    # Only the watchdog-mode ones are watched; the others are read and skipped.
    sites: list[SiteStack] = Field(default_factory=list, max_length=200)

    @staticmethod
    def site_stack_name(name: str, organization: str, project: str) -> str:
        """The fully qualified stack a `sites` entry names: a bare name is read in this stack's
        own organization and project (the convention `twinhost new-site` follows)."""
        return name if "/" in name else f"{organization}/{project}/{name}"
