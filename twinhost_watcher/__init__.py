"""The failover watcher: health-checks every node of every watchdog site, moves the site's failover
A record to the healthy nodes through the DNS provider's API, and notifies a webhook on every move.

It runs on the redirector (a third location, neither DigitalOcean nor Linode) as
`python -m twinhost_watcher`, in its own virtualenv, under a hardened systemd unit. It is a package
of its own on purpose: nothing here imports `infra` (the Pulumi program, its provider SDKs; a test
enforces it), so the node only needs this package, pydantic, and the DNS client libraries its
sites use. The platform stack ships it whole, as a source archive, and `infra.watcher_install`
(workstation side) gives the redirector's first boot the pinned requirements, the unit and the
virtualenv steps.

Modules:
- `config`   the JSON config file, validated whole (every error names the key and the value)
- `health`   concurrent HTTPS checks of `/health`, with bounded timeouts, CA bundle or pinned cert
- `engine`   hysteresis, the decision (never the last address, never flap) and read-before-write
- `state`    the on-disk state (atomic write) that a restart resumes from
- `notify`   the webhook notifier: a background thread, retried briefly, never blocks the loop
- `backends` one small interface, three DNS providers: Cloudflare, Route 53, RFC 2136
- `validators` DNS names and zone ids: one rule each, also imported by the stack config

What it deliberately does not do: AAAA records, per-site check intervals, or Cloudflare Load
Balancing / Route 53 health checks (those are other failover modes, with no code of ours).
"""

VERSION = "0.1.0"
