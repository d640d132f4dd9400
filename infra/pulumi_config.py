"""Reading a whole config namespace from the Pulumi runtime.

`pulumi.Config` reads one key at a time; to refuse misspelled keys, twinhost needs every key of
its namespace, which the runtime holds in its config map (set by the engine, or by
`set_all_config` under mocks) and in PULUMI_CONFIG.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pulumi.runtime import config as runtime_config

from infra.config.files import read_stack_document

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"


@functools.cache
def declared_defaults() -> dict[str, Any]:
    """{key: default} of every key Pulumi.yaml declares (Pulumi applies them to every stack)."""
    project = read_stack_document(PROJECT_FILE)  # not YAML: one-line StackFileError, no traceback
    return {
        key: spec.get("default")
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict)
    }


def read_namespace(namespace: str) -> tuple[dict[str, Any], set[str]]:
    """({key: value}, {secret keys}) for every `<namespace>:<key>` of the running stack,
    namespace stripped. Secret values are returned so they can be validated; callers must
    never print them (ConfigIssue hides values of secret keys)."""
    prefix = namespace + ":"
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for full_key in merged:
        if full_key.startswith(prefix):
            key = full_key[len(prefix) :]
            values[key] = runtime_config.get_config(full_key)
            if runtime_config.is_config_secret(full_key):
                secret_keys.add(key)
    return values, secret_keys
