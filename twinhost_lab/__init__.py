"""The local lab: a site's pair and the redirector booted as systemd-nspawn containers from the
exact user data `twinhost plan --lab` renders, on a private bridge, checked from outside.

Layout:
  layout.py      addresses, names and directories of one lab (nothing here touches the host)
  host.py        commands and processes on the host (started and ended by PID)
  rootfs.py      the cached Debian root filesystems (debootstrap through the caching proxy)
  network.py     the bridge and the network namespaces (the internet, the admin network)
  services.py    host-side services: apt-cacher-ng, pebble (ACME), dnsmasq (lab DNS)
  containers.py  one container: its tree, NoCloud seed, boot, exec, power-off
  lab.py         up / status / down of a whole lab, and its state file
  checks.py      every outside check, each returning its figure
  aws.py         moto: the platform's S3 bucket and SSM parameters (and the drill's Route 53)
  drill.py       the failover drill: kill the primary, time the watcher's move and the return
  cli.py         `twinhost lab up|check|drill|down|status`
See docs/lab.md.
"""
