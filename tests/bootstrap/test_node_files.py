"""Rules for the rendered hardening, firewall, GlusterFS and app files (one test per rule)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from infra.bootstrap.glusterfs import fstab_line
from infra.bootstrap.render import node_parts
from infra.bootstrap.webfront import cloudflare_ranges
from tests.bootstrap import bootstrap_debroot
from tests.bootstrap.bootstrap_debroot import chroot
from tests.bootstrap.bootstrap_nodes import fake_attr_tools, install, rendered_files, scratch_root
from tests.bootstrap.bootstrap_specs import ADMIN_CIDRS, make_spec


def firewall(**kwargs) -> str:
    return rendered_files(make_spec(**kwargs))["/usr/local/sbin/twinhost-firewall"].content


def test_firewall_denies_incoming_by_default_and_limits_ssh_to_admin_networks():
    text = firewall()
    assert "$ufw default deny incoming" in text
    ssh = [line for line in text.splitlines() if "port 22 " in line]
    assert ssh and all(line.startswith("$ufw limit in proto tcp from ") for line in ssh)
    assert {line.split(" from ")[1].split(" ")[0] for line in ssh} == set(ADMIN_CIDRS)
    assert text.rstrip().endswith("$ufw --force enable")


def test_web_is_open_to_all_when_dns_only_and_to_cloudflare_and_health_checkers_when_proxied():
    assert "allow in proto tcp from any to any port 80,443" in firewall(proxied=False)
    # make_spec gives no http_sources (the Pulumi side fills them); with them, only those open:
    spec = make_spec(proxied=True)
    from dataclasses import replace

    restricted = replace(spec, http_sources=cloudflare_ranges())
    text = rendered_files(restricted)["/usr/local/sbin/twinhost-firewall"].content
    web = {line.split(" from ")[1].split(" ")[0] for line in text.splitlines() if "port 80,443" in line}
    assert web == set(cloudflare_ranges()) | {"192.0.2.200/32"}


def test_only_glusterfs_from_the_peers_mesh_address_is_allowed_on_the_mesh():
    """Issue 15: the mesh used to be open on every port to the peer; it carries GlusterFS only."""
    spec = make_spec()
    mesh_lines = [line for line in firewall().splitlines() if " on tinc0 " in line]
    peer = f"{spec.peer.mesh_address}/32"
    assert mesh_lines == [
        f"$ufw allow in on tinc0 proto tcp from {peer} to any port 24007 comment 'glusterd from the peer over the mesh'",
        f"$ufw allow in on tinc0 proto tcp from {peer} to any port 49152:60999 comment 'gluster bricks from the peer over the mesh'",
    ]
    assert "allow in on tinc0 comment" not in firewall()


def _shellify(runcmd) -> str:
    """What cloud-init makes of runcmd (cloudinit.util.shellify): one `sh` script, a line per
    entry, argv lists quoted, strings as they are."""
    lines = [c if isinstance(c, str) else " ".join(shlex.quote(a) for a in c) for c in runcmd]
    return "#!/bin/sh\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("firewall_exit", [1, 0])
def test_a_failed_firewall_stops_first_boot_before_any_service_starts(tmp_path, firewall_exit):
    """Fail closed: after `ufw --force reset`, a failing firewall script must leave policy-rc.d in
    place and start nothing; runcmd is plain `sh`, which would otherwise run every next line."""
    script = _shellify(node_parts(make_spec()).runcmd)
    fake = tmp_path / "fs"
    (fake / "usr/local/sbin").mkdir(parents=True)
    (fake / "usr/sbin").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name in (
        "twinhost-sysctl",
        "twinhost-login-defs",
        "twinhost-sshd-finish",
        "twinhost-firewall",
        "twinhost-certs",
    ):
        code = firewall_exit if name == "twinhost-firewall" else 0
        (fake / "usr/local/sbin" / name).write_text(f"#!/bin/sh\necho {name} >> {calls}\nexit {code}\n")
        (fake / "usr/local/sbin" / name).chmod(0o755)
    for name in ("systemctl", "ufw", "install", "chown", "ln", "podman", "mkdir", "chmod"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho {name} "$@" >> {calls}\n')
        (bin_dir / name).chmod(0o755)
    (fake / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    script = (
        script.replace("/usr/local/sbin/", f"{fake}/usr/local/sbin/")
        .replace("/usr/sbin/policy-rc.d", f"{fake}/usr/sbin/policy-rc.d")
        .replace("/etc/nginx/", f"{fake}/etc/nginx/")
    )
    result = subprocess.run(
        ["sh", "-c", script], capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}
    )
    called = calls.read_text().splitlines()
    if firewall_exit:
        assert result.returncode != 0 and "host firewall failed" in result.stderr
        assert (fake / "usr/sbin/policy-rc.d").exists()
        assert not [c for c in called if c.startswith("systemctl")], called
    else:
        assert not (fake / "usr/sbin/policy-rc.d").exists()
        assert any(c.startswith("systemctl enable --now fail2ban.service") for c in called), called


@pytest.mark.parametrize("debian", [12, 13])
def test_fail2ban_config_is_accepted_and_reads_sshd_from_the_journal(debian, tmp_path):
    root = scratch_root(debian, tmp_path / "root")
    install(root, rendered_files(make_spec(debian=debian)), ["/etc/fail2ban/jail.d/twinhost.local"])
    result = chroot(root, ["fail2ban-client", "--dp", "-t"])
    assert result.returncode == 0, result.stdout + result.stderr
    dump = chroot(root, ["fail2ban-client", "-d"]).stdout
    assert "['add', 'sshd', 'systemd']" in dump, dump[-2000:]
    assert "iptables-multiport" in dump


@pytest.mark.parametrize("debian", [12, 13])
def test_admin_sudoers_file_is_valid_and_root_only(debian, tmp_path):
    root = scratch_root(debian, tmp_path / "root")
    files = rendered_files(make_spec(debian=debian))
    install(root, files, ["/etc/sudoers.d/90-twinhost-admin"])
    assert files["/etc/sudoers.d/90-twinhost-admin"].mode == 0o440
    result = chroot(root, ["visudo", "-c", "-f", "/etc/sudoers.d/90-twinhost-admin"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_sysctl_kernel_keys_are_split_from_net_keys_and_may_fail_in_a_container():
    files = rendered_files(make_spec())
    net = files["/etc/sysctl.d/60-twinhost-net.conf"].content
    kernel = files["/etc/sysctl.d/61-twinhost-kernel.conf"].content
    net_keys = [
        entry.split("=")[0].strip()
        for entry in net.splitlines()
        if "=" in entry and not entry.startswith("#")
    ]
    kernel_keys = [
        entry.split("=")[0].strip()
        for entry in kernel.splitlines()
        if "=" in entry and not entry.startswith("#")
    ]
    assert net_keys and all(k.startswith("net.") for k in net_keys)
    assert kernel_keys and all(k.startswith("-") for k in kernel_keys)
    for text in (net, kernel):  # a reason above every key
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "=" in line and not line.startswith("#"):
                above = [earlier for earlier in lines[:i] if earlier.strip()]
                assert above and (above[-1].startswith("#") or "=" in above[-1]), line


def test_small_nodes_get_swap_and_big_ones_do_not():
    assert "swap" in node_parts(make_spec(memory_mib=1024)).config
    assert "swap" not in node_parts(make_spec(memory_mib=2048)).config


def test_sudo_is_never_left_to_cloud_inits_stub_sudoers():
    admin = node_parts(make_spec()).config["users"][0]
    assert "sudo" not in admin and "sudo" in admin["groups"] and admin["lock_passwd"] is True


def test_security_repository_is_added_only_when_missing():
    (bootcmd,) = node_parts(make_spec(debian=13)).bootcmd
    assert bootcmd[:3] == ("cloud-init-per", "once", "twinhost-security-repo")
    assert "&& exit 0" in bootcmd[-1] and "Suites: trixie-security" in bootcmd[-1]


def test_only_the_primary_creates_the_gluster_volume():
    a = rendered_files(make_spec("digitalocean"))["/etc/twinhost/gluster.env"].content
    b = rendered_files(make_spec("linode"))["/etc/twinhost/gluster.env"].content
    assert "ROLE=primary" in a and "ROLE=secondary" in b
    script = rendered_files(make_spec())["/usr/local/sbin/twinhost-gluster-volume"].content
    create = script.index("volume create")
    assert script.index('if [ "$ROLE" = primary ]') > script.index("create_volume() {")
    assert "replica 2" in script[create : create + 200]
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


XATTR = "user.glusterfs.volume-id"


def _gluster_calls(tmp_path, spec, current_options: dict[str, str] | None = None) -> list[str]:
    """Run the rendered volume script as the primary against a fake `gluster` whose peer and
    volume answer at once (and whose `volume get` answers with current_options); return every
    gluster command it ran (mounting is stubbed out)."""
    files = rendered_files(spec)
    tmp_path.mkdir(parents=True, exist_ok=True)
    env_file = tmp_path / "gluster.env"
    # The brick and mount directories under tmp_path (the script creates them); the rest as shipped.
    env_file.write_text(
        "".join(
            line.replace("=/srv/", f"={tmp_path}/srv/")
            for line in files["/etc/twinhost/gluster.env"].content.splitlines(keepends=True)
        )
    )
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "gluster.calls"
    options_table = tmp_path / "options"
    # `gluster volume get VOL NAME`'s table: a header, a rule, then "NAME  VALUE".
    options_table.write_text(
        "Option Value\n------ -----\n" + "".join(f"{k}  {v}\n" for k, v in (current_options or {}).items())
    )
    (fake / "gluster").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        '  *"volume info"*) [ -e "$0.created" ] || exit 1\n'
        '     printf "Volume ID: 44444444-4444-4444-4444-444444444444\\nStatus: Started\\n"; exit 0 ;;\n'
        # gluster stamps the bricks with the new volume's id (a `user.` attribute here: no root).
        '  *"volume create"*) touch "$0.created"\n'
        f'     python3 -c \'import os; os.setxattr("{tmp_path}/srv/gluster/shared", "{XATTR}", b"\\x44" * 16)\' ;;\n'
        f'  *"volume get"*) for name; do :; done; cat {options_table} | sed -n "1,2p;/^$name /p" ;;\n'
        '  *"peer status"*) printf "Hostname: %s\\nUuid: x\\nState: Peer in Cluster (Connected)\\n" "$PEER" ;;\n'
        "esac\nexit 0\n"
    )
    for name in ("systemctl", "findmnt", "timeout", "hostname", "chown"):
        (fake / name).write_text("#!/bin/sh\nexit 0\n")
    fake_attr_tools(fake)
    for path in fake.iterdir():
        path.chmod(0o755)
    script = files["/usr/local/sbin/twinhost-gluster-volume"].content
    result = subprocess.run(
        ["bash", "-c", script],
        env={
            "PATH": f"{fake}:/usr/bin:/bin",
            "TWINHOST_GLUSTER_ENV": str(env_file),
            "XATTRS": "user",
            "PEER": spec.peer.mesh_address,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return log.read_text().splitlines()


def test_gluster_volume_has_the_witness_thin_arbiter_and_client_quorum(tmp_path):
    spec = make_spec("digitalocean")
    calls = _gluster_calls(tmp_path, spec)
    (create,) = [c for c in calls if "volume create" in c]
    assert create.split() == [
        "--mode=script", "volume", "create", spec.site, "replica", "2", "thin-arbiter", "1",
        f"{spec.mesh_address}:{tmp_path}/srv/gluster/shared",
        f"{spec.peer.mesh_address}:{tmp_path}/srv/gluster/shared",
        f"{spec.witness.mesh_address}:/srv/thin-arbiter", "force",
    ]  # fmt: skip
    options = [c.split(maxsplit=4)[4] for c in calls if " volume set " in f" {c}"]
    # AFR's own brick quorum is off: with "auto" on two bricks the first brick is the
    # tie-breaker, and the survivor of a dead first brick refused every write (lab, issue 16).
    # The thin-arbiter's quorum (one data brick and the thin-arbiter) applies by itself.
    assert "cluster.quorum-type none" in options
    assert not [o for o in options if o.startswith("cluster.quorum-") and o != "cluster.quorum-type none"]
    assert "cluster.server-quorum-type none" in options
    assert "network.ping-timeout 10" in options


def test_the_primary_sets_only_the_volume_options_that_differ(tmp_path):
    """apply_options runs at every boot of the primary: an option already at its value is not set
    again (a needless `volume set` rewrites the volfiles on both nodes, maybe mid-heal), and one
    left at another value (a volume made with quorum-type auto) is corrected."""
    spec = make_spec("digitalocean")
    calls = _gluster_calls(
        tmp_path,
        spec,
        {"cluster.quorum-type": "auto", "cluster.server-quorum-type": "none", "network.ping-timeout": "10"},
    )
    options = [c.split(maxsplit=4)[4] for c in calls if " volume set " in f" {c}"]
    assert "cluster.quorum-type none" in options
    assert "cluster.server-quorum-type none" not in options
    assert "network.ping-timeout 10" not in options
    assert "cluster.favorite-child-policy none" in options


def test_no_favorite_child_policy_ever_drops_an_acknowledged_write(tmp_path):
    for witness in (True, False):
        calls = _gluster_calls(tmp_path / str(witness), make_spec("digitalocean", witness=witness))
        options = [c.split(maxsplit=4)[4] for c in calls if " volume set " in f" {c}"]
        assert "cluster.favorite-child-policy none" in options
        assert not [
            o for o in options if o.startswith("cluster.favorite-child-policy") and o.split()[1] != "none"
        ]


def test_without_a_witness_the_pair_keeps_writing_on_either_brick(tmp_path):
    calls = _gluster_calls(tmp_path, make_spec("digitalocean", witness=False))
    (create,) = [c for c in calls if "volume create" in c]
    assert "thin-arbiter" not in create
    options = [c.split(maxsplit=4)[4] for c in calls if " volume set " in f" {c}"]
    assert {"cluster.quorum-type fixed", "cluster.quorum-count 1"} <= set(options)


def test_shared_volume_mount_survives_reboot_and_loss_of_either_server():
    spec = make_spec("linode")
    line = fstab_line(spec)
    source, mountpoint, fstype, options, *_ = line.split()
    assert (source, mountpoint, fstype) == (f"localhost:/{spec.site}", "/srv/shared", "glusterfs")
    opts = options.split(",")
    assert f"backup-volfile-servers={spec.peer.mesh_address}" in opts
    assert {"_netdev", "x-systemd.automount", "nofail"} <= set(opts)
    fstab = rendered_files(spec)["/etc/fstab"]
    assert fstab.append and fstab.content == line


@pytest.mark.parametrize("kind", ["demo", "deb", "command"])
def test_app_unit_is_sandboxed(kind):
    unit = rendered_files(make_spec(app=kind))["/etc/systemd/system/twinhost-app@.service"].content
    for directive in (
        "DynamicUser=yes",
        "User=twinapp",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "Restart=always",
        "EnvironmentFile=/etc/twinhost/app/environment",
    ):
        assert directive in unit.splitlines(), directive


def test_app_environment_file_escapes_values_for_systemd(keys):
    from infra.bootstrap.app import env_file_line

    assert env_file_line("A", 'x"y$z\\w`') == 'A="x\\"y\\$z\\\\w\\`"\n'
    env = rendered_files(make_spec(keys=keys))["/etc/twinhost/app/environment"]
    assert env.mode == 0o600 and f'SHOP_API_TOKEN="{keys.app_secret}"' in env.content


def test_demo_app_serves_health_and_reads_the_shared_volume(tmp_path):
    import json
    import socket
    import sys
    import time
    import urllib.request

    script = rendered_files(make_spec())["/usr/local/lib/twinhost/demo-app.py"].content
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "node-a.txt").write_text("hello from node a")
    (tmp_path / "app.py").write_text(script)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "app.py")],
        env={"PORT": str(port), "APP_VERSION": "7", "SHARED_DIR": str(tmp_path)},
    )
    try:
        for _ in range(50):
            try:
                health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2))
                break
            except OSError:
                time.sleep(0.1)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
    finally:
        proc.terminate()
        proc.wait()
    assert health["status"] == "ok" and health["version"] == "7"
    assert "hello from node a" in page


def _release_login_defs(debian: int, into: Path) -> Path:
    """The login.defs a Debian release ships (package `login` in 12, `login.defs` in 13)."""
    package = "login" if debian == 12 else "login.defs"
    (deb,) = bootstrap_debroot._download(debian, [package], closure=False)
    into.mkdir()
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into), "./etc/login.defs"], stdin=tar.stdout, check=True)
    assert tar.wait() == 0
    return into / "etc/login.defs"


@pytest.mark.parametrize("debian", [12, 13])
def test_login_defs_get_umask_027_and_sha512_rounds_keeping_the_rest(debian, tmp_path):
    """Lynis AUTH-9328 and AUTH-9230: the release's own login.defs, edited in place by the script
    first boot runs (runcmd, before services start); a rerun changes nothing."""
    parts = node_parts(make_spec(debian=debian))
    (command,) = [c for c in parts.runcmd if c[0] == "/usr/local/sbin/twinhost-login-defs"]
    script = tmp_path / "twinhost-login-defs"
    script.write_text(rendered_files(make_spec(debian=debian))["/usr/local/sbin/twinhost-login-defs"].content)
    defs = _release_login_defs(debian, tmp_path / "pkg")
    original = defs.read_text()
    for _ in range(2):
        subprocess.run(
            ["sh", str(script), *command[1:]],
            check=True,
            env={"LOGIN_DEFS": str(defs), "PATH": "/usr/bin:/bin"},
        )
        edited = defs.read_text()
        active = [line.split() for line in edited.splitlines() if line and not line.startswith("#")]
        values = {fields[0]: fields[1:] for fields in active}
        assert values["UMASK"] == ["027"]
        assert values["SHA_CRYPT_MIN_ROUNDS"] == values["SHA_CRYPT_MAX_ROUNDS"] == ["65536"]
        for key in ("UMASK", "SHA_CRYPT_MIN_ROUNDS", "SHA_CRYPT_MAX_ROUNDS"):
            assert [fields[0] for fields in active].count(key) == 1
        kept = [line for line in original.splitlines() if not line.startswith(("UMASK", "SHA_CRYPT_"))]
        assert [line for line in edited.splitlines() if not line.startswith(("UMASK", "SHA_CRYPT_"))] == kept
    assert values["ENCRYPT_METHOD"] == (["SHA512"] if debian == 12 else ["YESCRYPT"])


def test_idle_login_shells_are_closed_and_cannot_switch_that_off(tmp_path):
    """Lynis SHLL-6220: TMOUT from /etc/profile.d, read-only in the session it is sourced into."""
    profile = tmp_path / "twinhost-idle.sh"
    profile.write_text(rendered_files(make_spec())["/etc/profile.d/twinhost-idle.sh"].content)
    shown = subprocess.run(["bash", "-c", f". {profile}; echo $TMOUT"], capture_output=True, text=True)
    assert shown.stdout.strip() == "900"
    unset = subprocess.run(["bash", "-c", f". {profile}; TMOUT=0 || exit 7"], capture_output=True, text=True)
    assert unset.returncode != 0 and "readonly" in unset.stderr


def test_hardening_installs_apt_listchanges():
    """Lynis DEB-0811: an admin's apt upgrade shows the packages' NEWS before they land."""
    assert "apt-listchanges" in node_parts(make_spec()).packages
