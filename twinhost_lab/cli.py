"""`twinhost lab up|check|drill|down|status`: the local lab (see docs/lab.md)."""

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
        help="instead: the database partition drill (a site with database: mariadb): cut the mesh "
        "while a writer on each node inserts rows, heal, count acknowledged rows lost",
    )
    drill.add_argument(
        "--cut-seconds", type=float, default=30, help="how long --database cuts the mesh (default: 30)"
    )
    drill.set_defaults(handler=_drill)
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
        return _database_drill(layout, args.cut_seconds)
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


def _database_drill(layout: Layout, cut_seconds: float) -> int:
    from twinhost_lab import checks, database  # deliberate: loaded only when this drill runs

    lab = checks.RunningLab(layout)
    if not database.has_database(lab):
        raise LabError("the running lab's site has no database (boot a stack with database: mariadb)")
    figures = database.partition(lab, cut_seconds=cut_seconds, log=lambda line: print(line, flush=True))
    print("figures:")
    for line in figures.lines():
        print(f"  {line}")
    return 1 if figures.lost else 0


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
