"""The `spinecds` command: one entry point for every tool the project ships.

It lives here because cds_hooks is the top of the dependency graph: the command groups come from
the engine (rules, fhir) and sandbox, neither of which may import the other's CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function) pairs; a group whose module is absent in this build is left out.
COMMAND_GROUPS = [
    ("engine.cli", "add_rules_commands"),
    ("engine.fhir_cli", "add_fhir_commands"),
    ("sandbox.cli", "add_sandbox_commands"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spinecds", description="spinecds: spinal metastases CDS Hooks service tools")
    subparsers = parser.add_subparsers(dest="group", required=True)
    for module_name, function in COMMAND_GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if not (error.name and (module_name + ".").startswith(error.name + ".")):
                raise
            continue
        getattr(module, function)(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
