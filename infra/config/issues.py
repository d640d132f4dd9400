"""What a config check reports: one `ConfigIssue` per problem, all of them in one `ConfigError`.

Every issue names the key path (`twinhost:failover.interval`), the bad value and what is allowed,
so an operator fixes the file once, not once per run (the cloud-init `cc_*` habit: collect every
problem, then fail once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NAMESPACE = "twinhost"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a stack config: where, what was found, and what is allowed."""

    key: str
    message: str
    value: Any = None
    show_value: bool = True

    def __str__(self) -> str:
        shown = f" (got {self.value!r})" if self.show_value and self.value is not None else ""
        return f"{self.key}: {self.message}{shown}"


class ConfigError(Exception):
    """Every problem found in a stack config, reported together."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"invalid twinhost config ({len(issues)} problem(s)):\n{lines}")


class StackFileError(ConfigError):
    """A stack file that cannot be read at all (not YAML, not a mapping): one line, no keys."""

    def __init__(self, file: str, what: str):
        self.file = file
        self.issues = [ConfigIssue(file, what)]
        Exception.__init__(self, f"{file} {what}")


def key_of(path: str | Sequence[Any]) -> str:
    """`twinhost:<path>`: a dotted path as is, or a loc sequence (ints become `[i]`)."""
    if isinstance(path, str):
        return f"{NAMESPACE}:{path}" if path else f"{NAMESPACE}:(stack)"
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return key_of(text)


def issue(
    path: str | Sequence[Any], message: str, value: Any = None, *, show_value: bool = True
) -> ConfigIssue:
    """A ConfigIssue keyed `twinhost:<path>`."""
    return ConfigIssue(key_of(path), message, value, show_value)
