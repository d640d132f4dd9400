"""App kind `wordpress` in the stack config and under the plan's mocks: it needs `database:
mariadb` (refused otherwise, naming the key, exit 2), its keys and salts are not the operator's to
set, and the stack makes them with pulumi_random as secrets that only the nodes' user data holds."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, WordPressApp, parse_config
from infra.config.fields import WORDPRESS_ENV
from infra.plan.runner import PlanResult, run_plan
from tests.conftest import run_twinhost, stack_file_values, write_stack

WORDPRESS = {"kind": "wordpress"}


def _refused(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values, secret_keys={"appSecrets"})
    return [str(i) for i in caught.value.issues]


def test_wordpress_with_its_database_is_accepted(site_values):
    config = parse_config(dict(site_values, database="mariadb", app=WORDPRESS))
    assert isinstance(config.app, WordPressApp)  # type: ignore[union-attr]
    assert (config.app.port, config.app.version) == (8080, "latest")  # type: ignore[union-attr]


def test_wordpress_without_the_database_is_refused_naming_the_key(site_values):
    [problem] = _refused(dict(site_values, app=WORDPRESS))
    assert problem.startswith("twinhost:database: 'none' leaves app kind 'wordpress' without its database")
    assert "set database: mariadb" in problem


def test_wordpress_keys_and_salts_are_not_the_operators_to_set(site_values):
    values = dict(
        site_values,
        database="mariadb",
        app={"kind": "wordpress", "env": {"WORDPRESS_AUTH_KEY": "mine"}},
        appSecrets='{"WORDPRESS_NONCE_SALT": "hunter2hunter2"}',
    )
    problems = "\n".join(_refused(values))
    assert "twinhost:app.env.WORDPRESS_AUTH_KEY: is one of WordPress's keys and salts" in problems
    assert "twinhost:appSecrets: sets ['WORDPRESS_NONCE_SALT']" in problems
    assert "hunter2hunter2" not in problems


def test_an_unknown_wordpress_key_is_refused_with_the_allowed_ones(site_values):
    [problem] = _refused(dict(site_values, database="mariadb", app={"kind": "wordpress", "theme": "x"}))
    assert problem.startswith("twinhost:app.theme: is not a known key"), problem


def test_an_unknown_app_kind_lists_wordpress(site_values):
    [problem] = _refused(dict(site_values, app={"kind": "drupal"}))
    assert "'wordpress'" in problem, problem


def test_wordpress_without_the_database_exits_2_naming_the_key(tmp_path, site_values):
    write_stack(tmp_path, "acme", dict(site_values, site="acme", domains=["acme.example"], app=WORDPRESS))
    result = run_twinhost("plan", "--stack", "acme", "--project-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "twinhost:database: 'none' leaves app kind 'wordpress' without its database" in result.stderr
    assert "Traceback" not in result.stderr


# -- the keys and salts, under the plan's mocks ----------------------------------------------------


@pytest.fixture(scope="module")
def plan_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("wordpress")
    write_stack(
        directory, "harbourlaw", dict(stack_file_values("harbourlaw"), database="mariadb", app=WORDPRESS)
    )
    return directory


@pytest.fixture(scope="module")
def plan(plan_dir) -> PlanResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return run_plan(plan_dir / "Pulumi.harbourlaw.yaml")


def test_the_stack_makes_eight_random_keys_and_salts_in_one_component(plan):
    [component] = [r for r in plan.resources if r.type == "twinhost:site:WordPressKeys"]
    keys = [r for r in plan.resources if r.parent and "WordPressKeys" in r.parent]
    assert len(keys) == len(WORDPRESS_ENV) == 8
    for key in keys:
        assert key.type == "random:index/randomPassword:RandomPassword"
        assert key.inputs["length"] >= 64 and key.inputs["special"] is False
    assert component.name == "harbourlaw-wordpress"


def test_a_site_of_another_kind_makes_no_wordpress_keys():
    from tests.conftest import REPO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plain = run_plan(REPO / "Pulumi.harbourlaw.yaml")
    assert not any("WordPressKeys" in r.type for r in plain.resources)


def test_the_plan_shows_the_keys_as_secret_and_both_nodes_get_the_same(plan_dir, tmp_path):
    result = run_twinhost(
        *["plan", "--stack", "harbourlaw", "--project-dir", str(plan_dir), "--json"],
        *["--build-dir", str(tmp_path / "build")],
    )
    assert result.returncode == 0, result.stderr
    site = json.loads(result.stdout)
    by_name = {r["name"]: r for r in site["resources"]}
    assert by_name["harbourlaw-wordpress-auth-key"]["settings"]["result"] == "[secret]"
    values: dict[str, dict[str, str]] = {}
    for node in ("digitalocean", "linode"):
        document = yaml.safe_load((tmp_path / f"build/harbourlaw/{node}.readable.yaml").read_text())
        [environment] = [
            f["content"] for f in document["write_files"] if f["path"] == "/etc/twinhost/app/environment"
        ]
        values[node] = dict(re.findall(r'^(WORDPRESS_\w+)="([A-Za-z0-9]+)"$', environment, re.M))
    assert set(values["digitalocean"]) == set(WORDPRESS_ENV)
    # The same keys on both nodes: a login through one node is valid on the other.
    assert values["digitalocean"] == values["linode"]
    assert len(set(values["linode"].values())) == 8 and all(len(v) == 64 for v in values["linode"].values())
    for value in values["linode"].values():
        assert value not in result.stdout + result.stderr


def test_no_stack_output_holds_a_key(plan):
    document = yaml.safe_load(plan.user_data["linode"])
    [environment] = [
        f["content"] for f in document["write_files"] if f["path"] == "/etc/twinhost/app/environment"
    ]
    keys = re.findall(r'^WORDPRESS_\w+="([A-Za-z0-9]+)"$', environment, re.M)
    assert len(keys) == 8
    outputs = json.dumps(plan.outputs, default=str)
    assert not any(key in outputs for key in keys)


def test_each_nodes_converge_sends_the_php_fpm_pool_its_first_boot_wrote(plan):
    """php-fpm passes PHP only the names its pool lists, and the pool is sized by the node's
    memory: each node's converge carries that node's pool, as its user data holds it (whose copy
    lost its blank lines: `compact`; twinhost-converge compares without them)."""
    from infra.bootstrap.parts import decoded_files, readable, strip_comments
    from infra.bootstrap.wordpress import PHP_FPM_CONFIG
    from infra.plan.runner import reveal

    for node in ("digitalocean", "linode"):
        files = {
            e["path"]: e["content"] for e in decoded_files(yaml.safe_load(readable(plan.user_data[node])))
        }
        [apply] = [r for r in plan.resources if r.name == f"harbourlaw-{node}-converge-apply"]
        state = json.loads(reveal(apply.inputs["stdin"]))
        assert strip_comments(state["app"]["phpFpm"]) == strip_comments(files[PHP_FPM_CONFIG])
        assert (
            "env[WORDPRESS_AUTH_KEY]" in state["app"]["phpFpm"] and "env[DB_NAME]" in state["app"]["phpFpm"]
        )


def test_the_stack_file_in_docs_wordpress_md_is_valid():
    from tests.conftest import REPO

    text = (REPO / "docs" / "wordpress.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    values = {key.removeprefix("twinhost:"): value for key, value in yaml.safe_load(block)["config"].items()}
    config = parse_config(values)
    assert isinstance(config.app, WordPressApp) and config.database == "mariadb"  # type: ignore[union-attr]
