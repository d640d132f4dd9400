"""A new site is watched without a hidden step: `new-site` lists a watchdog-mode site in the
platform's `twinhost:sites`, `destroy-site` takes it out first, `twinhost plan` warns about a
watchdog-mode site no platform lists."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from infra.cli import main

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.harbourlaw.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path


def twinhost(project: Path, *args: str) -> int:
    return main(["--project-dir", str(project), *args])


def plan(project: Path, stack: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return twinhost(project, "plan", "--stack", stack, "--build-dir", str(project / "build"))


def test_new_site_lists_a_watchdog_site_in_the_platform_sites_and_changes_nothing_else(project, capsys):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example") == 0
    assert platform.read_bytes() == before.replace(b"    - harbourlaw\n", b"    - harbourlaw\n    - acme\n")
    out = capsys.readouterr().out
    assert "Added acme to twinhost:sites in Pulumi.prod.yaml" in out
    assert "Pulumi.acme.yaml and Pulumi.prod.yaml" in out


def test_new_site_prints_the_site_up_then_the_platform_up(project, capsys):
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example") == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    site_up = lines.index(
        next(shown for shown in lines if shown.startswith("pulumi up --stack brightpixel/acme "))
    )
    platform_up = lines.index(
        next(shown for shown in lines if shown.startswith("pulumi up --stack brightpixel/twinhost/prod "))
    )
    preview = lines.index(
        next(shown for shown in lines if shown.startswith("pulumi preview --stack brightpixel/acme"))
    )
    assert preview < site_up < platform_up


def test_no_watch_leaves_the_platform_alone_and_the_plan_warns(project, capsys):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example", "--no-watch") == 0
    assert platform.read_bytes() == before
    assert "--no-watch: nothing watches acme" in capsys.readouterr().out
    assert plan(project, "acme") == 0
    err = capsys.readouterr().err
    assert "warning: acme is in failover mode 'watchdog'" in err and "twinhost:sites" in err


def test_the_plan_of_a_listed_site_has_no_warning(project, capsys):
    assert plan(project, "harbourlaw") == 0
    assert "warning" not in capsys.readouterr().err


def test_a_site_the_watcher_does_not_watch_is_not_listed(project):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example", "--failover-mode", "manual") == 0
    assert platform.read_bytes() == before


def test_a_platform_edit_that_would_be_invalid_writes_nothing(project, capsys):
    # The first listed site makes the Cloudflare watcher's token required: refused, no file written.
    platform = project / "Pulumi.prod.yaml"
    text = platform.read_text()
    text = text.replace("  twinhost:sites:\n    - harbourlaw\n", "")
    text = text.replace("  twinhost:watcherDnsToken:\n    secure: v1:set-with-pulumi-config-set-secret\n", "")
    platform.write_text(text)
    (project / "Pulumi.harbourlaw.yaml").unlink()
    assert (
        twinhost(
            project,
            "new-site",
            "acme",
            "--domain",
            "acme.example",
            "--platform-stack",
            "brightpixel/twinhost/prod",
        )
        == 2
    )
    assert platform.read_text() == text
    assert not (project / "Pulumi.acme.yaml").exists()
    err = capsys.readouterr().err
    assert "nothing written" in err and "watcherDnsToken" in err


def test_destroy_site_refuses_without_yes_and_changes_nothing(project, capsys):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "destroy-site", "harbourlaw") == 2
    assert platform.read_bytes() == before
    err = capsys.readouterr().err
    assert "--yes" in err and "pulumi destroy --stack brightpixel/harbourlaw" in err


def test_destroy_site_unlists_the_site_and_prints_the_commands_in_order(project, capsys):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "destroy-site", "harbourlaw", "--yes") == 0
    # The last site gone, the key stays (with its comment) as an empty list.
    assert platform.read_bytes() == before.replace(
        b"  twinhost:sites:\n    - harbourlaw\n", b"  twinhost:sites: []\n"
    )
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    order = [
        "pulumi up --stack brightpixel/twinhost/prod",
        "pulumi state unprotect --all --stack brightpixel/harbourlaw --yes",
        "pulumi destroy --stack brightpixel/harbourlaw",
        "pulumi stack rm brightpixel/harbourlaw",
        "git rm Pulumi.harbourlaw.yaml",
    ]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(command)) for command in order]
    assert positions == sorted(positions)
    assert (project / "Pulumi.harbourlaw.yaml").exists()  # needed by `pulumi destroy`


def test_destroy_site_of_an_unknown_site_is_refused(project, capsys):
    assert twinhost(project, "destroy-site", "nosuch", "--yes") == 2
    assert "no site stack file Pulumi.nosuch.yaml" in capsys.readouterr().err


def test_new_site_then_destroy_site_leaves_the_platform_file_as_it_was(project):
    platform = project / "Pulumi.prod.yaml"
    before = platform.read_bytes()
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example") == 0
    assert twinhost(project, "destroy-site", "acme", "--yes") == 0
    assert platform.read_bytes() == before


def test_a_site_added_to_an_empty_sites_list_is_a_block_list(project):
    platform = project / "Pulumi.prod.yaml"
    assert twinhost(project, "destroy-site", "harbourlaw", "--yes") == 0
    emptied = platform.read_bytes()
    assert b"  twinhost:sites: []\n" in emptied
    assert twinhost(project, "new-site", "acme", "--domain", "acme.example") == 0
    assert platform.read_bytes() == emptied.replace(
        b"  twinhost:sites: []\n", b"  twinhost:sites:\n    - acme\n"
    )
