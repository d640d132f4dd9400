"""The Pulumi program (Pulumi.yaml: `main: infra/`). Wiring only: see infra/stack.py."""

from infra.stack import build_stack

build_stack()
