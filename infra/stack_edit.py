"""Editing a stack file in place: change one value, keep every other byte.

Stack files are written by people: comments, key order, quoting, list indentation and long lines
(SSH keys, 100+ characters) are theirs. ruamel.yaml's round trip keeps comments, order and quotes;
this module adds what its defaults would still change: the file's own list indentation (guessed
from the text) and an unlimited line width, so no SSH key is folded onto two lines.

Used by `twinhost failover` (failover.active) and by `new-site`/`destroy-site` (the platform's
`sites` list).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from infra.config.files import read_stack_document


class EditedStackFile:
    """A stack file loaded for a round trip: change `document`, then `text()` or `write()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The same reading rules as every other command: a file that is not YAML (or not a
        # mapping with a `config:` mapping) is a StackFileError, one line, before any edit.
        read_stack_document(path)
        text = path.read_text(encoding="utf-8")
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
        self._yaml = YAML()
        self._yaml.preserve_quotes = True
        # Never fold a long scalar: an SSH key must stay one line, as its author wrote it.
        self._yaml.width = sys.maxsize
        indent = indent or 2
        block_seq_indent = block_seq_indent or 0
        self._yaml.indent(mapping=2, sequence=max(indent, block_seq_indent + 2), offset=block_seq_indent)
        self.document: Any = self._yaml.load(text)
        if self.document is None:
            self.document = self._yaml.load("config: {}\n")

    @property
    def config(self) -> Any:
        """The `config:` mapping (created when missing)."""
        if self.document.get("config") is None:
            self.document["config"] = {}
        return self.document["config"]

    def text(self) -> str:
        buffer = io.StringIO()
        self._yaml.dump(self.document, buffer)
        return buffer.getvalue()

    def write(self) -> None:
        self.path.write_text(self.text(), encoding="utf-8")


def plain(value: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for validation."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
