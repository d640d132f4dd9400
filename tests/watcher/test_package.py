"""The watcher is a package of its own: it runs on the redirector, where `infra` (the Pulumi
program, its provider SDKs) is not installed. tests/watcher/test_install.py also runs the
unpacked source archive with an `infra` that fails on import."""

from __future__ import annotations

import ast
from pathlib import Path

import twinhost_watcher

PACKAGE = Path(twinhost_watcher.__file__).resolve().parent


def imported_modules(path: Path, top: Path = PACKAGE.parent) -> list[tuple[int, str]]:
    """(line, module) of every import in the file at `path` (a module under the directory
    `top`), at any depth: TYPE_CHECKING blocks and function-local imports too; relative imports
    resolved against the file's package."""
    package = ".".join(path.relative_to(top).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            found.append((node.lineno, ".".join(p for p in (base, node.module or "") if p)))
    return sorted(found)


def test_the_watcher_imports_nothing_from_infra() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) >= 10, modules  # the walk really sees the package
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in modules
        for line, module in imported_modules(path)
        if module == "infra" or module.startswith("infra.")
    ]
    assert offending == []


def test_the_import_walk_finds_plain_from_nested_and_relative_imports(tmp_path) -> None:
    """The rule above is only as good as its walk."""
    probe = tmp_path / "twinhost_watcher" / "backends" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "import infra\nfrom infra.config import X\ndef f():\n    from infra import catalog\n"
        "from . import route53\nfrom ..config import Site\n"
    )
    assert imported_modules(probe, tmp_path) == [
        (1, "infra"),
        (2, "infra.config"),
        (4, "infra"),
        (5, "twinhost_watcher.backends"),
        (6, "twinhost_watcher.config"),
    ]
    # And in the real package: a module-level import and the function-local ones.
    found = [module for _, module in imported_modules(PACKAGE / "backends" / "__init__.py")]
    assert "twinhost_watcher.config" in found and "twinhost_watcher.backends.route53" in found
