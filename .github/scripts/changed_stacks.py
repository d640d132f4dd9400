#!/usr/bin/env python3
"""Which Pulumi stacks a change touches, for the CI matrix (standard library only).

A stack is touched when its own stack file changed, or when anything every stack runs changed:
the program (`infra/`, except the operator tools that never run under `pulumi up`), the watcher
it uploads (`twinhost_watcher/`), the node bootstrap (`cloudinit/`), the project file, the pinned
dependencies, or the policy pack (a new rule must be previewed against every stack). A deleted stack file is left out (destroying a
stack is done by hand, see docs/workflow.md). When the changed files cannot be known (a new
branch, a force push), every stack is touched: previewing too much is cheap, too little is not.

Writes to $GITHUB_OUTPUT (or prints):
  platform_stacks  JSON list of platform stack names (updated first: sites read them)
  site_stacks      JSON list of site stack names
  stacks           JSON list of both, platform first
  any_platform, any_site, any   "true"/"false"

Usage: changed_stacks.py --base SHA --head SHA [--project-dir .] [--github-output FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

STACK_FILE = re.compile(r"^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$")
# Paths whose change can alter what `pulumi preview` shows for every stack.
PROGRAM_PATHS = (
    "infra/",
    "twinhost_watcher/",
    "cloudinit/",
    "policy/",
    "Pulumi.yaml",
    "requirements.lock",
    "pyproject.toml",
)
# Code under infra/ that `pulumi up` never runs: the offline plan and the operator commands.
NOT_PROGRAM = (
    "infra/plan/",
    "infra/cli.py",
    "infra/scaffold.py",
    "infra/failover_cli.py",
    "infra/stack_edit.py",
    "infra/site_watch.py",
)
ZERO_SHA = re.compile(r"^0+$")


def stack_roles(project_dir: Path) -> dict[str, str]:
    """{stack name: role} of every stack file present (role from `twinhost:role`; a file
    without one counts as a site)."""
    roles = {}
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        match = STACK_FILE.match(path.name)
        if not match:
            continue
        role = "site"
        for line in path.read_text(encoding="utf-8").splitlines():
            found = re.match(r"^\s*twinhost:role:\s*['\"]?(\w+)", line)
            if found:
                role = found.group(1)
                break
        roles[match.group(1)] = role
    return roles


def touched_stacks(changed_files: Iterable[str] | None, roles: dict[str, str]) -> list[str]:
    """The stacks to preview/update for these changed files (None: unknown, so all)."""
    if changed_files is None:
        return sorted(roles)
    touched: set[str] = set()
    for name in changed_files:
        match = STACK_FILE.match(name)
        if match and match.group(1) in roles:
            touched.add(match.group(1))
        elif name.startswith(PROGRAM_PATHS) and not name.startswith(NOT_PROGRAM):
            return sorted(roles)
    return sorted(touched)


def changed_files(project_dir: Path, base: str, head: str) -> list[str] | None:
    if not base or ZERO_SHA.match(base):
        return None
    try:
        output = subprocess.run(
            ["git", "diff", "--name-only", f"{base}...{head}"],
            cwd=project_dir,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"changed_stacks: cannot diff {base}...{head} ({exc}); previewing every stack", file=sys.stderr)
        return None
    return [line for line in output.splitlines() if line]


def outputs(stacks: list[str], roles: dict[str, str]) -> dict[str, str]:
    platform = [s for s in stacks if roles[s] == "platform"]
    sites = [s for s in stacks if roles[s] != "platform"]
    return {
        "platform_stacks": json.dumps(platform),
        "site_stacks": json.dumps(sites),
        "stacks": json.dumps(platform + sites),
        "any_platform": str(bool(platform)).lower(),
        "any_site": str(bool(sites)).lower(),
        "any": str(bool(stacks)).lower(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="")
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--project-dir", type=Path, default=Path("."))
    parser.add_argument("--github-output", type=Path, default=None)
    args = parser.parse_args(argv)

    roles = stack_roles(args.project_dir)
    stacks = touched_stacks(changed_files(args.project_dir, args.base, args.head), roles)
    result = outputs(stacks, roles)
    text = "".join(f"{key}={value}\n" for key, value in result.items())
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as handle:
            handle.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
