"""App kind `wordpress`: Debian's `wordpress` package run by php-fpm behind the node's nginx.

Where things live (docs/wordpress.md):
- the code: Debian's package on each node (/usr/share/wordpress), updated by the node's
  unattended upgrades, or pinned with `app.version` and rolled with `twinhost deploy` like kind
  `deb`;
- the database: the site's Galera (`database: mariadb`, required: rules.wordpress_needs_the_database),
  through the local member on 127.0.0.1 with the app's credentials (infra/bootstrap/database.py);
- everything WordPress writes at run time: `WP_CONTENT_DIR` on the shared GlusterFS volume
  (CONTENT_DIR: uploads, installed themes and plugins, languages, upgrade scratch), so both nodes
  serve the same files; the packages' themes and plugins are linked into it, as Debian's own
  `wp-setup --sync-wp-content` does for /var/lib/wordpress;
- the keys and salts: Pulumi secrets (infra/components/wordpress_keys.py), in the app's 0600
  environment file like `appSecrets`, passed to PHP by php-fpm's pool; never in a PHP file.

How it runs, within the app model of infra/bootstrap/app.py: each blue/green slot
(`twinhost-app@blue`, `@green`) is a php-fpm master run as twinapp in the slot unit's sandbox,
listening on a unix socket in the slot's runtime directory; nginx has one server per slot on
127.0.0.1:<slot port> (the port the web front and `twinhost-deploy` already use) that serves
WordPress's files and hands PHP to that slot's socket. `/health` on that server is a PHP check
of the database member (ready, synced, primary) and of a write to wp-content: 503 otherwise, so
the watcher drops the node.

What it deliberately does not do: install WordPress (its install page does, once, through
either node: the tables are replicated), run WordPress's database upgrade after a major package
update (an administrator's visit to /wp-admin does), or execute PHP under /wp-content/ (plugins
are loaded by WordPress itself; a `.php` uploaded there is never run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from infra.bootstrap.glusterfs import SHARED_DIR
from infra.bootstrap.parts import SCRIPT_MODE, File, static, template
from infra.config.fields import WORDPRESS_ENV, WORDPRESS_KEYS

# Shared by both nodes; the unit may write only under /srv/shared/app (its ReadWritePaths).
CONTENT_DIR = f"{SHARED_DIR}/app/wp-content"
PACKAGE_CONTENT = "/usr/share/wordpress/wp-content"
CONFIG_FILE = "/etc/wordpress/config-default.php"
PHP_FPM_CONFIG = "/etc/twinhost/app/php-fpm.conf"
HEALTH_SCRIPT = "/usr/local/lib/twinhost/twinhost-wordpress-health.php"
CONTENT_SCRIPT = "/usr/local/lib/twinhost/twinhost-wordpress-content"
NGINX_CONFIG = "/etc/nginx/conf.d/twinhost-wordpress.conf"
# PHP and WordPress's default theme of each Debian release (the theme is only recommended by the
# package, and the nodes install no recommends; WordPress's installer wants its default theme).
PHP_VERSIONS = {12: "8.2", 13: "8.4"}
DEFAULT_THEMES = {12: "twentytwentythree", 13: "twentytwentyfive"}
# The largest upload: nginx's client_max_body_size and PHP's upload_max_filesize/post_max_size.
UPLOAD_MIB = 64


def php_version(debian: int) -> str:
    return PHP_VERSIONS[debian]


def packages(debian: int) -> tuple[str, ...]:
    """The packages, `php` named on purpose: WordPress depends on `libapache2-mod-php | php`, and
    without `php` in the same install apt takes the first choice and brings Apache's binaries."""
    return (
        "php-fpm",
        "php",
        "php-mysql",
        "php-curl",
        "php-xml",
        "php-mbstring",
        "wordpress",
        f"wordpress-theme-{DEFAULT_THEMES[debian]}",
    )


def exec_start(debian: int) -> str:
    """The slot unit's ExecStart: a php-fpm master in the foreground, with our one pool."""
    return f"/usr/sbin/php-fpm{php_version(debian)} --nodaemonize --fpm-config {PHP_FPM_CONFIG}"


def pool_env_names(*env: Mapping[str, str]) -> list[str]:
    """The variables php-fpm passes to PHP (its pool clears the rest of the unit's environment):
    every name of the app's environment file, and the slot's version."""
    return sorted({*(name for names in env for name in names), "APP_VERSION"})


def php_fpm_config(*, debian: int, env_names: Sequence[str], max_children: int) -> str:
    """The slots' php-fpm config: written by the first boot and, when the names change, by the
    converge (a new name in `app.env` or `appSecrets` reaches PHP only through its pool)."""
    return template(
        "site/etc/twinhost/app/php-fpm.conf.j2",
        php=php_version(debian),
        env_names=list(env_names),
        max_children=max_children,
        upload_mib=UPLOAD_MIB,
    )


def wordpress_keys_env(app_keys: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The keys and salts, checked: exactly WORDPRESS_ENV, each a long secret (values not shown)."""
    keys = dict(app_keys)
    problems = []
    missing = [name for name in WORDPRESS_ENV if not keys.get(name)]
    if missing:
        problems.append(f"the keys and salts {missing} are missing (the stack generates them)")
    unknown = sorted(set(keys) - set(WORDPRESS_ENV))
    if unknown:
        problems.append(f"{unknown} are not WordPress keys or salts")
    if any(value and len(value) < 32 for value in keys.values()):
        problems.append("a key or salt is shorter than 32 characters (values not shown)")
    if problems:
        raise ValueError("wordpress: " + "; ".join(problems))
    return keys


def wordpress_files(
    *,
    debian: int,
    home: str,
    env_names: list[str],
    slots: tuple[tuple[str, int], ...],
    max_children: int,
) -> list[File]:
    """The files of app kind `wordpress` (besides the app's own unit and environment)."""
    return [
        File(
            NGINX_CONFIG,
            template(
                "site/etc/nginx/conf.d/twinhost-wordpress.conf.j2",
                slots=slots,
                content_dir=CONTENT_DIR,
                health_script=HEALTH_SCRIPT,
                upload_mib=UPLOAD_MIB,
            ),
        ),
        File(PHP_FPM_CONFIG, php_fpm_config(debian=debian, env_names=env_names, max_children=max_children)),
        File(
            CONFIG_FILE,
            template(
                "site/etc/wordpress/config-default.php.j2",
                keys=WORDPRESS_KEYS,
                content_dir=CONTENT_DIR,
                home=home,
            ),
        ),
        File(
            HEALTH_SCRIPT,
            template("site/usr/local/lib/twinhost/twinhost-wordpress-health.php.j2", content_dir=CONTENT_DIR),
        ),
        File(CONTENT_SCRIPT, static("site/usr/local/lib/twinhost/twinhost-wordpress-content"), SCRIPT_MODE),
        File(
            "/etc/twinhost/wordpress.env",
            "# twinhost-wordpress-content settings (from the stack, at first boot).\n"
            f"SHARED_DIR={SHARED_DIR}\nCONTENT_DIR={CONTENT_DIR}\nPACKAGE_CONTENT={PACKAGE_CONTENT}\n",
        ),
    ]


def max_children(memory_mib: int) -> int:
    """php-fpm workers per slot: one per 256 MiB of the node, 2..8 (a worker with WordPress
    loaded is 40-60 MiB; MariaDB's buffer pool takes an eighth, glusterd and nginx the rest)."""
    return max(2, min(8, memory_mib // 256))


def runcmd(debian: int) -> tuple[tuple[str, ...], ...]:
    """After the packages: Debian's own php-fpm service off (each slot runs its own), and nginx
    (www-data) in group twinapp to reach the slots' sockets and read uploads."""
    return (
        ("systemctl", "disable", "--now", f"php{php_version(debian)}-fpm.service"),
        ("usermod", "--append", "--groups", "twinapp", "www-data"),
    )
