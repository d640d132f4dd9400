"""twinhost's CrossGuard policy pack: `pulumi preview --policy-pack policy/` (from the project root).

The rules are plain functions in `twinhost_policy/rules.py`, unit-tested against the program's
own resources under mocks (tests/policy/). Constructing PolicyPack starts the analyzer server and
blocks until the Pulumi CLI is done with it, so this file is only ever run by the CLI.
"""

import sys
from pathlib import Path

# The pack imports its rules from beside this file, and the provider limits the program also
# checks from the project's `infra` package one level up (installed in the project's .venv too).
_HERE = Path(__file__).resolve().parent
for _path in (_HERE, _HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from twinhost_policy.policies import PACK_NAME, POLICIES  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    # Every policy sets its own level; this is the default for any added without one.
    enforcement_level=EnforcementLevel.MANDATORY,
)
