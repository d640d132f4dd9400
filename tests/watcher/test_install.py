"""The watcher as it lands on the redirector: the hardened unit, the source archive, the pins."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
from packaging.requirements import Requirement

from infra import platform_watcher as pw
from infra import watcher_install as install
from twinhost_watcher import config as watcher_config

UNIT = install.UNIT_FILE
REPO = install.REPO


def unit_directives() -> list[tuple[str, str, str]]:
    """(section, key, value) for every directive of the unit."""
    section, out = "", []
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.append((section, key, value))
    return out


def test_every_directive_of_the_unit_has_a_reason_comment_above_it() -> None:
    lines = UNIT.read_text().splitlines()
    missing = [
        line
        for index, line in enumerate(lines)
        if line and not line.startswith(("#", "[", "Description=")) and not lines[index - 1].startswith("#")
    ]
    assert missing == [], f"directives without a reason: {missing}"


def test_the_unit_keeps_the_hardening_the_watcher_was_designed_for() -> None:
    service = {key: value for section, key, value in unit_directives() if section == "Service"}
    expected = {
        "DynamicUser": "yes",
        "StateDirectory": "twinhost-watcher",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectHome": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "Restart": "always",
        "UMask": "0077",
    }
    assert {k: service.get(k) for k in expected} == expected


def test_the_unit_agrees_with_the_package_on_paths_and_credentials() -> None:
    service = [(k, v) for s, k, v in unit_directives() if s == "Service"]
    values = dict(service)
    assert (
        values["ExecStart"]
        == f"{install.ROOT}/venv/bin/python -m twinhost_watcher --config {install.CONFIG_PATH}"
    )
    assert "/var/lib/" + values["StateDirectory"] == watcher_config.DEFAULT_STATE_DIR
    credential_id, _, path = values["LoadCredential"].partition(":")
    assert path == watcher_config.DEFAULT_SECRETS_DIR == install.SECRETS_DIR
    assert f"{credential_id}_" == watcher_config.CREDENTIAL_PREFIX
    assert f"PYTHONPATH={install.ROOT}/lib" in [v for k, v in service if k == "Environment"]


def test_systemd_rates_the_unit_ok_and_knows_every_directive() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run([analyze, "security", "--offline=yes", str(UNIT)], capture_output=True, text=True)
    assert "Unknown key" not in result.stderr and "Unknown" not in result.stdout, result.stderr
    score = float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout).group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0


def test_the_source_archive_is_reproducible_and_runs_on_its_own(tmp_path) -> None:
    archive = install.source_archive()
    assert archive == install.source_archive()
    lib = tmp_path / "lib"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        tar.extractall(lib, filter="data")
    assert "twinhost_watcher/engine.py" in names and "twinhost_watcher/backends/rfc2136.py" in names
    assert "infra/config.py" not in names and "infra/watcher_install.py" not in names
    # The whole package and, beside it, the refresh and the apex check's scripts (which left user
    # data for this archive) and the witness's apply (infra/witness.py); nothing else: no file
    # picked out by name, no `infra` beside it.
    package = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "twinhost_watcher").rglob("*.py"))
    assert names == [*package, "twinhost-apex-ask", "twinhost-watcher-refresh", "twinhost-witness"]
    print(f"watcher source archive: {len(archive)} bytes")
    # The unpacked tree alone (no repo, no infra, no Pulumi) validates a config, run as the unit
    # runs it: `python -m twinhost_watcher` with PYTHONPATH=lib. A stand-in `infra` that fails on
    # import sits next on the path, so any import of infra (the repo's editable install would
    # otherwise answer it) fails this test.
    config = tmp_path / "watcher.json"
    data = json.loads((install.REPO / "cloudinit/redirector/etc/twinhost/watcher.example.json").read_text())
    data["sites"] = [data["sites"][2]]  # route53: needs no secret file
    data["notify"] = {}
    config.write_text(json.dumps(data))
    blocked = tmp_path / "blocked" / "infra"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('the watcher imported infra')\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": f"{lib}:{blocked.parent}"}
    result = subprocess.run(
        [sys.executable, "-s", "-m", "twinhost_watcher", "--config", str(config), "--check-config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "initech: initech.ops.example.org via route53" in result.stdout
    where = subprocess.run(
        [sys.executable, "-s", "-c", "import twinhost_watcher.__main__ as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert where.stdout.strip() == str(lib / "twinhost_watcher" / "__main__.py")


@pytest.mark.parametrize("part", sorted(install.NODE_DISTRIBUTIONS))
def test_the_node_pins_are_a_closed_set_at_the_locked_versions(part: str) -> None:
    names = {
        install._normal(n) for n in install.NODE_DISTRIBUTIONS["core"] + install.NODE_DISTRIBUTIONS[part]
    }
    locked = install.locked_versions()
    for name in names:
        assert importlib.metadata.version(name) == locked[name], name
        for spec in importlib.metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # optional extras and other platforms
            assert install._normal(requirement.name) in names, (
                f"{name} needs {requirement.name}, not pinned for the node"
            )


def test_the_node_install_pins_only_the_backends_in_use_and_checks_every_hash() -> None:
    requirements = install.requirements_file(["cloudflare"])
    assert requirements.path == f"{install.ROOT}/requirements.txt" and not requirements.secret
    pins = requirements.content
    assert "cloudflare==5.9.0 --hash=sha256:" in pins and "boto3" not in pins and "pydantic==" in pins
    steps = install.install_steps()
    assert any("--require-hashes" in c for c in steps if isinstance(c, tuple))
    [pip] = [c for c in steps if isinstance(c, tuple) and c[0] == f"{install.ROOT}/venv/bin/pip"]
    assert pip[-2:] == ("-r", requirements.path), "pip installs exactly the requirements file written"
    assert steps.index(("python3", "-m", "venv", f"{install.ROOT}/venv")) < steps.index(pip)
    assert install.unit_file().content == UNIT.read_text()


def test_the_watcher_on_first_boot_holds_no_config_and_no_secret_in_user_data() -> None:
    """Config and secrets reach the node through the refresh timer (S3 + SSM), never user data:
    EC2 user data is readable by any local process through the instance metadata service."""
    parts = pw.node_parts(bucket="b", region="eu-west-1", backends=["cloudflare", "route53", "rfc2136"])
    paths = [f.path for f in parts.files]
    assert install.CONFIG_PATH not in paths
    assert not [p for p in paths if p.startswith(install.SECRETS_DIR)]
    assert not [f.path for f in parts.files if f.secret]
    assert parts.runcmd[: len(install.install_steps())] == install.install_steps()
    assert set(install.NODE_PACKAGES) <= set(parts.packages)


def test_every_node_pin_has_the_hashes_of_its_wheels_for_every_node_platform() -> None:
    text = install.requirements(install.NODE_DISTRIBUTIONS)
    lines = text.splitlines()
    assert len(lines) == sum(len(v) for v in install.NODE_DISTRIBUTIONS.values())
    for line in lines:
        assert "--hash=sha256:" in line, line
    # The one compiled distribution: a wheel per architecture and Python (3.11 and 3.13).
    [core] = [line for line in lines if line.startswith("pydantic_core==")]
    assert core.count("--hash=") == len(install.NODE_PLATFORMS)
