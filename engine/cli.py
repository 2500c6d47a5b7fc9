"""`spinecds rules ...`: the rule author's tools. The `spinecds` entry point is cds_hooks.cli."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from engine.loader import RuleLoadError, load_rules
from engine.vocabulary import RULES_DIR


def _rules_dir(args: argparse.Namespace) -> Path:
    return Path(args.rules_dir).resolve()


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        compiled = load_rules(_rules_dir(args))
    except RuleLoadError as error:
        for line in error.errors:
            print(line, file=sys.stderr)
        print(f"{len(error.errors)} problem(s)", file=sys.stderr)
        return 1
    drafts = [item.rule.id for item in compiled.all_rules if item.rule.status != "active"]
    print(
        f"ok: {len(compiled.rules)} active rule(s), {len(compiled.outcomes)} outcome(s), "
        f"{len(compiled.stages)} stage(s)" + (f"; not active: {', '.join(drafts)}" if drafts else "")
    )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.cases import run_all_cases

    try:
        # Draft rules run too: their cases prove them before they are switched on.
        engine = Engine(load_rules(_rules_dir(args), include_drafts=True), _rules_dir(args))
    except RuleLoadError as error:
        print("\n".join(error.errors), file=sys.stderr)
        return 1
    results = run_all_cases(engine)
    failed = 0
    for result in results:
        if args.rule and result.rule_id != args.rule:
            continue
        mark = "PASS" if result.passed else "FAIL"
        failed += not result.passed
        if not result.passed or args.verbose:
            print(f"{mark} {result.rule_id}/{result.path.name}: {result.title}")
            for line in result.report():
                print(f"     - {line}" if not line.startswith("  ") else f"     {line}")
    shown = [r for r in results if not args.rule or r.rule_id == args.rule]
    print(f"{len(shown) - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.case_file import CaseFileError, hook_call, read_case
    from engine.cases import request_from_hook_call
    from engine.explain import render_explanation
    from engine.fixtures.times import resolve

    path = Path(args.request)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if path.suffix in (".yaml", ".yml"):  # a rule case: explain the request it describes
        try:
            body = hook_call(read_case(path), path.parent.parent.name, now)
        except (OSError, CaseFileError) as error:
            print(error, file=sys.stderr)
            return 2
    else:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            print(f"{path}: cannot read JSON: {error}", file=sys.stderr)
            return 2
        if body.get("resourceType") == "Bundle":  # a bare Bundle: treat it as a patient-view prefetch
            body = {"hook": "patient-view", "hookInstance": "explain", "context": {}, "prefetch": {"data": body}}
        body = resolve(body, now)
    try:
        engine = Engine(load_rules(_rules_dir(args)), _rules_dir(args))
    except RuleLoadError as error:
        print("\n".join(error.errors), file=sys.stderr)
        return 1
    result = engine.evaluate(request_from_hook_call(body, now, want_trace=True))
    if args.json:
        print(
            json.dumps(
                {"cards": result.cards, "dataQuality": result.data_quality, "trace": result.trace},
                indent=2,
                default=str,
            )
        )
    else:
        print(render_explanation(result))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from engine.scaffold import ScaffoldError, new_rule

    try:
        written = new_rule(_rules_dir(args), args.rule_id)
    except ScaffoldError as error:
        print(error, file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"next: edit {written[0]}, then `spinecds rules validate` and `spinecds rules test --rule {args.rule_id}`")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from engine.catalog import render_catalog

    try:
        compiled = load_rules(_rules_dir(args))
    except RuleLoadError as error:
        print("\n".join(error.errors), file=sys.stderr)
        return 1
    text = render_catalog(compiled, _rules_dir(args))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.rulefile import rule_file_json_schema

    text = json.dumps(rule_file_json_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def add_rules_commands(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("rules", help="validate, test, explain and list the rule files")
    rules.add_argument("--rules-dir", default=str(RULES_DIR), help="folder with the rule files (default: rules/)")
    commands = rules.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="schema + vocabulary + compile every rule file")
    validate.set_defaults(func=cmd_validate)
    test = commands.add_parser("test", help="run every rule's example cases (draft rules too)")
    test.add_argument("--rule", help="only this rule id")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.set_defaults(func=cmd_test)
    explain = commands.add_parser("explain", help="facts, fired rules, cards and trace for one request")
    explain.add_argument("request", help="a CDS Hooks request JSON, a case file, or a FHIR Bundle")
    explain.add_argument("--now", help="evaluation time (ISO 8601); default: the current time")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=cmd_explain)
    new = commands.add_parser("new", help="scaffold rules/<rule-id>/ (draft rule.yaml, README.md, two cases)")
    new.add_argument("rule_id", help="lowercase words joined by dashes, e.g. sins-referral")
    new.set_defaults(func=cmd_new)
    catalog = commands.add_parser("catalog", help="markdown catalogue of every rule for clinical review")
    catalog.add_argument("-o", "--output", help="write to this file (e.g. docs/rules.md)")
    catalog.set_defaults(func=cmd_catalog)
    schema = commands.add_parser("schema", help="the JSON Schema of rule.yaml (for editors and CI)")
    schema.add_argument("-o", "--output", help="write to this file (e.g. rules/rule.schema.json)")
    schema.set_defaults(func=cmd_schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinecds")
    add_rules_commands(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
