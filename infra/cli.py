"""The `twinhost` command: plan (offline), and the operator tools around the Pulumi program.

`python -m infra` is deliberately not this CLI: with `main: infra/`, `infra/__main__.py` is the
Pulumi program itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from infra.config import ConfigError, StackFileError
from infra.config.files import config_section, served_domains
from infra.plan.lab_profile import LabProfile

if TYPE_CHECKING:
    from infra.plan.runner import PlanResult

EXIT_CONFIG_ERROR = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twinhost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="directory holding Pulumi.yaml (default: search upwards from here)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    plan = commands.add_parser(
        "plan", help="what `pulumi up` would create, offline (Pulumi mocks)", parents=[project_dir_option()]
    )
    which = plan.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: plans Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="plan every Pulumi.<stack>.yaml")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument(
        "--build-dir", type=Path, default=None, help="where user data is written (default: build/)"
    )
    plan.add_argument(
        "--addresses",
        type=Path,
        default=None,
        help="JSON map of the addresses the mocks hand out (the lab uses its own)",
    )
    plan.add_argument(
        "--lab",
        type=Path,
        default=None,
        help="JSON lab profile (addresses, render overrides, extra adminCidrs/sshKeys; "
        "written by `twinhost lab`): renders the user data the local lab boots",
    )
    plan.set_defaults(handler=_plan)

    _register_optional(commands)
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _register_optional(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Command groups that live in their own packages register themselves here."""
    for module_name in (
        "twinhost_lab.cli",
        "infra.scaffold",
        "infra.failover_cli",
        "infra.site_watch",
        "infra.ops.cli",
    ):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.register(commands)


def project_dir_option() -> argparse.ArgumentParser:
    """`--project-dir` accepted after the subcommand too (SUPPRESS keeps the global value)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--project-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="directory holding Pulumi.yaml (default: search upwards from here)",
    )
    return parent


def find_project_dir(start: Path | None) -> Path:
    """--project-dir as given (it must hold Pulumi.yaml), else the nearest directory upwards."""
    if start is not None:
        if not (start / "Pulumi.yaml").is_file():
            _exit_refused(f"twinhost: --project-dir {start} holds no Pulumi.yaml")
        return start.resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").exists():
            return candidate
    _exit_refused(f"twinhost: no Pulumi.yaml in {here} or above (use --project-dir)")


def _exit_refused(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def stack_files(project_dir: Path) -> list[Path]:
    """Every stack file, the platform stacks first (sites reference them). A file that cannot
    be read sorts with the sites; planning it reports why."""
    files = sorted(project_dir.glob("Pulumi.*.yaml"))

    def is_platform(path: Path) -> bool:
        try:
            return config_section(path).get("twinhost:role") == "platform"
        except StackFileError:
            return False

    return sorted(files, key=lambda p: (not is_platform(p), p.name))


@dataclass(frozen=True)
class StackPlan:
    """One stack file planned offline: its result, or the config error that stopped it."""

    path: Path
    result: PlanResult | None
    error: ConfigError | None


def plan_stacks(
    project_dir: Path,
    files: Sequence[Path],
    *,
    addresses: dict[str, str] | None = None,
    lab: LabProfile | None = None,
) -> Iterator[StackPlan]:
    """Plan each stack file in order under the mocks, each later stack reading the outputs of the
    ones planned before it (`stack_files` puts the platforms first): the one plan loop of
    `twinhost plan` and `twinhost list`. A config error is yielded, not raised; anything else is
    a bug and raised."""
    # pulumi_cloudflare's import emits hundreds of DeprecationWarnings that say nothing to a user.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Deferred: the plan loads Pulumi and the provider SDKs; no other command needs them.
    from infra.plan.runner import is_config_error, run_plan

    outputs_by_stack: dict[str, dict[str, Any]] = {}
    for path in files:
        try:
            result = run_plan(
                path,
                addresses,
                stack_outputs=outputs_by_stack,
                lab=lab,
                served_elsewhere=served_domains(project_dir, exclude=path),
            )
        except Exception as exc:
            config_error = is_config_error(exc)
            if config_error is None:
                raise
            yield StackPlan(path, None, config_error)
            continue
        outputs_by_stack[result.stack] = result.outputs
        yield StackPlan(path, result, None)


def _plan(args: argparse.Namespace) -> int:
    from infra.plan import report

    project_dir = find_project_dir(args.project_dir)
    build_dir = args.build_dir or project_dir / "build"
    addresses = json.loads(args.addresses.read_text()) if args.addresses else None
    try:
        lab = LabProfile.parse(json.loads(args.lab.read_text())) if args.lab else None
    except ConfigError as exc:
        print(f"{args.lab}: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    files = stack_files(project_dir) if args.all else [project_dir / f"Pulumi.{args.stack}.yaml"]
    for path in files:
        if not path.exists():
            print(f"twinhost: no stack file {path}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
    plans = []
    failed = False
    for planned in plan_stacks(project_dir, files, addresses=addresses, lab=lab):
        path, result = planned.path, planned.result
        if result is None:
            if isinstance(planned.error, StackFileError):
                print(f"twinhost: {planned.error}", file=sys.stderr)  # one line: file, line, what
            else:
                print(f"{path.name}: {planned.error}", file=sys.stderr)
            failed = True
            continue
        _warn_if_unwatched(project_dir, path)
        paths = report.write_user_data(result, build_dir)
        plans.append(report.to_dict(result, paths))
    if args.json:
        print(json.dumps(plans if args.all else (plans[0] if plans else None), indent=2))
    else:
        print("\n\n".join(report.render_text(plan) for plan in plans))
    return EXIT_CONFIG_ERROR if failed else 0


def _warn_if_unwatched(project_dir: Path, path: Path) -> None:
    """A watchdog-mode site that no platform stack file lists is never watched: say so (stderr)."""
    from infra.site_watch import unwatched_warning  # deferred: site_watch imports this module

    warning = unwatched_warning(project_dir, path)
    if warning is not None:
        print(warning, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
