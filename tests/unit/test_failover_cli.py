"""`twinhost failover` switches a manual-mode site by editing its stack file, nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra.cli import main
from infra.failover_cli import switch_active
from infra.plan.runner import run_plan
from tests.conftest import write_stack


@pytest.fixture
def manual_site(tmp_path, site_values):
    path = write_stack(
        tmp_path, "acme", dict(site_values, failover={"mode": "manual", "active": "digitalocean"})
    )
    path.write_text("# Acme's site: keep this comment\n" + path.read_text())
    return tmp_path, path


def test_switching_moves_the_failover_record_to_the_other_node(manual_site):
    project, path = manual_site
    _, previous = switch_active(project, "acme", "linode")
    assert previous == "digitalocean"
    result = run_plan(path)
    a_records = [
        r
        for r in result.resources
        if r.type == "cloudflare:index/dnsRecord:DnsRecord" and r.inputs["type"] == "A"
    ]
    assert [r.inputs["content"] for r in a_records] == ["198.51.100.20"]


def test_switching_keeps_the_stack_file_comments(manual_site):
    project, path = manual_site
    switch_active(project, "acme", "both")
    assert path.read_text().startswith("# Acme's site: keep this comment\n")


def test_automatic_modes_are_not_switched_by_hand(tmp_path, site_values):
    path = write_stack(tmp_path, "auto", site_values)  # the example is in watchdog mode
    before = path.read_text()
    with pytest.raises(ValueError, match="only mode 'manual'"):
        switch_active(tmp_path, "auto", "linode")
    assert path.read_text() == before


def test_unknown_targets_are_refused(manual_site):
    project, _path = manual_site
    with pytest.raises(ValueError, match="must be one of"):
        switch_active(project, "acme", "aws")


# -- the stack file keeps every other byte ------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hand_written_manual_site(tmp_path):
    """The example site as its author wrote it (comments, indented lists, one-line SSH keys of
    100+ characters), switched to manual mode by a text edit."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    text = (REPO / "Pulumi.harbourlaw.yaml").read_text()
    assert "    mode: watchdog\n" in text
    text = text.replace("    mode: watchdog\n", "    mode: manual\n    active: digitalocean\n")
    assert max(len(line) for line in text.splitlines()) > 100  # the SSH keys, on one line each
    path = tmp_path / "Pulumi.harbourlaw.yaml"
    path.write_text(text)
    return tmp_path, path


def test_switching_changes_only_the_active_line_byte_for_byte(hand_written_manual_site):
    project, path = hand_written_manual_site
    before = path.read_bytes()
    switch_active(project, "harbourlaw", "linode")
    after = path.read_bytes()
    assert after == before.replace(b"    active: digitalocean\n", b"    active: linode\n")
    assert after != before


# -- --apply runs `pulumi up`, or changes nothing ------------------------------------------------


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch):
    """A `pulumi` executable, alone on PATH, that records its argv and working directory."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    record = tmp_path / "pulumi-calls.jsonl"
    script = bin_dir / "pulumi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\\n')\n"
        "sys.exit(int(os.environ.get('FAKE_PULUMI_EXIT', '0')))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))

    def calls():
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    return calls


def failover(project, *args):
    return main(["--project-dir", str(project), "failover", *args])


def test_apply_runs_pulumi_up_for_that_stack_with_the_policy_pack(
    hand_written_manual_site, fake_pulumi, capsys
):
    project, path = hand_written_manual_site
    assert failover(project, "harbourlaw", "--to", "linode", "--apply") == 0
    assert fake_pulumi() == [
        {"argv": ["up", "--stack", "harbourlaw", "--policy-pack", "policy/"], "cwd": str(project)}
    ]
    assert "    active: linode\n" in path.read_text()
    assert "pulumi up --stack harbourlaw" in capsys.readouterr().out


def test_apply_without_the_pulumi_cli_edits_nothing_and_exits_2(
    hand_written_manual_site, tmp_path, monkeypatch, capsys
):
    project, path = hand_written_manual_site
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    before = path.read_bytes()
    assert failover(project, "harbourlaw", "--to", "linode", "--apply") == 2
    assert path.read_bytes() == before
    err = capsys.readouterr().err
    assert "needs the Pulumi CLI" in err and "nothing changed" in err


def test_apply_after_an_unapplied_edit_still_runs_pulumi_up(hand_written_manual_site, fake_pulumi, capsys):
    project, _ = hand_written_manual_site
    assert failover(project, "harbourlaw", "--to", "linode") == 0  # edited, not applied
    assert fake_pulumi() == []
    assert failover(project, "harbourlaw", "--to", "linode", "--apply") == 0
    assert [call["argv"][:3] for call in fake_pulumi()] == [["up", "--stack", "harbourlaw"]]


def test_a_failed_pulumi_up_is_a_failure_that_says_the_record_may_not_have_moved(
    hand_written_manual_site, fake_pulumi, monkeypatch, capsys
):
    project, _ = hand_written_manual_site
    monkeypatch.setenv("FAKE_PULUMI_EXIT", "3")
    assert failover(project, "harbourlaw", "--to", "linode", "--apply") == 3
    assert "may not have moved" in capsys.readouterr().err


def test_a_stack_file_written_by_new_site_changes_only_its_active_line(tmp_path, capsys):
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.harbourlaw.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    assert (
        main(
            [
                "--project-dir",
                str(tmp_path),
                "new-site",
                "acme",
                "--domain",
                "acme.example",
                "--failover-mode",
                "manual",
            ]
        )
        == 0
    )
    path = tmp_path / "Pulumi.acme.yaml"
    before = path.read_bytes()
    assert b"    active: digitalocean\n" in before and max(len(line) for line in before.splitlines()) > 100
    switch_active(tmp_path, "acme", "linode")
    assert path.read_bytes() == before.replace(b"    active: digitalocean\n", b"    active: linode\n")


def test_a_stack_file_that_is_not_yaml_is_refused_with_one_line_and_left_untouched(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text("name: twinhost\nruntime: python\n")
    path = tmp_path / "Pulumi.acme.yaml"
    path.write_text("config:\n  twinhost:failover: {active: [digitalocean\n")
    before = path.read_bytes()
    assert main(["--project-dir", str(tmp_path), "failover", "acme", "--to", "linode"]) == 2
    err = capsys.readouterr().err
    assert "twinhost failover: Pulumi.acme.yaml is not valid YAML (line " in err, err
    assert "Traceback" not in err and path.read_bytes() == before


def test_a_project_dir_without_pulumi_yaml_is_refused_not_searched_above(tmp_path, capsys):
    project = tmp_path / "clients" / "acme"
    project.mkdir(parents=True)
    (tmp_path / "Pulumi.yaml").write_text("name: twinhost\nruntime: python\n")  # a parent project
    with pytest.raises(SystemExit) as exited:
        main(["--project-dir", str(project), "failover", "acme", "--to", "linode"])
    assert exited.value.code == 2
    assert f"--project-dir {project} holds no Pulumi.yaml" in capsys.readouterr().err
