"""Issue 17 item 5: the day-2 commands against the booted lab pair, from the admin network, while
a client in the internet namespace polls https://www.<apex>/ on both nodes every 100 ms.

One module-scoped run (it changes what the nodes run), in order: `status`; `deploy` of a new demo
version; `deploy` of a version whose /health fails (the demo app fails /health for versions
ending in "-unhealthy"), which must stop after the first node and put it back; `rollback` to the
version before; `logs` of the app and of the watcher. Each test asserts one claim; the figures go
to the "lab figures" summary. After tests/lab/test_lab.py (alphabetical), before the drill."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.lab.conftest import FIGURES, REPO
from twinhost_lab import ops
from twinhost_lab.checks import RunningLab

pytestmark = pytest.mark.lab

NEW, BROKEN = "2", "3-unhealthy"


@dataclass
class OpsRun:
    files: ops.OpsFiles
    steps: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    polled: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack_file: dict[str, str] = field(default_factory=dict)  # the copy's Pulumi.<stack>.yaml after a step

    def result(self, step: str) -> dict[str, Any]:
        return dict(json.loads(self.steps[step].stdout))

    def versions(self, when: str) -> dict[str, str | None]:
        return {n["node"]: n["version"] for n in self.status[when]["nodes"]}


@pytest.fixture(scope="module")
def ops_run(running_lab: RunningLab, request: pytest.FixtureRequest) -> Iterator[OpsRun]:
    files = ops.write_files(running_lab, REPO)
    run = OpsRun(files)
    figures = request.config.stash[FIGURES]

    def status(when: str) -> None:
        done = ops.twinhost(running_lab, files, "status", running_lab.layout.stack, "--json")
        run.steps[f"status {when}"] = done
        run.status[when] = (
            json.loads(done.stdout) if done.stdout.strip() else {"nodes": [], "error": done.stderr}
        )
        figures.append(f"OPS status {when}: exit {done.returncode}, versions {run.versions(when)}")

    def polled(step: str, *args: str) -> None:
        with ops.Poller(running_lab) as poller:
            run.steps[step] = ops.twinhost(running_lab, files, *args, "--json")
        run.polled[step] = poller.summary
        run.stack_file[step] = (files.project / f"Pulumi.{running_lab.layout.stack}.yaml").read_text()
        figures.append(f"OPS {step}: exit {run.steps[step].returncode}; client: {poller.line()}")

    stack = running_lab.layout.stack
    status("before")
    polled("deploy", "deploy", stack, NEW)
    polled("deploy broken", "deploy", stack, BROKEN)
    status("after the broken deploy")
    polled("rollback", "rollback", stack)
    status("after the rollback")
    run.steps["logs app"] = ops.twinhost(running_lab, files, "logs", stack, "--unit", "app", "-n", "20")
    run.steps["logs watcher"] = ops.twinhost(running_lab, files, "logs", "--watcher", stack, "-n", "50")
    run.steps["logs web"] = ops.twinhost(
        running_lab, files, "logs", stack, "--node", "linode", "--unit", "web", "-n", "5"
    )
    for step in ("logs app", "logs watcher", "logs web"):
        done = run.steps[step]
        figures.append(f"OPS {step}: exit {done.returncode}, {len(done.stdout.splitlines())} lines")
    yield run


def _explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-3000:]}"


def test_status_shows_both_nodes_healthy_their_version_the_record_and_the_watcher(ops_run: OpsRun) -> None:
    done = ops_run.steps["status before"]
    assert done.returncode == 0, _explain(done)
    before = ops_run.status["before"]
    assert [n["healthy"] for n in before["nodes"]] == [True, True], before
    assert set(ops_run.versions("before").values()) == {"1"}, before
    assert all(n["certificate_days_left"] and n["certificate_days_left"] > 0 for n in before["nodes"]), before
    assert all(n["gluster"] and "2/2 bricks online" in n["gluster"] for n in before["nodes"]), before
    # What DNS answers now, mapped to the pair's nodes. (The lab's dnsmasq answers one address
    # per name, see docs/lab.md: not asserted as two.)
    assert before["record"] and set(before["record_nodes"]) <= {"digitalocean", "linode"}, before
    assert before["watcher"]["running"] == "active", before


def test_deploy_of_a_new_version_reaches_both_nodes_and_the_client_sees_no_failed_request(
    ops_run: OpsRun,
) -> None:
    done = ops_run.steps["deploy"]
    assert done.returncode == 0, _explain(done)
    result = ops_run.result("deploy")
    assert [n["outcome"] for n in result["nodes"]] == ["deployed", "deployed"], result
    assert [n["node"] for n in result["nodes"]] == ["linode", "digitalocean"], "the standby first"
    polled = ops_run.polled["deploy"]
    assert polled["requests"] > 0 and polled["failed"] == 0, polled
    assert NEW in polled["versions"], polled
    assert "    version: '2'\n" in ops_run.stack_file["deploy"]


def test_a_version_whose_health_fails_stops_after_the_first_node_which_goes_back(ops_run: OpsRun) -> None:
    done = ops_run.steps["deploy broken"]
    assert done.returncode == 1, _explain(done)
    first, second = ops_run.result("deploy broken")["nodes"]
    assert (first["node"], first["outcome"], first["after"]) == ("linode", "rolled back", NEW), first
    assert second["outcome"] == "not reached", second
    assert ops_run.versions("after the broken deploy") == {"digitalocean": NEW, "linode": NEW}
    polled = ops_run.polled["deploy broken"]
    assert polled["requests"] > 0 and polled["failed"] == 0, polled
    assert BROKEN not in polled["versions"], polled
    assert ops_run.stack_file["deploy broken"] == ops_run.stack_file["deploy"], (
        "a failed deploy records nothing"
    )


def test_rollback_goes_back_to_the_previous_version_with_no_failed_request(ops_run: OpsRun) -> None:
    done = ops_run.steps["rollback"]
    assert done.returncode == 0, _explain(done)
    assert ops_run.result("rollback")["version"] == "1"
    assert ops_run.versions("after the rollback") == {"digitalocean": "1", "linode": "1"}
    polled = ops_run.polled["rollback"]
    assert polled["requests"] > 0 and polled["failed"] == 0, polled
    assert "    version: '1'\n" in ops_run.stack_file["rollback"]


def test_logs_come_from_both_nodes_and_from_the_watcher(ops_run: OpsRun) -> None:
    app = ops_run.steps["logs app"]
    assert app.returncode == 0, _explain(app)
    assert "[digitalocean] " in app.stdout and "[linode] " in app.stdout, app.stdout[-1500:]
    assert "twinhost-app@" in app.stdout or "twinhost app" in app.stdout, app.stdout[-1500:]
    watcher = ops_run.steps["logs watcher"]
    assert watcher.returncode == 0, _explain(watcher)
    events = [json.loads(line) for line in watcher.stdout.splitlines() if line.startswith("{")]
    assert events and all("event" in e for e in events), watcher.stdout[-1500:]
    web = ops_run.steps["logs web"]
    assert web.returncode == 0 and "/var/log/nginx" in web.stdout, _explain(web)
