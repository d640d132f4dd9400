"""tinc: two real tincd 1.0 daemons authenticate each other with the rendered files and keys."""

from __future__ import annotations

import re
import subprocess
import time

from infra.bootstrap.render import node_parts
from infra.bootstrap.tinc import MESH_INTERFACE
from tests.bootstrap.bootstrap_debroot import write_fresh
from tests.bootstrap.bootstrap_nodes import free_port, rendered_files, scratch_root
from tests.bootstrap.bootstrap_specs import DROPLET_OWN_IP, PUBLIC, make_spec


def test_mesh_nodes_authenticate_each_other_with_the_rendered_keys(tmp_path, keys):
    """Both nodes' rendered tinc trees, with the addresses moved to loopback ports and a dummy
    device (no TUN, no traffic off this machine): each must activate its connection to the other,
    which proves the key formats (pulumi_tls PEM) and host files fit together."""
    root = scratch_root(12, tmp_path / "root")
    specs = {p: make_spec(p, keys=keys) for p in ("digitalocean", "linode")}
    ports = {p: free_port() for p in specs}
    logs = {}
    procs = []
    for provider, spec in specs.items():
        files = rendered_files(spec)
        base = f"/etc/tinc/{spec.tinc_net}"
        # Each daemon gets its own copy of the tree under its own config directory.
        confdir = root / f"node-{provider}"
        for path, item in files.items():
            if path.startswith(base + "/"):
                content = item.content
                for other, port in ports.items():
                    if path.endswith(f"/hosts/{specs[other].tinc_node_name}"):
                        content = content.replace(
                            f"Address = {PUBLIC[other]} 655", f"Address = 127.0.0.1 {port}"
                        )
                        content = content.replace("Port = 655", f"Port = {port}")
                if path.endswith("/tinc.conf"):
                    content += "DeviceType = dummy\n"
                if path.endswith(("/tinc-up", "/tinc-down")):
                    continue
                write_fresh(confdir / path[len(base) + 1 :], content, item.mode)
        logs[provider] = root / f"tinc-{provider}.log"
        procs.append(
            subprocess.Popen(
                [
                    "chroot",
                    str(root),
                    "/usr/sbin/tincd",
                    "-c",
                    f"/node-{provider}",
                    "-D",
                    "-d",
                    "3",
                    f"--logfile=/tinc-{provider}.log",
                    f"--pidfile=/tinc-{provider}.pid",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        # Wait for the packet-key exchange, not just the first activated connection: both daemons
        # dial at once, and when the crossed connections collide tinc closes one and redials after
        # a few seconds, so "activated" can appear before any key has been exchanged.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            texts = {p: (log.read_text() if log.exists() else "") for p, log in logs.items()}
            if all("activated" in text and "Got ANS_KEY" in text for text in texts.values()):
                break
            time.sleep(0.3)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    for provider, text in texts.items():
        other = specs["linode" if provider == "digitalocean" else "digitalocean"].tinc_node_name
        assert f"Connection with {other}" in text and "activated" in text, text[-3000:]
        # Packet keys were exchanged with the configured cipher/digest; no key or identity errors
        # (the first dial may be refused: the other daemon was not listening yet).
        assert "Got ANS_KEY" in text, text[-3000:]
        assert not re.search(r"Error reading|invalid|unknown identity|Bogus|not supported", text), text[
            -3000:
        ]


def test_private_key_is_only_in_its_own_node_and_mode_0600(keys):
    a = rendered_files(make_spec("digitalocean", keys=keys))
    b = rendered_files(make_spec("linode", keys=keys))
    key_a = a["/etc/tinc/acme_shop/rsa_key.priv"]
    assert key_a.mode == 0o600 and key_a.secret
    assert keys.tinc_private["digitalocean"].strip() in key_a.content
    assert not any(keys.tinc_private["digitalocean"].strip() in f.content for f in b.values())
    # Both nodes carry both public keys.
    for files in (a, b):
        hosts = "".join(f.content for p, f in files.items() if "/hosts/" in p)
        assert keys.tinc_public["digitalocean"].strip() in hosts
        assert keys.tinc_public["linode"].strip() in hosts


def test_both_nodes_dial_each_other_and_retry_quickly():
    for provider, peer in (("digitalocean", "acme_shop_linode"), ("linode", "acme_shop_digitalocean")):
        conf = rendered_files(make_spec(provider))["/etc/tinc/acme_shop/tinc.conf"].content
        assert f"ConnectTo = {peer}" in conf
        assert "MaxTimeout = 30" in conf
        assert f"Interface = {MESH_INTERFACE}" in conf


def test_tinc_is_enabled_and_started_at_first_boot():
    runcmd = node_parts(make_spec()).runcmd
    assert ("systemctl", "enable", "tinc.service", "tinc@acme_shop.service") in runcmd
    assert ("systemctl", "start", "tinc@acme_shop.service") in runcmd


def test_digitalocean_node_routes_peer_traffic_via_anchor_only_on_digitalocean():
    a = rendered_files(make_spec("digitalocean"))
    b = rendered_files(make_spec("linode"))
    assert "/usr/local/sbin/twinhost-peer-route" in a and "/usr/local/sbin/twinhost-peer-route" not in b
    script = a["/usr/local/sbin/twinhost-peer-route"].content
    # No metadata request at all unless the DMI vendor says DigitalOcean (the lab sends none).
    assert script.index("sys_vendor") < script.index("169.254.169.254")
    assert PUBLIC["linode"] in a["/etc/twinhost/peer-route.env"].content


def test_linode_firewall_allows_tinc_from_the_droplets_own_ip_too():
    firewall = rendered_files(make_spec("linode"))["/usr/local/sbin/twinhost-firewall"].content
    for source in (PUBLIC["digitalocean"], DROPLET_OWN_IP):
        for proto in ("tcp", "udp"):
            assert f"allow in proto {proto} from {source} to any port 655" in firewall
