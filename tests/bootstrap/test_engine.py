"""The one user-data engine (infra.bootstrap.parts) and the cloudinit/ tree it loads from.

Site nodes and the redirector build their user data with the same `File`/`Parts`/`merge`; a
file's folder under cloudinit/ (`common/`, `site/`, `redirector/`) says which machine gets it."""

from __future__ import annotations

import base64
import gzip
import io
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from infra import platform_watcher, watcher_install
from infra.bootstrap import render_user_data
from infra.bootstrap.parts import (
    CLOUDINIT_DIR,
    MACHINES,
    File,
    MergeError,
    Parts,
    cloud_config,
    dump_cloud_config,
    merge,
    static,
    template,
)
from infra.components import node_converge
from infra.redirector import RedirectorSpec
from infra.redirector import render_user_data as render_redirector
from tests.bootstrap.bootstrap_specs import FAKE_KEYS, make_spec
from tests.bootstrap.bootstrap_variants import all_variants

# In cloudinit/ for operators to read, installed by nobody: the watcher's example config
# (docs/watcher.md; tests/watcher load it).
EXAMPLES = {"redirector/etc/twinhost/watcher.example.json"}
# Placeholders in a template's path, filled in by its renderer (the tinc network and node).
PLACEHOLDERS = {"NET": "[a-z0-9_]+", "NODE": "[a-z0-9_]+"}


def _written(text: str) -> set[str]:
    return {entry["path"] for entry in yaml.safe_load(text).get("write_files", [])}


def _site_paths() -> set[str]:
    # And what `pulumi up`'s converge command installs on each running node (node_converge).
    return {node_converge.CONVERGE}.union(
        *(
            _written(render_user_data(make_spec(keys=FAKE_KEYS, **kwargs)))
            for kwargs in all_variants().values()
        )
    )


def _redirector_paths() -> set[str]:
    spec = RedirectorSpec(
        hostname="redirector",
        debian=12,
        admin_user="ops",
        ssh_keys=(make_spec().ssh_keys[0],),
        ops_zone="ops.example",
        acme_email="ops@example.com",
        admin_cidrs=("203.0.113.0/24",),
    )
    watcher = platform_watcher.node_parts(bucket="bucket", region="eu-west-1", backends=("cloudflare",))
    # And what the refresh unpacks into /opt/twinhost-watcher/lib from the code archive (S3).
    with tarfile.open(fileobj=io.BytesIO(watcher_install.source_archive())) as tar:
        unpacked = {f"{watcher_install.ROOT}/lib/{name}" for name in tar.getnames()}
    return _written(render_redirector(spec, extra_parts=[watcher])) | unpacked


def _target_pattern(source: Path) -> re.Pattern[str]:
    """`site/etc/tinc/NET/tinc.conf.j2` -> the target paths it may render to."""
    target = "/" + source.relative_to(CLOUDINIT_DIR).as_posix().split("/", 1)[1].removesuffix(".j2")
    words = re.split(r"(NET|NODE)", target)
    return re.compile("".join(PLACEHOLDERS.get(word, re.escape(word)) for word in words) + "$")


def test_cloudinit_holds_one_folder_per_machine():
    assert sorted(p.name for p in CLOUDINIT_DIR.iterdir()) == sorted(MACHINES)
    assert not [p for p in CLOUDINIT_DIR.iterdir() if p.is_file()]


def test_every_cloudinit_file_lands_on_exactly_the_machines_its_folder_names():
    landed = {"site": _site_paths(), "redirector": _redirector_paths()}
    expected = {"common": {"site", "redirector"}, "site": {"site"}, "redirector": {"redirector"}}
    wrong = []
    for source in sorted(CLOUDINIT_DIR.rglob("*")):
        name = source.relative_to(CLOUDINIT_DIR).as_posix()
        if not source.is_file() or name in EXAMPLES:
            continue
        pattern = _target_pattern(source)
        on = {machine for machine, paths in landed.items() if any(map(pattern.match, paths))}
        if on != expected[name.split("/", 1)[0]]:
            wrong.append(f"cloudinit/{name} lands on {sorted(on) or 'no machine'}")
    assert not wrong, "\n".join(wrong)


def test_the_loader_wants_the_machine_folder():
    assert static("common/etc/issue") == (CLOUDINIT_DIR / "common/etc/issue").read_text()
    assert "Port = 655" in template(
        "site/etc/tinc/NET/hosts/NODE.j2",
        name="a",
        address="192.0.2.1",
        port=655,
        subnet="10.0.0.1/32",
        public_key_pem="KEY",
    )
    for source in ("etc/issue", "/common/etc/issue", "lab/etc/issue"):
        with pytest.raises(ValueError, match="starts with the machine folder"):
            static(source)


def test_a_compressed_file_ships_as_gz_b64_of_its_content():
    content = "#!/bin/sh\n# a comment that is content in a script\necho twinhost\n" * 50
    (entry,) = cloud_config(
        Parts(files=(File("/usr/local/bin/x", content, 0o755, compress=True),)), {"hostname": "x"}
    )["write_files"]
    assert entry["encoding"] == "gz+b64"
    assert gzip.decompress(base64.b64decode(entry["content"])).decode() == content
    assert entry["permissions"] == "0755" and len(entry["content"]) < len(content)
    again = dump_cloud_config(cloud_config(Parts(files=(File("/x", content, compress=True),)), {}))
    assert again == dump_cloud_config(cloud_config(Parts(files=(File("/x", content, compress=True),)), {}))


def test_merge_names_both_parts_of_every_conflict():
    one = Parts(name="hardening", files=(File("/etc/x", "1"),), config={"swap": {}})
    two = Parts(files=(File("/etc/x", "2"), File("/etc/y", "3")), config={"swap": {}})
    with pytest.raises(MergeError) as raised:
        merge([one, two])
    assert str(raised.value) == (
        "/etc/x is written by both hardening and part 2; "
        "the cloud-config key 'swap' is set by both hardening and part 2"
    )
    # Appending to a file another part wrote is what `append` is for.
    assert len(merge([one, Parts(files=(File("/etc/x", "more", append=True),))]).files) == 2
