"""Stack files (`Pulumi.<stack>.yaml`) as the plan and `new-site` read them: refused in one clear
line when they are not YAML, their config as Pulumi hands it to a program (`read_stack_file`,
with Pulumi.yaml's declared defaults), and the facts that span files (which stack serves which
domain, whether a referenced platform stack has a file). The one module that reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.config.fields import apex_domain
from infra.config.issues import NAMESPACE, ConfigIssue, StackFileError, issue

# What a `secure:` value reads as: the offline plan never decrypts a secret.
SECRET_PLACEHOLDER = "[secret]"


def stack_name_of(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def read_stack_document(path: Path) -> dict[str, Any]:
    """The YAML document of a stack file; StackFileError (one line: file, line, what) when it is
    not YAML or not a mapping with a `config:` mapping."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.load(handle, Loader=yaml.CSafeLoader)  # libyaml: a plan reads many
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise StackFileError(path.name, f"is not valid YAML ({where}{exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise StackFileError(path.name, f"is not valid YAML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise StackFileError(path.name, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise StackFileError(
            path.name, f"must be a YAML mapping with a 'config:' key, not a {type(document).__name__}"
        )
    section = document.get("config")
    if section is not None and not isinstance(section, Mapping):
        raise StackFileError(
            path.name, f"its 'config:' must be a mapping of keys, not a {type(section).__name__}"
        )
    return dict(document)


def config_section(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file (StackFileError when unreadable)."""
    return dict(read_stack_document(path).get("config") or {})


def read_stack_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """A stack file's config as Pulumi hands it to a program: every value a string (objects and
    lists as JSON), `secure:` values replaced by a placeholder and listed as secret keys, and
    Pulumi.yaml's declared defaults applied under the stack's values."""
    section: Mapping[str, Any] = config_section(path)  # StackFileError: one line, not a traceback
    defaults = project_defaults(path.parent / "Pulumi.yaml")
    config: dict[str, str] = {f"{NAMESPACE}:{k}": _as_config_string(v) for k, v in defaults.items()}
    secret_keys: list[str] = []
    for key, value in section.items():
        full_key = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            config[full_key] = SECRET_PLACEHOLDER
            secret_keys.append(full_key)
        else:
            config[full_key] = _as_config_string(value)
    return config, secret_keys


def project_defaults(project_file: Path) -> dict[str, Any]:
    """The `default:` of every config key Pulumi.yaml declares ({} when there is no file)."""
    if not project_file.exists():
        return {}
    project = read_stack_document(project_file)  # not YAML: one-line StackFileError
    return {
        k: spec["default"]
        for k, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }


def _as_config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def served_domains(project_dir: Path, exclude: Path | None = None) -> dict[str, str]:
    """{ASCII apex: stack name} of every site stack file in `project_dir` but `exclude`.

    A file that cannot be read, or a domain that is not valid, is left out here: its own plan
    reports it."""
    served: dict[str, str] = {}
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            section = config_section(path)
        except StackFileError:
            continue
        if section.get(f"{NAMESPACE}:role") != "site":
            continue
        domains = section.get(f"{NAMESPACE}:domains")
        for entry in domains if isinstance(domains, list) else []:
            name = entry.get("name") if isinstance(entry, Mapping) else entry
            try:
                served.setdefault(apex_domain(str(name)), stack_name_of(path))
            except ValueError:
                continue
    return served


def platform_stack_file_issue(project_dir: Path, platform_stack: str) -> ConfigIssue | None:
    """An issue on `platformStack` when the stack it names has no stack file in the project (the
    plan and `new-site` read the platform from its file)."""
    name = platform_stack.rsplit("/", 1)[-1]
    if (project_dir / f"Pulumi.{name}.yaml").exists():
        return None
    return issue(
        "platformStack",
        f"names the platform stack {name!r}, but there is no "
        f"Pulumi.{name}.yaml in {project_dir}; add the platform's stack "
        "file or correct the name",
        platform_stack,
    )
