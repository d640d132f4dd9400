"""Debian's own tools for the bootstrap tests, fetched once and cached.

The tests check rendered files with the programs that will read them on a node: cloud-init's
schema from Debian's `cloud-init` package, and `sshd -t`, `nginx -t`, `tincd`, `visudo`,
`fail2ban-client` from Debian 12 and 13. Packages come from Debian's mirror with `apt-get`
(a private apt state per release, so the host's own apt configuration is neither read nor
changed), and are unpacked with `dpkg-deb` into a directory under the cache. No maintainer
script runs and nothing is installed on the host; tools run inside that directory with `chroot`.

Cache: $TWINHOST_CACHE or /var/cache/twinhost. Delete a directory there to fetch it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("TWINHOST_CACHE", "/var/cache/twinhost"))
CODENAMES = {12: "bookworm", 13: "trixie"}
MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# What the chroots need to run the tools, and nothing that starts a service.
TOOL_PACKAGES = (
    "openssh-server",
    "openssh-client",
    "nginx",
    "tinc",
    "sudo",
    "fail2ban",
    "python3-systemd",
    "openssl",
    "iproute2",
    # Essential packages are not in any dependency closure; the chroot needs these few.
    "libc-bin",
    "dash",
    "bash",
    "coreutils",
    "grep",
    "sed",
    "diffutils",
    "util-linux",
)


class DebrootError(RuntimeError):
    pass


@contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise DebrootError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _apt(debian: int) -> list[str]:
    """apt-get options for a private state directory for one Debian release."""
    codename = CODENAMES[debian]
    state = CACHE / f"apt-{codename}"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = state / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {codename} main\n")
    status = state / "status"
    status.touch()
    options = {
        "Dir::Etc::sourcelist": sources,
        "Dir::Etc::sourceparts": "-",
        "Dir::State::Lists": state / "lists",
        "Dir::State::status": status,  # empty: apt resolves the whole dependency closure
        "Dir::Cache": state,
        "Dir::Cache::archives": state / "archives",
        "APT::Install-Recommends": "false",
        "Debug::NoLocking": "true",
    }
    argv = []
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    if not any((state / "lists").glob("*Packages*")):
        _run(["apt-get", *argv, "-qq", "update"])
    return argv


def _download(debian: int, packages: Sequence[str], closure: bool) -> list[Path]:
    argv = _apt(debian)
    archives = CACHE / f"apt-{CODENAMES[debian]}" / "archives"
    if closure:
        _run(
            ["apt-get", *argv, "-qq", "--download-only", "-y", "install", *packages],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return sorted(archives.glob("*.deb"))
    with_dir = CACHE / f"apt-{CODENAMES[debian]}" / "single"
    with_dir.mkdir(exist_ok=True)
    _run(["apt-get", *argv, "-qq", "download", *packages], cwd=with_dir)
    return sorted(p for p in with_dir.glob("*.deb") if p.name.split("_")[0] in packages)


def _extract(debs: Sequence[Path], root: Path) -> None:
    for deb in debs:
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        _run(["tar", "-x", "--keep-directory-symlink", "-C", str(root)], stdin=tar.stdout)
        if tar.wait() != 0:
            raise DebrootError(f"dpkg-deb could not read {deb}")


def cloud_init_package(debian: int) -> Path:
    """The unpacked `cloud-init` package of a Debian release; its Python code is under
    `usr/lib/python3/dist-packages`."""
    codename = CODENAMES[debian]
    root = CACHE / f"cloud-init-{codename}"
    with _locked(f"cloud-init-{codename}"):
        if not (root / ".complete").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            _extract(_download(debian, ["cloud-init"], closure=False), root)
            (root / ".complete").write_text("")
    return root


def tool_root(debian: int, packages: Sequence[str] = TOOL_PACKAGES) -> Path:
    """A directory holding `packages` and their dependencies of one Debian release, unpacked,
    ready for `chroot` (merged /usr, a passwd with the service users, /dev nodes)."""
    codename = CODENAMES[debian]
    digest = hashlib.sha256(" ".join(sorted(packages)).encode()).hexdigest()[:10]
    root = CACHE / f"tools-{codename}-{digest}"
    with _locked(root.name):
        if (root / ".complete").exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for alias in ("bin", "sbin", "lib", "lib64"):
            (root / "usr" / alias).mkdir(parents=True, exist_ok=True)
            (root / alias).symlink_to(f"usr/{alias}")
        _extract(_download(debian, packages, closure=True), root)
        _finish_root(root)
        (root / ".complete").write_text("")
    return root


def _finish_root(root: Path) -> None:
    etc = root / "etc"
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
        "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nsudo:x:27:\nwww-data:x:33:\nnogroup:x:65534:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "shadow").chmod(0o640)
    # sshd's main config is written by the package's postinst from this template (not run here).
    template = root / "usr/share/openssh/sshd_config"
    if template.exists():
        shutil.copy(template, etc / "ssh" / "sshd_config")
    for name in ("run/sshd", "var/log/nginx", "var/lib/nginx", "tmp"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for name, minor in (("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)):
        node = dev / name
        if not node.exists():
            os.mknod(node, 0o666 | 0o020000, os.makedev(1, minor))
    _run(["chroot", str(root), "/sbin/ldconfig"])


def chroot(root: Path, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside `root` (not checked: callers assert on the result)."""
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def scratch_copy(root: Path, into: Path) -> Path:
    """A throwaway copy of a tool root made of hard links (fast). Write files into it only with
    `write_fresh`, which replaces a path instead of writing through a shared inode."""
    _run(["cp", "-al", str(root), str(into)])
    return into


def write_fresh(path: Path, content: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    path.chmod(mode)


if __name__ == "__main__":
    # `python tests/bootstrap/debroot.py` fetches everything ahead of a test run.
    for release in CODENAMES:
        print(cloud_init_package(release), file=sys.stderr)
        print(tool_root(release), file=sys.stderr)
