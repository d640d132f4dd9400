"""`twinhost plan --lab PROFILE`: what the local lab adds to a plan, kept out of the stack config.

The profile (JSON, written by the lab, `twinhost_lab.lab.lab_profile`) has five parts:
- `addresses`: the lab addresses the plan's mocks hand out in place of the documentation ones;
- `overrides`: the render-time overrides (`infra.bootstrap.overrides.RenderOverrides`: apt
  proxy, CA, ACME directory, resolvers, AWS stand-in, swap, watcher backends), handed to the
  render step as an argument, never through the stack config;
- `adminCidrs`, `sshKeys`: the lab's admin network and throwaway key, added to the stack's own
  (so the lab's admin namespace can log in). They go through the stack's own config rules.
- `notifyWebhook`: the lab's webhook stand-in, set as the platform stack's secret
  `twinhost:notifyWebhook` (as `pulumi config set --secret` would): where a failed backup's
  alert goes (docs/backups.md) and the watcher's notices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from infra.bootstrap.overrides import RenderOverrides
from infra.config import NAMESPACE, ConfigError, ConfigIssue
from infra.config.fields import https_url

# Values never shown in an error message (the lab's are fixed and public, but a profile is a file
# anyone may write).
_HIDDEN = ("secretAccessKey",)


class LabProfileError(ConfigError):
    """Every problem in a lab profile (a ConfigError: `twinhost plan` exits 2 on it)."""

    def __init__(self, issues: list[ConfigIssue]):
        super().__init__(issues)
        lines = "\n".join(f"  - {issue}" for issue in issues)
        self.args = (f"invalid lab profile ({len(issues)} problem(s)):\n{lines}",)


class LabProfile(BaseModel):
    """The parsed profile; `LabProfile.parse` reports every problem, each under its key."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)

    addresses: dict[str, str] = Field(default_factory=dict)
    overrides: RenderOverrides = Field(default_factory=RenderOverrides)
    admin_cidrs: tuple[str, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    notify_webhook: str | None = None

    @field_validator("notify_webhook")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                https_url(value)
            except ValueError:
                raise ValueError("must be an https:// URL (the lab's webhook stand-in)") from None
        return value

    @classmethod
    def parse(cls, data: Any) -> LabProfile:
        """A profile from its JSON document; ConfigError names each bad key (`overrides.aptProxy`)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise LabProfileError([_issue(error) for error in exc.errors()]) from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def with_lab_admin(self, config: Mapping[str, str]) -> dict[str, str]:
        """A stack's config values with the lab's admin networks and keys added to its own.
        Everything else is the stack's config."""
        result = dict(config)
        for key, extra in (("adminCidrs", self.admin_cidrs), ("sshKeys", self.ssh_keys)):
            if extra:
                current = json.loads(result.get(f"{NAMESPACE}:{key}", "[]"))
                result[f"{NAMESPACE}:{key}"] = json.dumps([*current, *[e for e in extra if e not in current]])
        return result

    def with_lab_webhook(
        self, config: Mapping[str, str], secret_keys: list[str]
    ) -> tuple[dict[str, str], list[str]]:
        """A platform stack's config with the lab's `notifyWebhook` as its secret value (the
        stack file's own, a placeholder in a plan, is replaced); any other stack's unchanged."""
        result, secrets = dict(config), list(secret_keys)
        key = f"{NAMESPACE}:notifyWebhook"
        if self.notify_webhook is None or result.get(f"{NAMESPACE}:role") != "platform":
            return result, secrets
        result[key] = self.notify_webhook
        if key not in secrets:
            secrets.append(key)
        return result, secrets


def _issue(error: Any) -> ConfigIssue:
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else ("." if key else "") + str(part)
    kind = error["type"]
    message = (
        "is not a known key" if kind == "extra_forbidden" else str(error["msg"]).removeprefix("Value error, ")
    )
    value = None if kind in ("missing", "extra_forbidden") else error.get("input")
    return ConfigIssue(key or "(profile)", message, value, show_value=not key.endswith(_HIDDEN))
