"""The cached Debian root filesystem every container starts from: what a provider's Debian
cloud image has (systemd, cloud-init, sshd), no more. Built once per release with debootstrap
through the lab's caching proxy, kept as a .tar.zst, unpacked per container."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from twinhost_lab.host import LabError, run
from twinhost_lab.layout import Layout

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# What a provider's Debian cloud image has that minbase lacks, and that the node's user data
# assumes (iputils-ping is "important" priority, in every cloud image).
# Without python3-cffi-backend bookworm's debootstrap fails (python3-cryptography's dependency).
INCLUDE = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "cloud-init",
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "python3",
    "python3-cffi-backend",
    "udev",
    "libpam-systemd",
    "iputils-ping",
)
# Bump when INCLUDE or the preparation below changes: the cached archive is rebuilt.
ROOTFS_VERSION = 2


def archive_path(layout: Layout) -> Path:
    return layout.cache_dir / f"rootfs-{layout.suite}-v{ROOTFS_VERSION}.tar.zst"


def ensure_rootfs(layout: Layout, log: Callable[[str], None] = print) -> tuple[Path, float | None]:
    """The archive for the layout's release, built if missing; returns it and the build seconds
    (None when it came from the cache)."""
    archive = archive_path(layout)
    if archive.exists():
        return archive, None
    started = time.monotonic()
    work = layout.cache_dir / f"build-{layout.suite}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log(f"rootfs: debootstrap {layout.suite} (first run only; cached as {archive.name})")
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                layout.suite,
                str(work),
                MIRROR,
            ],
            env={"http_proxy": f"http://127.0.0.1:{layout.proxy_port}"},
            timeout=1800,
        )
        _prepare(work, layout.suite)
        partial = archive.with_suffix(".partial")
        run(
            ["tar", "--zstd", "-C", str(work), "--numeric-owner", "--xattrs", "-cf", str(partial), "."],
            timeout=900,
        )
        partial.rename(archive)
        for stale in layout.cache_dir.glob(f"rootfs-{layout.suite}-v*.tar.zst"):
            if stale != archive:
                stale.unlink()  # an older ROOTFS_VERSION's archive: never used again
    except Exception as exc:
        raise LabError(f"building the {layout.suite} root filesystem failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return archive, time.monotonic() - started


def _prepare(tree: Path, suite: str) -> None:
    """What a cloud image has that minbase lacks: an empty machine-id (made at first boot),
    no host keys (cloud-init makes them), apt lists and caches emptied, and the image's apt
    sources (updates and the security archive, which unattended-upgrades and Lynis look for)."""
    (tree / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {suite} main\n"
        f"deb {MIRROR} {suite}-updates main\n"
        f"deb {SECURITY_MIRROR} {suite}-security main\n"
    )
    (tree / "etc/machine-id").write_text("")
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for cache in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for entry in (tree / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    # The hostname comes from cloud-init, as on a provider.
    (tree / "etc/hostname").write_text("localhost\n")


def unpack(archive: Path, tree: Path) -> None:
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    run(["tar", "--zstd", "-C", str(tree), "--numeric-owner", "--xattrs", "-xf", str(archive)], timeout=600)
