"""A replaced node rejoins its survivor's volume with no hand surgery, and never adopts a brick
that holds data (cloudinit/site/usr/local/sbin/twinhost-gluster-volume; docs/bootstrap.md,
"Replacing a node").

The rendered volume script runs against a fake `gluster` (the peer's pool list as the survivor
would answer it over `--remote-host`; the volume appears once glusterd restarts with the identity
the survivor knows) and a fake `systemctl`; glusterd.info, the peers file and the brick's volume-id
attribute are real files under tmp_path (`user.` attributes: `trusted.` needs root)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.bootstrap.bootstrap_nodes import fake_attr_tools, rendered_files
from tests.bootstrap.bootstrap_specs import make_spec

OWN = "11111111-1111-1111-1111-111111111111"  # this fresh node's glusterd UUID
OLD = "22222222-2222-2222-2222-222222222222"  # the lost node's, which the survivor still lists
SURVIVOR = "33333333-3333-3333-3333-333333333333"
VOLUME_ID = "44444444-4444-4444-4444-444444444444"
VOLUME_HEX = VOLUME_ID.replace("-", "")
OTHER_ID = "55555555-5555-5555-5555-555555555555"
XATTR = "user.glusterfs.volume-id"
MARK = "user.replace-brick"
OP_VERSION = "operating-version=100000"


@dataclass
class Run:
    calls: list[str]
    systemctl: list[str]
    marked: list[str]  # the replace-brick marks set through the temporary mount
    glusterd_info: str
    peers: dict[str, str]
    stamp: str | None
    output: str
    finished: bool


def _run(
    tmp_path: Path,
    role: str,
    *,
    known_as: str | None,
    volume_here: bool = False,
    brick_files: tuple[str, ...] = (),
    stamp: str | None = None,
    seconds: float = 30,
) -> Run:
    """The volume script on a node of `role` whose survivor lists this node's mesh address as
    `known_as` (None: not at all). `volume_here`: the volume already exists on this node (a
    node with a past). Stops after `seconds` when the script waits for ever."""
    spec = make_spec("digitalocean" if role == "primary" else "linode")
    primary, secondary = (spec.mesh_address, spec.peer.mesh_address)[:: 1 if role == "primary" else -1]
    files = rendered_files(spec)
    tmp_path.mkdir(parents=True, exist_ok=True)
    env_file = tmp_path / "gluster.env"
    env_file.write_text(
        "".join(
            line.replace("=/srv/", f"={tmp_path}/srv/")
            for line in files["/etc/twinhost/gluster.env"].content.splitlines(keepends=True)
        )
    )
    brick = tmp_path / "srv/gluster/shared"
    brick.mkdir(parents=True)
    (tmp_path / "srv/shared").mkdir()  # the mount point (mounting itself is stubbed out)
    for name in brick_files:
        (brick / name).write_text("a file of the site\n")
    if stamp:
        os.setxattr(brick, XATTR, bytes.fromhex(stamp.replace("-", "")))
    glusterd = tmp_path / "glusterd"
    glusterd.mkdir()
    (glusterd / "glusterd.info").write_text(f"UUID={OWN}\n{OP_VERSION}\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    if volume_here:
        (state / "volume").touch()
    pool = f"{SURVIVOR}\tlocalhost\tConnected\n" + (
        f"{known_as}\t{spec.mesh_address}\tDisconnected\n" if known_as else ""
    )
    (fake / "gluster").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {state}/calls\n'
        'case "$*" in\n'
        f"  *--remote-host=*pool\\ list*) printf 'UUID\\tHostname\\tState\\n{pool}'; exit 0 ;;\n"
        f'  *"volume info"*) [ -e {state}/volume ] || exit 1\n'
        f'     printf "Volume Name: x\\nVolume ID: {VOLUME_ID}\\nStatus: Started\\n"\n'
        f'     printf "Brick1: {primary}:{brick}\\nBrick2: {secondary}:{brick}\\n"; exit 0 ;;\n'
        # gluster stamps both bricks with the new volume's id while it creates it.
        f'  *"volume create"*) touch {state}/volume\n'
        f'     python3 -c \'import os; os.setxattr("{brick}", "{XATTR}", bytes.fromhex("{VOLUME_HEX}"))\' ;;\n'
        '  *"volume status"*) echo "Online               : Y" ;;\n'
        '  *"heal-count"*) printf "Brick x\\nNumber of entries: 0\\n" ;;\n'
        '  *"peer status"*) printf "Hostname: %s\\nUuid: x\\nState: Peer in Cluster (Connected)\\n" "$PEER" ;;\n'
        "esac\nexit 0\n"
    )
    # glusterd restarted with the identity the survivor knows: the survivor hands the volume over.
    (fake / "systemctl").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {state}/systemctl\n'
        f'[ "$*" = "start glusterd.service" ] && grep -q "^UUID={known_as}$" {glusterd}/glusterd.info '
        f"&& touch {state}/volume\n"
        "exit 0\n"
    )
    # The replace-brick mount: its marking attribute kept as the mount is removed.
    (fake / "glusterfs").write_text(f'#!/bin/sh\necho "$*" >> {state}/glusterfs\n')
    (fake / "umount").write_text(
        "#!/bin/sh\n"
        f'python3 -c \'import os, sys; print(os.getxattr(sys.argv[1], "{MARK}").decode())\' "$1" '
        f">> {state}/marked\n"
        f"echo umount >> {state}/calls\n"
    )
    # The peer's glusterd port answers (bash /dev/tcp probe); anything else runs as asked.
    (fake / "timeout").write_text('#!/bin/sh\nshift\n[ "$1" = bash ] && exit 0\nexec "$@"\n')
    for name in ("findmnt", "hostname", "chown"):
        (fake / name).write_text("#!/bin/sh\nexit 0\n")
    fake_attr_tools(fake)
    for path in fake.iterdir():
        path.chmod(0o755)
    command = ["bash", "-c", files["/usr/local/sbin/twinhost-gluster-volume"].content]
    env = {
        "PATH": f"{fake}:/usr/bin:/bin",
        "TWINHOST_GLUSTER_ENV": str(env_file),
        "GLUSTERD_DIR": str(glusterd),
        "XATTRS": "user",
        "TMPDIR": str(tmp_path),
        "RETRY_SECONDS": "0.2",
        "PEER": spec.peer.mesh_address,
    }
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds)
        output, finished = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as exc:
        output, finished = str(exc.stdout or b"", "utf-8") + str(exc.stderr or b"", "utf-8"), False
    try:
        value: str | None = os.getxattr(brick, XATTR).hex()
    except OSError:
        value = None

    def lines(name: str) -> list[str]:
        path = state / name
        return path.read_text().splitlines() if path.exists() else []

    peers = glusterd / "peers"
    return Run(
        calls=lines("calls"),
        systemctl=lines("systemctl"),
        marked=lines("marked"),
        glusterd_info=(glusterd / "glusterd.info").read_text(),
        peers={p.name: p.read_text() for p in peers.iterdir()} if peers.is_dir() else {},
        stamp=value,
        output=output,
        finished=finished,
    )


def test_a_replaced_secondary_takes_back_its_identity_and_restores_its_empty_brick(tmp_path):
    run = _run(tmp_path, "secondary", known_as=OLD)
    assert run.finished, run.output
    # The identity the survivor knows, with glusterd.info's operating-version kept.
    assert run.glusterd_info == f"UUID={OLD}\n{OP_VERSION}\n"
    assert run.peers == {
        SURVIVOR: f"uuid={SURVIVOR}\nstate=3\nhostname1={make_spec('linode').peer.mesh_address}\n"
    }
    assert run.systemctl.index("stop glusterd.service") < run.systemctl.index("start glusterd.service")
    # Marked empty through a replace-brick mount while still stopped (the survivor's brick
    # becomes the source), then stamped with the volume's id, started, and the heal started.
    site = make_spec().site
    assert run.marked == [f"{site}-client-1"]
    assert run.stamp == VOLUME_HEX
    assert (tmp_path / "srv/gluster/shared/.glusterfs").is_dir()
    start = run.calls.index(f"--mode=script volume start {site} force")
    assert run.calls.index("umount") < start < run.calls.index(f"--mode=script volume heal {site}")
    assert "heal complete" in run.output
    assert not [c for c in run.calls if "volume create" in c or "peer probe" in c]


def test_a_replaced_primary_takes_back_its_identity_instead_of_creating_a_volume(tmp_path):
    run = _run(tmp_path, "primary", known_as=OLD)
    assert run.finished, run.output
    assert run.glusterd_info.startswith(f"UUID={OLD}\n")
    assert not [c for c in run.calls if "volume create" in c]
    assert run.marked == [f"{make_spec().site}-client-0"] and run.stamp == VOLUME_HEX


def test_a_first_boot_never_touches_glusterds_identity(tmp_path):
    # The survivor does not know this address (nothing probed it yet), or knows it under this
    # node's own UUID (the primary just probed it): the normal first boot, left as it was.
    for known_as in (None, OWN):
        run = _run(tmp_path / str(known_as), "primary", known_as=known_as)
        assert run.finished, run.output
        assert run.glusterd_info == f"UUID={OWN}\n{OP_VERSION}\n"
        assert run.peers == {} and "stop glusterd.service" not in run.systemctl
        assert [c for c in run.calls if "volume create" in c]
        assert not [c for c in run.calls if " force" in c and "volume start" in c]
        assert not [c for c in run.calls if "heal" in c] and run.marked == []


def test_a_brick_with_data_is_never_adopted(tmp_path):
    # Fresh glusterd, but data in the brick: the identity is not taken (the script keeps
    # waiting, as a secondary does, for a volume it was invited into).
    run = _run(tmp_path / "fresh", "secondary", known_as=OLD, brick_files=("letter.txt",), seconds=4)
    assert not run.finished
    assert run.glusterd_info == f"UUID={OWN}\n{OP_VERSION}\n" and run.peers == {}
    assert "stop glusterd.service" not in run.systemctl
    # The volume here and a brick with data but no volume id: refused, never stamped or forced.
    run = _run(tmp_path / "member", "secondary", known_as=None, volume_here=True, brick_files=("letter.txt",))
    assert run.finished, run.output
    assert "refusing" in run.output and "holds data" in run.output
    assert run.stamp is None
    assert not [c for c in run.calls if " force" in c or "heal" in c] and run.marked == []


def test_a_brick_of_another_volume_is_never_adopted(tmp_path):
    run = _run(tmp_path, "secondary", known_as=None, volume_here=True, stamp=OTHER_ID)
    assert run.finished, run.output
    assert "refusing" in run.output and "another volume" in run.output
    assert run.stamp == OTHER_ID.replace("-", "")
    assert not [c for c in run.calls if " force" in c or "heal" in c] and run.marked == []


def test_a_brick_of_this_volume_is_left_as_it_is(tmp_path):
    # Every later boot of a healthy member: no stamp, no forced start, no full heal.
    run = _run(tmp_path, "secondary", known_as=None, volume_here=True, stamp=VOLUME_ID, brick_files=("a",))
    assert run.finished, run.output
    assert not [c for c in run.calls if " force" in c or "heal" in c] and run.marked == []
    assert "stop glusterd.service" not in run.systemctl
