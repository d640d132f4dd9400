"""The client's app as a hardened systemd service, deployable blue/green without a new node.

Five kinds (infra.config): the built-in demo (default), a container image run by podman, a
Debian package, a command, or WordPress (Debian's package under php-fpm: infra/bootstrap/wordpress.py). Each runs as `twinhost-app@<slot>` (blue or green) listening on
127.0.0.1:$PORT; the web front proxies to the active slot. `/usr/local/sbin/twinhost-deploy
VERSION` starts a version in the idle slot, health-checks it, switches nginx and stops the old
slot, rolling back on any failure.

Settings (`app.env`) and secrets (`spec.app_secrets`) go into one 0600 environment file read by
systemd; secrets never appear on a command line or in the unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from infra.bootstrap import wordpress
from infra.bootstrap.database import database_env
from infra.bootstrap.parts import SCRIPT_MODE, File, Parts, static, template
from infra.bootstrap.spec import NodeSpec
from infra.config import RESERVED_ENV, App, CommandApp, ContainerApp, DebApp, DemoApp, WordPressApp
from infra.config.fields import ENV_NAME

APP_DIR = "/etc/twinhost/app"
STATE_DIR = "/var/lib/twinhost/app"
APP_UNIT = "/etc/systemd/system/twinhost-app@.service"
APP_USER = "twinapp"
# A fixed UID on both nodes: files the app writes on the shared volume have the same owner on
# either node. Above Debian's system range and far above the first human users.
APP_UID = 4000
ENV_MODE = 0o600
HEALTH_PATH = "/health"
HEALTH_TIMEOUT_SECONDS = 60
# The names are checked in config validation first (infra/config/rules.py); this is the guard.
_ENV_NAME = ENV_NAME


def slot_ports(port: int) -> tuple[int, int]:
    """(blue, green): the configured port and its neighbour."""
    return port, (port + 1 if port < 65535 else port - 1)


def image_repository(image: str) -> str:
    """`registry/name` of an image reference, without tag or digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def image_reference(image: str, version: str) -> str:
    """What the first boot runs: the configured reference when it has a tag or digest, else
    `<image>:<version>`."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    if "@" in image or ":" in last:
        return image
    return f"{image}:{version}"


def env_file_line(name: str, value: str) -> str:
    """KEY="value" in systemd's EnvironmentFile syntax (\\, ", $ and ` escaped)."""
    escaped = re.sub(r'([\\"$`])', r"\\\1", value)
    return f'{name}="{escaped}"\n'


def app_parts(spec: NodeSpec, *, server_name: str) -> Parts:
    app = spec.app
    problems = []
    settings = dict(app.env)
    secrets = dict(spec.app_secrets)
    for name, value in {**settings, **secrets}.items():
        if not _ENV_NAME.match(name) or name in RESERVED_ENV:
            problems.append(f"{name!r} is not usable as an environment variable name here")
        if any(ch in value for ch in "\n\r\0"):
            problems.append(f"the value of {name} holds a line break or NUL")
    overlap = sorted(set(settings) & set(secrets))
    if overlap:
        problems.append(f"{overlap} set both as settings and as secrets")
    if problems:
        raise ValueError("app: " + "; ".join(problems))

    # The database's connection settings (no secret: the password is a file the app's group reads).
    database = database_env(spec)
    taken = sorted(set(database) & {*settings, *secrets})
    if taken:
        problems.append(f"{taken} are set by twinhost for the database")
        raise ValueError("app: " + "; ".join(problems))
    # Secrets the stack generates for the kind (WordPress's keys and salts).
    keys = wordpress.wordpress_keys_env(spec.app_keys) if isinstance(app, WordPressApp) else {}
    if spec.app_keys and not keys:
        raise ValueError(f"app: app kind {app.kind!r} takes no generated keys")
    if isinstance(app, WordPressApp) and not database:
        raise ValueError("app: kind 'wordpress' needs the site's database (database: mariadb)")
    blue, green = slot_ports(app.port)
    version = getattr(app, "version", "latest")

    slot = [f"PORT={blue}\n", f"APP_VERSION={version}\n"]
    deploy = {
        "APP_KIND": app.kind,
        "BLUE_PORT": str(blue),
        "GREEN_PORT": str(green),
        "HEALTH_PATH": HEALTH_PATH,
        "HEALTH_TIMEOUT": str(HEALTH_TIMEOUT_SECONDS),
        "SERVER_NAME": server_name,
        "APP_IMAGE": "",
        "APP_PACKAGE": "",
    }
    files: list[File] = []
    packages: list[str] = []
    runcmd: list[tuple[str, ...]] = []
    if isinstance(app, DemoApp):
        files.append(
            File(
                "/usr/local/lib/twinhost/demo-app.py",
                static("site/usr/local/lib/twinhost/demo-app.py"),
                SCRIPT_MODE,
            )
        )
        packages.append("python3")
    elif isinstance(app, ContainerApp):
        reference = image_reference(app.image, app.version)
        slot.append(f"APP_IMAGE_REF={reference}\n")
        deploy["APP_IMAGE"] = image_repository(app.image)
        packages += ["podman", "netavark"] + (["nftables"] if spec.debian >= 13 else [])
        # Pull before the first start: the unit itself never waits on a registry.
        runcmd.append(("podman", "pull", reference))
    elif isinstance(app, (DebApp, CommandApp)):
        files.append(
            File(
                "/usr/local/lib/twinhost/app-run",
                template("site/usr/local/lib/twinhost/app-run.j2", command=app.command),
                SCRIPT_MODE,
            )
        )
        if isinstance(app, DebApp):
            deploy["APP_PACKAGE"] = app.package
            packages.append(app.package if app.version == "latest" else f"{app.package}={app.version}")
    elif isinstance(app, WordPressApp):
        # twinhost-deploy rolls WordPress as the Debian package it is (kept .debs, rollback).
        deploy["APP_KIND"] = "deb"
        deploy["APP_PACKAGE"] = "wordpress"
        packages += [
            name if name != "wordpress" or app.version == "latest" else f"wordpress={app.version}"
            for name in wordpress.packages(spec.debian)
        ]
        files += wordpress.wordpress_files(
            debian=spec.debian,
            home=f"https://{server_name}",
            env_names=wordpress.pool_env_names(database, settings, secrets, keys),
            slots=(("blue", blue), ("green", green)),
            max_children=wordpress.max_children(spec.memory_mib),
        )
        runcmd += wordpress.runcmd(spec.debian)
    files += [
        File(
            f"{APP_DIR}/environment",
            environment_text(settings, secrets, database, keys),
            ENV_MODE,
            secret=bool(secrets or keys),
        ),
        File(f"{APP_DIR}/slot-blue.env", "".join(slot)),
        File(
            f"{APP_DIR}/deploy.env",
            "# twinhost-deploy settings (from the stack, at first boot).\n"
            + "".join(f"{k}={_shell_word(v)}\n" for k, v in deploy.items()),
        ),
        File(f"{STATE_DIR}/active", "blue\n"),
        File(APP_UNIT, unit_text(app, sorted({*database, *settings, *secrets, *keys}), spec.debian)),
        File("/usr/local/sbin/twinhost-deploy", static("site/usr/local/sbin/twinhost-deploy"), SCRIPT_MODE),
    ]
    runcmd += [
        ("systemctl", "daemon-reload"),
        ("systemctl", "enable", "--now", "twinhost-app@blue.service"),
    ]
    user = {
        "name": APP_USER,
        "uid": APP_UID,
        "system": True,
        "no_create_home": True,
        "homedir": "/nonexistent",
        "shell": "/usr/sbin/nologin",
        "lock_passwd": True,
    }
    return Parts(
        files=tuple(files),
        packages=tuple(packages),
        runcmd=tuple(runcmd),
        config={"users": [user]},
        name="app",
    )


def environment_text(
    settings: Mapping[str, str],
    secrets: Mapping[str, str],
    database: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
) -> str:
    """The app's environment file: the database's connection settings, settings, secrets, then
    the keys the stack generates for the kind (WordPress's), each sorted (first boot and
    twinhost-converge write the same text, so an unchanged config changes nothing)."""
    lines = ["# twinhost app settings and secrets (read by systemd; root only).\n"]
    lines += [env_file_line(k, v) for k, v in sorted((database or {}).items())]
    lines += [env_file_line(k, v) for k, v in sorted(settings.items())]
    lines += [env_file_line(k, v) for k, v in sorted(secrets.items())]
    lines += [env_file_line(k, v) for k, v in sorted((keys or {}).items())]
    return "".join(lines)


def unit_text(app: App, env_names: Sequence[str], debian: int) -> str:
    """twinhost-app@.service for `app`; a container's unit names every variable it passes on."""
    exec_start = ""
    if isinstance(app, DemoApp):
        exec_start = "/usr/bin/python3 /usr/local/lib/twinhost/demo-app.py"
    elif isinstance(app, (DebApp, CommandApp)):
        exec_start = "/usr/local/lib/twinhost/app-run"
    elif isinstance(app, WordPressApp):
        exec_start = wordpress.exec_start(debian)
    return template(
        "site/etc/systemd/system/twinhost-app@.service.j2",
        kind=app.kind,
        env_names=list(env_names),
        container_port=app.port,
        exec_start=exec_start,
    )


def _shell_word(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]*", value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"
