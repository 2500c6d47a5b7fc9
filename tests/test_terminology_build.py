"""The shipped expansions: reproducible from their definitions and sources, checked for drift, refreshable
from a terminology server's ValueSet/$expand, and a local code added by editing one file."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cds_hooks.cli import main as spinecds
from engine.fixtures.resources import ICD10, SNOMED
from fhir_profiles.terminology import DEFAULT_DIRECTORY, load_terminology
from fhir_profiles.terminology_build import (
    DEFINITION_HASH,
    EXPANDED_BY,
    SNOMED_COPYRIGHT,
    build_all,
    load_sources,
    render,
    stale_expansions,
    write_all,
)
from fhir_profiles.terminology_expand import ExpandError, expand_all

SOURCES = DEFAULT_DIRECTORY / "terminology-sources"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "fhir_profiles"
    for folder in ("codesystems", "valuesets", "structuredefinitions", "terminology-sources"):
        shutil.copytree(DEFAULT_DIRECTORY / folder, target / folder)
    return target


def _vs(directory: Path, name: str) -> dict[str, Any]:
    return json.loads((directory / "valuesets" / f"{name}.json").read_text())


def test_the_shipped_expansions_are_exactly_what_the_build_makes():
    for path, resource in build_all().items():
        assert path.read_text(encoding="utf-8") == render(resource), f"{path.name}: run spinecds terminology build"
    assert stale_expansions() == []


def test_every_valueset_names_its_sources_and_snomed_ones_carry_the_copyright():
    sources = load_sources()
    for path in sorted((DEFAULT_DIRECTORY / "valuesets").glob("*.json")):
        data = json.loads(path.read_text())
        params = {p["name"]: p for p in data["expansion"]["parameter"]}
        assert DEFINITION_HASH in params and EXPANDED_BY in params, path.name
        if any(c["system"] == SNOMED for c in data["expansion"]["contains"]):
            assert data["copyright"] == SNOMED_COPYRIGHT, path.name
        used = [p["valueUri"] for p in data["expansion"]["parameter"] if p["name"] == "used-source"]
        known = {f"{s['url']}|{s['version']}" for s in sources.described.values()}
        assert set(used) <= known, path.name


def test_every_source_file_has_its_provenance_recorded():
    listed = json.loads((SOURCES / "sources.json").read_text())["sources"]
    files = {entry["file"] for entry in listed}
    on_disk = {p.name for p in SOURCES.glob("*.json")} - {"sources.json", "snomed-descendants.json"}
    assert files == on_disk
    for entry in listed:
        assert entry["url"] and entry["version"] and entry["licence"] and entry["path"], entry["id"]
    readme = (SOURCES / "README.md").read_text()
    for entry in listed:
        assert entry["file"] in readme, f"{entry['file']} not described in terminology-sources/README.md"


@pytest.mark.parametrize(
    ("concept", "system", "code"),
    [
        ("primary-breast", SNOMED, "353431000119107"),  # the mCODE example's code, a US-edition descendant
        ("primary-breast", SNOMED, "254837009"),
        ("primary-lung", SNOMED, "363358000"),
        ("malignancy", SNOMED, "353431000119107"),
        ("secondary-malignancy", SNOMED, "94222008"),
        ("spinal-metastasis", SNOMED, "94602001"),  # secondary malignant neoplasm of vertebral column
        ("visceral-metastasis", SNOMED, "94381002"),
        ("vertebral-column-site", SNOMED, "421060004"),
        ("symptom-local-back-pain", ICD10, "M54.50"),
    ],
)
def test_expansions_hold_the_codes_ehrs_send(concept, system, code):
    contains = {(c["system"], c["code"]) for c in _vs(DEFAULT_DIRECTORY, concept)["expansion"]["contains"]}
    assert (system, code) in contains or (system == ICD10 and (system, code[:5]) in contains)
    assert concept in load_terminology().concepts_of(system, code)


def test_malignancy_excludes_non_melanoma_skin_cancer_and_in_situ():
    term = load_terminology()
    contains = _vs(DEFAULT_DIRECTORY, "malignancy")["expansion"]["contains"]
    displays = [c["display"].lower() for c in contains if c["system"] == SNOMED]
    # basal cell carcinoma stays out, unless it has metastasised (then it is a cancer that can reach the spine)
    assert not [d for d in displays if "basal cell carcinoma" in d and "metasta" not in d]
    assert not [d for d in displays if "in situ" in d]
    assert any("melanoma" in d for d in displays)  # melanoma of skin stays a malignancy
    assert "malignancy" not in term.concepts_of(ICD10, "C44.91")
    assert "malignancy" in term.concepts_of(ICD10, "C43.9")


def test_a_site_adds_a_local_code_by_editing_one_file_and_check_reports_the_stale_expansion(tmp_path, capsys):
    target = _copy(tmp_path)
    path = target / "valuesets" / "symptom-local-back-pain.json"
    data = json.loads(path.read_text())
    local = {
        "system": "urn:oid:2.16.840.1.113883.2.4.3.11.999",
        "concept": [{"code": "RUGPIJN-LOK", "display": "Lokale rugpijn"}],
    }
    data["compose"]["include"].append(local)
    path.write_text(json.dumps(data, indent=2))
    coding = [{"system": local["system"], "code": "RUGPIJN-LOK"}]
    # the local code counts at once: the loader reads the definition's listed codes too
    assert load_terminology(target).matches("symptom-local-back-pain", coding)
    # ... and `spinecds fhir check` says the shipped expansion no longer matches the definition
    assert spinecds(["fhir", "check", "--dir", str(target)]) == 1
    out = capsys.readouterr().out
    assert "symptom-local-back-pain.json: the definition (compose) changed" in out
    assert "spinecds terminology build" in out
    assert spinecds(["terminology", "build", "--dir", str(target)]) == 0
    assert ("urn:oid:2.16.840.1.113883.2.4.3.11.999", "RUGPIJN-LOK") in {
        (c["system"], c["code"]) for c in _vs(target, "symptom-local-back-pain")["expansion"]["contains"]
    }
    assert ("urn:oid:2.16.840.1.113883.2.4.3.11.999", "RUGPIJN-LOK") in {
        (c["system"], c["code"]) for c in _vs(target, "symptom")["expansion"]["contains"]
    }  # the union follows its part
    capsys.readouterr()
    assert spinecds(["fhir", "check", "--dir", str(target)]) == 0


def test_check_reports_a_hand_edited_expansion(tmp_path, capsys):
    target = _copy(tmp_path)
    path = target / "valuesets" / "primary-prostate.json"
    data = json.loads(path.read_text())
    data["expansion"]["contains"] = [c for c in data["expansion"]["contains"] if c["code"] != "399068003"]
    path.write_text(json.dumps(data, indent=2))
    assert spinecds(["fhir", "check", "--dir", str(target)]) == 1
    out = capsys.readouterr().out
    assert "primary-prostate.json: expansion does not match the definition" in out
    assert "http://snomed.info/sct|399068003" in out


def test_a_missing_recipe_for_an_is_a_root_is_a_file_and_place_error(tmp_path):
    target = _copy(tmp_path)
    path = target / "valuesets" / "primary-thyroid.json"
    data = json.loads(path.read_text())
    data["compose"]["include"][0]["filter"][0]["value"] = "999999999"
    path.write_text(json.dumps(data))
    with pytest.raises(Exception, match=r"primary-thyroid\.json: compose\.include\[0\]\.filter\[0\]: no recipe"):
        write_all(target)


# ---------------------------------------------------------------- $expand from a loopback server


class _Expander(BaseHTTPRequestHandler):
    """Answers POST /fhir/ValueSet/$expand from fixture data, two codes per page, like a real server."""

    fixtures: ClassVar[dict[str, list[dict[str, Any]]]] = {}
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        params = {p["name"]: p for p in body["parameter"]}
        valueset = params["valueSet"]["resource"]
        roots = [
            f["value"] for part in valueset["compose"]["include"] for f in part.get("filter", []) if f["op"] == "is-a"
        ]
        codes = [c for root in roots for c in self.fixtures.get(root, [])]
        if self.path != "/fhir/ValueSet/$expand" or not codes:
            self.send_response(422)
            self.end_headers()
            self.wfile.write(b'{"resourceType": "OperationOutcome"}')
            return
        offset, count = params["offset"]["valueInteger"], min(params["count"]["valueInteger"], 2)
        page = codes[offset : offset + count]
        answer = {"resourceType": "ValueSet", "expansion": {"total": len(codes), "offset": offset, "contains": page}}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def expander() -> Iterator[str]:
    _Expander.requests = []
    _Expander.fixtures = {
        "363478007": [
            {"system": SNOMED, "code": "363478007", "display": "Malignant tumor of thyroid gland"},
            {
                "system": SNOMED,
                "code": "255032005",
                "display": "Papillary thyroid carcinoma",
                "contains": [{"system": SNOMED, "code": "424993006", "display": "Hurthle cell carcinoma of thyroid"}],
            },
            {"system": SNOMED, "code": "444132000", "display": "Follicular thyroid carcinoma"},
        ],
        "C73": [{"system": ICD10, "code": "C73", "display": "Malignant neoplasm of thyroid gland"}],
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Expander)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def test_expand_refreshes_an_expansion_from_a_terminology_server(tmp_path, expander, capsys):
    target = _copy(tmp_path)
    code = spinecds(
        ["terminology", "expand", "--server", expander, "--valueset", "primary-thyroid", "--dir", str(target)]
    )
    assert code == 0, capsys.readouterr().err
    data = _vs(target, "primary-thyroid")
    contains = {(c["system"], c["code"]) for c in data["expansion"]["contains"]}
    assert (SNOMED, "444132000") in contains  # the second page was read
    assert (SNOMED, "424993006") in contains  # nested contains are flattened
    assert (ICD10, "C73") in contains  # the ICD-10 root (covers C73.x) is kept
    params = {p["name"]: p["valueString"] for p in data["expansion"]["parameter"] if "valueString" in p}
    assert params[EXPANDED_BY] == expander
    # the server saw the definition, never our local systems, and was asked page by page
    sent = _Expander.requests[0]["body"]["parameter"][0]["resource"]
    assert "expansion" not in sent
    assert all(not part["system"].startswith("http://spinecds.org/") for part in sent["compose"]["include"])
    assert [r["body"]["parameter"][2]["valueInteger"] for r in _Expander.requests][:2] == [0, 2]
    # the engine matches what the server knew, and the check accepts a server-made expansion
    assert "primary-thyroid" in load_terminology(target).concepts_of(SNOMED, "255032005")
    assert stale_expansions(target) == []


def test_expand_error_names_the_valueset_and_the_answer(tmp_path, expander):
    target = _copy(tmp_path)
    with pytest.raises(ExpandError, match=r"primary-kidney: .*ValueSet/\$expand answered HTTP 422"):
        expand_all(expander, target, only=["primary-kidney"])
    with pytest.raises(ExpandError, match="no such ValueSet: nope"):
        expand_all(expander, target, only=["nope"])


def test_expand_sends_the_token(tmp_path, expander, monkeypatch):
    target = _copy(tmp_path)
    monkeypatch.setenv("TX_TOKEN", "s3cret")
    assert (
        spinecds(
            ["terminology", "expand", "--server", expander, "--valueset", "primary-thyroid", "--token", "env:TX_TOKEN"]
            + ["--dir", str(target)]
        )
        == 0
    )
    assert _Expander.requests[0]["auth"] == "Bearer s3cret"


@pytest.mark.parametrize("concept", ["secondary-malignancy", "spinal-metastasis", "visceral-metastasis"])
def test_secondary_site_expansions_hold_only_secondary_codes(concept):
    displays = [
        c["display"].lower() for c in _vs(DEFAULT_DIRECTORY, concept)["expansion"]["contains"] if c["system"] == SNOMED
    ]
    assert displays
    assert [d for d in displays if "secondary" not in d and "metasta" not in d] == []


@pytest.mark.parametrize(
    "concept",
    ["primary-breast", "primary-prostate", "primary-lung", "primary-kidney", "primary-thyroid", "primary-germ-cell"],
)
def test_primary_expansions_hold_no_secondary_codes(concept):
    displays = [
        c["display"].lower() for c in _vs(DEFAULT_DIRECTORY, concept)["expansion"]["contains"] if c["system"] == SNOMED
    ]
    assert displays
    # "primary ... metastatic to bone" is a primary that has spread (it is a bone metastasis too)
    spread = [d for d in displays if "metastatic to" in d]
    assert all(d.startswith("primary") for d in spread)
    assert [d for d in displays if d not in spread and ("secondary" in d or "metasta" in d or "in situ" in d)] == []


def test_prefetch_queries_stay_short_with_big_expansions():
    from cds_hooks.prefetch_templates import prefetch_templates

    templates = prefetch_templates()
    assert all(len(url) < 2000 for url in templates.values()), {k: len(v) for k, v in templates.items()}
    # Conditions are fetched whole, never by code: the big expansions never reach a URL
    assert "code=" not in templates["conditions"]


def test_every_fixture_concept_is_coded_in_its_valueset():
    """The shared fixture builder's concepts (rule cases, sandbox) use codes the ValueSets recognise."""
    from engine.fixtures.concepts import DIAGNOSES

    term = load_terminology()
    for name, concept in DIAGNOSES.items():
        for system, code, _ in (*concept.codings, *concept.alternatives):
            assert concept.valueset in term.concepts_of(system, code), (name, system, code)


def test_a_valueset_written_without_an_expansion_still_matches_and_check_asks_for_the_build(tmp_path, capsys):
    """A ValueSet in the pre-expansion format (compose only, a regex filter) works as before and is
    reported until `spinecds terminology build` gives it its expansion."""
    target = _copy(tmp_path)
    new = {
        "resourceType": "ValueSet",
        "id": "sphincter-code-test",
        "url": "http://spinecds.org/fhir/ValueSet/sphincter-code-test",
        "status": "active",
        "compose": {
            "include": [{"system": ICD10, "filter": [{"property": "code", "op": "regex", "value": "R3[23](\\..*)?"}]}]
        },
    }
    (target / "valuesets" / "sphincter-code-test.json").write_text(json.dumps(new))
    assert "sphincter-code-test" in load_terminology(target).concepts_of(ICD10, "R33.9")
    assert spinecds(["fhir", "check", "--dir", str(target)]) == 1
    assert "sphincter-code-test.json: no expansion: run `spinecds terminology build`" in capsys.readouterr().out
    assert spinecds(["terminology", "build", "--dir", str(target)]) == 0
    capsys.readouterr()
    assert spinecds(["fhir", "check", "--dir", str(target)]) == 0
