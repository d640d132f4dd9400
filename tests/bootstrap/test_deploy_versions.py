"""twinhost-deploy keeps the last 3 versions (`--versions`), so a rollback downloads nothing,
and removes what falls off the list; the demo app's "-unhealthy" versions fail their /health."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.bootstrap.bootstrap_nodes import rendered_files
from tests.bootstrap.test_deploy import deploy, setup


def versions(script: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(script), "--versions"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_versions_lists_the_active_and_the_first_boot_version_before_any_deploy(tmp_path):
    script, env = setup(tmp_path, "demo")
    assert versions(script, env) == "active 1\nkept 1\n"


def test_the_last_three_versions_are_kept_and_older_container_images_removed(tmp_path):
    script, env = setup(tmp_path, "container")
    for version in ("2", "3", "4"):
        assert deploy(script, env, version).returncode == 0
    assert versions(script, env) == "active 4\nkept 2\nkept 3\nkept 4\n"
    calls = (tmp_path / "calls").read_text()
    assert "podman image rm --ignore ghcr.io/acme/shop:1.4.2\n" in calls
    assert "podman image rm --ignore ghcr.io/acme/shop:2\n" not in calls


def test_going_back_to_a_kept_container_version_pulls_nothing(tmp_path):
    script, env = setup(tmp_path, "container")
    assert deploy(script, env, "2").returncode == 0
    (tmp_path / "calls").write_text("")
    assert deploy(script, env, "1.4.2").returncode == 0  # the first-boot version, kept
    calls = (tmp_path / "calls").read_text()
    assert "podman image exists ghcr.io/acme/shop:1.4.2" in calls and "podman pull" not in calls
    assert versions(script, env) == "active 1.4.2\nkept 2\nkept 1.4.2\n"


def test_a_failed_deploy_changes_nothing_in_the_kept_list(tmp_path):
    script, env = setup(tmp_path, "demo")
    assert deploy(script, env, "2").returncode == 0
    assert deploy(script, env, "3", UNHEALTHY="127.0.0.1:8080").returncode == 1
    assert versions(script, env) == "active 2\nkept 1\nkept 2\n"


def test_a_kept_deb_is_installed_from_its_kept_file_without_apt_get_update(tmp_path):
    script, env = setup(tmp_path, "deb")
    fake = tmp_path / "bin/apt-get"
    fake.write_text(
        '#!/bin/sh\necho "apt-get $*" >> "$CALLS"\n'
        "for arg; do last=$arg; done\n"
        'case "$1" in download) touch "shop_${last#*=}_amd64.deb" ;; esac\n'
    )
    fake.chmod(0o755)
    assert deploy(script, env, "2").returncode == 0
    assert deploy(script, env, "3").returncode == 0
    (tmp_path / "calls").write_text("")
    assert deploy(script, env, "2").returncode == 0
    calls = (tmp_path / "calls").read_text()
    assert "apt-get update" not in calls and "apt-get download" not in calls
    assert f"{tmp_path}/state/debs/2/shop_2_amd64.deb" in calls
    for version in ("4", "5"):
        assert deploy(script, env, version).returncode == 0
    assert sorted(p.name for p in (tmp_path / "state/debs").iterdir()) == ["2", "4", "5"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_demo_apps_unhealthy_versions_fail_health_and_others_pass(tmp_path):
    from tests.bootstrap.bootstrap_specs import make_spec

    app = tmp_path / "demo-app.py"
    app.write_text(rendered_files(make_spec(app="demo"))["/usr/local/lib/twinhost/demo-app.py"].content)
    for version, expected in (("2", 200), ("2-unhealthy", 503)):
        port = free_port()
        env = {**os.environ, "PORT": str(port), "APP_VERSION": version, "SHARED_DIR": str(tmp_path)}
        with subprocess.Popen([sys.executable, str(app)], env=env) as process:
            try:
                status, body = None, {}
                for _ in range(50):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                            status, body = answer.status, json.loads(answer.read())
                    except urllib.error.HTTPError as exc:
                        status, body = exc.code, json.loads(exc.read())
                    except OSError:
                        time.sleep(0.1)
                        continue
                    break
                assert status == expected and body["version"] == version
            finally:
                process.terminate()
