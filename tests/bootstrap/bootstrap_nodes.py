"""Rendered files of a node, and chroot copies of Debian's tools to check them with."""

from __future__ import annotations

import socket
from pathlib import Path

from infra.bootstrap.parts import File
from infra.bootstrap.render import node_parts
from infra.bootstrap.spec import NodeSpec
from tests.bootstrap.bootstrap_debroot import scratch_copy, tool_root, write_fresh


def rendered_files(spec: NodeSpec) -> dict[str, File]:
    return {f.path: f for f in node_parts(spec).files}


def install(root: Path, files: dict[str, File], paths: list[str] | None = None) -> None:
    """Write rendered files at their target paths inside a scratch root."""
    for path, item in files.items():
        if paths is None or path in paths:
            target = root / path.lstrip("/")
            if item.append and target.exists():
                write_fresh(target, target.read_text() + item.content, item.mode)
            else:
                write_fresh(target, item.content, item.mode)


def scratch_root(debian: int, into: Path) -> Path:
    return scratch_copy(tool_root(debian), into)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# getfattr/setfattr (Debian's `attr`, a glusterfs-common dependency on the nodes) in the forms
# the volume script uses, for a runner without them: `getfattr --absolute-names -n NAME -e hex
# PATH` and `setfattr -n NAME -v VALUE PATH` (VALUE 0x<hex> or text).
_GETFATTR = """#!/usr/bin/python3
import os, sys
a = sys.argv
name, path = a[a.index("-n") + 1], a[-1]
try:
    print(f"# file: {path}\\n{name}=0x{os.getxattr(path, name).hex()}")
except OSError as exc:
    sys.exit(f"{path}: {name}: {exc.strerror}")
"""
_SETFATTR = """#!/usr/bin/python3
import os, sys
a = sys.argv
name, value, path = a[a.index("-n") + 1], a[a.index("-v") + 1], a[-1]
os.setxattr(path, name, bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode())
"""


def fake_attr_tools(bin_dir: Path) -> None:
    for name, text in (("getfattr", _GETFATTR), ("setfattr", _SETFATTR)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
