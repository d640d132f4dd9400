"""The site's database: MariaDB Galera across the pair, over the tinc mesh only.

Debian's `mariadb-server` and `galera-4` on both nodes. Every Galera port is bound to the node's
mesh address and opened in ufw on the mesh interface, from the peer's mesh address only (the
cloud firewalls stay as they are: nothing of the database is reachable from outside); SQL
listens on 127.0.0.1 only, for the app. Replication and IST are TLS (`socket.ssl_*`), the state
snapshot transfer too (rsync through stunnel, `[sst]`), both checked against the site's own
database CA (infra/components/database_secrets.py).

Forming the cluster (cloudinit/site/usr/local/sbin/twinhost-galera, at every boot):
- each node first tries to JOIN (succeeds only when a primary component exists to join);
- only the primary node (the one that also creates the GlusterFS volume) ever bootstraps a new
  cluster, and only when it holds no cluster data of its own AND its peer has published on the
  shared volume that it holds none either AND the join just failed (so the peer has no primary
  component): a replaced node, or one that cannot see its peer, never bootstraps over data
  that exists elsewhere; it waits to join instead;
- once synced, the site's database and user are made (idempotent; Galera replicates them).

The third vote: when the platform has a witness, its `garbd` for this site listens at `.3` of
the site's mesh (`DatabaseSpec.witness_address`): it is in `cluster_address` and may reach the
group port through ufw. The witness runs it (the redirector's `twinhost-witness`, from the
platform's witness document; infra/witness.py), with a certificate from the site's database CA
(infra/components/database_secrets.py). Without a witness the pair is a cluster of two: a
partition or a dead node leaves neither side primary, so both refuse writes until it heals.

What it deliberately does not do: recover automatically from both members losing their state
together where Galera's own `pc.recovery` cannot (the runbook in docs/database.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from infra.bootstrap.hardening import FirewallRule
from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import DatabaseSpec, NodeSpec
from infra.bootstrap.tinc import MESH_INTERFACE

DB_DIR = "/etc/twinhost/db"
TLS_DIR = f"{DB_DIR}/tls"
PASSWORD_FILE = f"{DB_DIR}/password"
OPTION_FILE = f"{DB_DIR}/client.cnf"
# Written by cloud-init, installed into mariadb.conf.d by twinhost-galera when it first starts the
# server: the package's install-time steps (its system tables, any start that slips past
# policy-rc.d) never see a Galera config naming a cluster that does not exist yet.
STAGED_CONFIG = f"{DB_DIR}/galera.cnf"
GALERA_CONFIG = "/etc/mysql/mariadb.conf.d/60-twinhost-galera.cnf"
# Where each member publishes what it holds ("empty" or "<uuid>:<seqno>") for its peer to read.
STATE_DIR = "/srv/shared/.twinhost/galera"
APP_GROUP = "twinapp"  # the app's group (infra/bootstrap/app.py APP_USER) reads its credentials

GALERA_PORT = (
    4567  # group communication (the witness's garbd talks to this one only: infra.witness.GARBD_PORT)
)
IST_PORT = 4568  # incremental state transfer
SST_PORT = 4444  # state snapshot transfer (rsync through stunnel)
SQL_PORT = 3306  # on 127.0.0.1 only
SECRET_MODE = 0o640
# rsync and stunnel4: the state snapshot transfer over TLS (wsrep_sst_rsync aborts without
# stunnel when TLS is asked for); lsof: the SST script's port check (it prefers iproute2's ss).
PACKAGES = ("mariadb-server", "galera-4", "rsync", "stunnel4", "lsof")


def database_names(site: str) -> tuple[str, str]:
    """(database, user) of a site: its name with `-` as `_` (MariaDB's identifiers without
    quoting), the user at most 32 characters (MariaDB's limit is 80, MySQL clients' 32)."""
    name = re.sub(r"[^a-z0-9_]", "_", site.lower())
    return name, name[:32]


def cluster_name(site: str) -> str:
    return f"twinhost-{site}"


def cluster_address(members: Sequence[str], witness: str | None = None) -> str:
    """`gcomm://a,b[,witness]`: every member's mesh address, then the witness's when there is one.

    garbd on the witness joins with the same cluster name; a node names it so a restarted node
    can find the cluster through the witness as well."""
    addresses = [*members, *([witness] if witness else [])]
    if len(set(addresses)) != len(addresses) or not all(addresses):
        raise ValueError(f"database: cluster members must be distinct addresses, got {addresses}")
    return "gcomm://" + ",".join(addresses)


def buffer_pool_mib(memory_mib: int) -> int:
    """InnoDB's buffer pool: an eighth of the node's memory, 64..1024 MiB (a 1 GB node also runs
    glusterd, nginx and the app)."""
    return max(64, min(1024, memory_mib // 8))


def database_env(spec: NodeSpec) -> dict[str, str]:
    """What the app's environment gets (its names are infra.config.fields.DATABASE_ENV, which
    the config rules keep free; a test checks the two agree): the local
    member, the database, the user, and files for the password (0640 root:twinapp)."""
    if spec.database is None:
        return {}
    return connection_env(spec.database.name, spec.database.user)


def connection_env(name: str, user: str) -> dict[str, str]:
    """`database_env` from the names alone (twinhost-converge writes the same file)."""
    return {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(SQL_PORT),
        "DB_NAME": name,
        "DB_USER": user,
        "DB_PASSWORD_FILE": PASSWORD_FILE,
        "DB_OPTION_FILE": OPTION_FILE,
    }


def database_firewall_rules(spec: NodeSpec) -> tuple[FirewallRule, ...]:
    """Galera's ports on the mesh interface only, from the peer's mesh address (and the
    witness's, for the group port only, once it has one). SQL is never opened."""
    if spec.database is None:
        return ()
    peer = (f"{spec.peer.mesh_address}/32",)
    witness = (f"{spec.database.witness_address}/32",) if spec.database.witness_address else ()
    return (
        FirewallRule(
            "galera from the cluster over the mesh",
            str(GALERA_PORT),
            sources=(*peer, *witness),
            interface=MESH_INTERFACE,
        ),
        FirewallRule(
            "galera IST and SST from the peer over the mesh",
            f"{IST_PORT},{SST_PORT}",
            sources=peer,
            interface=MESH_INTERFACE,
        ),
    )


def database_parts(spec: NodeSpec) -> Parts:
    """The Galera member on this node; empty Parts when the site has no database."""
    db = spec.database
    if db is None:
        return Parts(name="database")
    _check(db)
    members = sorted((spec.mesh_address, spec.peer.mesh_address))
    config = template(
        "site/etc/twinhost/db/galera.cnf.j2",
        cluster_name=db.cluster_name,
        cluster_address=cluster_address(members, db.witness_address),
        node_name=spec.tinc_node_name,
        self_address=spec.mesh_address,
        galera_port=GALERA_PORT,
        ist_port=IST_PORT,
        sst_port=SST_PORT,
        buffer_pool_mib=buffer_pool_mib(spec.memory_mib),
        tls_dir=TLS_DIR,
    )
    env = "".join(
        (
            "# twinhost-galera settings (from the stack, at first boot).\n",
            f"ROLE={'bootstrap' if spec.is_primary else 'join'}\n",
            f"NODE_NAME={spec.tinc_node_name}\n",
            f"PEER_NAME={spec.peer.name}\n",
            f"DB_NAME={db.name}\n",
            f"DB_USER={db.user}\n",
            f"PASSWORD_FILE={PASSWORD_FILE}\n",
            f"OPTION_FILE={OPTION_FILE}\n",
            f"STATE_DIR={STATE_DIR}\n",
            f"STAGED_CONFIG={STAGED_CONFIG}\n",
            f"GALERA_CONFIG={GALERA_CONFIG}\n",
            # For `twinhost-galera fence` (the health probe's, while the volume refuses writes).
            f"MESH_INTERFACE={MESH_INTERFACE}\n",
            f"GALERA_PORT={GALERA_PORT}\n",
        )
    )
    files = (
        File(STAGED_CONFIG, config),
        File("/etc/twinhost/db.env", env),
        File("/usr/local/sbin/twinhost-galera", static("site/usr/local/sbin/twinhost-galera"), SCRIPT_MODE),
        File(
            "/etc/systemd/system/twinhost-galera.service",
            static("site/etc/systemd/system/twinhost-galera.service"),
        ),
        # Written after the packages: the mysql group exists from then on (mariadbd reads these).
        File(f"{TLS_DIR}/ca.pem", db.ca_pem, owner="root:mysql", deferred=True),
        File(f"{TLS_DIR}/cert.pem", db.certificate_pem, owner="root:mysql", deferred=True),
        File(
            f"{TLS_DIR}/key.pem",
            db.private_key_pem,
            SECRET_MODE,
            owner="root:mysql",
            deferred=True,
            secret=True,
        ),
        # The app's credentials: its group reads them, nobody else.
        # twinhost-galera writes the option file (OPTION_FILE) from it, with the same owner.
        File(
            PASSWORD_FILE,
            db.password + "\n",
            SECRET_MODE,
            owner=f"root:{APP_GROUP}",
            deferred=True,
            secret=True,
        ),
    )
    return Parts(
        name="database",
        files=files,
        packages=PACKAGES,
        runcmd=(
            ("systemctl", "daemon-reload"),
            # twinhost-galera starts mariadb at every boot (join, or the one safe bootstrap), so
            # mariadb's own unit is not started by boot directly.
            ("systemctl", "disable", "mariadb.service"),
            ("systemctl", "enable", "twinhost-galera.service"),
            # --no-block: forming the cluster waits for the peer and the shared volume.
            ("systemctl", "start", "--no-block", "twinhost-galera.service"),
        ),
    )


def _check(db: DatabaseSpec) -> None:
    problems = []
    for label, value in (("name", db.name), ("user", db.user)):
        if not re.fullmatch(r"[a-z0-9_]{1,64}", value):
            problems.append(f"{label} {value!r} must be a-z, 0-9 and _")
    if not re.fullmatch(r"[A-Za-z0-9]{16,}", db.password):
        # Letters and digits only: it is written into SQL and an option file without quoting.
        problems.append("the password must be 16 or more letters and digits (value not shown)")
    if problems:
        raise ValueError("database: " + "; ".join(problems))
