"""Day-2 operations from the workstation: `twinhost deploy|rollback|status|logs|ssh|list`.

Each module is usable on its own, without argparse (a Pulumi resource could drive `deploy`):

- `addresses`: where a site's nodes and its platform's redirector are (stack outputs, or a file);
- `remote`: ssh to a node as the admin user (one multiplexed connection per node);
- `health`: the node's `/health` through its web front, the way the failover watcher checks it;
- `deploy`: the rolling, health-gated deploy and rollback;
- `status`, `logs`: what the pair and the watcher say now.

Nothing here imports Pulumi or a provider SDK: these commands answer in well under a second
before they reach the network.
"""
