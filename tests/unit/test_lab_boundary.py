"""The lab is its own package (`twinhost_lab`), beside the Pulumi program, not inside it.

`infra` reaches the lab only from the CLI's `lab` entry point (`twinhost lab ...`); the program
`pulumi up` runs never loads it; and the lab's settings reach the user data only as the render
step's argument (`infra.bootstrap.overrides.RenderOverrides`), never from the stack config.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from tests.conftest import REPO

LAB_PACKAGE = "twinhost_lab"
# A module name as code passes it to __import__/importlib: "twinhost_lab" or "twinhost_lab.cli".
_MODULE_NAME = re.compile(rf"^{LAB_PACKAGE}(\.\w+)*$")


def _infra_modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(REPO)), ast.parse(path.read_text(), str(path)))
        for path in sorted((REPO / "infra").rglob("*.py"))
    ]


def _imports_the_lab(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == LAB_PACKAGE for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == LAB_PACKAGE:
            return True
        # __import__("twinhost_lab.cli") / importlib.import_module(...): the name as a string.
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.match(node.value):
            return True
    return False


def test_nothing_in_infra_imports_the_lab_but_the_clis_lab_entry_point() -> None:
    importers = {path for path, tree in _infra_modules() if _imports_the_lab(tree)}
    assert importers == {"infra/cli.py"}


def test_the_pulumi_program_and_the_plan_load_without_the_lab() -> None:
    code = (
        "import sys, infra.stack, infra.site, infra.platform, infra.plan.runner; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {LAB_PACKAGE!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_code_in_infra_reads_lab_settings_from_the_stack_config() -> None:
    """The render overrides are an argument of the render step; nothing reads a config field for
    them (`config.lab_overrides` was one; the config model is not where the lab's values live)."""
    readers = sorted(
        f"{path}:{node.lineno}"
        for path, tree in _infra_modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "lab_overrides"
    )
    assert readers == []


def test_the_program_entry_point_passes_no_overrides() -> None:
    """`pulumi up` runs infra/__main__.py: `build_stack()` with no argument, so production user
    data is rendered with none of the lab's values."""
    tree = ast.parse((REPO / "infra" / "__main__.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "build_stack"
    ]
    assert len(calls) == 1 and not calls[0].args and not calls[0].keywords
