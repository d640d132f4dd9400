"""`twinhost lab up|check|drill|replace|down|status`: the local lab (see docs/lab.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from infra.cli import find_project_dir, project_dir_option
from twinhost_lab.host import LabError
from twinhost_lab.layout import Layout


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = commands.add_parser(
        "lab", help="boot a site's pair and the redirector locally and check them (root)"
    )
    actions = lab.add_subparsers(dest="lab_command", required=True)
    up = actions.add_parser(
        "up", help="boot the containers from the plan's user data", parents=[project_dir_option()]
    )
    up.add_argument("--stack", default="harbourlaw", help="the site stack to boot (default: harbourlaw)")
    up.add_argument("--platform", default="prod", help="the platform stack (default: prod)")
    up.add_argument("--debian", type=int, choices=(12, 13), default=12, help="Debian release (default: 12)")
    up.add_argument(
        "--database",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="boot the site with database: mariadb (a copy of the stack files; the repository is "
        "untouched): MariaDB Galera on both nodes, the witness's garbd as the third vote "
        "(default: off, the stack file as it is; docs/database.md says what is still open)",
    )
    up.add_argument(
        "--wordpress",
        action="store_true",
        help="boot the site as a WordPress site (implies --database): app kind wordpress, Debian's "
        "package under php-fpm, uploads on the shared volume (a copy of the stack files; the "
        "repository is untouched; docs/wordpress.md)",
    )
    up.set_defaults(handler=_up)
    check = actions.add_parser("check", help="run every outside check against the running lab")
    check.add_argument("-k", dest="only", default=None, help="only the checks whose name contains this")
    check.set_defaults(handler=_check)
    drill = actions.add_parser(
        "drill", help="kill the primary node, time the watcher's failover and the return"
    )
    drill.add_argument(
        "--backend",
        choices=("rfc2136", "route53", "all"),
        default="all",
        help="the DNS backend the watcher moves the record with (default: both in turn)",
    )
    drill.add_argument(
        "--flapping-rounds",
        type=int,
        default=8,
        help="watcher rounds in which the primary fails every other check (0: skip)",
    )
    drill.add_argument("--repeats", type=int, default=1, help="kills per backend (default: 1)")
    drill.add_argument(
        "--database",
        action="store_true",
        help="instead: the database drills (a site with database: mariadb): node A's mesh cut "
        "(from node B and the witness), then node A killed and booted again, each while a writer "
        "on each node inserts rows; prints inserts acknowledged, refused, seconds without writes "
        "per side, and acknowledged rows lost",
    )
    drill.add_argument(
        "--cut-seconds", type=float, default=30, help="how long --database cuts the mesh (default: 30)"
    )
    drill.add_argument(
        "--down-seconds",
        type=float,
        default=30,
        help="how long --database keeps node A killed before booting it (default: 30)",
    )
    drill.add_argument(
        "--data",
        action="store_true",
        help="instead: the data drill (files): a partition between the nodes, then the witness "
        "lost, while both nodes write, then node A killed while node B writes; prints writes acknowledged, refused, lost, and seconds of "
        "write unavailability per side",
    )
    drill.add_argument(
        "--wordpress",
        action="store_true",
        help="instead: the WordPress drill (a lab booted with `lab up --wordpress`): install "
        "WordPress through node A's HTTPS, a post and an upload through it, read on node B; node A "
        "killed: node B serves both byte for byte and takes its own; node A booted: it serves all; "
        "prints the times, bytes and posts or uploads lost",
    )
    drill.add_argument(
        "--seconds", type=float, default=60.0, help="--data: how long each fault lasts (default: 60)"
    )
    drill.set_defaults(handler=_drill)
    replace = actions.add_parser(
        "replace",
        help="destroy node B and its disk, boot a new node B from its user data, time its rejoin "
        "and heal (destructive: the lab keeps the new node)",
    )
    replace.add_argument(
        "--timeout", type=float, default=900, help="seconds to wait for the new node (default: 900)"
    )
    replace.set_defaults(handler=_replace)
    actions.add_parser("status", help="what is running").set_defaults(handler=_status)
    actions.add_parser("down", help="remove containers, bridge, namespaces, cgroups").set_defaults(
        handler=_down
    )


def _layout_of_running() -> Layout:
    from twinhost_lab.lab import (
        load_state,
    )  # deliberate: `twinhost --help` and other commands load only this parser

    state = load_state(Layout())
    if state is None:
        raise LabError("no lab is running: `twinhost lab up` first")
    return Layout(stack=state.stack, platform_stack=state.platform_stack, debian=state.debian)


def _guard(function: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(function(args))
        except LabError as exc:
            print(f"lab: {exc}", file=sys.stderr)
            return 1

    return wrapped


@_guard
def _up(args: argparse.Namespace) -> int:
    from twinhost_lab import lab  # deliberate: `twinhost --help` and other commands load only this parser

    layout = Layout(stack=args.stack, platform_stack=args.platform, debian=args.debian)
    project = find_project_dir(getattr(args, "project_dir", None))
    if args.wordpress:
        project = lab.with_wordpress(project, args.stack)
    elif args.database:
        project = lab.with_database(project, args.stack)
    state = lab.up(layout, project, log=lambda line: print(line, flush=True))
    print(lab.summary_table(layout, state))
    return 0 if all(n.get("cloud_init") == "done" for n in state.nodes.values()) else 1


@_guard
def _check(args: argparse.Namespace) -> int:
    from twinhost_lab import checks  # deliberate: `twinhost --help` and other commands load only this parser

    layout = _layout_of_running()
    failed = 0
    for result in checks.run_all(layout, only=args.only):
        print(result.line(), flush=True)
        failed += not result.ok
    return 1 if failed else 0


@_guard
def _drill(args: argparse.Namespace) -> int:
    from twinhost_lab import drill  # deliberate: `twinhost --help` and other commands load only this parser

    layout = _layout_of_running()
    if args.database:
        return _database_drill(layout, args.cut_seconds, args.down_seconds)
    if args.data:
        return _data_drill(layout, args.seconds)
    if args.wordpress:
        return _wordpress_drill(layout)
    backends = drill.BACKENDS if args.backend == "all" else (args.backend,)
    results, flapping = drill.drill(
        layout,
        backends,
        flapping_rounds=args.flapping_rounds,
        repeats=args.repeats,
        log=lambda line: print(line, flush=True),
    )
    print("figures:")
    for result in results:
        for line in result.lines():
            print(f"  {line}")
    if flapping is not None:
        print(f"  {flapping.lines()[0]}")
    for line in drill.targets(results):
        print(f"  target: {line}")
    failed = drill.problems(results, flapping)
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failed else 0


def _database_drill(layout: Layout, cut_seconds: float, down_seconds: float) -> int:
    from twinhost_lab import checks, database  # deliberate: loaded only when this drill runs

    lab = checks.RunningLab(layout)
    if not database.has_database(lab):
        raise LabError("the running lab's site has no database (`twinhost lab up --database`)")
    say = lambda line: print(line, flush=True)  # noqa: E731 - one line, used twice
    partition = database.partition(lab, cut_seconds=cut_seconds, log=say)
    killed = database.kill(lab, down_seconds=down_seconds, log=say)
    print("figures:")
    for line in [*partition.lines(), *killed.lines()]:
        print(f"  {line}")
    return 1 if partition.lost or killed.lost else 0


def _data_drill(layout: Layout, seconds: float) -> int:
    from twinhost_lab import data_drill  # deliberate: loaded only when this command runs

    results = data_drill.data_drill(layout, seconds, log=lambda line: print(line, flush=True))
    print("figures:")
    for result in results:
        for line in result.lines():
            print(f"  {line}")
    failed = data_drill.problems(results)
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failed else 0


def _wordpress_drill(layout: Layout) -> int:
    from twinhost_lab import wordpress  # deliberate: loaded only when this command runs

    figures = wordpress.drill(layout, log=lambda line: print(line, flush=True))
    print("figures:")
    for line in figures.lines():
        print(f"  {line}")
    failed = wordpress.problems(figures)
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failed else 0


@_guard
def _replace(args: argparse.Namespace) -> int:
    from twinhost_lab import replace  # deliberate: loaded only when this command runs
    from twinhost_lab.checks import RunningLab

    lab = RunningLab(_layout_of_running())
    result = replace.drill(lab, lab.standby, timeout=args.timeout, log=lambda line: print(line, flush=True))
    brick, survivor = result.brick_tree, result.survivor_tree
    differ = sorted(p for p in {*brick, *survivor} if brick.get(p) != survivor.get(p))
    if differ:
        print(f"FAIL the new brick differs from the survivor's volume: {differ[:10]}", file=sys.stderr)
    if result.database and result.rows.get("after survivor") != result.rows.get("after replaced"):
        print("FAIL the new node's rows differ from the survivor's", file=sys.stderr)
        differ.append("rows")
    for line in result.problems:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if result.problems or differ else 0


@_guard
def _status(args: argparse.Namespace) -> int:
    from twinhost_lab import lab  # deliberate: `twinhost --help` and other commands load only this parser

    layout = _layout_of_running()
    state = lab.load_state(layout)
    assert state is not None
    for role, box in lab.containers(layout, state).items():
        print(f"{box.node.name:<14} {role:<12} {box.stage() if box.leader() else 'stopped'}")
    return 0


@_guard
def _down(args: argparse.Namespace) -> int:
    from twinhost_lab import lab  # deliberate: `twinhost --help` and other commands load only this parser

    removed = lab.down(Layout(), log=lambda line: print(line, flush=True))
    if not removed:
        print("nothing to remove")
    return 0
