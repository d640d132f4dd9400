"""User data as data: each concern is a `Part`; `merge` turns parts into one #cloud-config.

A part is what one concern needs on first boot: packages, files, commands, and any other
top-level cloud-config keys (users, apt...). Parts never see each other; `merge` concatenates
lists in part order, refuses two parts writing the same file or setting the same scalar key
differently, and `dump` serialises with PyYAML (no string-glued YAML anywhere).

A hardening function from another module (e.g. `infra.bootstrap`) plugs in either as a `Part`
or as a cloud-config fragment dict through `Part.from_cloud_config`.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

# cloud-config keys whose values are lists that several parts may extend.
_LIST_KEYS = ("packages", "write_files", "runcmd", "users", "bootcmd")
HEADER = "#cloud-config\n"


@dataclass(frozen=True)
class WriteFile:
    """One file for cloud-config's `write_files`."""

    path: str
    content: str
    permissions: str = "0644"
    owner: str = "root:root"
    # Deferred files are written after packages are installed (cloud-init's final stage): for
    # files owned by a user that a package creates.
    defer: bool = False
    # Shipped gzipped + base64 (cloud-init's `gz+b64`): for large files such as scripts, about a
    # third of the bytes. The readable copy is the one in the repo.
    compress: bool = False

    def as_cloud_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "content": self.content}
        if self.compress:
            packed = gzip.compress(self.content.encode(), compresslevel=9, mtime=0)  # reproducible
            entry["content"] = base64.b64encode(packed).decode("ascii")
            entry["encoding"] = "gz+b64"
        # cloud-init's defaults (0644, root:root) are left out: every byte counts on EC2.
        if self.permissions != "0644":
            entry["permissions"] = self.permissions
        if self.owner != "root:root":
            entry["owner"] = self.owner
        if self.defer:
            entry["defer"] = True
        return entry


@dataclass(frozen=True)
class Part:
    """What one concern adds to the user data."""

    name: str
    packages: tuple[str, ...] = ()
    files: tuple[WriteFile, ...] = ()
    commands: tuple[str | tuple[str, ...], ...] = ()  # runcmd entries, in order
    other: Mapping[str, Any] = field(default_factory=dict)  # any other top-level keys

    @classmethod
    def from_cloud_config(cls, name: str, fragment: Mapping[str, Any]) -> Part:
        """Wrap a cloud-config fragment (e.g. another module's hardening output) as a Part."""
        rest = dict(fragment)
        files = tuple(
            WriteFile(
                path=f["path"], content=f.get("content", ""),
                permissions=str(f.get("permissions", "0644")), owner=f.get("owner", "root:root"),
                defer=bool(f.get("defer", False)),
            )
            for f in rest.pop("write_files", [])
        )
        packages = tuple(rest.pop("packages", []))
        commands = tuple(c if isinstance(c, str) else tuple(c) for c in rest.pop("runcmd", []))
        return cls(name, packages, files, commands, rest)


class MergeError(ValueError):
    pass


def merge(parts: Iterable[Part]) -> dict[str, Any]:
    """One cloud-config document from `parts`, in order. Raises MergeError on a conflict."""
    document: dict[str, Any] = {}
    owners: dict[str, str] = {}  # key or file path -> the part that set it
    lists: dict[str, list[Any]] = {key: [] for key in _LIST_KEYS}
    problems: list[str] = []
    for part in parts:
        for package in part.packages:
            if package not in lists["packages"]:
                lists["packages"].append(package)
        for file in part.files:
            if file.path in owners:
                problems.append(f"{file.path} is written by both {owners[file.path]} and {part.name}")
                continue
            owners[file.path] = part.name
            lists["write_files"].append(file.as_cloud_config())
        lists["runcmd"].extend(list(c) if isinstance(c, tuple) else c for c in part.commands)
        for key, value in part.other.items():
            if key in _LIST_KEYS:
                lists[key].extend(value)
            elif isinstance(value, Mapping) and isinstance(document.get(key), Mapping):
                clash = sorted(k for k in value if k in document[key] and document[key][k] != value[k])
                if clash:
                    problems.append(f"{key}.{clash} set differently by {owners[key]} and {part.name}")
                document[key] = {**document[key], **value}
            elif key in document and document[key] != value:
                problems.append(f"{key} set differently by {owners[key]} and {part.name}")
            else:
                document[key] = value
                owners.setdefault(key, part.name)
    if problems:
        raise MergeError("user data parts conflict: " + "; ".join(problems))
    for key in _LIST_KEYS:
        if lists[key]:
            document[key] = lists[key]
    return document


class _BlockStyleDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks: the files stay readable in build/ and on the node."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockStyleDumper.add_representer(str, _str_representer)


def dump(document: Mapping[str, Any]) -> str:
    """The #cloud-config text of `document`."""
    return HEADER + yaml.dump(
        # Flow style for leaf lists (`[systemctl, daemon-reload]`): EC2's 16 KB limit is tight.
        dict(document), Dumper=_BlockStyleDumper, sort_keys=False, default_flow_style=None,
        width=1000, allow_unicode=False,
    )
