"""`spinecds sandbox load | fire | check | list | export`: test the CDS service against a FHIR sandbox.

The main CLI registers these with `add_sandbox_commands(subparsers)`; standalone:
`python -m sandbox.cli sandbox list`.

Exit codes: 0 done; 1 the FHIR server or CDS service answered with an error; 2 cannot reach a
server, or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from . import expectations, hook_client, loader, patients, render
from .transport import SandboxError, describe_failure, resolve_secret, session

FHIR_TOKEN_ENV = "SPINECDS_FHIR_TOKEN"
SERVICE_JWT_ENV = "SPINECDS_SERVICE_JWT"
# fhirAuthorization needs an access_token; open sandboxes ignore it, so say so and send a placeholder.
PLACEHOLDER_TOKEN = "sandbox-open-server"


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


# ---------------------------------------------------------------- list / export


def cmd_list(args: argparse.Namespace) -> int:
    for desc in patients.descriptions():
        expect = desc.get("expect") or {}
        cards = [patients.describe_card(card) for card in expect.get("cards") or []] or ["no card"]
        print(f"{patients.ID_PREFIX}{desc['id']}  ({desc['gender']}, {desc['age']})")
        print(f"    {' '.join(str(desc['story']).split())}")
        print(f"    expect: {'; '.join(cards)}")
        if expect.get("presentRules"):
            print(f"    also:   {', '.join(expect['presentRules'])}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for pid in loader.resolve_patient_ids(args.patient):
        bundle = patients.build_bundle(pid, base_url=args.base_url)
        path = out / f"{pid}.json"
        path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(bundle['entry'])} resources)")
    return 0


# ---------------------------------------------------------------- load


def cmd_load(args: argparse.Namespace) -> int:
    ids = loader.resolve_patient_ids(args.patient)
    token = resolve_secret(args.token, FHIR_TOKEN_ENV)
    base = args.fhir_server.rstrip("/")

    def report(result: loader.LoadResult) -> None:
        created = sum(1 for what, _ in result.written if what == "created")
        updated = len(result.written) - created
        line = (
            f"{result.patient_id}: {len(result.written)} resources via {result.mode}"
            f" ({created} created, {updated} updated)"
        )
        if result.failed:
            line += f", {len(result.failed)} FAILED"
        print(line)
        if result.skipped:
            kinds = ", ".join(f"{n} {rtype}" for rtype, n in sorted(result.skipped.items()))
            print(f"  skipped {kinds}: not in the server's CapabilityStatement")
        if result.fallback_reason:
            print(f"  fell back to PUT per resource: {result.fallback_reason}")
        if not args.quiet:
            for what, ref in result.written:
                print(f"  {what:7} {ref}")
        for ref, reason in result.failed:
            print(f"  FAILED  {ref}: {reason}")

    with session(token) as fhir:
        results = loader.load_patients(base, fhir, ids, force_put=args.put, progress=report)
    failed = sum(len(r.failed) for r in results)
    total = sum(len(r.written) for r in results)
    print(f"loaded {len(results)} patient(s), {total} resources into {base}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


# ---------------------------------------------------------------- fire


def _patient_id(value: str) -> str:
    """p01 -> spinecds-p01; any other id (a sandbox's own patient) as given."""
    value = value.removeprefix("Patient/")
    try:
        return patients.ID_PREFIX + patients.description(value)["id"]
    except KeyError:
        return value


def cmd_fire(args: argparse.Namespace) -> int:
    if args.draft_order and args.hook not in hook_client.ORDER_HOOKS:
        raise SandboxError(f"--draft-order applies to order-select / order-sign, not {args.hook}")
    patient_id = _patient_id(args.patient)
    with _Client(args) as client:
        service = hook_client.discover(client.service_session, args.service, args.hook, args.service_id)
        response, body = client.call(service, args.hook, patient_id, args.draft_order, args.show_request)
    if not response.ok:
        _err(f"CDS service {service['id']} refused the {args.hook} request: {describe_failure(response)}")
        return 1
    if not isinstance(body, dict) or not isinstance(body.get("cards"), list):
        _err(f"CDS service {service['id']} answered HTTP {response.status_code} without a cards list")
        return 1
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        mode = "fhirServer (no prefetch)" if args.no_prefetch else "prefetch"
        print(f"{service['id']} ({args.hook}) for Patient/{patient_id} via {mode}")
        print(render.render_response(body))
        for url in render.smart_launch_urls(body, args.fhir_server.rstrip("/"), patient_id):
            print(f"\nopen in a browser to launch the SMART app as the EHR would (local FHIR server only):\n  {url}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Fire patient-view for each sandbox patient and compare the cards with INDEX.md's expectations."""
    ids = loader.resolve_patient_ids(args.patient)
    failed = 0
    with _Client(args) as client:
        service = hook_client.discover(client.service_session, args.service, "patient-view", args.service_id)
        for pid in ids:
            response, body = client.call(service, "patient-view", pid, None, False)
            if not response.ok or not isinstance(body, dict) or not isinstance(body.get("cards"), list):
                problems = [f"service answered {describe_failure(response)}"]
            else:
                problems = expectations.compare(patients.description(pid).get("expect") or {}, body["cards"])
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'PASS'}  {pid}")
            for problem in problems:
                print(f"      {problem}")
    print(f"{len(ids) - failed} of {len(ids)} patients give the expected cards")
    return 1 if failed else 0


class _Client:
    """The two HTTP sessions of a CDS client (to the service, to the FHIR server) and one hook call."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.fhir_base = args.fhir_server.rstrip("/")
        self.fhir_token = resolve_secret(args.token, FHIR_TOKEN_ENV)
        service_jwt = resolve_secret(args.service_jwt, SERVICE_JWT_ENV)
        self.service_session = session(service_jwt, accept="application/json")
        self.fhir_session = session(self.fhir_token)
        self._warned = False

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.service_session.close()
        self.fhir_session.close()

    def call(
        self, service: dict[str, Any], hook: str, patient_id: str, draft_order: str | None, show_request: bool
    ) -> tuple[requests.Response, Any]:
        args = self.args
        send_fhir_server = args.no_prefetch or args.with_fhir_server
        access_token = self.fhir_token
        if send_fhir_server and not access_token:
            if not self._warned:
                _note(
                    f"no --token: fhirAuthorization carries the placeholder {PLACEHOLDER_TOKEN!r}"
                    " (fine for an open sandbox)"
                )
                self._warned = True
            access_token = PLACEHOLDER_TOKEN
        sent = hook_client.fire(
            self.service_session,
            args.service,
            service,
            hook,
            patient_id,
            fhir_session=self.fhir_session,
            fhir_base=self.fhir_base,
            prefetch=not args.no_prefetch,
            send_fhir_server=send_fhir_server,
            fhir_token=access_token,
            draft_order_file=draft_order,
        )
        for key, why in sent.prefetch_failed.items():
            _note(f"prefetch {key} left out: {why}")
        if show_request:
            shown = json.loads(json.dumps(sent.request))
            if "fhirAuthorization" in shown:
                shown["fhirAuthorization"]["access_token"] = "***"
            print(json.dumps(shown, indent=2), file=sys.stderr)
        return sent.response, sent.body


# ---------------------------------------------------------------- fhir-server


def cmd_fhir_server(args: argparse.Namespace) -> int:
    """The local FHIR server in the foreground, with every synthetic patient loaded, until Ctrl-C."""
    # fhirstarter's own use of deprecated FastAPI/Starlette names is not the user's concern.
    warnings.filterwarnings("ignore", module=r"fhirstarter(\.|$)")
    try:
        from . import fhir_server  # fhirstarter is optional: pip install 'spinecds[sandbox]'
    except ModuleNotFoundError as exc:
        raise SandboxError(f"the local FHIR server needs {exc.name}: pip install 'spinecds[sandbox]'") from None
    store = fhir_server.ResourceStore()
    ids = [] if args.no_preload else fhir_server.preload_sandbox_patients(store)
    try:
        running = fhir_server.start_server(store, host=args.host, port=args.port)
    except (RuntimeError, OSError) as exc:
        raise SandboxError(f"{exc} - is the port already in use? Try --port") from None
    print(f"FHIR R4 server (in memory) at {running.base_url}", flush=True)
    if ids:
        print(f"{len(ids)} synthetic patients, dates relative to now: {', '.join(ids)}")
        print(f"  e.g. {running.base_url}/Patient/{ids[0]}")
        print(
            f"with the service running (make serve): spinecds sandbox fire --fhir-server {running.base_url} "
            "--patient spinecds-p04 --hook patient-view"
        )
    else:
        print("empty; load patients with: spinecds sandbox load --fhir-server " + running.base_url)
    # Our own handlers, installed before we say how to stop: a shell starts a background job
    # (`... &`) with SIGINT ignored, so Python would never raise KeyboardInterrupt; SIGTERM is what
    # `kill` and process managers send.
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    print("Ctrl-C stops it (the data is not kept).", flush=True)
    try:
        while not stop.is_set() and running.wait(0.5):
            pass
        print("\nstopping", flush=True)
    finally:
        running.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# ---------------------------------------------------------------- wiring


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except SandboxError as exc:
            _err(str(exc))
            return exc.exit_code

    return run


def add_sandbox_commands(subparsers: argparse._SubParsersAction) -> None:
    sandbox = subparsers.add_parser(
        "sandbox",
        help="synthetic patients for FHIR sandboxes and a CDS Hooks test client",
        description=__doc__.split("\n\n")[0],
    )
    commands = sandbox.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="the sandbox patients, their stories and expected cards")
    listing.set_defaults(func=_guard(cmd_list))

    export = commands.add_parser("export", help="write the transaction Bundles to files (for other upload tools)")
    export.add_argument("--out", default="sandbox-bundles", help="folder (default: sandbox-bundles)")
    export.add_argument("--patient", nargs="+", metavar="ID", help="only these patients (p01 or spinecds-p01)")
    export.add_argument("--base-url", help="write fullUrl as <base-url>/<type>/<id> (default: urn:uuid)")
    export.set_defaults(func=_guard(cmd_export))

    load = commands.add_parser("load", help="PUT the sandbox patients into a FHIR R4 server (idempotent)")
    load.add_argument(
        "--fhir-server", required=True, metavar="URL", help="FHIR base URL, e.g. http://localhost:8080/fhir"
    )
    load.add_argument("--token", help=f"bearer token for the FHIR server, or env:NAME (default: ${FHIR_TOKEN_ENV})")
    load.add_argument("--patient", nargs="+", metavar="ID", help="only these patients (default: all)")
    load.add_argument("--put", action="store_true", help="skip the transaction and PUT each resource")
    load.add_argument("-q", "--quiet", action="store_true", help="one line per patient instead of every id")
    load.set_defaults(func=_guard(cmd_load))

    fire = commands.add_parser("fire", help="act as the EHR: call the CDS service for one patient and print the cards")
    _client_options(fire, "FHIR base URL holding the patient")
    fire.add_argument(
        "--patient", required=True, metavar="ID", help="p01, spinecds-p01 or any Patient id on the server"
    )
    fire.add_argument("--hook", required=True, choices=hook_client.HOOKS)
    fire.add_argument(
        "--draft-order",
        metavar="FILE",
        help="ServiceRequest or Bundle JSON for order hooks (default: a routine MRI spine due in 14 days); "
        "samples in sandbox/orders/",
    )
    fire.add_argument("--json", action="store_true", help="print the raw CDS Hooks response")
    fire.add_argument("--show-request", action="store_true", help="print the hook request (token masked) to stderr")
    fire.set_defaults(func=_guard(cmd_fire))

    check = commands.add_parser(
        "check", help="fire patient-view for every loaded sandbox patient and compare with INDEX.md"
    )
    _client_options(check, "FHIR base URL the sandbox patients were loaded into")
    check.add_argument("--patient", nargs="+", metavar="ID", help="only these patients (default: all)")
    check.set_defaults(func=_guard(cmd_check))

    server = commands.add_parser(
        "fhir-server", help="run a local in-memory FHIR R4 server preloaded with the synthetic patients"
    )
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    server.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    server.add_argument("--no-preload", action="store_true", help="start empty (then use `sandbox load`)")
    server.set_defaults(func=_guard(cmd_fhir_server))


def _client_options(parser: argparse.ArgumentParser, fhir_help: str) -> None:
    parser.add_argument("--fhir-server", required=True, metavar="URL", help=fhir_help)
    parser.add_argument(
        "--service",
        default="http://127.0.0.1:8000",
        metavar="URL",
        help="CDS service base URL (default: http://127.0.0.1:8000)",
    )
    parser.add_argument("--service-id", help="call this service id instead of the first one for the hook")
    parser.add_argument(
        "--no-prefetch",
        action="store_true",
        help="send no prefetch; send fhirServer + fhirAuthorization so the service fetches",
    )
    parser.add_argument(
        "--with-fhir-server",
        action="store_true",
        help="with prefetch, also send fhirServer + fhirAuthorization (for keys that failed)",
    )
    parser.add_argument(
        "--token",
        help=f"FHIR access token (prefetch reads, fhirAuthorization), or env:NAME (default: ${FHIR_TOKEN_ENV})",
    )
    parser.add_argument(
        "--service-jwt",
        help=f"JWT for the CDS service's Authorization header, or env:NAME (default: ${SERVICE_JWT_ENV})",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.cli")
    add_sandbox_commands(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
