"""The GitHub Actions workflows pass actionlint (with shellcheck on every `run:` script), and keep
the rules the team relies on: per-stack concurrency (a preview never cancels an `up`), least privilege, pinned actions, the policy
pack on every preview and update."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
ACTIONLINT = BIN / "actionlint"
SHELLCHECK = BIN / "shellcheck"


def actionlint(paths: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is installed from requirements.lock (make test)"
    command = [str(ACTIONLINT), "-no-color", "-shellcheck", str(SHELLCHECK), "-pyflakes=", *map(str, paths)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = actionlint(WORKFLOWS, PROJECT_DIR)
    assert result.returncode == 0, f"actionlint findings:\n{result.stdout}{result.stderr}"


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """Proves the check above can fail: a misspelled permission and a shell bug are both found."""
    broken = (
        WORKFLOWS[0]
        .read_text()
        .replace("pull-requests: write", "pull-request: write", 1)
        .replace('"$GITHUB_OUTPUT"', "$GITHUB_OUTPUT", 1)
    )
    target = tmp_path / ".github" / "workflows" / "broken.yml"
    target.parent.mkdir(parents=True)
    target.write_text(broken)
    shutil.copytree(PROJECT_DIR / ".github" / "scripts", tmp_path / ".github" / "scripts")
    result = actionlint([target], tmp_path)
    assert result.returncode == 1
    assert "pull-request" in result.stdout
    assert "SC2086" in result.stdout  # shellcheck ran on the run: script


def _workflow() -> dict[str, Any]:
    assert len(WORKFLOWS) == 1
    return yaml.safe_load(WORKFLOWS[0].read_text())


def _pulumi_jobs() -> dict[str, dict[str, Any]]:
    jobs = _workflow()["jobs"]
    return {
        name: job
        for name, job in jobs.items()
        if any(str(step.get("uses", "")).startswith("pulumi/actions@") for step in job["steps"])
    }


def test_workflow_grants_nothing_by_default_and_each_job_declares_permissions() -> None:
    workflow = _workflow()
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, name
        assert "write-all" not in str(job["permissions"])
        assert job["permissions"].get("contents") == "read", name
    writers = {
        name for name, job in workflow["jobs"].items() if job["permissions"].get("pull-requests") == "write"
    }
    assert writers == {"preview"}


def test_every_pulumi_up_has_a_concurrency_group_per_stack_and_never_cancels() -> None:
    jobs = _pulumi_jobs()
    assert set(jobs) == {"preview", "up-platform", "up-sites"}
    for name in ("up-platform", "up-sites"):
        assert jobs[name]["concurrency"]["group"] == "pulumi-up-${{ matrix.stack }}", name
        assert jobs[name]["concurrency"]["cancel-in-progress"] is False, name


def test_a_preview_can_never_cancel_a_queued_up() -> None:
    """GitHub keeps one pending job per concurrency group and cancels the older pending one,
    whatever cancel-in-progress says: a preview in an `up` group could cancel a queued `up`. So
    previews have groups of their own, which no `up` group can equal for any stack name."""
    jobs = _pulumi_jobs()
    preview_group = jobs["preview"]["concurrency"]["group"]
    assert "${{ matrix.stack }}" in preview_group  # still per stack
    assert preview_group.startswith("pulumi-preview-")
    for name in ("up-platform", "up-sites"):
        up_group = jobs[name]["concurrency"]["group"]
        assert up_group.startswith("pulumi-up-")
        assert not up_group.startswith("pulumi-preview-") and not preview_group.startswith("pulumi-up-")


def test_every_action_is_pinned_and_pulumi_to_an_exact_release() -> None:
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:
                assert re.search(r"@v\d+(\.\d+\.\d+)?$|@[0-9a-f]{40}$", uses), uses
                if uses.startswith("pulumi/actions@"):
                    assert re.search(r"@v\d+\.\d+\.\d+$", uses), uses


def test_previews_and_updates_run_the_policy_pack_and_previews_comment_on_the_pr() -> None:
    for name, job in _pulumi_jobs().items():
        step = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))
        assert step["with"]["policyPacks"] == "policy", name
        assert step["with"]["command"] == ("preview" if name == "preview" else "up"), name
        assert "PULUMI_ACCESS_TOKEN" in step["env"] and "PULUMI_CONFIG_PASSPHRASE" in step["env"]
        assert all(str(v).startswith("${{ secrets.") for v in step["env"].values()), (
            "credentials come from secrets"
        )
    assert _pulumi_jobs()["preview"]["steps"][-1]["with"]["comment-on-pr"] is True


def test_pull_requests_run_tests_and_the_offline_plan_on_python_311() -> None:
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"pull_request", "push"}
    test = workflow["jobs"]["test"]
    runs = [step.get("run") for step in test["steps"]]
    assert "make test" in runs and "make plan" in runs
    assert workflow["env"]["PYTHON_VERSION"] == "3.11"


@pytest.mark.parametrize("job", ["preview", "up-platform", "up-sites"])
def test_pulumi_jobs_wait_for_the_tests(job: str) -> None:
    assert "test" in _workflow()["jobs"][job]["needs"]
