"""The redirector's watcher refresh against the lab's S3/SSM stand-in (twinhost_lab/aws.py).

The stand-in is moto's server on 127.0.0.1, seeded from a real plan of Pulumi.prod.yaml rendered
with a lab profile naming it (its overrides' `aws`). The refresh script and its settings file are the
ones in that plan's redirector user data; the script runs in its own process with its paths
(/etc/twinhost, /opt/twinhost-watcher, its state) moved under a temporary root, no AWS
configuration in its environment and the instance metadata service disabled: what it fetches,
it fetched with the settings file's endpoint and lab credentials. `systemctl` is a recording
fake; the node's venv python is the project's, run on the unpacked code the way the refresh runs
it, with the secrets handed over as systemd's LoadCredential= would.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import platform_watcher as pw
from infra import watcher_install as install
from infra.bootstrap.overrides import RenderOverrides
from infra.config import ConfigError
from infra.plan.lab_profile import LabProfile
from infra.plan.runner import PlanResult, run_plan
from tests.conftest import REPO
from twinhost_lab import aws
from twinhost_lab.host import stop
from twinhost_lab.layout import Layout

PROD = REPO / "Pulumi.prod.yaml"
HOST = "127.0.0.1"
# The refresh runs on the redirector with Debian 12's python3-boto3 (1.26): the tests run it with
# that too, as well as with this venv's boto3. Its .debs come from Debian's mirror through the
# bootstrap tests' cache (tests/bootstrap/bootstrap_debroot.py, unpacked, nothing installed), or
# from TWINHOST_DEBIAN_BOTO3, a dist-packages directory that already holds them.
DEBIAN_BOTO3 = os.environ.get("TWINHOST_DEBIAN_BOTO3")


def debian_boto3() -> str:
    if DEBIAN_BOTO3:
        return DEBIAN_BOTO3
    from tests.bootstrap.bootstrap_debroot import tool_root

    return str(tool_root(12, ("python3-boto3",)) / "usr/lib/python3/dist-packages")


# Loads the script as a module, moves its paths, runs main(): the script's own code, unchanged.
DRIVER = """
import importlib.machinery, importlib.util, json, sys
script, paths = sys.argv[1], json.loads(sys.argv[2])
loader = importlib.machinery.SourceFileLoader("twinhost_watcher_refresh", script)
module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(module)
for name, value in paths.items():
    setattr(module, name, value)
sys.argv = [script, *sys.argv[3:]]
sys.exit(module.main())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _node_files(plan: PlanResult) -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(plan.user_data["redirector"])
    return {f["path"]: f for f in document["write_files"]}


def _archive_member(standin: Standin, name: str) -> bytes:
    """A file of the code archive the release names (its SHA-256 checked here too)."""
    release = standin.release()
    archive = standin.seed.objects[release["archive"]["key"]]
    assert _sha(archive) == release["archive"]["sha256"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile(name)
        assert member is not None, name
        return member.read()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Standin:
    plan: PlanResult
    url: str
    seed: aws.Seed

    def release(self) -> dict[str, Any]:
        return dict(json.loads(self.seed.objects[pw.RELEASE_KEY]))


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    port = _free_port()
    layout = Layout(state_dir=tmp_path_factory.mktemp("lab"))
    profile = LabProfile(overrides=RenderOverrides(aws=aws.stand_in(layout, host=HOST, port=port)))
    plan = _plan(lab=profile)
    pid = aws.start_aws_standin(layout, plan, host=HOST, port=port)
    try:
        yield Standin(plan, aws.endpoint_url(HOST, port), aws.platform_seed(plan))
    finally:
        stop(pid)


def _plan(**kwargs: Any) -> PlanResult:
    return run_plan(PROD, **kwargs)


@dataclass
class Node:
    """The redirector's paths under a temporary root, and the fakes' records."""

    root: Path
    script: Path
    bin: Path
    interpreter: str = sys.executable
    pythonpath: str | None = None

    @property
    def paths(self) -> dict[str, Any]:
        opt = self.root / "opt/twinhost-watcher"
        # CHECK_AS: the check runs as this test's user (it drops to nobody on a node; a test below).
        return {
            "CHECK_AS": [],
            "SETTINGS": str(self.root / "etc/twinhost/watcher-refresh.json"),
            "CONFIG": str(self.root / "etc/twinhost/watcher.json"),
            "SECRETS_DIR": str(self.root / "etc/twinhost/watcher-secrets"),
            "ROOT": str(opt),
            "PYTHON": str(opt / "venv/bin/python"),
            "APPLIED": str(self.root / "var/lib/twinhost-watcher-refresh/applied.json"),
        }

    def path(self, name: str) -> Path:
        return Path(self.paths[name])

    def calls(self, tool: str) -> list[list[str]]:
        log = self.root / f"{tool}.calls"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def refresh(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            # Nothing of the host's AWS set-up, and no instance role to fall back on.
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        # With the unit's UMask=0077, as systemd runs it.
        return subprocess.run(
            [self.interpreter, "-c", DRIVER, str(self.script), json.dumps(self.paths), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            umask=0o077,
        )


@pytest.fixture(params=["venv-boto3", "debian-boto3"])
def node(standin: Standin, tmp_path: Path, request: pytest.FixtureRequest) -> Node:
    files = _node_files(standin.plan)
    root = tmp_path / "node"
    made = Node(root=root, script=root / "usr/local/sbin/twinhost-watcher-refresh", bin=root / "fakebin")
    if request.param == "debian-boto3":
        system = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        assert system == "(3, 11)", (
            f"Debian 12's python3-boto3 needs Debian 12's python3.11 here, not {system}"
        )
        made.interpreter, made.pythonpath = "/usr/bin/python3", debian_boto3()
    # The settings file exactly as the plan's user data writes it; the refresh exactly as the
    # stack's code archive carries it (user data holds only its first stage: tests below).
    source = files[pw.REFRESH_SETTINGS]
    made.path("SETTINGS").parent.mkdir(parents=True, exist_ok=True)
    made.path("SETTINGS").write_text(source["content"])
    made.path("SETTINGS").chmod(int(source["permissions"], 8))
    made.script.parent.mkdir(parents=True, exist_ok=True)
    made.script.write_bytes(_archive_member(standin, install.REFRESH_MEMBER))
    made.path("ROOT").mkdir(parents=True)  # first boot's `install -d` (platform_watcher.node_parts)
    _write_fakes(made)
    return made


def _write_fakes(node: Node) -> None:
    calls = node.root
    node.bin.mkdir(parents=True)
    systemctl = node.bin / "systemctl"
    systemctl.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(calls / 'systemctl.calls')!r}, 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        # No unit is running here: `is-active` says so (3, as systemctl does for inactive).
        "sys.exit(3 if sys.argv[1:2] == ['is-active'] else 0)\n"
    )
    systemctl.chmod(0o755)
    # systemd-run: how the refresh starts the witness's apply (a transient unit); recorded only.
    run = node.bin / "systemd-run"
    run.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(calls / 'systemd-run.calls')!r}, 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    run.chmod(0o755)
    # The node's venv python: the project's interpreter on the unpacked code (the refresh sets
    # PYTHONPATH), with the secrets copied to $CREDENTIALS_DIRECTORY as `secrets_<name>`, as the
    # watcher unit's LoadCredential=secrets:<dir> does.
    python = node.path("PYTHON")
    python.parent.mkdir(parents=True)
    python.write_text(
        f"#!{sys.executable}\nimport json, os, shutil, sys, tempfile\n"
        f"with open({str(calls / 'python.calls')!r}, 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if 'CREDENTIALS_DIRECTORY' not in os.environ:  # the refresh's check hands over its own\n"
        f"    credentials = tempfile.mkdtemp(dir={str(calls)!r}, prefix='credentials-')\n"
        f"    secrets = {node.paths['SECRETS_DIR']!r}\n"
        "    for name in os.listdir(secrets):\n"
        "        shutil.copy(os.path.join(secrets, name), os.path.join(credentials, 'secrets_' + name))\n"
        "    os.environ['CREDENTIALS_DIRECTORY'] = credentials\n"
        f"os.execv({sys.executable!r}, [{sys.executable!r}, *sys.argv[1:]])\n"
    )
    python.chmod(0o755)


# -- what the plan renders -------------------------------------------------------------------------


def test_lab_settings_name_the_standin_and_lab_credentials_and_are_root_only(standin: Standin) -> None:
    entry = _node_files(standin.plan)[pw.REFRESH_SETTINGS]
    settings = json.loads(entry["content"])
    assert settings["endpointUrl"] == standin.url
    assert (settings["accessKeyId"], settings["secretAccessKey"]) == (
        aws.ACCESS_KEY_ID,
        aws.SECRET_ACCESS_KEY,
    )
    assert settings["bucket"] == standin.seed.bucket and settings["region"] == "eu-west-1"
    assert entry["permissions"] == "0600"


def test_without_the_lab_the_settings_are_the_production_ones() -> None:
    entry = _node_files(_plan())[pw.REFRESH_SETTINGS]
    assert json.loads(entry["content"]) == {
        "bucket": "watcher-bucket-0plan",
        "region": "eu-west-1",
        "releaseKey": pw.RELEASE_KEY,
    }
    assert entry["permissions"] == "0644"


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"endpointUrl": "ftp://198.51.100.1:5000"}, "endpointUrl"),
        ({"accessKeyId": "lowercase-key"}, "accessKeyId"),
        ({"secretAccessKey": "short"}, "secretAccessKey"),
    ],
)
def test_the_aws_override_is_validated(bad: dict[str, str], key: str) -> None:
    values = {**aws.stand_in(Layout()).model_dump(by_alias=True), **bad}
    with pytest.raises(ConfigError) as caught:
        LabProfile.parse({"overrides": {"aws": values}})
    assert f"overrides.aws.{key}" in {issue.key for issue in caught.value.issues}


def test_the_standin_holds_the_platforms_backup_bucket_empty(standin: Standin) -> None:
    """The sites' restic repositories go there (docs/backups.md): the plan's `backups` bucket,
    made in the region, with nothing in it until a site's first backup."""
    bucket = standin.plan.outputs["backups"]["bucket"]
    assert standin.seed.backup_bucket == bucket != standin.seed.bucket
    s3 = aws.client("s3", standin.url, "eu-west-1")
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_the_lab_default_is_the_bridge_host_address() -> None:
    assert aws.stand_in(Layout()).endpoint_url == "http://198.51.100.1:5000"


# -- the refresh against the stand-in --------------------------------------------------------------


def test_first_boot_fetches_and_applies_config_secrets_and_code(standin: Standin, node: Node) -> None:
    release = standin.release()
    result = node.refresh("--first-boot")
    assert result.returncode == 0, result.stderr

    config = node.path("CONFIG").read_bytes()
    assert config == standin.seed.objects[pw.CONFIG_KEY] and _sha(config) == release["config"]["sha256"]
    assert stat.S_IMODE(node.path("CONFIG").stat().st_mode) == 0o644

    # The code: the archive the stack published, unpacked where the watcher unit imports it from.
    lib = node.path("ROOT") / "lib"
    for module in ("twinhost_watcher/__main__.py", "twinhost_watcher/config.py"):
        assert (lib / module).read_bytes() == (REPO / module).read_bytes()
    # The watcher runs as a DynamicUser: its code must be readable by others (found in the lab:
    # the unit's umask made tar's implicit directories 0700), and writable by root only.
    modes = {path.relative_to(lib): stat.S_IMODE(path.stat().st_mode) for path in [lib, *lib.rglob("*")]}
    assert {m for p, m in modes.items() if (lib / p).is_dir()} == {0o755}
    assert {m for p, m in modes.items() if (lib / p).is_file()} == {0o644}

    # The secrets: each parameter's value from SSM, root-only, and never in the output.
    assert sorted(os.listdir(node.path("SECRETS_DIR"))) == sorted(release["secrets"])
    for name, spec in release["secrets"].items():
        path = node.path("SECRETS_DIR") / name
        expected = (standin.seed.parameters[spec["parameter"]] + "\n").encode()
        assert _sha(path.read_bytes()) == _sha(expected), f"secret {name} differs from its parameter"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        printed = standin.seed.parameters[spec["parameter"]] in result.stdout + result.stderr
        assert not printed, f"the value of secret {name} was printed"
        assert f"updated secret {name}" in result.stderr

    # Checked with the watcher itself on the staged code and config (beside the installed ones,
    # renamed in only after the check), then the watcher enabled and restarted.
    [checked] = node.calls("python")
    assert checked[:3] == ["-m", "twinhost_watcher", "--config"] and checked[4:] == ["--check-config"]
    staged = Path(checked[3])
    assert staged.parent == node.path("CONFIG").parent and staged.name.startswith(".refresh-")
    assert not staged.exists()
    assert node.calls("systemctl") == [
        ["restart", "twinhost-apex-ask.service"],
        ["enable", "--quiet", "twinhost-watcher.service"],
        ["restart", "twinhost-watcher.service"],
        # Then the witness (test_the_witness_... below): is its apply still running?
        ["is-active", "--quiet", "twinhost-witness-apply.service"],
    ]
    applied = json.loads(node.path("APPLIED").read_text())
    assert applied == {
        "archiveSha256": release["archive"]["sha256"],
        "configSha256": release["config"]["sha256"],
        "secretVersions": {n: s["version"] for n, s in release["secrets"].items()},
        # The witness's document and key (test_the_witness_... below).
        "witnessSha256": release["witness"]["config"]["sha256"],
        "witnessKeyVersion": release["witness"]["key"]["version"],
        # The witness's secrets per listed site stack (test_the_witness_site_secrets_... below).
        "witnessSiteVersions": {n: s["version"] for n, s in release["witness"]["sites"].items()},
    }


def _witness_files(node: Node) -> tuple[Path, Path, Path]:
    etc, state = node.path("CONFIG").parent, node.path("APPLIED").parent
    return etc / "witness.json", etc / "witness-key.pem", state / "witness-applied.json"


def _sites_sha256(node: Node) -> str:
    """twinhost-witness's digest of the site secrets it applied (names and contents)."""
    digest = hashlib.sha256()
    directory = node.path("CONFIG").parent / "witness-sites"
    for path in sorted(directory.glob("*.json")):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _witness_applied(node: Node) -> None:
    """Write the marker twinhost-witness writes once it applied the current document and key."""
    document, key, applied = _witness_files(node)
    applied.write_text(
        json.dumps(
            {
                "sha256": _sha(document.read_bytes()),
                "keySha256": _sha(key.read_bytes()),
                "sitesSha256": _sites_sha256(node),
            }
        )
    )


def test_the_witness_document_and_key_are_fetched_and_its_apply_started_until_applied(
    standin: Standin, node: Node
) -> None:
    release = standin.release()
    result = node.refresh("--first-boot")
    assert result.returncode == 0, result.stderr
    document, key, _ = _witness_files(node)
    assert document.read_bytes() == standin.seed.objects[pw.WITNESS_KEY]
    assert _sha(document.read_bytes()) == release["witness"]["config"]["sha256"]
    value = standin.seed.parameters[release["witness"]["key"]["parameter"]]
    assert key.read_text() == value.strip() + "\n" and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert value.strip().splitlines()[1] not in result.stdout + result.stderr  # never printed
    # Not among the watcher's secrets (its unit loads that whole directory).
    assert "tinc-key" not in os.listdir(node.path("SECRETS_DIR"))
    (started,) = node.calls("systemd-run")
    assert started[-2:] == ["/usr/bin/python3", f"{node.paths['ROOT']}/lib/{install.WITNESS_MEMBER}"]
    assert "--unit=twinhost-witness-apply.service" in started
    # Started again each minute until twinhost-witness reports the document and key applied.
    assert node.refresh().returncode == 0 and len(node.calls("systemd-run")) == 2
    _witness_applied(node)
    assert node.refresh().returncode == 0 and len(node.calls("systemd-run")) == 2


def test_the_witness_site_secrets_are_fetched_one_file_per_site_stack_never_printed(
    standin: Standin, node: Node
) -> None:
    """Each listed site stack's witness secrets (a garbd key for a site with a database) land in
    /etc/twinhost/witness-sites/<stack>.json, 0600 in a 0700 directory, as SSM holds them; a
    change to them starts the witness's apply again."""
    release = standin.release()
    assert release["witness"]["sites"], "the example platform lists a site"
    assert node.refresh("--first-boot").returncode == 0
    directory = node.path("CONFIG").parent / "witness-sites"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name, spec in release["witness"]["sites"].items():
        path = directory / f"{name}.json"
        value = standin.seed.parameters[spec["parameter"]]
        assert path.read_text() == value.strip() + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(value)["site"]
    _witness_applied(node)
    assert node.refresh().returncode == 0 and len(node.calls("systemd-run")) == 1
    # A site's secrets changed on the node's side (as a new version would bring): applied again.
    (path,) = directory.glob("*.json")
    path.write_text(path.read_text() + " ")
    assert node.refresh().returncode == 0 and len(node.calls("systemd-run")) == 2


def test_a_tampered_witness_document_is_refused(standin: Standin, node: Node) -> None:
    original = standin.seed.objects[pw.WITNESS_KEY]
    s3, _ = aws.clients(standin.url, standin.seed.region)
    s3.put_object(Bucket=standin.seed.bucket, Key=pw.WITNESS_KEY, Body=original + b" ")
    try:
        result = node.refresh("--first-boot")
    finally:
        s3.put_object(Bucket=standin.seed.bucket, Key=pw.WITNESS_KEY, Body=original)
    assert result.returncode == 1
    assert "witness document SHA-256 does not match" in result.stderr
    document, _, _ = _witness_files(node)
    assert not document.exists() and node.calls("systemd-run") == []
    # The watcher's part went ahead: a witness failure does not hold it back.
    assert node.path("CONFIG").exists()


def test_the_apex_check_comes_with_the_code_archive_and_restarts_on_new_code(
    standin: Standin, node: Node
) -> None:
    """The apex check's script is not in user data: the release's archive (its SHA-256 in the
    release, checked before anything is unpacked) carries it, the refresh installs it where the
    unit runs it, and restarts that unit at first boot and whenever a new archive is installed."""
    shipped = _archive_member(standin, install.ASK_MEMBER)
    assert shipped == (REPO / "cloudinit/redirector" / install.ASK_SCRIPT.lstrip("/")).read_bytes()

    assert node.refresh("--first-boot").returncode == 0
    script = node.path("ROOT") / "lib" / install.ASK_MEMBER
    assert script.read_bytes() == shipped
    assert stat.S_IMODE(script.stat().st_mode) == 0o644  # the unit's DynamicUser reads it
    assert ["restart", "twinhost-apex-ask.service"] in node.calls("systemctl")

    # A node that last installed an older archive: the release's is installed, and the check
    # restarted onto it (a release with no new code restarts nothing: the next test).
    state = json.loads(node.path("APPLIED").read_text())
    state["archiveSha256"] = "0" * 64
    node.path("APPLIED").write_text(json.dumps(state))
    script.write_bytes(b"older\n")
    before = len(node.calls("systemctl"))
    result = node.refresh()
    assert result.returncode == 0, result.stderr
    assert "installed watcher code" in result.stderr and "apex check (re)started" in result.stderr
    assert node.calls("systemctl")[before] == ["restart", "twinhost-apex-ask.service"]
    assert script.read_bytes() == shipped


def test_the_next_minute_with_nothing_new_changes_nothing(standin: Standin, node: Node) -> None:
    assert node.refresh("--first-boot").returncode == 0
    _witness_applied(node)  # as twinhost-witness reports it (its own tests: test_witness_apply.py)
    before = {p: p.stat().st_mtime_ns for p in node.root.rglob("*") if p.is_file() and "calls" not in p.name}
    result = node.refresh()
    assert result.returncode == 0, result.stderr
    assert "installed" not in result.stderr and "updated" not in result.stderr
    # The first boot's only: 3 for the watcher, 1 asking whether the witness's apply still runs.
    assert len(node.calls("systemctl")) == 4 and len(node.calls("python")) == 1
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = [str(p) for p in before if before[p] != after[p] and p != node.path("APPLIED")]
    assert changed == []


@pytest.mark.parametrize("which", ["archive", "config"])
def test_a_tampered_object_is_refused_by_its_sha256(standin: Standin, node: Node, which: str) -> None:
    key = standin.release()[which]["key"]
    original = standin.seed.objects[key]
    s3, _ = aws.clients(standin.url, standin.seed.region)
    tampered = original + b"\n" if which == "config" else original[:-1] + bytes([original[-1] ^ 1])
    s3.put_object(Bucket=standin.seed.bucket, Key=key, Body=tampered)
    try:
        result = node.refresh("--first-boot")
    finally:
        s3.put_object(Bucket=standin.seed.bucket, Key=key, Body=original)
    assert result.returncode == 1
    assert (
        f"{'code archive' if which == 'archive' else 'watcher config'} SHA-256 does not match"
        in result.stderr
    )
    assert not node.path("CONFIG").exists() and not node.path("APPLIED").exists()
    assert node.calls("systemctl") == [] and node.calls("python") == []
    if which == "archive":
        assert not (node.path("ROOT") / "lib").exists()
    # Put right, the next run installs it.
    assert node.refresh().returncode == 0
    assert node.path("CONFIG").read_bytes() == standin.seed.objects[pw.CONFIG_KEY]


def test_a_set_the_watcher_refuses_is_never_installed(standin: Standin, node: Node) -> None:
    """The refresh stages code, config and secrets, checks them, and installs only what passed: a
    refused set (here a config whose caBundle does not exist) leaves every installed file as it
    was, so a restart of the running watcher finds the accepted set, never the refused one."""
    assert node.refresh("--first-boot").returncode == 0
    _witness_applied(node)
    installed = {
        p: p.read_bytes()
        for p in node.root.rglob("*")
        if p.is_file() and "calls" not in p.name and not p.name.startswith("credentials")
    }
    calls_before = (len(node.calls("systemctl")), len(node.calls("python")))

    s3, _ = aws.clients(standin.url, standin.seed.region)
    original_release = standin.seed.objects[pw.RELEASE_KEY]
    config = json.loads(standin.seed.objects[pw.CONFIG_KEY])
    for site in config["sites"]:
        for each in site["nodes"]:
            each["caBundle"] = "/nonexistent/cloudflare-origin-ca.pem"
    bad = json.dumps(config).encode()
    bad_key = pw.KEY_PREFIX + "refused.json"
    release = json.loads(original_release)
    release["config"] = {"key": bad_key, "sha256": _sha(bad)}
    s3.put_object(Bucket=standin.seed.bucket, Key=bad_key, Body=bad)
    s3.put_object(Bucket=standin.seed.bucket, Key=pw.RELEASE_KEY, Body=json.dumps(release).encode())
    try:
        result = node.refresh()
    finally:
        s3.put_object(Bucket=standin.seed.bucket, Key=pw.RELEASE_KEY, Body=original_release)
    assert result.returncode == 1
    assert "refused by --check-config" in result.stderr and "caBundle: cannot be read" in result.stderr
    after = {p: p.read_bytes() for p in installed}
    assert after == installed, "a refused set changed installed files"
    leftovers = [p for p in node.root.rglob(".refresh-*")] + [p for p in node.root.rglob(".lib-*")]
    assert leftovers == []
    assert len(node.calls("systemctl")) == calls_before[0]  # no restart onto the refused set
    assert len(node.calls("python")) == calls_before[1] + 1  # the check ran, once
    # The release put right, the next run has nothing to do.
    assert node.refresh().returncode == 0


def test_the_check_of_a_staged_set_runs_as_nobody(standin: Standin) -> None:
    """On the node the check parses what S3 delivered: never as root."""
    script = _archive_member(standin, install.REFRESH_MEMBER).decode()
    namespace: dict[str, Any] = {"__name__": "refresh"}
    exec(compile(script, pw.REFRESH_SCRIPT, "exec"), namespace)
    command = namespace["check_command"]("/etc/twinhost/.refresh-x")
    assert command[:5] == ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    assert command[5:] == [
        namespace["PYTHON"],
        "-m",
        "twinhost_watcher",
        "--config",
        "/etc/twinhost/.refresh-x",
        "--check-config",
    ]


def test_the_watcher_unit_does_not_restart_on_a_refused_config() -> None:
    unit = (REPO / "cloudinit/redirector/etc/systemd/system/twinhost-watcher.service").read_text()
    assert "\nRestart=always\n" in unit and "\nRestartPreventExitStatus=2\n" in unit


# -- the first stage, in user data ---------------------------------------------------------------


def _first_stage(standin: Standin, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """The first stage as user data writes it, its paths under tmp_path, and a stand-in python
    that records what it was asked to run (and the SHA-256 of the file it was given)."""
    files = _node_files(standin.plan)
    assert int(files[pw.REFRESH_SCRIPT]["permissions"], 8) == 0o755
    script = tmp_path / "twinhost-watcher-refresh"
    script.write_text(files[pw.REFRESH_SCRIPT]["content"])
    settings = tmp_path / "watcher-refresh.json"
    settings.write_text(files[pw.REFRESH_SETTINGS]["content"])
    calls = tmp_path / "python.calls"
    python = tmp_path / "python3"
    python.write_text(
        f"#!{sys.executable}\nimport hashlib, json, sys\n"
        f"with open({str(calls)!r}, 'a') as log:\n"
        "    ran = open(sys.argv[1], 'rb').read()\n"
        "    log.write(json.dumps([hashlib.sha256(ran).hexdigest(), *sys.argv[2:]]) + '\\n')\n"
    )
    python.chmod(0o755)
    paths = {"SETTINGS": str(settings), "ROOT": str(tmp_path / "opt"), "PYTHON": str(python)}
    return script, paths, calls


def _run_first_stage(script: Path, paths: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(script), json.dumps(paths), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_first_stage_runs_the_refresh_of_the_release_when_none_is_installed(
    standin: Standin, tmp_path: Path
) -> None:
    """First boot: nothing installed. The first stage fetches the release's archive, checks its
    SHA-256, and runs the refresh inside it with --first-boot (which installs everything)."""
    script, paths, calls = _first_stage(standin, tmp_path)
    result = _run_first_stage(script, paths, "--first-boot")
    assert result.returncode == 0, result.stderr
    refresh = _archive_member(standin, install.REFRESH_MEMBER)
    assert (
        refresh
        == (REPO / "cloudinit/redirector/opt/twinhost-watcher/lib/twinhost-watcher-refresh").read_bytes()
    )
    assert [json.loads(line) for line in calls.read_text().splitlines()] == [[_sha(refresh), "--first-boot"]]


def test_first_stage_runs_the_installed_refresh_once_there_is_one(standin: Standin, tmp_path: Path) -> None:
    script, paths, calls = _first_stage(standin, tmp_path)
    installed = Path(paths["ROOT"]) / "lib" / install.REFRESH_MEMBER
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"# the installed refresh\n")
    result = _run_first_stage(script, paths)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in calls.read_text().splitlines()] == [[_sha(installed.read_bytes())]]


def test_first_stage_refuses_an_archive_that_is_not_the_release_s(standin: Standin, tmp_path: Path) -> None:
    script, paths, calls = _first_stage(standin, tmp_path)
    key = standin.release()["archive"]["key"]
    original = standin.seed.objects[key]
    s3, _ = aws.clients(standin.url, standin.seed.region)
    s3.put_object(Bucket=standin.seed.bucket, Key=key, Body=original[:-1] + bytes([original[-1] ^ 1]))
    try:
        result = _run_first_stage(script, paths, "--first-boot")
    finally:
        s3.put_object(Bucket=standin.seed.bucket, Key=key, Body=original)
    assert result.returncode == 1
    assert "code archive SHA-256 does not match the release; not run" in result.stderr
    assert not calls.exists()  # nothing ran
