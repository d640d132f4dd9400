"""`database: mariadb` in the stack config: off by default, a typo refused naming the key and what
is allowed, and the app's connection settings kept free for twinhost to set."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse_config
from tests.conftest import run_twinhost, write_stack


def _refused(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values, secret_keys={"appSecrets"})
    return [str(i) for i in caught.value.issues]


def test_the_database_is_off_by_default(site_values):
    assert parse_config(site_values).database == "none"  # type: ignore[union-attr]


def test_database_mariadb_is_accepted(site_values):
    assert parse_config(dict(site_values, database="mariadb")).database == "mariadb"  # type: ignore[union-attr]


def test_a_database_typo_names_the_key_and_what_is_allowed(site_values):
    [problem] = _refused(dict(site_values, database="mysql"))
    assert problem.startswith("twinhost:database: must be 'none' or 'mariadb'") and "'mysql'" in problem


def test_the_apps_settings_may_not_set_the_database_connection(site_values):
    values = dict(
        site_values,
        database="mariadb",
        app={"kind": "demo", "env": {"DB_HOST": "db.example"}},
        appSecrets='{"DB_PASSWORD_FILE": "hunter2"}',
    )
    problems = "\n".join(_refused(values))
    assert "twinhost:app.env.DB_HOST: is set by twinhost for database 'mariadb'" in problems
    assert "twinhost:appSecrets: sets ['DB_PASSWORD_FILE']" in problems
    assert "hunter2" not in problems


def test_the_same_names_are_free_without_a_database(site_values):
    values = dict(site_values, app={"kind": "demo", "env": {"DB_HOST": "db.example"}})
    assert parse_config(values).app.env == {"DB_HOST": "db.example"}  # type: ignore[union-attr]


def test_a_container_app_cannot_reach_the_database_yet_and_is_told_so(site_values):
    values = dict(site_values, database="mariadb", app={"kind": "container", "image": "ghcr.io/acme/shop"})
    [problem] = _refused(values)
    assert problem.startswith("twinhost:database:") and "container" in problem


def test_a_database_typo_exits_2_naming_the_key(tmp_path, site_values):
    write_stack(tmp_path, "acme", dict(site_values, site="acme", domains=["acme.example"], database="maria"))
    result = run_twinhost("plan", "--stack", "acme", "--project-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "twinhost:database: must be 'none' or 'mariadb'" in result.stderr
    assert "Traceback" not in result.stderr
