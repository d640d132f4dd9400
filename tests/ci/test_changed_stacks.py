"""The CI matrix: which stacks a change touches (.github/scripts/changed_stacks.py)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location(
    "changed_stacks", PROJECT_DIR / ".github" / "scripts" / "changed_stacks.py"
)
assert _SPEC and _SPEC.loader
changed_stacks = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(changed_stacks)

ROLES = {"prod": "platform", "harbourlaw": "site", "acme": "site"}


@pytest.mark.parametrize(
    "files, expected",
    [
        (["Pulumi.acme.yaml"], ["acme"]),
        (["Pulumi.acme.yaml", "README.md"], ["acme"]),
        (["docs/workflow.md", "tests/unit/test_x.py"], []),
        (["infra/components/site_pair.py"], ["acme", "harbourlaw", "prod"]),
        # The platform uploads the watcher's source: a change to it is a change to the program.
        (["twinhost_watcher/engine.py"], ["acme", "harbourlaw", "prod"]),
        (
            ["cloudinit/common/etc/ssh/sshd_config.d/01-twinhost-hardening.conf.j2"],
            ["acme", "harbourlaw", "prod"],
        ),
        (["policy/twinhost_policy/rules.py"], ["acme", "harbourlaw", "prod"]),
        (["requirements.lock"], ["acme", "harbourlaw", "prod"]),
        (["Pulumi.yaml"], ["acme", "harbourlaw", "prod"]),
        (["infra/plan/report.py", "infra/scaffold.py", "infra/cli.py"], []),
        (["Pulumi.gone.yaml"], []),  # a deleted stack file: destroying a stack is done by hand
    ],
)
def test_a_change_touches_its_own_stack_file_or_every_stack_when_program_code_changed(
    files, expected
) -> None:
    assert changed_stacks.touched_stacks(files, ROLES) == expected


def test_unknown_changes_touch_every_stack() -> None:
    assert changed_stacks.touched_stacks(None, ROLES) == ["acme", "harbourlaw", "prod"]


def test_platform_stacks_come_first_and_are_listed_apart() -> None:
    result = changed_stacks.outputs(["acme", "harbourlaw", "prod"], ROLES)
    assert json.loads(result["stacks"]) == ["prod", "acme", "harbourlaw"]
    assert json.loads(result["platform_stacks"]) == ["prod"]
    assert json.loads(result["site_stacks"]) == ["acme", "harbourlaw"]
    assert result["any_platform"] == result["any_site"] == result["any"] == "true"
    none = changed_stacks.outputs([], ROLES)
    assert none["any"] == "false" and json.loads(none["stacks"]) == []


def test_roles_are_read_from_the_shipped_stack_files() -> None:
    roles = changed_stacks.stack_roles(PROJECT_DIR)
    assert roles["prod"] == "platform" and roles["harbourlaw"] == "site"


def test_git_diff_of_a_real_repository_finds_the_changed_stack(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    git("config", "user.email", "ci@example.invalid")
    git("config", "user.name", "ci")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  twinhost:role: platform\n")
    (tmp_path / "Pulumi.acme.yaml").write_text("config:\n  twinhost:role: site\n")
    git("add", ".")
    git("commit", "-qm", "base")
    base = git("rev-parse", "HEAD")
    (tmp_path / "Pulumi.acme.yaml").write_text("config:\n  twinhost:role: site\n  twinhost:ttl: 120\n")
    git("commit", "-qam", "change acme")
    output = tmp_path / "github_output"
    assert (
        changed_stacks.main(
            ["--base", base, "--head", "HEAD", "--project-dir", str(tmp_path), "--github-output", str(output)]
        )
        == 0
    )
    assert 'stacks=["acme"]\n' in output.read_text()
    # A new branch (all-zero base) previews everything.
    assert changed_stacks.changed_files(tmp_path, "0" * 40, "HEAD") is None
