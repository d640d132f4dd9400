"""How the watcher gets onto the redirector: the pieces the platform stack puts in its cloud-init.

The watcher's source (about 20 KB gzipped) does not fit in EC2 user data (16 KB in all, before
base64) next to the redirector's own files, so it travels as an S3 object instead:

1. The platform stack uploads `source_archive()` (a deterministic tar.gz of this package) to a
   private bucket under a key that contains `source_sha256()`, and lets the redirector's instance
   role `s3:GetObject` it.
2. `node_install(...)` gives what the redirector's cloud-init needs: Debian packages, the files
   (config, unit, pinned requirements; the secrets, which the caller should rather fetch from SSM
   Parameter Store, see docs/watcher.md) and first-boot commands that fetch the archive with
   Debian's python3-boto3, check its SHA-256, unpack it under /opt/twinhost-watcher/lib, build a
   virtualenv from exact pins (binary wheels only, no dependencies resolved on the node) and start
   the unit.

Only the DNS libraries the config's backends use are installed: boto3/botocore alone are ~100 MB.
This module runs on the Pulumi side (it reads requirements.lock); it is not needed on the node.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO = PACKAGE_DIR.parents[1]
LOCK_FILE = REPO / "requirements.lock"
# SHA-256 of every wheel the node may install, for `pip install --require-hashes`: a tampered or
# swapped wheel on the index fails the install. Refresh after a lock change:
#   .venv/bin/python -m infra.watcher.install --refresh-hashes
HASH_FILE = PACKAGE_DIR / "node-wheels.sha256"
# The redirector: arm64 (t4g) or x86_64, Debian 12 (Python 3.11) or 13 (Python 3.13).
NODE_PLATFORMS = (("manylinux2014_aarch64", "3.11"), ("manylinux2014_x86_64", "3.11"),
                  ("manylinux2014_aarch64", "3.13"), ("manylinux2014_x86_64", "3.13"))
UNIT_FILE = REPO / "cloudinit/redirector/etc/systemd/system/twinhost-watcher.service"

ROOT = "/opt/twinhost-watcher"
CONFIG_PATH = "/etc/twinhost/watcher.json"
SECRETS_DIR = "/etc/twinhost/watcher-secrets"
UNIT_PATH = "/etc/systemd/system/twinhost-watcher.service"

# The distributions each part needs, closed under their dependencies (a test checks the closure
# against the installed metadata), pinned to requirements.lock's versions.
NODE_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "core": ("pydantic", "pydantic_core", "annotated-types", "typing_extensions", "typing-inspection"),
    "cloudflare": ("cloudflare", "httpx", "httpcore", "h11", "anyio", "sniffio", "idna", "certifi", "distro"),
    "route53": ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"),
    "rfc2136": ("dnspython",),
}

# Runs on the node with Debian's python3-boto3 and the instance role: bucket, key, destination.
_FETCH = (
    "import sys, boto3; "
    "boto3.client('s3').download_file(sys.argv[1], sys.argv[2], sys.argv[3])"
)


@dataclass(frozen=True)
class NodeFile:
    path: str
    content: str
    mode: int = 0o644
    secret: bool = False  # holds a credential: keep it out of anything printed


@dataclass(frozen=True)
class NodeInstall:
    packages: tuple[str, ...]
    files: tuple[NodeFile, ...]
    runcmd: tuple[tuple[str, ...] | str, ...]


def source_files() -> list[tuple[str, bytes]]:
    """(path inside lib/, content) of every module, plus an empty `infra/__init__.py`."""
    files = [("infra/__init__.py", b"")]
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name == "install.py":
            continue  # Pulumi-side only
        files.append((str(path.relative_to(REPO)), path.read_bytes()))
    return files


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
    """"name==version" -> the sha256 of each of its wheels, from HASH_FILE."""
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
            raise KeyError(f"no wheel hashes for {pin}: run python -m infra.watcher.install --refresh-hashes")
        lines.append(f"{name}=={version} " + " ".join(f"--hash={h}" for h in hashes[pin]))
    return "\n".join(lines) + "\n"


def refresh_hashes(download_dir: Path) -> None:
    """Download every node wheel for every node platform (PyPI) and record their SHA-256."""
    import subprocess
    import sys

    pins = [f"{name}=={version}" for name, version in node_pins(NODE_DISTRIBUTIONS)]
    for platform, python in NODE_PLATFORMS:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--platform", platform, "--python-version", python, "--dest", str(download_dir), *pins],
            check=True,
        )
    lines = []
    for wheel in sorted(download_dir.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{_normal(name)}=={version} sha256:{digest}")
    HASH_FILE.write_text("# Written by `python -m infra.watcher.install --refresh-hashes`; do not edit.\n"
                         + "\n".join(sorted(set(lines))) + "\n")


def node_install(config_json: str, backends: Iterable[str], *, bucket: str, key: str,
                 archive_sha256: str, secrets: Mapping[str, str] | None = None) -> NodeInstall:
    """What the redirector's cloud-init does to install and start the watcher."""
    files = [
        NodeFile(f"{ROOT}/requirements.txt", requirements(backends)),
        NodeFile(CONFIG_PATH, config_json),  # no secrets in it; the DynamicUser must read it
        NodeFile(UNIT_PATH, UNIT_FILE.read_text()),
    ]
    for name, value in sorted((secrets or {}).items()):
        files.append(NodeFile(f"{SECRETS_DIR}/{name}", value + "\n", mode=0o600, secret=True))
    archive = f"{ROOT}/source.tar.gz"
    runcmd: list[tuple[str, ...] | str] = [
        ("install", "-d", "-m", "0700", SECRETS_DIR),
        ("install", "-d", "-m", "0755", f"{ROOT}/lib"),
        ("python3", "-c", _FETCH, bucket, key, archive),
        f"echo '{archive_sha256}  {archive}' | sha256sum --check --strict --quiet",
        ("tar", "-xzf", archive, "-C", f"{ROOT}/lib", "--no-same-owner"),
        ("python3", "-m", "venv", f"{ROOT}/venv"),
        (f"{ROOT}/venv/bin/pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
         "--require-hashes", "--require-virtualenv", "-r", f"{ROOT}/requirements.txt"),
        (f"{ROOT}/venv/bin/python", "-m", "compileall", "-q", f"{ROOT}/lib"),
        ("systemctl", "daemon-reload"),
        ("systemctl", "enable", "--now", "twinhost-watcher.service"),
    ]
    return NodeInstall(packages=("python3-venv", "python3-boto3"), files=tuple(files), runcmd=tuple(runcmd))


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m infra.watcher.install")
    parser.add_argument("--refresh-hashes", action="store_true", help=f"rewrite {HASH_FILE.name} from PyPI")
    if parser.parse_args().refresh_hashes:
        with tempfile.TemporaryDirectory() as tmp:
            refresh_hashes(Path(tmp))
        print(f"wrote {HASH_FILE}")
