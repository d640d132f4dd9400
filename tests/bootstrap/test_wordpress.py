"""App kind `wordpress`: the rendered files, and Debian 12's and 13's nginx, php-fpm and php
reading them (`nginx -t`, `php-fpm -t`, `php -l`, and WordPress's config and /health check run
by the real PHP in a chroot of the release's packages)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from infra.bootstrap import render_user_data
from infra.bootstrap.app import app_parts
from infra.bootstrap.database import PASSWORD_FILE
from infra.bootstrap.parts import readable
from infra.bootstrap.render import secret_values
from infra.bootstrap.wordpress import (
    CONFIG_FILE,
    CONTENT_DIR,
    CONTENT_SCRIPT,
    HEALTH_SCRIPT,
    NGINX_CONFIG,
    PHP_FPM_CONFIG,
    php_version,
)
from infra.config.fields import WORDPRESS_ENV, WORDPRESS_KEYS
from tests.bootstrap.bootstrap_debroot import TOOL_PACKAGES, chroot, scratch_copy, tool_root, write_fresh
from tests.bootstrap.bootstrap_nodes import install, rendered_files
from tests.bootstrap.bootstrap_specs import make_spec, self_signed

WEB_FILES = [
    "/etc/nginx/conf.d/twinhost.conf",
    "/etc/nginx/twinhost/proxy.conf",
    "/etc/nginx/twinhost/upstream.conf",
    "/etc/nginx/twinhost/https.conf",
    NGINX_CONFIG,
]
PHP_PACKAGES = ("php-fpm", "php-cli", "php-mysql")


def app_files(debian: int = 12, provider: str = "digitalocean") -> dict[str, str]:
    spec = make_spec(provider, debian=debian, app="wordpress")
    return {f.path: f.content for f in app_parts(spec, server_name=spec.server_names[0]).files}


# -- rendered files ----------------------------------------------------------------------------


def test_wordpress_without_its_database_is_not_rendered():
    spec = dataclasses.replace(make_spec(app="wordpress"), database=None)
    with pytest.raises(ValueError, match=r"kind 'wordpress' needs the site's database"):
        app_parts(spec, server_name="www.acme-shop.example")


def test_every_key_and_salt_is_required_and_none_is_shown():
    spec = make_spec(app="wordpress")
    short = dataclasses.replace(spec, app_keys=spec.app_keys[:-1])
    with pytest.raises(ValueError, match=r"WORDPRESS_NONCE_SALT") as raised:
        app_parts(short, server_name="www.acme-shop.example")
    assert all(value not in str(raised.value) for _, value in spec.app_keys)


def test_keys_and_salts_are_only_in_the_root_only_environment_file():
    spec = make_spec(app="wordpress")
    files = {f.path: f for f in app_parts(spec, server_name="www.acme-shop.example").files}
    environment = files["/etc/twinhost/app/environment"]
    assert environment.mode == 0o600 and environment.secret
    for name, value in spec.app_keys:
        assert f'{name}="{value}"' in environment.content
        holders = [path for path, f in files.items() if value in f.content]
        assert holders == ["/etc/twinhost/app/environment"], (name, holders)
    # The leak checks of the other tests know them as secrets.
    assert {value for _, value in spec.app_keys} <= set(secret_values(spec))


def test_wordpress_reads_its_keys_from_the_environment_php_fpm_passes():
    files = app_files()
    config = files[CONFIG_FILE]
    for key in WORDPRESS_KEYS:
        assert f"define('{key}', getenv('WORDPRESS_{key}'));" in config
    pool = files[PHP_FPM_CONFIG]
    assert "clear_env = yes" in pool
    passed = set(re.findall(r"^env\[(\w+)\] = \$(\w+)$", pool, re.M))
    names = {a for a, b in passed if a == b}
    assert set(WORDPRESS_ENV) | {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD_FILE"} <= names
    # The password is read from its file, never written into WordPress's config.
    assert "file_get_contents(getenv('DB_PASSWORD_FILE'))" in config


def test_everything_wordpress_writes_is_on_the_shared_volume():
    files = app_files()
    assert CONTENT_DIR.startswith("/srv/shared/app/")
    assert f"define('WP_CONTENT_DIR', '{CONTENT_DIR}');" in files[CONFIG_FILE]
    # The unit may write only under /srv/shared/app, and lays out wp-content first (as root).
    unit = files["/etc/systemd/system/twinhost-app@.service"]
    assert "ReadWritePaths=-/srv/shared/app" in unit
    assert f"ExecStartPre=+{CONTENT_SCRIPT}" in unit
    assert f"alias {CONTENT_DIR}/;" in files[NGINX_CONFIG]
    assert f"'{CONTENT_DIR}/uploads/.twinhost-health-'" in files[HEALTH_SCRIPT]


def test_each_slot_has_its_own_php_fpm_behind_its_own_port():
    files = app_files()
    unit = files["/etc/systemd/system/twinhost-app@.service"]
    assert f"ExecStart=/usr/sbin/php-fpm8.2 --nodaemonize --fpm-config {PHP_FPM_CONFIG}" in unit
    nginx = files[NGINX_CONFIG]
    for slot, port in (("blue", 8080), ("green", 8081)):
        server = nginx.split(f"listen 127.0.0.1:{port};", 1)[1].split("\nserver {", 1)[0]
        sockets = set(re.findall(r"fastcgi_pass (\S+);", server))
        assert sockets == {f"unix:/run/twinhost-app-{slot}/php-fpm.sock"}, (slot, sockets)
    assert "listen = ${RUNTIME_DIRECTORY}/php-fpm.sock" in files[PHP_FPM_CONFIG]
    deploy = files["/etc/twinhost/app/deploy.env"]
    # Deployed and rolled back as the Debian package it is.
    assert "APP_KIND=deb" in deploy and "APP_PACKAGE=wordpress" in deploy


def test_php_under_wp_content_is_never_executed():
    nginx = app_files()[NGINX_CONFIG]
    block = nginx.split("location ^~ /wp-content/ {", 1)[1].split("\n    }\n", 1)[0]
    assert "fastcgi_pass" not in block
    assert re.search(r"location ~ \\\.php\$ \{\s*return 403;", block)


@pytest.mark.parametrize("debian", [12, 13])
def test_packages_bring_php_fpm_and_not_apache(debian):
    spec = make_spec(debian=debian, app="wordpress")
    parts = app_parts(spec, server_name="www.acme-shop.example")
    assert {"php-fpm", "php", "php-mysql", "wordpress"} <= set(parts.packages)
    theme = {12: "wordpress-theme-twentytwentythree", 13: "wordpress-theme-twentytwentyfive"}[debian]
    assert theme in parts.packages
    assert not any("apache" in name for name in parts.packages)
    assert ("systemctl", "disable", "--now", f"php{php_version(debian)}-fpm.service") in parts.runcmd
    assert ("usermod", "--append", "--groups", "twinapp", "www-data") in parts.runcmd


def test_a_pinned_version_pins_the_wordpress_package_only():
    spec = make_spec(app="wordpress")
    pinned = dataclasses.replace(spec, app=spec.app.model_copy(update={"version": "6.1.9+dfsg1-0+deb12u1"}))
    packages = app_parts(pinned, server_name="www.acme-shop.example").packages
    assert "wordpress=6.1.9+dfsg1-0+deb12u1" in packages
    assert "wordpress" not in packages


def test_the_site_address_is_the_first_server_name():
    assert "define('WP_HOME', 'https://www.acme-shop.example');" in app_files()[CONFIG_FILE]


def test_user_data_of_a_wordpress_node_holds_no_plain_key_outside_its_secret_file():
    spec = make_spec(app="wordpress")
    # Decoded (DigitalOcean ships large files gz+b64): each value once, in the environment file.
    text = readable(render_user_data(spec))
    for _, value in spec.app_keys:
        assert text.count(value) == 1


# -- Debian's own programs read the rendered files ----------------------------------------------


@pytest.fixture(scope="module", params=[12, 13], ids=["debian12", "debian13"])
def php_root(request, tmp_path_factory) -> tuple[int, Path]:
    debian = request.param
    root = tool_root(debian, (*TOOL_PACKAGES, *PHP_PACKAGES))
    scratch = scratch_copy(root, tmp_path_factory.mktemp(f"wordpress{debian}") / "root")
    names = make_spec(app="wordpress").server_names
    cert, key = self_signed(names)
    # Proxied: the origin certificate for every name; ACME: each name's own (twinhost-certs).
    for live in ("live", *(f"live/{name}" for name in names)):
        write_fresh(scratch / f"etc/twinhost/tls/{live}/fullchain.pem", cert)
        write_fresh(scratch / f"etc/twinhost/tls/{live}/privkey.pem", key, 0o600)
    return debian, scratch


def test_nginx_accepts_the_web_front_with_the_wordpress_servers(php_root):
    debian, root = php_root
    files = rendered_files(make_spec(debian=debian, app="wordpress"))
    install(root, files, WEB_FILES)
    result = chroot(root, ["/usr/sbin/nginx", "-t"])
    assert result.returncode == 0, result.stderr
    warnings = [
        line for line in result.stderr.splitlines() if "[warn]" in line and "ssl_stapling" not in line
    ]
    assert not warnings, warnings


def test_php_fpm_accepts_the_pool(php_root):
    debian, root = php_root
    files = rendered_files(make_spec(debian=debian, app="wordpress"))
    install(root, files, [PHP_FPM_CONFIG])
    # As twinapp (UID 4000), like the slot unit. The scratch root's /dev/null is not usable
    # under /tmp (nodev): the host's, bound in a private mount namespace.
    command = (
        f"mount --bind /dev/null {root}/dev/null && exec chroot --userspec=4000:4000 {root} /usr/bin/env "
        f"RUNTIME_DIRECTORY=/run/twinhost-app-blue /usr/sbin/php-fpm{php_version(debian)} "
        f"--fpm-config {PHP_FPM_CONFIG} -t"
    )
    result = subprocess.run(["unshare", "--mount", "sh", "-c", command], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test is successful" in result.stdout + result.stderr


def test_php_parses_the_config_and_the_health_check(php_root):
    debian, root = php_root
    install(root, rendered_files(make_spec(debian=debian, app="wordpress")), [CONFIG_FILE, HEALTH_SCRIPT])
    for path in (CONFIG_FILE, HEALTH_SCRIPT):
        result = chroot(root, [php(debian), "-l", path])
        assert result.returncode == 0, result.stdout + result.stderr


def php(debian: int) -> str:
    return f"/usr/bin/php{php_version(debian)}"


# No maintainer script ran in the chroot, so phpenmod did not enable the mysql extensions: load
# them as the node's php-fpm does.
MYSQLI = ["-d", "extension=mysqlnd", "-d", "extension=mysqli"]


def _php_env(spec) -> list[str]:
    env = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": "9",  # nothing listens: the database check must fail
        "DB_NAME": spec.database.name,
        "DB_USER": spec.database.user,
        "DB_PASSWORD_FILE": PASSWORD_FILE,
        **dict(spec.app_keys),
    }
    return ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items())]


def test_wordpress_config_defines_the_database_keys_and_shared_content(php_root):
    debian, root = php_root
    spec = make_spec(debian=debian, app="wordpress")
    install(root, rendered_files(spec), [CONFIG_FILE])
    write_fresh(root / PASSWORD_FILE.lstrip("/"), spec.database.password + "\n", 0o640)
    code = (
        f"require '{CONFIG_FILE}'; echo json_encode(['name' => DB_NAME, 'user' => DB_USER, "
        "'host' => DB_HOST, 'password' => DB_PASSWORD, 'auth' => AUTH_KEY, 'nonce_salt' => NONCE_SALT, "
        "'content' => WP_CONTENT_DIR, 'home' => WP_HOME, 'edit' => DISALLOW_FILE_EDIT]);"
    )
    result = chroot(root, [*_php_env(spec), php(debian), "-r", code])
    assert result.returncode == 0, result.stdout + result.stderr
    keys = dict(spec.app_keys)
    assert json.loads(result.stdout) == {
        "name": spec.database.name,
        "user": spec.database.user,
        "host": "127.0.0.1:9",
        "password": spec.database.password,
        "auth": keys["WORDPRESS_AUTH_KEY"],
        "nonce_salt": keys["WORDPRESS_NONCE_SALT"],
        "content": CONTENT_DIR,
        "home": "https://www.acme-shop.example",
        "edit": True,
    }


@pytest.mark.parametrize("writable", [True, False], ids=["volume-writable", "volume-refusing"])
def test_health_fails_without_the_database_and_names_the_volume_when_it_refuses(php_root, writable):
    debian, root = php_root
    spec = make_spec(debian=debian, app="wordpress")
    install(root, rendered_files(spec), [HEALTH_SCRIPT])
    uploads = root / CONTENT_DIR.lstrip("/") / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    uploads.chmod(0o755)
    # The check runs as www-data here (uid 33): a directory it may not write is a refusing volume.
    (root / CONTENT_DIR.lstrip("/")).chmod(0o755)
    os.chown(uploads, 33 if writable else 0, 33 if writable else 0)
    result = chroot(
        root,
        ["/usr/sbin/chroot", "--userspec=33:33", "/", *_php_env(spec), php(debian), *MYSQLI, HEALTH_SCRIPT],
    )
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["status"] == "failing"
    assert any(p.startswith("database: cannot connect") for p in body["problems"]), body
    assert ("shared volume: wp-content takes no write" in body["problems"]) is not writable, body
    assert not list(uploads.glob(".twinhost-health-*")), "the probe file is removed"
