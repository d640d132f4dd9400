"""Rules that relate fields: each a plain function from what parsed to a list of issues.

Every rule always runs (the cloud-init `cc_*` habit: collect every problem, then fail once), so
one run lists every problem, each under the key to change and with the bad value. A rule runs on
the fields that parsed: when one of the fields it `needs` failed its own check, that rule is
skipped (its problem is already reported), never the others.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra import witness
from infra.config.fields import DATABASE_ENV, ENV_NAME, RESERVED_ENV, WORDPRESS_ENV, decode
from infra.config.issues import ConfigIssue, issue
from infra.config.platform import PlatformConfig
from infra.config.site import certificate_source


@dataclass(frozen=True)
class Parsed:
    """What a rule sees: the fields that parsed (python names), the raw values (secrets
    included: a rule may test their presence or shape, never show them), and what the caller
    knows beyond this stack (the domains other stack files serve)."""

    values: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict)
    served_elsewhere: Mapping[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Rule:
    check: Callable[[Parsed], list[ConfigIssue]]
    needs: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.check.__name__


def run_rules(rules: Collection[Rule], parsed: Parsed, failed: Collection[str]) -> list[ConfigIssue]:
    """Every rule whose inputs parsed, in order; the issues of all of them."""
    found: list[ConfigIssue] = []
    for rule in rules:
        if not any(name in failed or name not in parsed.values for name in rule.needs):
            found.extend(rule.check(parsed))
    return found


# -- site ---------------------------------------------------------------------------------------


def domains_are_listed_once(c: Parsed) -> list[ConfigIssue]:
    first: dict[str, int] = {}
    found = []
    for index, domain in enumerate(c.domains):
        if domain.name in first:
            found.append(
                issue(
                    f"domains[{index}].name",
                    f"lists {domain.name} more than once (domains[{first[domain.name]}] is the same name "
                    "after IDNA); list each domain once",
                    domain.name,
                )
            )
        first.setdefault(domain.name, index)
    return found


def domains_are_served_by_one_stack(c: Parsed) -> list[ConfigIssue]:
    """Two stacks serving one apex would fight over its records and its certificates."""
    return [
        issue(
            f"domains[{index}].name",
            f"is already served by stack {c.served_elsewhere[domain.name]!r} "
            f"(Pulumi.{c.served_elsewhere[domain.name]}.yaml); a domain belongs to one site stack",
            domain.name,
        )
        for index, domain in enumerate(c.domains)
        if domain.name in c.served_elsewhere
    ]


def proxied_records_have_no_ttl(c: Parsed) -> list[ConfigIssue]:
    if c.proxied and c.ttl is not None:
        return [
            issue(
                "ttl",
                "proxied records have no TTL (Cloudflare answers with its own); remove "
                "'ttl' or set proxied: false",
                c.ttl,
            )
        ]
    return []


def proxied_domains_are_in_cloudflare(c: Parsed) -> list[ConfigIssue]:
    if not c.proxied:
        return []
    return [
        issue(
            f"domains[{index}].cloudflareZoneId",
            f"is required for {domain.name}: proxied needs every client domain in the agency's "
            "Cloudflare account; give cloudflareZoneId (or set proxied: false and use ACME)",
        )
        for index, domain in enumerate(c.domains)
        if domain.cloudflare_zone_id is None
    ]


def origin_certificates_need_the_proxy(c: Parsed) -> list[ConfigIssue]:
    if c.certificates == "cloudflare-origin" and not c.proxied:
        return [
            issue(
                "certificates",
                "'cloudflare-origin' certificates are trusted only by "
                "Cloudflare's proxy; use 'acme' for a DNS-only site, or set "
                "proxied: true",
                c.certificates,
            )
        ]
    return []


def acme_needs_a_contact(c: Parsed) -> list[ConfigIssue]:
    if certificate_source(c.certificates, c.proxied) == "acme" and c.acme_email is None:
        return [
            issue("acmeEmail", "is required: certificates 'acme' needs acmeEmail (the ACME account contact)")
        ]
    return []


def failover_mode_fits_the_site(c: Parsed) -> list[ConfigIssue]:
    mode = c.failover.mode
    found = []
    if mode == "cloudflare-lb" and not c.proxied:
        found.append(
            issue(
                "failover.mode",
                "'cloudflare-lb' needs proxied: true (a load balancer is a proxied hostname)",
                mode,
            )
        )
    if mode == "cloudflare-lb" and c.ops_dns != "cloudflare":
        found.append(issue("opsDns", "failover mode 'cloudflare-lb' needs opsDns: cloudflare", c.ops_dns))
    if mode == "route53" and c.ops_dns != "route53":
        found.append(
            issue(
                "opsDns",
                "failover mode 'route53' needs opsDns: route53 (the ops zone on Route 53)",
                c.ops_dns,
            )
        )
    return found


def proxied_needs_cloudflare_ops_dns(c: Parsed) -> list[ConfigIssue]:
    if c.proxied and c.ops_dns != "cloudflare":
        return [
            issue(
                "opsDns",
                "proxied needs opsDns: cloudflare (only Cloudflare records can be proxied)",
                c.ops_dns,
            )
        ]
    return []


def failover_keys_fit_the_mode(c: Parsed) -> list[ConfigIssue]:
    f = c.failover
    found = []
    if f.mode == "manual" and f.active is None:
        found.append(
            issue(
                "failover.active", "is required: mode 'manual' needs 'active': digitalocean, linode or both"
            )
        )
    if f.mode != "manual" and f.active is not None:
        found.append(
            issue(
                "failover.active",
                f"is only for mode 'manual'; in mode {f.mode!r} the health checks decide (remove 'active')",
                f.active,
            )
        )
    if f.mode == "route53" and f.interval not in (None, 10, 30):
        found.append(issue("failover.interval", "Route 53 health checks run every 10 or 30 s", f.interval))
    if f.mode == "cloudflare-lb":
        if f.account_id is None:
            found.append(
                issue(
                    "failover.accountId",
                    "is required: mode 'cloudflare-lb' needs 'accountId' (the Cloudflare account id)",
                )
            )
        if f.interval is not None and f.interval < 60:
            found.append(
                issue(
                    "failover.interval",
                    "Cloudflare Load Balancing checks every 60 s or more on the base plan",
                    f.interval,
                )
            )
    if f.mode in ("manual", "watchdog") and f.account_id is not None:
        found.append(
            issue(
                "failover.accountId",
                f"is only used by mode 'cloudflare-lb', not {f.mode!r}; remove it",
                f.account_id,
            )
        )
    return found


def app_env_is_usable(c: Parsed) -> list[ConfigIssue]:
    """app.env lands in a systemd EnvironmentFile (infra/bootstrap/app.py): names the shell can
    use, none the unit sets itself, values on one line."""
    found = []
    for name, value in c.app.env.items():
        if not ENV_NAME.match(name):
            found.append(
                issue(
                    f"app.env.{name}",
                    "is not an environment variable name; use A-Z, 0-9 and _, not starting with a digit",
                    name,
                )
            )
        elif name in RESERVED_ENV:
            found.append(
                issue(
                    f"app.env.{name}",
                    "is set by twinhost itself for the app's unit; "
                    f"choose another name (reserved: {', '.join(RESERVED_ENV)})",
                    name,
                )
            )
        if any(ch in value for ch in "\n\r\0"):
            found.append(
                issue(f"app.env.{name}", "holds a line break or NUL; an environment value is one line", value)
            )
    secrets = _app_secret_names(c.raw)
    for name in sorted(set(c.app.env) & set(secrets or ())):
        found.append(issue(f"app.env.{name}", "is also set in appSecrets; set it in one place", name))
    return found


def app_secrets_are_env_names(c: Parsed) -> list[ConfigIssue]:
    """appSecrets must be a JSON object of ENV_NAME: string; its values are never shown."""
    value = c.raw.get("appSecrets")
    if value in (None, "", "[secret]") or (isinstance(value, Mapping) and set(value) == {"secure"}):
        return []  # unset, or the offline plan (which cannot decrypt)
    decoded = decode(value)
    if not isinstance(decoded, dict):
        return [
            issue(
                "appSecrets",
                "must be a JSON object of NAME: value pairs (value not shown: it is a secret)",
                show_value=False,
            )
        ]
    found = []
    bad = [name for name in decoded if not ENV_NAME.match(str(name))]
    if bad:
        found.append(
            issue(
                "appSecrets",
                f"has names that are not environment variable names: {bad}; use A-Z, 0-9 and _",
                show_value=False,
            )
        )
    reserved = sorted(set(decoded) & set(RESERVED_ENV))
    if reserved:
        found.append(
            issue(
                "appSecrets",
                f"sets {reserved}, which twinhost sets itself for the app's unit; choose other names",
                show_value=False,
            )
        )
    if any(any(ch in str(v) for ch in "\n\r\0") for v in decoded.values()):
        found.append(
            issue(
                "appSecrets",
                "has a value with a line break or NUL (value not shown: it "
                "is a secret); an environment value is one line",
                show_value=False,
            )
        )
    return found


def database_env_names_are_free(c: Parsed) -> list[ConfigIssue]:
    """With a database, twinhost gives the app its connection settings (DATABASE_ENV, written by
    infra/bootstrap/database.py); the app's own settings or secrets may not set them too."""
    if c.database == "none":
        return []
    found = []
    if c.app.kind == "container":
        # The container's 127.0.0.1 is its own, and the database listens on the node's only.
        found.append(
            issue(
                "database",
                f"{c.database!r} is not available to app kind 'container' yet (the database listens "
                "on the node's 127.0.0.1, which a container does not reach); use app kind demo, deb, "
                "command or wordpress, or database: none",
                c.database,
            )
        )
    found += [
        issue(
            f"app.env.{name}",
            f"is set by twinhost for database {c.database!r} (the app's connection settings: "
            f"{', '.join(DATABASE_ENV)}); choose another name or remove it",
            name,
        )
        for name in sorted(set(c.app.env) & set(DATABASE_ENV))
    ]
    taken = sorted(set(_app_secret_names(c.raw) or ()) & set(DATABASE_ENV))
    if taken:
        found.append(
            issue(
                "appSecrets",
                f"sets {taken}, which twinhost sets for database {c.database!r}; choose other names",
                show_value=False,
            )
        )
    return found


def wordpress_needs_the_database(c: Parsed) -> list[ConfigIssue]:
    """App kind `wordpress` keeps its posts in MySQL: the site's Galera (`database: mariadb`)
    is where they survive a node. Its keys and salts (WORDPRESS_ENV) are generated by the stack,
    so the app's own settings or secrets may not set them."""
    if c.app.kind != "wordpress":
        return []
    found = []
    if c.database != "mariadb":
        found.append(
            issue(
                "database",
                f"{c.database!r} leaves app kind 'wordpress' without its database (WordPress keeps "
                "posts, users and settings in MySQL, on the site's Galera); set database: mariadb",
                c.database,
            )
        )
    found += [
        issue(
            f"app.env.{name}",
            "is one of WordPress's keys and salts, which twinhost generates as Pulumi secrets; remove it",
            name,
        )
        for name in sorted(set(c.app.env) & set(WORDPRESS_ENV))
    ]
    taken = sorted(set(_app_secret_names(c.raw) or ()) & set(WORDPRESS_ENV))
    if taken:
        found.append(
            issue(
                "appSecrets",
                f"sets {taken}, WordPress's keys and salts, which twinhost generates; remove them",
                show_value=False,
            )
        )
    return found


def backups_keep_something(c: Parsed) -> list[ConfigIssue]:
    """An enabled backup keeps at least one snapshot: with every `keep*` at 0, restic's `forget`
    has no policy to apply, and pruning would either refuse or keep nothing worth the name."""
    b = c.backups
    if not b.enabled or b.keep_daily + b.keep_weekly + b.keep_monthly > 0:
        return []
    return [
        issue(
            "backups",
            "keeps no snapshot (keepDaily, keepWeekly and keepMonthly are all 0); keep at least one "
            "(the defaults: 7 daily, 4 weekly, 6 monthly), or set enabled: false",
            {"keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0},
        )
    ]


def _app_secret_names(raw: Mapping[str, Any]) -> list[str] | None:
    decoded = decode(raw.get("appSecrets"))
    return [str(name) for name in decoded] if isinstance(decoded, dict) else None


SITE_RULES: tuple[Rule, ...] = (
    Rule(domains_are_listed_once, ("domains",)),
    Rule(domains_are_served_by_one_stack, ("domains",)),
    Rule(proxied_records_have_no_ttl, ("proxied", "ttl")),
    Rule(proxied_domains_are_in_cloudflare, ("proxied", "domains")),
    Rule(origin_certificates_need_the_proxy, ("certificates", "proxied")),
    Rule(acme_needs_a_contact, ("certificates", "proxied", "acme_email")),
    Rule(failover_mode_fits_the_site, ("failover", "proxied", "ops_dns")),
    Rule(proxied_needs_cloudflare_ops_dns, ("proxied", "ops_dns")),
    Rule(failover_keys_fit_the_mode, ("failover",)),
    Rule(app_env_is_usable, ("app",)),
    Rule(app_secrets_are_env_names, ()),
    Rule(database_env_names_are_free, ("database", "app")),
    Rule(wordpress_needs_the_database, ("database", "app")),
    Rule(backups_keep_something, ("backups",)),
)


def ops_dns_matches_the_platform(ops_dns: str, platform_provider: str | None) -> list[ConfigIssue]:
    """A rule across two stacks: the site's opsDns is where the platform keeps its ops zone
    (`platform_provider`, the platform's `opsDnsProvider` output; None when not known yet).
    infra/site.py checks it again at `pulumi up`, through the StackReference."""
    if platform_provider is None or ops_dns == platform_provider:
        return []
    return [
        issue(
            "opsDns",
            f"does not match the platform stack, whose ops zone is on "
            f"{platform_provider!r}; set it to {platform_provider!r}",
            ops_dns,
        )
    ]


# -- platform -----------------------------------------------------------------------------------


def ops_zone_id_for_the_provider(c: Parsed) -> list[ConfigIssue]:
    if c.dns_provider == "cloudflare" and c.cloudflare_zone_id is None:
        return [
            issue(
                "cloudflareZoneId",
                "is required: dnsProvider 'cloudflare' needs cloudflareZoneId (the ops zone's id)",
            )
        ]
    if c.dns_provider == "route53" and c.route53_zone_id is None:
        return [
            issue(
                "route53ZoneId",
                "is required: dnsProvider 'route53' needs route53ZoneId (the ops zone's hosted zone id)",
            )
        ]
    return []


def sites_are_listed_once(c: Parsed) -> list[ConfigIssue]:
    first: dict[str, int] = {}
    found = []
    for index, name in enumerate(c.sites):
        full = PlatformConfig.site_stack_name(name, "o", "p")
        if full in first:
            found.append(
                issue(
                    f"sites[{index}]",
                    f"names the same stack as sites[{first[full]}]; list each site once",
                    name,
                )
            )
        first.setdefault(full, index)
    return found


def sites_have_distinct_mesh_networks(c: Parsed) -> list[ConfigIssue]:
    """The witness joins every listed site's mesh /24 (infra/witness.py): two site names whose
    14-bit choice collides would be a routing conflict there. A `sites` entry's site is its stack
    name (the convention `twinhost new-site` follows; infra/platform.py checks the sites' own
    `site` outputs again at `pulumi up`)."""
    names = [str(name).rsplit("/", 1)[-1] for name in c.sites]
    found = []
    for a, b in witness.mesh_collisions(names):
        found.append(issue(f"sites[{names.index(b)}]", witness.collision_message(a, b), b))
    return found


def watcher_has_a_dns_token(c: Parsed) -> list[ConfigIssue]:
    """A watcher without a token could never move a record (infra/platform.py checks it again at
    `pulumi up`, where only the secret mark is known)."""
    if c.sites and c.dns_provider == "cloudflare" and c.raw.get("watcherDnsToken") in (None, ""):
        return [
            issue(
                "watcherDnsToken",
                "is required when sites are listed and the ops zone is on Cloudflare: a "
                "Cloudflare API token with DNS edit on the ops zone only; set it with "
                "`pulumi config set --secret twinhost:watcherDnsToken <token>`",
            )
        ]
    return []


PLATFORM_RULES: tuple[Rule, ...] = (
    Rule(ops_zone_id_for_the_provider, ("dns_provider", "cloudflare_zone_id", "route53_zone_id")),
    Rule(sites_are_listed_once, ("sites",)),
    Rule(sites_have_distinct_mesh_networks, ("sites",)),
    Rule(watcher_has_a_dns_token, ("sites", "dns_provider")),
)

RULES: Mapping[str, tuple[Rule, ...]] = {"site": SITE_RULES, "platform": PLATFORM_RULES}
