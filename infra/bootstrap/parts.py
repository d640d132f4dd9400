"""The one user-data engine: the pieces every concern returns, merged into one `#cloud-config`.

Each concern (the hardening every machine gets; tinc, GlusterFS, the app, the web front on site
nodes; Caddy, the apex check and the watcher on the redirector) is a pure function of plain
values returning a `Parts`: files to write, packages, commands for first boot, and the few
cloud-config keys that only cloud-init's own modules can do well (users, swap, CA certificates).
`merge` concatenates them in the order given and refuses two parts writing one file or setting
one key; `cloud_config` refuses a key cloud-init would silently ignore; `dump_cloud_config` dumps
the result with yaml; nothing is string-glued. `compact` strips comment lines for hosts with a
tight limit (the redirector: EC2's 16 KiB), `File(compress=True)` ships one file as cloud-init's
`gz+b64`, and `pack` is the one rule choosing which files do (above `PACK_ABOVE` bytes);
`readable` turns a packed document back into one a reviewer can read.

Files come from the repository's `cloudinit/` tree through one loader (`static`, `template`),
named by the machine that gets them and their target path: `common/etc/issue`,
`site/etc/nginx/twinhost/proxy.conf`, `redirector/etc/caddy/redirector.Caddyfile.j2`.

Ordering on a node (Debian's cloud.cfg): `bootcmd` and `write_files` run early in the init stage
(before users, before packages); packages are installed in the final stage; then `runcmd` runs,
in list order. Files owned by a user that a package creates must be `deferred` (written after the
packages).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import gzip
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

# Files that land on a node live in the repository's `cloudinit/` tree, one folder per machine
# (`common/`: every machine, `site/`: site nodes, `redirector/`: the redirector), each mirroring
# the target paths. It is data, not a Python package (cloud-init's own package is `cloudinit`).
MACHINES = ("common", "site", "redirector")
CLOUDINIT_DIR = Path(__file__).resolve().parents[2] / "cloudinit"

Command = str | tuple[str, ...]
"""A runcmd/bootcmd entry: an argv tuple (run without a shell) or a shell string."""


# The mode of every script a renderer ships (root's to change, anyone's to run).
SCRIPT_MODE = 0o755


@dataclass(frozen=True)
class File:
    """One file for cloud-init's `write_files`."""

    path: str
    content: str
    mode: int = 0o644
    owner: str = "root:root"
    # Written after packages are installed (needed when `owner` is created by a package).
    deferred: bool = False
    # Appended to an existing file instead of replacing it (e.g. /etc/fstab).
    append: bool = False
    # True for files holding private keys or secrets: tests check where these end up.
    secret: bool = False
    # Shipped gzipped + base64 (cloud-init's `gz+b64` encoding): a large file in a user data
    # that is not gzipped as a whole. The readable copy is the one in the repository.
    compress: bool = False

    def as_cloud_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "content": self.content}
        if self.compress:
            packed = gzip.compress(self.content.encode(), compresslevel=9, mtime=0)  # reproducible
            entry["content"] = base64.b64encode(packed).decode("ascii")
            entry["encoding"] = "gz+b64"
        entry["permissions"] = f"0{self.mode:o}"
        entry["owner"] = self.owner
        if self.deferred:
            entry["defer"] = True
        if self.append:
            entry["append"] = True
        return entry


@dataclass(frozen=True)
class Parts:
    """What one concern contributes to a node's first boot."""

    files: tuple[File, ...] = ()
    packages: tuple[str, ...] = ()
    bootcmd: tuple[Command, ...] = ()
    runcmd: tuple[Command, ...] = ()
    # Top-level cloud-config keys handled by cloud-init modules (users, swap, ca_certs, ...).
    # Two parts may not set the same key: merging refuses instead of silently overwriting.
    config: Mapping[str, Any] = field(default_factory=dict)
    # Names the concern in merge errors ("/etc/x is written by both hardening and caddy").
    name: str = ""


class MergeError(ValueError):
    pass


# Every top-level key twinhost may emit. cloud-init 22.4 (Debian 12) silently ignores a key it
# does not know (a typo would just do nothing), so `cloud_config` refuses anything else; the tests
# check that both Debian releases' schemas know each of these.
ALLOWED_KEYS = frozenset(
    {
        "hostname",
        "fqdn",
        "manage_etc_hosts",
        "locale",
        "package_update",
        "package_upgrade",
        "apt",
        "package_reboot_if_required",
        "users",
        "disable_root",
        "ssh_pwauth",
        "ssh_deletekeys",
        "ssh_genkeytypes",
        "swap",
        "ca_certs",
        "bootcmd",
        "write_files",
        "packages",
        "runcmd",
    }
)

# Cloud-config keys whose lists are concatenated across parts (each part adds its own users).
LIST_KEYS = frozenset({"users"})


def merge(parts: Iterable[Parts]) -> Parts:
    """Concatenate parts in order; packages are de-duplicated keeping the first position.

    Refuses two files with the same path (unless the later one appends) and two parts setting
    the same cloud-config key; every conflict is reported, naming both parts.
    """
    files: list[File] = []
    packages: list[str] = []
    bootcmd: list[Command] = []
    runcmd: list[Command] = []
    config: dict[str, Any] = {}
    problems: list[str] = []
    writers: dict[str, str] = {}  # file path -> the part that wrote it first
    setters: dict[str, str] = {}  # cloud-config key -> the part that set it first
    for number, part in enumerate(parts, start=1):
        label = part.name or f"part {number}"
        for item in part.files:
            if item.path in writers and not item.append:
                problems.append(f"{item.path} is written by both {writers[item.path]} and {label}")
            writers.setdefault(item.path, label)
            files.append(item)
        packages.extend(p for p in part.packages if p not in packages)
        bootcmd.extend(part.bootcmd)
        runcmd.extend(part.runcmd)
        for key, value in part.config.items():
            if key in LIST_KEYS and isinstance(value, list):
                config[key] = [*config.get(key, []), *value]
                continue
            if key in config:
                problems.append(f"the cloud-config key {key!r} is set by both {setters[key]} and {label}")
            setters.setdefault(key, label)
            config[key] = value
    if problems:
        raise MergeError("; ".join(problems))
    return Parts(tuple(files), tuple(packages), tuple(bootcmd), tuple(runcmd), config)


def cloud_config(parts: Parts, base: Mapping[str, Any]) -> dict[str, Any]:
    """The cloud-config mapping: `base` keys first, then the merged parts."""
    doc: dict[str, Any] = dict(base)
    for key, value in parts.config.items():
        if key in doc:
            raise MergeError(f"the cloud-config key {key!r} is set twice")
        doc[key] = value
    if parts.bootcmd:
        doc["bootcmd"] = [_command(c) for c in parts.bootcmd]
    if parts.files:
        doc["write_files"] = [f.as_cloud_config() for f in parts.files]
    if parts.packages:
        doc["packages"] = list(parts.packages)
    if parts.runcmd:
        doc["runcmd"] = [_command(c) for c in parts.runcmd]
    unknown = sorted(set(doc) - ALLOWED_KEYS)
    if unknown:
        raise MergeError(f"unknown cloud-config keys {unknown}; allowed: {sorted(ALLOWED_KEYS)}")
    return doc


class FlowList(list[str]):
    """A short list of words, dumped on one line: `[systemctl, enable, --now, nginx.service]`."""


def _command(command: Command) -> str | list[str]:
    if isinstance(command, str):
        return command
    if all("\n" not in word for word in command):
        return FlowList(command)
    return list(command)


class _Dumper(yaml.CSafeDumper):
    """Block scalars for multi-line strings, so files stay readable in the user data.

    libyaml's emitter (PyYAML's C extension, in every PyYAML wheel): the same YAML as the
    pure-Python `SafeDumper`, about 10x faster, which was half of each extra site's plan time."""


def _str_representer(dumper: yaml.CSafeDumper, value: str) -> yaml.Node:
    # A block scalar cannot carry trailing spaces on a line or tabs cleanly; fall back then.
    if "\n" in value and not any(line != line.rstrip(" ") for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _flow_representer(dumper: yaml.CSafeDumper, value: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(value), flow_style=True)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(FlowList, _flow_representer)


def dump_cloud_config(doc: Mapping[str, Any]) -> str:
    """`#cloud-config` + YAML, keys in insertion order, long lines not folded."""
    body = yaml.dump(
        dict(doc), Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True, default_flow_style=False
    )
    return "#cloud-config\n" + body


# ---------------------------------------------------------------------------------------------
# Files from the cloudinit/ tree: one loader, paths as `<machine>/<target path>`


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(CLOUDINIT_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def _checked(source: str) -> str:
    machine = source.split("/", 1)[0]
    if machine not in MACHINES:
        raise ValueError(
            f"cloudinit/{source}: the path starts with the machine folder, one of "
            f"{', '.join(MACHINES)} (e.g. common/etc/issue)"
        )
    return source


def template(source: str, /, **values: Any) -> str:
    """Render `cloudinit/<source>` (a Jinja2 template, `.j2`) with `values`.

    `source` starts with the machine folder: `template("site/etc/tinc/NET/tinc-up.j2", ...)`."""
    return _environment().get_template(_checked(source)).render(**values)


def static(source: str) -> str:
    """The text of `cloudinit/<source>`, as it lands on the node.

    `source` starts with the machine folder: `static("common/etc/issue")`."""
    return (CLOUDINIT_DIR / _checked(source)).read_text(encoding="utf-8")


# Comment-looking lines that are directives: apt's "#clear", sudoers' "#include", shebangs.
_KEEP_PREFIXES = ("#!", "#clear", "#include", "@include")


def strip_comments(text: str) -> str:
    """`text` without its comment-only and blank lines: the one comment stripper.

    The comments say why each directive is there; they stay in the repository, where changes
    are reviewed. Lines that only look like comments are kept (`_KEEP_PREFIXES`), and so is a
    comment after a directive on its line. Of an executable script (a `#!` first line) only the
    comment block right after the `#!` line goes: nothing can be quoted before the first
    command, while further down a "comment" line may sit inside a string literal or a
    here-document, where it is content, so the rest ships whole."""
    lines = text.splitlines()
    if text.startswith("#!"):
        body = 1
        while body < len(lines) and _is_comment_or_blank(lines[body]):
            body += 1
        return "\n".join([lines[0], *lines[body:]]) + "\n"
    kept = [line for line in lines if not _is_comment_or_blank(line)]
    return "\n".join(kept) + "\n"


def _is_comment_or_blank(line: str) -> bool:
    bare = line.strip()
    return not bare or (bare.startswith(("#", "//")) and not bare.startswith(_KEEP_PREFIXES))


def compact(parts: Parts) -> Parts:
    """The same parts with every file's comment-only and blank lines removed (`strip_comments`).

    For hosts whose user data limit is tight (AWS: 16 KiB); on the host the files behave the
    same."""
    return dataclasses.replace(
        parts, files=tuple(dataclasses.replace(f, content=strip_comments(f.content)) for f in parts.files)
    )


# ---------------------------------------------------------------------------------------------
# Packing: large files as gz+b64, so a user data that is not gzipped as a whole fits its budget

# Files above this many bytes ship gzipped + base64 (`gz+b64`). Below it the base64 and gzip
# headers eat most of the gain, and small files (keys, one-line settings) stay greppable.
PACK_ABOVE = 512


def pack(parts: Parts) -> Parts:
    """The same parts with every file above `PACK_ABOVE` bytes marked `compress` (the one rule).

    Scripts and templates shrink to about half (gzip ~35-55 %, then base64 x 4/3); cloud-init
    writes the same bytes on the host. Not for a user data that is gzipped as a whole (the
    redirector's, the Linode's): gzip over base64 gains little."""
    return dataclasses.replace(
        parts,
        files=tuple(
            dataclasses.replace(f, compress=True) if len(f.content.encode()) > PACK_ABOVE else f
            for f in parts.files
        ),
    )


def decoded_files(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A parsed cloud-config's `write_files` with every `gz+b64`/`b64` content decoded to its text
    (the entries that were encoded keep it in `shipped_as`). For checks that read file contents
    (secrets, golden files) and for `readable`."""
    entries = []
    for entry in document.get("write_files") or []:
        entry = dict(entry)
        encoding = entry.pop("encoding", None)
        if encoding in ("gz+b64", "gzip+base64", "gz+base64"):
            entry["content"] = gzip.decompress(base64.b64decode(entry["content"])).decode()
        elif encoding in ("b64", "base64"):
            entry["content"] = base64.b64decode(entry["content"]).decode()
        if encoding:
            entry["shipped_as"] = encoding
        entries.append(entry)
    return entries


def readable(user_data: str) -> str:
    """`user_data` with packed files shown decoded, for reading and reviewing (build/ and the golden
    files): each such entry says `shipped_as: gz+b64` instead of carrying `encoding`. Not for
    cloud-init (it would write the same files, from a larger document)."""
    document = yaml.safe_load(user_data)
    if not isinstance(document, dict) or not any("encoding" in e for e in document.get("write_files") or []):
        return user_data  # nothing packed: the document is its own readable copy
    document["write_files"] = decoded_files(document)
    for key in ("bootcmd", "runcmd"):  # dumped as `dump_cloud_config` dumped them
        if key in document:
            document[key] = [_command(tuple(c)) if isinstance(c, list) else c for c in document[key]]
    return dump_cloud_config(document).replace(
        "#cloud-config\n",
        "#cloud-config\n# readable copy: files shipped gz+b64 are shown decoded "
        "(shipped_as); cloud-init gets the packed document\n",
        1,
    )
