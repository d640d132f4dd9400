"""Monthly cost of a planned resource, from the price table in infra/data/prices.yaml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infra import catalog
from infra.plan.runner import RecordedResource, reveal


def monthly_cost(resource: RecordedResource) -> float:
    """USD a month for this resource at list price; 0 for free or unpriced resources."""
    pricer = _PRICERS.get(resource.type)
    return round(pricer(reveal(resource.inputs)), 2) if pricer else 0.0


def _droplet(inputs: dict[str, Any]) -> float:
    table = catalog.prices()["digitalocean"]
    base = float(table["droplet"].get(inputs.get("size"), 0.0))
    return base * (1 + table["backups_fraction"]) if inputs.get("backups") else base


def _linode(inputs: dict[str, Any]) -> float:
    table = catalog.prices()["linode"]
    base = float(table["instance"].get(inputs.get("type"), 0.0))
    return base + (
        float(table["backups"].get(inputs.get("type"), 0.0)) if inputs.get("backupsEnabled") else 0.0
    )


def _reserved_ip(inputs: dict[str, Any]) -> float:
    # Assigned to the site's droplet for its whole life; free while assigned.
    return float(catalog.prices()["digitalocean"]["reserved_ip_assigned"])


def _ec2_instance(inputs: dict[str, Any]) -> float:
    table = catalog.prices()["aws"]
    compute = catalog.hours_to_month(float(table["ec2_hourly"].get(inputs.get("instanceType"), 0.0)))
    volume = (inputs.get("rootBlockDevice") or {}).get("volumeSize", 8)
    return compute + float(volume) * float(table["ebs_gp3_gb_month"])


def _eip(inputs: dict[str, Any]) -> float:
    return catalog.hours_to_month(float(catalog.prices()["aws"]["public_ipv4_hourly"]))


def _health_check(inputs: dict[str, Any]) -> float:
    table = catalog.prices()["aws"]
    extra = float(table["route53_health_check_https_non_aws"]) if inputs.get("type") == "HTTPS" else 0.0
    return float(table["route53_health_check_non_aws"]) + extra


def _load_balancer(inputs: dict[str, Any]) -> float:
    return float(catalog.prices()["cloudflare"]["load_balancer_base"])


def _hosted_zone(inputs: dict[str, Any]) -> float:
    return float(catalog.prices()["aws"]["route53_hosted_zone"])


def _bucket(inputs: dict[str, Any]) -> float:
    # The backup bucket's storage is priced per site, at each site's backup user (below).
    if (inputs.get("tags") or {}).get("Name") == "twinhost-backups":
        return 0.0
    return _watcher_bucket(inputs)


def _backup_user(inputs: dict[str, Any]) -> float:
    """A site's share of the backup bucket: S3 Standard storage for the assumed repository size,
    and its daily run's requests (infra/data/prices.yaml; IAM itself is free)."""
    table = catalog.prices()["aws"]
    storage = float(table["backup_assumed_gb_per_site"]) * float(table["s3_standard_gb_month"])
    requests = (
        float(table["backup_puts_month"]) * float(table["s3_put_per_1000"]) / 1000
        + float(table["backup_gets_month"]) * float(table["s3_get_per_1000"]) / 1000
    )
    return storage + requests


def _watcher_bucket(inputs: dict[str, Any]) -> float:
    # Storage is a few hundred KB (well under a cent); the requests are the refresh timer's.
    table = catalog.prices()["aws"]
    return float(table["watcher_refresh_gets_month"]) * float(table["s3_get_per_1000"]) / 1000


_PRICERS: dict[str, Callable[[dict[str, Any]], float]] = {
    "digitalocean:index/droplet:Droplet": _droplet,
    "digitalocean:index/reservedIp:ReservedIp": _reserved_ip,
    "linode:index/instance:Instance": _linode,
    "aws:ec2/instance:Instance": _ec2_instance,
    "aws:ec2/eip:Eip": _eip,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/zone:Zone": _hosted_zone,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:iam/user:User": _backup_user,
    "cloudflare:index/loadBalancer:LoadBalancer": _load_balancer,
}
