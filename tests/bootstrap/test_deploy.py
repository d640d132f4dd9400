"""twinhost-deploy: blue/green switch and rollback, run for real with stand-ins for systemctl,
curl, nginx and podman (a PATH of small scripts that log their calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.bootstrap.bootstrap_nodes import rendered_files
from tests.bootstrap.bootstrap_specs import make_spec

FAKES = {
    "systemctl": 'echo "systemctl $*" >> "$CALLS"',
    "nginx": 'echo "nginx $*" >> "$CALLS"; [ -z "$NGINX_FAILS" ]',
    "podman": 'echo "podman $*" >> "$CALLS"',
    # curl succeeds unless its URL contains $UNHEALTHY
    "curl": 'echo "curl $*" >> "$CALLS"; case "$*" in *"$UNHEALTHY"*) [ -z "$UNHEALTHY" ] ;; esac',
}


def setup(tmp_path: Path, app: str) -> tuple[Path, dict[str, str]]:
    files = rendered_files(make_spec(app=app))
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("deploy.env", "slot-blue.env"):
        (etc / name).write_text(files[f"/etc/twinhost/app/{name}"].content)
    # Give up on an unhealthy slot after 2 s instead of 60.
    deploy_env = etc / "deploy.env"
    deploy_env.write_text(deploy_env.read_text().replace("HEALTH_TIMEOUT=60", "HEALTH_TIMEOUT=2"))
    state = tmp_path / "state"
    state.mkdir()
    (state / "active").write_text(files["/var/lib/twinhost/app/active"].content)
    upstream = tmp_path / "upstream.conf"
    upstream.write_text(files["/etc/nginx/twinhost/upstream.conf"].content)
    script = tmp_path / "twinhost-deploy"
    script.write_text(files["/usr/local/sbin/twinhost-deploy"].content)
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "TWINHOST_APP_DIR": str(etc),
        "TWINHOST_STATE_DIR": str(state),
        "TWINHOST_UPSTREAM": str(upstream),
        "UNHEALTHY": "",
        "NGINX_FAILS": "",
    }
    return script, env


def deploy(
    script: Path, env: dict[str, str], version: str, **overrides: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), version], env={**env, **overrides}, capture_output=True, text=True)


@pytest.mark.parametrize("app", ["demo", "container"])
def test_deploy_starts_new_slot_checks_health_switches_and_stops_old(tmp_path, app):
    script, env = setup(tmp_path, app)
    result = deploy(script, env, "2.0")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text()
    assert calls.index("systemctl restart twinhost-app@green") < calls.index(
        "curl -fsS -o /dev/null --max-time 5 http://127.0.0.1:8081/health"
    )
    assert (
        calls.index("nginx -t")
        < calls.index("systemctl reload nginx")
        < calls.index("systemctl stop twinhost-app@blue")
    )
    assert "server 127.0.0.1:8081;" in Path(env["TWINHOST_UPSTREAM"]).read_text()
    assert (tmp_path / "state/active").read_text().strip() == "green"
    assert "APP_VERSION=2.0" in (tmp_path / "etc/slot-green.env").read_text()
    if app == "container":
        assert "podman pull ghcr.io/acme/shop:2.0" in calls
    # And back again: the next deploy goes to blue.
    assert deploy(script, env, "2.1").returncode == 0
    assert (tmp_path / "state/active").read_text().strip() == "blue"
    assert "server 127.0.0.1:8080;" in Path(env["TWINHOST_UPSTREAM"]).read_text()


def test_unhealthy_new_version_is_rolled_back_and_old_keeps_serving(tmp_path):
    script, env = setup(tmp_path, "demo")
    before = Path(env["TWINHOST_UPSTREAM"]).read_text()
    result = deploy(script, env, "3.0", UNHEALTHY="127.0.0.1:8081")
    assert result.returncode == 1 and "rolling back" in result.stderr
    calls = (tmp_path / "calls").read_text()
    assert "systemctl stop twinhost-app@green" in calls
    assert "twinhost-app@blue" not in calls and "reload nginx" not in calls
    assert Path(env["TWINHOST_UPSTREAM"]).read_text() == before
    assert (tmp_path / "state/active").read_text().strip() == "blue"


def test_failure_through_nginx_after_switch_puts_the_old_upstream_back(tmp_path):
    script, env = setup(tmp_path, "demo")
    result = deploy(script, env, "3.0", UNHEALTHY="https://")
    assert result.returncode == 1
    assert "server 127.0.0.1:8080;" in Path(env["TWINHOST_UPSTREAM"]).read_text()
    calls = (tmp_path / "calls").read_text()
    assert "systemctl stop twinhost-app@green" in calls and "systemctl stop twinhost-app@blue" not in calls
    assert (tmp_path / "state/active").read_text().strip() == "blue"


def test_deploy_refuses_a_version_that_is_not_a_version(tmp_path):
    script, env = setup(tmp_path, "demo")
    result = deploy(script, env, "1.0; rm -rf /")
    assert result.returncode == 1 and "is not a version" in result.stderr
    assert not (tmp_path / "calls").exists()


def test_the_new_slot_is_enabled_before_the_old_one_is_disabled_and_active_is_renamed_in(tmp_path):
    """Issue 15: a crash between disabling the old slot and enabling the new one left nothing to
    start at boot, and `active` was written in place. Now: `active` replaced by a rename, the
    new slot enabled, then the old one disabled. The fake systemctl stops the deploy (as a
    crash would) at the old slot's disable, and checks what a boot would find at that moment."""
    script, env = setup(tmp_path, "demo")
    state = tmp_path / "state"
    crash = tmp_path / "bin/systemctl"
    crash.write_text(
        '#!/bin/sh\necho "systemctl $*" >> "$CALLS"\n'
        'case "$*" in "disable --quiet twinhost-app@blue") kill -9 $PPID ;; esac\n'
    )
    inode = (state / "active").stat().st_ino
    result = deploy(script, env, "2.0")
    assert result.returncode != 0  # killed mid-way, as a crash
    calls = (tmp_path / "calls").read_text()
    assert "systemctl enable --quiet twinhost-app@green" in calls
    assert calls.index("systemctl enable --quiet twinhost-app@green") < calls.index(
        "systemctl disable --quiet twinhost-app@blue"
    )
    assert (state / "active").read_text() == "green\n"
    assert (state / "active").stat().st_ino != inode  # a new file renamed in, not rewritten
    assert [p.name for p in state.iterdir() if p.name.startswith(".active")] == []
