"""Rendered user data against cloud-init's real schema, from Debian's own package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.bootstrap import render_user_data
from infra.bootstrap.parts import (
    ALLOWED_KEYS,
    File,
    MergeError,
    Parts,
    cloud_config,
    dump_cloud_config,
    static,
)
from infra.plan.runner import run_plan
from tests.bootstrap.bootstrap_debroot import CODENAMES, cloud_init_package
from tests.bootstrap.bootstrap_specs import make_spec
from tests.bootstrap.bootstrap_variants import all_variants
from tests.conftest import REPO

CHECKER = Path(__file__).with_name("cloudinit_schema_check.py")


@pytest.fixture(scope="session")
def rendered(keys) -> dict[str, str]:
    documents = {
        name: render_user_data(make_spec(keys=keys, **kwargs)) for name, kwargs in all_variants().items()
    }
    # The redirector's user data as the platform stack renders it (the plan decompresses the gzip
    # EC2 receives, exactly as cloud-init does), watcher included.
    documents["redirector-prod"] = run_plan(REPO / "Pulumi.prod.yaml").user_data["redirector"]
    # The engine's `compress` (gz+b64), which no shipped node uses today.
    script = File(
        "/opt/twinhost-watcher/lib/twinhost-apex-ask",
        static("redirector/opt/twinhost-watcher/lib/twinhost-apex-ask"),
        0o755,
        compress=True,
    )
    documents["engine-compressed-file"] = dump_cloud_config(
        cloud_config(Parts(files=(script,)), {"hostname": "compressed"})
    )
    return documents


@pytest.fixture(scope="session", params=sorted(CODENAMES))
def schema_run(request, rendered) -> dict[str, Any]:
    """One subprocess per Debian release validates every variant with that release's cloud-init."""
    package = cloud_init_package(request.param)
    env = {**os.environ, "PYTHONPATH": str(package / "usr/lib/python3/dist-packages")}
    result = subprocess.run(
        [sys.executable, str(CHECKER)],
        input=json.dumps(rendered),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    run["codename"] = CODENAMES[request.param]
    return run


def test_every_variant_is_valid_for_debians_cloud_init(schema_run):
    failures = {name: errors for name, errors in schema_run["results"].items() if errors}
    assert not failures, (
        f"cloud-init {schema_run['version']} ({schema_run['codename']}) rejects:\n"
        + "\n".join(f"{name}: {errors}" for name, errors in failures.items())
    )


def test_the_schemas_know_every_key_twinhost_may_emit(schema_run):
    unknown = sorted(ALLOWED_KEYS - set(schema_run["known_keys"]))
    assert not unknown, f"cloud-init {schema_run['version']} does not know {unknown}"


def test_every_variant_uses_only_allowed_top_level_keys(rendered):
    for name, text in rendered.items():
        assert set(yaml.safe_load(text)) <= ALLOWED_KEYS, name


def test_unknown_top_level_keys_are_refused():
    with pytest.raises(MergeError, match=r"unknown cloud-config keys.*'sudo_rules'"):
        cloud_config(Parts(config={"sudo_rules": True}), {"hostname": "x"})


def test_variants_cover_providers_releases_modes_and_app_kinds(rendered):
    words = {word for name in rendered for word in name.split("-")}
    assert {
        "digitalocean",
        "linode",
        "debian12",
        "debian13",
        "proxied",
        "dnsonly",
        "demo",
        "container",
        "deb",
        "command",
        "lab",
    } <= words


def test_user_data_is_built_as_yaml_data_not_glued_text(rendered):
    for name, text in rendered.items():
        assert text.startswith("#cloud-config\n"), name
        # Round trip: what cloud-init parses is exactly what we built.
        doc = yaml.safe_load(text)
        assert isinstance(doc, dict) and doc["write_files"], name
