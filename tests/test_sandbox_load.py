"""`spinecds sandbox load` against a tiny in-test FHIR server: transactions, idempotence, PUT fallback."""

from __future__ import annotations

import socket

import pytest

from sandbox import cli, patients
from tests.sandbox_stub_servers import TinyFhirServer, running


@pytest.fixture
def fhir():
    with running(TinyFhirServer()) as server:
        yield server


def _entries(*pids: str) -> int:
    return sum(len(patients.build_bundle(pid)["entry"]) for pid in pids)


def test_load_all_patients_by_transaction_then_again_duplicates_nothing(fhir, capsys):
    assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "-q"]) == 0
    first = fhir.count()
    assert first == _entries(*patients.patient_ids())
    posts = [s for s in fhir.seen if s.method == "POST"]
    assert len(posts) == len(patients.patient_ids()) and not [s for s in fhir.seen if s.method == "PUT"]
    out = capsys.readouterr().out
    assert "spinecds-p06: " in out and "via transaction" in out and " 0 updated" in out

    assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "-q"]) == 0
    assert fhir.count() == first
    assert "0 created" in capsys.readouterr().out


def test_load_prints_every_id_created_or_updated(fhir, capsys):
    assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p06"]) == 0
    out = capsys.readouterr().out
    assert "created Patient/spinecds-p06" in out
    assert "created Condition/spinecds-p06-cond-mescc" in out
    assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "spinecds-p06"]) == 0
    assert "updated Condition/spinecds-p06-cond-mescc" in capsys.readouterr().out
    assert set(fhir.store) == {"Patient", "Condition", "Observation", "Procedure"}


def test_rejected_transaction_falls_back_to_put_per_resource(capsys):
    with running(TinyFhirServer(transactions="reject")) as fhir:
        assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p01", "p16", "-q"]) == 0
        assert fhir.count() == _entries("spinecds-p01", "spinecds-p16")
        puts = [s.path for s in fhir.seen if s.method == "PUT"]
        assert len(puts) == fhir.count()
        assert puts[0] == "/fhir/Patient/spinecds-p01"  # Patient first, so references resolve
        out = capsys.readouterr().out
        assert "via put" in out and "Transactions are disabled on this server" in out

        assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p01", "p16", "-q"]) == 0
        assert fhir.count() == _entries("spinecds-p01", "spinecds-p16")


def test_server_without_transaction_in_capability_statement_gets_puts_only(capsys):
    with running(TinyFhirServer(transactions="absent")) as fhir:
        assert cli.main(["sandbox", "load", "--fhir-server", fhir.base + "/", "--patient", "p05", "-q"]) == 0
        assert not [s for s in fhir.seen if s.method == "POST"]
        assert fhir.count() == _entries("spinecds-p05")
        assert "CapabilityStatement lists no transaction" in capsys.readouterr().out


def test_resource_types_the_server_lacks_are_skipped_not_failed(capsys):
    with running(TinyFhirServer(transactions="absent", resource_types=("Patient", "Condition", "Observation"))) as fhir:
        assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p07", "-q"]) == 0
        assert "Procedure" not in fhir.store and not [s for s in fhir.seen if "/Procedure/" in s.path]
        procedures = len(patients.build_resources("p07")) - fhir.count()
    assert procedures == 2
    assert "skipped 2 Procedure: not in the server's CapabilityStatement" in capsys.readouterr().out


def test_token_is_sent_as_bearer_and_full_urls_point_at_the_server(fhir, monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_TOKEN", "s3cret")
    assert (
        cli.main(
            [
                "sandbox",
                "load",
                "--fhir-server",
                fhir.base,
                "--patient",
                "p02",
                "--token",
                "env:SANDBOX_TEST_TOKEN",
                "-q",
            ]
        )
        == 0
    )
    assert {s.headers.get("Authorization") for s in fhir.seen} == {"Bearer s3cret"}
    post = next(s for s in fhir.seen if s.method == "POST")
    assert post.body["entry"][0]["fullUrl"] == f"{fhir.base}/Patient/spinecds-p02"


def test_failed_puts_are_reported_and_exit_1(capsys):
    class Refusing(TinyFhirServer):
        def respond(self, method, path, body):
            if method == "PUT" and "/Procedure/" in path:
                return 422, {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "processing", "diagnostics": "Procedure not allowed"}],
                }
            return super().respond(method, path, body)

    with running(Refusing(transactions="reject")) as fhir:
        assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p02", "-q"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  Procedure/spinecds-p02-proc-rt-l1: HTTP 422" in out and "Procedure not allowed" in out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_a_clear_error_with_exit_2(capsys):
    url = f"http://127.0.0.1:{_closed_port()}/fhir"
    assert cli.main(["sandbox", "load", "--fhir-server", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot connect to" in err and url in err and "Traceback" not in err


def test_unknown_patient_is_a_clear_error(fhir, capsys):
    assert cli.main(["sandbox", "load", "--fhir-server", fhir.base, "--patient", "p99"]) == 2
    assert "unknown sandbox patient 'p99'" in capsys.readouterr().err
    assert fhir.seen == []


def test_list_shows_every_patient_with_story_and_expected_cards(capsys):
    assert cli.main(["sandbox", "list"]) == 0
    out = capsys.readouterr().out
    for pid in patients.patient_ids():
        assert pid in out
    assert "mri-urgency: tier 2 (critical, 24 h)" in out
    assert "mescc-treatment: overdue (critical, 6 h overdue)" in out


def test_export_writes_loadable_bundles(tmp_path, capsys):
    assert cli.main(["sandbox", "export", "--out", str(tmp_path), "--patient", "p03"]) == 0
    written = tmp_path / "spinecds-p03.json"
    assert written.exists() and '"type": "transaction"' in written.read_text()
