"""The site's shared GlusterFS volume: a two-brick replica over the tinc mesh, with the
platform's witness as thin-arbiter (the third vote).

Both nodes run glusterd and hold a brick. The thin-arbiter is one process on the witness that
serves every site's volume, outside the pair's trusted pool (`infra.witness`): it is reached at
the witness's address in this site's mesh (`.3`, port 24007). With client quorum on, a node cut
off from its peer may write only if the thin-arbiter sides with it (the first to ask marks the
other brick bad); the other side's writes fail, its /health says so (`twinhost-health-probe`) and
the watcher takes it out of the record. The volume is named after the site: the thin-arbiter keeps
one id file per volume name, shared by every site it serves. Only the primary (`spec.is_primary`) probes the peer
and creates the volume, once the peer's glusterd answers over tinc, retrying until it does; the
secondary only waits for the volume. Both mount it at `/srv/shared` through an fstab automount
that survives a reboot and the loss of either server (see `fstab_line`). The quorum choice is
explained in the script and in docs/bootstrap.md.

What it deliberately does not do: replace a failed node's brick automatically (a brick that
belongs to a volume is refused on purpose; the runbook is in the docs), or convert a volume made
before the witness existed (plain replica 2) to a thin-arbiter one.
"""

from __future__ import annotations

from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import NodeSpec
from infra.bootstrap.tinc import MESH_INTERFACE
from infra.witness import THIN_ARBITER_DIR

SHARED_DIR = "/srv/shared"
BRICK_DIR = "/srv/gluster/shared"
# The write probe's verdict, read by nginx's /health (absent: the last probe wrote).
HEALTH_FLAG = "/run/twinhost/shared-write-failed"


def volume_name(site: str) -> str:
    """The site's volume: its name, unique among the sites one thin-arbiter serves."""
    return site


def fstab_line(spec: NodeSpec) -> str:
    """The /etc/fstab entry for the shared volume on this node.

    - the volume file comes from the local glusterd, or the peer's if that is down
      (backup-volfile-servers); after mounting, the client talks to both bricks directly;
    - _netdev + x-systemd.automount: boot never waits for the mount; the first access mounts it,
      and it comes back after every reboot;
    - x-systemd.mount-timeout: an access gives up after 30 s instead of hanging;
    - after glusterd and the mesh, which the bricks are addressed by.
    """
    options = ",".join(
        (
            "defaults",
            "_netdev",
            "nofail",
            f"backup-volfile-servers={spec.peer.mesh_address}",
            "log-level=WARNING",
            "x-systemd.automount",
            "x-systemd.mount-timeout=30",
            "x-systemd.after=glusterd.service",
            f"x-systemd.after=tinc@{spec.tinc_net}.service",
        )
    )
    return f"localhost:/{volume_name(spec.site)} {SHARED_DIR} glusterfs {options} 0 0\n"


def glusterfs_parts(spec: NodeSpec) -> Parts:
    role = "primary" if spec.is_primary else "secondary"
    env = "".join(
        (
            "# twinhost-gluster-volume settings (from the stack, at first boot).\n",
            f"ROLE={role}\n",
            f"VOLUME={volume_name(spec.site)}\n",
            f"BRICK_DIR={BRICK_DIR}\n",
            f"SHARED_DIR={SHARED_DIR}\n",
            f"SELF_MESH_ADDRESS={spec.mesh_address}\n",
            f"PEER_MESH_ADDRESS={spec.peer.mesh_address}\n",
            f"MESH_INTERFACE={MESH_INTERFACE}\n",
            # Empty: no witness, a plain replica 2 (no third vote).
            f"THIN_ARBITER={f'{spec.witness.mesh_address}:{THIN_ARBITER_DIR}' if spec.witness else ''}\n",
            f"HEALTH_FLAG={HEALTH_FLAG}\n",
        )
    )
    files = (
        File("/etc/twinhost/gluster.env", env),
        File(
            "/usr/local/sbin/twinhost-gluster-volume",
            static("site/usr/local/sbin/twinhost-gluster-volume"),
            SCRIPT_MODE,
        ),
        File(
            "/etc/systemd/system/twinhost-gluster-volume.service",
            static("site/etc/systemd/system/twinhost-gluster-volume.service"),
        ),
        File(
            "/etc/systemd/system/glusterd.service.d/twinhost.conf",
            template("site/etc/systemd/system/glusterd.service.d/twinhost.conf.j2", net=spec.tinc_net),
        ),
        File("/etc/fstab", fstab_line(spec), append=True),
        File(
            "/usr/local/sbin/twinhost-health-probe",
            static("site/usr/local/sbin/twinhost-health-probe"),
            SCRIPT_MODE,
        ),
        File(
            "/etc/systemd/system/twinhost-health-probe.service",
            static("site/etc/systemd/system/twinhost-health-probe.service"),
        ),
    )
    return Parts(
        name="glusterfs",
        files=files,
        packages=("glusterfs-server", "glusterfs-client"),
        runcmd=(
            ("systemctl", "enable", "--now", "glusterd.service"),
            ("systemctl", "daemon-reload"),  # the fstab generator makes srv-shared.automount
            ("systemctl", "enable", "twinhost-gluster-volume.service"),
            # --no-block: it may wait for the peer far longer than first boot should take.
            ("systemctl", "start", "--no-block", "twinhost-gluster-volume.service"),
            # /health fails while the shared volume refuses writes (the minority side).
            ("systemctl", "enable", "--now", "twinhost-health-probe.service"),
        ),
    )
