"""Reading a stack's `twinhost:` namespace into a validated model, reporting every problem.

Two passes, so that no problem hides another: each top-level key is validated on its own (a bad
`site` does not stop `failover` from being read), then every rule of `rules.py` runs on the
fields that parsed. Only when both passes found nothing is the model built.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from infra.config.fields import ANYWHERE_OVERRIDE, SECRET_KEYS, StrictModel, decode
from infra.config.issues import NAMESPACE, ConfigError, ConfigIssue, issue, key_of
from infra.config.platform import PlatformConfig
from infra.config.rules import RULES, Parsed, run_rules
from infra.config.site import APP_KINDS, SiteConfig

MODELS: Mapping[str, type[SiteConfig] | type[PlatformConfig]] = {
    "site": SiteConfig,
    "platform": PlatformConfig,
}
# Keys that only tools set, never a stack file, and who sets them.
TOOL_ONLY_KEYS = {
    "labOverrides": "is set by `twinhost lab` only (it hands the lab's settings to the plan "
    "directly), never in a stack file; remove it",
}


def parse_config(
    raw: Mapping[str, Any],
    secret_keys: Collection[str] = (),
    declared_defaults: Mapping[str, Any] | None = None,
    served_elsewhere: Mapping[str, str] | None = None,
) -> SiteConfig | PlatformConfig:
    """Validate the `twinhost:` namespace of a stack (keys without the namespace prefix).

    Values may be strings holding JSON (that is how Pulumi hands objects to a program); they are
    decoded first. Raises ConfigError with every problem found; the values of `secret_keys` are
    never shown in a message. A value equal to its `declared_defaults` entry (Pulumi.yaml's
    "not set" default, which Pulumi hands to every stack) counts as not set.
    `served_elsewhere` maps each apex domain other stack files serve to that stack's name.
    """
    defaults = declared_defaults or {}
    data: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECRET_KEYS:
            continue  # secrets are read by the stack as Outputs, never validated by value here
        decoded = decode(value)
        if key in defaults and decoded == defaults[key]:
            continue
        data[key] = decoded

    role = data.get("role")
    if not isinstance(role, str) or role not in MODELS:
        raise ConfigError([issue("role", "is required and must be 'site' or 'platform'", role)])
    model = MODELS[role]
    context = {ANYWHERE_OVERRIDE: data.get(ANYWHERE_OVERRIDE) is True}
    issues, values, failed = parse_fields(model, data, context)
    parsed = Parsed(values, raw, served_elsewhere or {})
    issues.extend(run_rules(RULES[role], parsed, failed))
    if not issues:
        try:
            return model.model_validate(data, context=context)
        except ValidationError as exc:  # a field check the first pass missed: still an issue list
            issues = issues_from(exc, model)
    raise ConfigError(_hide_secrets(issues, secret_keys))


def parse_fields(
    model: type[BaseModel],
    data: Mapping[str, Any],
    context: Mapping[str, Any],
) -> tuple[list[ConfigIssue], dict[str, Any], set[str]]:
    """(issues, {field: value} of the fields that parsed, names of the fields that did not)."""
    issues: list[ConfigIssue] = []
    values: dict[str, Any] = {}
    failed: set[str] = set()
    known: set[str] = set()
    for name, info in model.model_fields.items():
        alias = info.alias or name
        known.update((alias, name))
        key = alias if alias in data else name if name in data else None
        if key is None:
            if info.is_required():
                issues.append(issue(alias, "is required"))
                failed.add(name)
            else:
                values[name] = info.get_default(call_default_factory=True)
            continue
        try:
            checked = _field_model(model, name).model_validate({alias: data[key]}, context=dict(context))
        except ValidationError as exc:
            issues.extend(issues_from(exc, model))
            failed.add(name)
        else:
            values[name] = getattr(checked, name)
    for key in data:
        if key in TOOL_ONLY_KEYS:
            issues.append(issue(key, TOOL_ONLY_KEYS[key]))
        elif key not in known:
            issues.append(issue(key, "is not a known key" + allowed_keys_hint([key], model)))
    return issues, values, failed


@functools.cache
def _field_model(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A model of one field of `model` (same type, constraints, alias): validates it alone."""
    info = model.model_fields[name]
    field_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{model.__name__}_{name}", __base__=StrictModel, **{name: (info.annotation, info)}
    )
    return field_model


def issues_from(exc: ValidationError, model: type[BaseModel]) -> list[ConfigIssue]:
    """One ConfigIssue per pydantic error, keyed by the path in the stack file."""
    issues = []
    for error in exc.errors():
        loc = list(error["loc"])
        # A discriminated union puts the tag in the path (app.container.image): drop it.
        if len(loc) > 1 and loc[0] == "app" and loc[1] in APP_KINDS:
            del loc[1]
        key = key_of(loc)
        kind = error["type"]
        value = error.get("input")
        if kind == "missing":
            message, value = "is required", None
        elif kind == "extra_forbidden":
            message = "is not a known key" + allowed_keys_hint(loc, model)
            value = None
        elif kind in ("value_error", "assertion_error"):
            message = str(error["msg"]).removeprefix("Value error, ")
            if not loc or isinstance(value, Mapping):
                value = None
        elif kind == "literal_error" or str(error["msg"]).startswith("Input should be "):
            message = "must be " + str(error["msg"]).removeprefix("Input should be ")
        elif kind == "union_tag_invalid":
            message = "must be one of " + str(error["msg"]).split("expected tags: ")[-1]
            value = value.get("kind") if isinstance(value, Mapping) else value
            key = f"{key}.kind"
        else:
            message = str(error["msg"])
        issues.append(ConfigIssue(key, message, value))
    return issues


def allowed_keys_hint(loc: Sequence[Any], model: type[BaseModel] | None) -> str:
    """`; allowed: a, b, c`: the keys of the object `loc` is in (empty when not a plain model)."""
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            break
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        annotation = getattr(field, "annotation", None) if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return ""
    names = sorted(f.alias or n for n, f in model.model_fields.items())
    return "; allowed: " + ", ".join(names)


def _hide_secrets(issues: list[ConfigIssue], secret_keys: Collection[str]) -> list[ConfigIssue]:
    hidden = {f"{NAMESPACE}:{key}" for key in secret_keys}
    return [
        ConfigIssue(i.key, i.message, i.value, show_value=False)
        if any(i.key == h or i.key.startswith((h + ".", h + "[")) for h in hidden)
        else i
        for i in issues
    ]


def flatten_stack_file_config(config_section: Mapping[str, Any]) -> dict[str, Any]:
    """The `twinhost:` keys of a stack file's `config:` section, without the namespace."""
    prefix = NAMESPACE + ":"
    return {key[len(prefix) :]: value for key, value in config_section.items() if key.startswith(prefix)}
