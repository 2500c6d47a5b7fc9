"""`spinecds fhir ...`: publish the knowledge artefacts and check resources against the profiles.
The `spinecds` entry point is cds_hooks.cli."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.publish import ExportError, export_bundle
from fhir_profiles.profile_checks import load_profiles


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def cmd_export(args: argparse.Namespace) -> int:
    from engine.loader import RuleLoadError

    try:
        bundle = export_bundle(args.rules_dir, include_inactive=args.all)
    except RuleLoadError as error:
        print("\n".join(error.errors), file=sys.stderr)
        return 1
    except ExportError as error:
        print(error, file=sys.stderr)
        return 1
    _write(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", args.output)
    kinds: dict[str, int] = {}
    for entry in bundle["entry"]:
        kinds[entry["resource"]["resourceType"]] = kinds.get(entry["resource"]["resourceType"], 0) + 1
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    print(f"exported {summary}" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from engine.parse import unbundle

    profiles = load_profiles()
    failed = 0
    for name in args.files:
        try:
            data = json.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            print(f"{name}: cannot read JSON: {error}", file=sys.stderr)
            return 2
        for resource in unbundle([data]):
            ref = f"{resource.get('resourceType')}/{resource.get('id', '(no id)')}"
            for issue in profiles.check(resource):
                failed += issue.severity == "error"
                print(f"{name}: {ref}: {issue.severity}: {issue}")
    print(f"{failed} error(s)", file=sys.stderr)
    return 1 if failed else 0


def add_fhir_commands(subparsers: argparse._SubParsersAction) -> None:
    fhir = subparsers.add_parser("fhir", help="FHIR artefacts: export the knowledge Bundle, check resources")
    commands = fhir.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="rules as PlanDefinitions + CodeSystems, ValueSets and StructureDefinitions, as one R4 collection Bundle",
    )
    export.add_argument("--rules-dir", help="folder with the rule files (default: rules/)")
    export.add_argument("-o", "--output", help="write the Bundle to this file (default: stdout)")
    export.add_argument("--all", action="store_true", help="also draft and retired rules (with their status)")
    export.set_defaults(func=cmd_export)
    check = commands.add_parser(
        "check", help="check resources (JSON: a resource or a Bundle) against the spinecds profiles"
    )
    check.add_argument("files", nargs="+")
    check.set_defaults(func=cmd_check)
