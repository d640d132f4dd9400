"""How the watcher gets onto the redirector: the pieces of its install, as pure functions.

The watcher (`twinhost_watcher`, a package of its own beside `infra`) runs on the redirector; this
module runs on the workstation, in the Pulumi program: it reads requirements.lock and the wheel
hashes, and is never shipped to the node.

The watcher's source (about 20 KB gzipped) does not fit in EC2 user data (16 KB in all, before
base64) next to the redirector's own files, so it travels as an S3 object instead:
`source_archive()` is a deterministic tar.gz of the whole `twinhost_watcher` package (and, beside
it, the refresh and the redirector's apex check, for the same reason: `SCRIPT_MEMBERS`), uploaded by
the platform stack under a key that contains `source_sha256()` (infra/components/
watcher_delivery.py) and unpacked on the node by the refresh timer (infra/platform_watcher.py).

What the redirector's first boot needs, each a function of plain values:
- `requirements_file(backends)`: the pinned, hash-checked requirements of core + those backends;
- `unit_file()`: the hardened systemd unit;
- `install_steps()`: the directories, the virtualenv, and the hash-pinned pip install;
- `NODE_PACKAGES`: the Debian packages those steps and the refresh timer use.
`infra.platform_watcher.node_parts` composes them with the refresh timer.

Only the DNS libraries the config's backends use are installed: boto3/botocore alone are ~100 MB.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

import twinhost_watcher
from infra.bootstrap.parts import CLOUDINIT_DIR, Command, File, static

PACKAGE_DIR = Path(twinhost_watcher.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[1]
LOCK_FILE = REPO / "requirements.lock"
# SHA-256 of every wheel the node may install, for `pip install --require-hashes`: a tampered or
# swapped wheel on the index fails the install. Refresh after a lock change:
#   .venv/bin/python -m infra.watcher_install --refresh-hashes
HASH_FILE = Path(__file__).resolve().parent / "data" / "watcher-node-wheels.sha256"
# The redirector: arm64 (t4g) or x86_64, Debian 12 (Python 3.11) or 13 (Python 3.13).
NODE_PLATFORMS = (
    ("manylinux2014_aarch64", "3.11"),
    ("manylinux2014_x86_64", "3.11"),
    ("manylinux2014_aarch64", "3.13"),
    ("manylinux2014_x86_64", "3.13"),
)

ROOT = "/opt/twinhost-watcher"
CONFIG_PATH = "/etc/twinhost/watcher.json"
SECRETS_DIR = "/etc/twinhost/watcher-secrets"
UNIT_PATH = "/etc/systemd/system/twinhost-watcher.service"
UNIT_FILE = CLOUDINIT_DIR / "redirector" / UNIT_PATH.lstrip("/")
REQUIREMENTS_PATH = f"{ROOT}/requirements.txt"
# Two scripts for Debian's python3 travel in this archive beside the package, not in user data,
# where together they took over half of EC2's 16 KB (sources: cloudinit/redirector/opt/
# twinhost-watcher/lib/): the refresh itself (user data keeps only its first stage, which runs
# it: infra.platform_watcher) and the redirector's apex check (Caddy's on-demand TLS `ask` and
# redirect gate). SHA-256 checked, staged and renamed in with the watcher's code by the refresh,
# which then restarts the apex check's unit. A third, the witness's (infra/witness.py), is started
# by the refresh when the witness's document changes.
ASK_MEMBER = "twinhost-apex-ask"
REFRESH_MEMBER = "twinhost-watcher-refresh"
WITNESS_MEMBER = "twinhost-witness"
SCRIPT_MEMBERS = (ASK_MEMBER, REFRESH_MEMBER, WITNESS_MEMBER)
ASK_SCRIPT = f"{ROOT}/lib/{ASK_MEMBER}"
# python3-venv for the virtualenv; python3-boto3 for the refresh timer's S3 and SSM reads (the
# instance role's credentials), before the virtualenv exists.
NODE_PACKAGES = ("python3-venv", "python3-boto3")

# The distributions each part needs, closed under their dependencies (a test checks the closure
# against the installed metadata), pinned to requirements.lock's versions.
NODE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "core": ("pydantic", "pydantic_core", "annotated-types", "typing_extensions", "typing-inspection"),
    "cloudflare": ("cloudflare", "httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "distro"),
    "route53": ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"),
    "rfc2136": ("dnspython",),
}


def source_files() -> list[tuple[str, bytes]]:
    """(path inside lib/, content) of every module of the `twinhost_watcher` package, then the
    node scripts (`SCRIPT_MEMBERS`)."""
    return [
        *(
            (path.relative_to(PACKAGE_DIR.parent).as_posix(), path.read_bytes())
            for path in sorted(PACKAGE_DIR.rglob("*.py"))
        ),
        *(
            (name, (CLOUDINIT_DIR / "redirector" / ROOT.lstrip("/") / "lib" / name).read_bytes())
            for name in SCRIPT_MEMBERS
        ),
    ]


def source_archive() -> bytes:
    """A byte-for-byte reproducible tar.gz of the package (same source, same bytes, same key)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in source_files():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def source_sha256() -> str:
    return hashlib.sha256(source_archive()).hexdigest()


def locked_versions(lock: Path = LOCK_FILE) -> dict[str, str]:
    versions = {}
    for line in lock.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            versions[_normal(name.split("[")[0])] = version.strip()
    return versions


def node_pins(backends: Iterable[str]) -> list[tuple[str, str]]:
    """(distribution, locked version) for core + the given backends."""
    versions = locked_versions()
    names: list[str] = []
    for part in ("core", *sorted(set(backends))):
        names.extend(n for n in NODE_DISTRIBUTIONS[part] if n not in names)
    return [(name, versions[_normal(name)]) for name in names]


def wheel_hashes() -> dict[str, list[str]]:
    """ "name==version" -> the sha256 of each of its wheels, from HASH_FILE."""
    hashes: dict[str, list[str]] = {}
    for line in HASH_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            pin, digest = line.split()
            hashes.setdefault(pin, []).append(digest)
    return hashes


def requirements(backends: Iterable[str]) -> str:
    """The node's requirements.txt: exact pins with their wheels' hashes (pip's hash mode)."""
    hashes = wheel_hashes()
    lines = []
    for name, version in node_pins(backends):
        pin = f"{_normal(name)}=={version}"
        if pin not in hashes:
            raise KeyError(f"no wheel hashes for {pin}: run python -m infra.watcher_install --refresh-hashes")
        lines.append(f"{name}=={version} " + " ".join(f"--hash={h}" for h in hashes[pin]))
    return "\n".join(lines) + "\n"


def requirements_file(backends: Iterable[str]) -> File:
    """requirements.txt for core + `backends`, where `install_steps()` reads it."""
    return File(REQUIREMENTS_PATH, requirements(backends))


def unit_file() -> File:
    """The hardened unit that runs `python -m twinhost_watcher` (cloudinit/, reasons inline)."""
    return File(UNIT_PATH, static("redirector" + UNIT_PATH))


def install_steps() -> tuple[Command, ...]:
    """First-boot commands, in order: the secrets directory (root only) and the install root, a
    virtualenv, and the install of exactly `requirements_file()`'s pins: binary wheels only, each
    checked against its hash, no dependency resolved on the node. The code itself is unpacked
    into ROOT/lib by the refresh timer (the unit's PYTHONPATH)."""
    return (
        ("install", "-d", "-m", "0700", SECRETS_DIR),
        ("install", "-d", "-m", "0755", ROOT),
        ("python3", "-m", "venv", f"{ROOT}/venv"),
        (
            f"{ROOT}/venv/bin/pip",
            "install",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--require-virtualenv",
            "-r",
            REQUIREMENTS_PATH,
        ),
    )


def refresh_hashes(download_dir: Path) -> None:
    """Download every node wheel for every node platform (PyPI) and record their SHA-256."""
    pins = [f"{name}=={version}" for name, version in node_pins(NODE_DISTRIBUTIONS)]
    for platform, python in NODE_PLATFORMS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                platform,
                "--python-version",
                python,
                "--dest",
                str(download_dir),
                *pins,
            ],
            check=True,
        )
    lines = []
    for wheel in sorted(download_dir.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{_normal(name)}=={version} sha256:{digest}")
    HASH_FILE.write_text(
        "# Written by `python -m infra.watcher_install --refresh-hashes`; do not edit.\n"
        + "\n".join(sorted(set(lines)))
        + "\n"
    )


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.watcher_install")
    parser.add_argument("--refresh-hashes", action="store_true", help=f"rewrite {HASH_FILE.name} from PyPI")
    if parser.parse_args(argv).refresh_hashes:
        with tempfile.TemporaryDirectory() as tmp:
            refresh_hashes(Path(tmp))
        print(f"wrote {HASH_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
