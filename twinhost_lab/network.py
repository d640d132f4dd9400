"""The lab's network: one bridge (the "internet" between providers, TEST-NET-2 addresses) and
two network namespaces on it, standing in for an outside client and for the admin's network."""

from __future__ import annotations

from pathlib import Path

from twinhost_lab.host import run
from twinhost_lab.layout import Layout

# Bridged frames pass the host's iptables FORWARD chain when br_netfilter is loaded (Docker sets
# its policy to DROP): this rule lets the lab's own bridge traffic through, and only that.
FORWARD_RULE = [
    "FORWARD",
    "-i",
    "{bridge}",
    "-o",
    "{bridge}",
    "-m",
    "comment",
    "--comment",
    "twinhost-lab",
    "-j",
    "ACCEPT",
]


BRIDGE_MAC = "02:74:68:6c:61:62"  # locally administered ("thlab")


def _forward_rule(layout: Layout) -> list[str]:
    return [part.format(bridge=layout.bridge) for part in FORWARD_RULE]


def namespaces(layout: Layout) -> dict[str, str]:
    return {layout.internet_namespace: layout.internet_address, layout.admin_namespace: layout.admin_address}


def create(layout: Layout) -> None:
    run(["ip", "link", "add", layout.bridge, "type", "bridge"])
    # A fixed address: a bridge whose address is not set takes the lowest of its ports', so it
    # changes when a container's veth goes (the failover drill pulls one) and every neighbour's
    # ARP entry for the host (DNS, ACME, the AWS stand-in) goes stale for up to half a minute.
    run(["ip", "link", "set", layout.bridge, "address", BRIDGE_MAC])
    run(["ip", "address", "add", f"{layout.host_address}/{layout.prefixlen}", "dev", layout.bridge])
    run(["ip", "link", "set", layout.bridge, "up"])
    if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        run(["iptables", "-I", *_forward_rule(layout)], check=False)
    for index, (namespace, address) in enumerate(namespaces(layout).items()):
        outside, inside = f"thl{index}-br", f"thl{index}-ns"
        run(["ip", "netns", "add", namespace])
        run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
        run(["ip", "link", "set", outside, "master", layout.bridge, "up"])
        run(["ip", "link", "set", inside, "netns", namespace])
        run(["ip", "-n", namespace, "address", "add", f"{address}/{layout.prefixlen}", "dev", inside])
        run(["ip", "-n", namespace, "link", "set", inside, "up"])
        run(["ip", "-n", namespace, "link", "set", "lo", "up"])


def remove(layout: Layout) -> list[str]:
    """Remove whatever of the network exists; returns what was removed."""
    removed = []
    for index, namespace in enumerate(namespaces(layout)):
        if run(["ip", "link", "show", f"thl{index}-br"], check=False).returncode == 0:
            run(["ip", "link", "delete", f"thl{index}-br"], check=False)
        if Path(f"/run/netns/{namespace}").exists():
            run(["ip", "netns", "delete", namespace], check=False)
            removed.append(f"namespace {namespace}")
    for node in layout.nodes:  # nspawn's host-side veth, left behind if a container was killed
        veth = f"vb-{node.name}"
        if run(["ip", "link", "show", veth], check=False).returncode == 0:
            run(["ip", "link", "delete", veth], check=False)
            removed.append(f"link {veth}")
    while run(["iptables", "-C", *_forward_rule(layout)], check=False).returncode == 0:
        run(["iptables", "-D", *_forward_rule(layout)], check=False)
    if run(["ip", "link", "show", layout.bridge], check=False).returncode == 0:
        run(["ip", "link", "delete", layout.bridge], check=False)
        removed.append(f"bridge {layout.bridge}")
    return removed


def in_namespace(namespace: str, command: list[str]) -> list[str]:
    return ["ip", "netns", "exec", namespace, *command]
