"""`spinecds fhir ...`: publish the knowledge artefacts and check resources against the profiles.
The `spinecds` entry point is cds_hooks.cli."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.publish import ExportError, export_bundle
from fhir_profiles.profile_checks import load_profiles
from fhir_profiles.terminology import DEFAULT_DIRECTORY, TerminologyError
from fhir_profiles.terminology_build import stale_expansions, write_all


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
    """The ValueSets first (an expansion that no longer matches its definition), then the files."""
    from engine.parse import unbundle

    directory = Path(args.dir) if args.dir else DEFAULT_DIRECTORY
    failed = 0
    try:
        stale = stale_expansions(directory)
    except TerminologyError as error:
        print(error, file=sys.stderr)
        return 1
    for line in stale:
        failed += 1
        print(f"error: {line}")
    profiles = load_profiles(directory if args.dir else None)
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
        "check",
        help="check the ValueSets (each expansion matches its definition) and resources (JSON: a resource or "
        "a Bundle) against the spinecds profiles",
    )
    check.add_argument("files", nargs="*")
    check.add_argument("--dir", help="the fhir_profiles folder to check (default: the installed one)")
    check.set_defaults(func=cmd_check)


def cmd_build(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else DEFAULT_DIRECTORY
    try:
        changed = write_all(directory)
    except TerminologyError as error:
        print(error, file=sys.stderr)
        return 1
    for path in changed:
        print(f"rebuilt {path}")
    print(f"{len(changed)} expansion(s) changed", file=sys.stderr)
    return 0


def cmd_expand(args: argparse.Namespace) -> int:
    import os

    from fhir_profiles.terminology_expand import ExpandError, expand_all

    directory = Path(args.dir) if args.dir else DEFAULT_DIRECTORY
    token = args.token
    if token and token.startswith("env:"):
        token = os.environ.get(token[4:])
    try:
        changed = expand_all(args.server, directory, only=args.valueset or None, token=token, timeout=args.timeout)
    except (ExpandError, TerminologyError) as error:
        print(error, file=sys.stderr)
        return 1
    for path in changed:
        print(f"expanded {path}")
    print(f"{len(changed)} expansion(s) changed from {args.server}", file=sys.stderr)
    return 0


def add_terminology_commands(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("terminology", help="ValueSet expansions: build them offline or from a server")
    commands = group.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="rebuild every ValueSet expansion from its definition and fhir_profiles/terminology-sources"
    )
    build.add_argument("--dir", help="the fhir_profiles folder (default: the installed one)")
    build.set_defaults(func=cmd_build)
    expand = commands.add_parser(
        "expand", help="refresh the expansions from a FHIR terminology server's ValueSet/$expand (R4)"
    )
    expand.add_argument("--server", required=True, help="the terminology server's FHIR base URL")
    expand.add_argument("--valueset", action="append", help="only this ValueSet id (repeatable)")
    expand.add_argument("--token", help="bearer token, literal or env:NAME")
    expand.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    expand.add_argument("--dir", help="the fhir_profiles folder (default: the installed one)")
    expand.set_defaults(func=cmd_expand)
