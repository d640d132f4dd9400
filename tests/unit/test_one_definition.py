"""A value the code relies on in two places has one definition, imported where it is used: the
apex registry's label (written by site stacks, read by the redirector) and the file mode of the
scripts the renderers ship. A second copy could drift from the first without any test noticing
(the record's name under the mocks: tests/unit/test_site_rules.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from infra.bootstrap import parts

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(INFRA)): ast.parse(p.read_text()) for p in sorted(INFRA.rglob("*.py"))}


def _code_constants(module: ast.Module) -> list[ast.Constant]:
    """The module's constants, docstrings left out (they may name a value to explain it)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(module)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [n for n in ast.walk(module) if isinstance(n, ast.Constant) and id(n) not in docstrings]


def _defines(module: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        for node in module.body
    )


def test_the_script_mode_is_defined_once_and_no_renderer_spells_it_out() -> None:
    modules = _modules()
    assert [path for path, module in modules.items() if _defines(module, "SCRIPT_MODE")] == [
        "bootstrap/parts.py"
    ]
    spelled = [
        f"{path}:{node.lineno}"
        for path, module in modules.items()
        if path != "bootstrap/parts.py"
        for node in _code_constants(module)
        if type(node.value) is int and node.value == 0o755
    ]
    assert spelled == []
    assert getattr(parts, "SCRIPT_MODE", None) == 0o755


def test_the_apex_registry_label_is_spelled_only_in_the_registry() -> None:
    spelled = [
        f"{path}:{node.lineno}"
        for path, module in _modules().items()
        if path != "redirector/registry.py"
        for node in _code_constants(module)
        if isinstance(node.value, str) and "_apex" in node.value
    ]
    assert spelled == []
