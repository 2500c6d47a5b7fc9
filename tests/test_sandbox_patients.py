"""The synthetic sandbox patients: valid FHIR R4 transactions, stable ids, relative dates, spec codes,
and clinical content that really supports the cards INDEX.md promises."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from sandbox import codes, patients

NOW = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
LATER = NOW + timedelta(days=211, hours=7, minutes=41, seconds=13)

ICD10, SNOMED, LOINC, SF = codes.ICD10, codes.SNOMED, codes.LOINC, codes.SF
CLINICAL_SYSTEMS = {ICD10, SNOMED, LOINC, SF}

# The codes of the clinical specification, typed here independently of the builder and the ValueSets.
SPEC_ICD10_PREFIXES = (
    "C50.",
    "C61",
    "C34.",
    "C64.",
    "C73",
    "C90.0",
    "C81.",
    "C82.",
    "C83.",
    "C84.",
    "C85.",
    "C86.",
    "C79.51",
    "C79.52",
    "C78.",
    "C79.3",
)
SPEC_ICD10_EXACT = {"G95.20", "G95.29", "G83.4"}
SPEC_SNOMED = {
    "363346000",
    "254837009",
    "399068003",
    "363358000",
    "363518003",
    "363478007",
    "109989006",
    "118600007",
    "94222008",
    "94381002",
    "94391008",
    "94225005",
    "161891005",
    "279039007",
    "7771000",
    "24028007",
    "51440002",
}
SPEC_LOINC = {"89243-0", "89247-1", "72514-3"}
SPEC_SF = {
    "local-back-pain",
    "interscapular-pain",
    "nocturnal-back-pain",
    "radiating-pain",
    "radicular-pain",
    "radicular-deficit",
    "lhermitte-sign",
    "leg-weakness",
    "limb-control-difficulty",
    "unsteady-gait",
    "sensory-level",
    "unable-to-walk",
    "mescc",
    "sins",
    "sins-location",
    "sins-pain",
    "sins-bone-lesion",
    "sins-alignment",
    "sins-collapse",
    "sins-posterolateral",
    "visceral-metastases",
    "loc-junctional",
    "loc-mobile",
    "loc-semirigid",
    "loc-rigid",
    "pain-mechanical",
    "pain-occasional",
    "pain-free",
    "lesion-lytic",
    "lesion-mixed",
    "lesion-blastic",
    "align-subluxation",
    "align-deformity",
    "align-normal",
    "collapse-gt50",
    "collapse-lt50",
    "collapse-involved-gt50",
    "collapse-none",
    "postero-bilateral",
    "postero-unilateral",
    "postero-none",
    "mri-whole-spine",
    "spine-surgery-referral",
    "spinal-surgery",
    "spinal-surgery-combined",
    "spine-radiotherapy",
}
SYMPTOM_CODES = {code for code in SPEC_SF if code in codes.SYMPTOMS}
TIER1_SYMPTOMS = {
    "lhermitte-sign",
    "leg-weakness",
    "limb-control-difficulty",
    "unsteady-gait",
    "sensory-level",
    "unable-to-walk",
}


def in_spec(system: str, code: str) -> bool:
    if system == ICD10:
        return code in SPEC_ICD10_EXACT or code.startswith(SPEC_ICD10_PREFIXES)
    return code in {SNOMED: SPEC_SNOMED, LOINC: SPEC_LOINC, SF: SPEC_SF}[system]


@pytest.fixture(scope="module")
def bundles() -> dict[str, dict[str, Any]]:
    return patients.build_all(NOW)


@pytest.fixture(scope="module")
def later_bundles() -> dict[str, dict[str, Any]]:
    return patients.build_all(LATER)


def resources(bundle: dict[str, Any], resource_type: str | None = None) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if resource_type in (None, e["resource"]["resourceType"])]


def codings(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            yield value
        for item in value.values():
            yield from codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings(item)


def has_code(resource: dict[str, Any], system: str, code: str) -> bool:
    return any(
        c.get("system") == system and c.get("code") == code for c in (resource.get("code") or {}).get("coding") or []
    )


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- structure


def test_at_least_15_patients_with_stable_readable_ids(bundles):
    ids = patients.patient_ids()
    assert len(ids) >= 15
    assert ids == sorted(ids) and all(re.fullmatch(r"spinecds-p\d\d", pid) for pid in ids)
    assert list(bundles) == ids
    for pid, bundle in bundles.items():
        assert bundle["entry"][0]["resource"] == {
            **bundle["entry"][0]["resource"],
            "resourceType": "Patient",
            "id": pid,
        }


def test_every_bundle_is_a_valid_r4_transaction_of_puts_by_id(bundles):
    for pid, bundle in bundles.items():
        Bundle.model_validate(bundle)
        assert bundle["type"] == "transaction"
        full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
        assert len(set(full_urls)) == len(full_urls), pid
        for entry in bundle["entry"]:
            res = entry["resource"]
            get_fhir_model_class(res["resourceType"]).model_validate(res)
            assert entry["request"] == {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}
            if res["resourceType"] != "Patient":
                assert res["subject"] == {"reference": f"Patient/{pid}"}


def test_resource_counts_are_those_of_a_real_record(bundles):
    for pid, bundle in bundles.items():
        counts = {t: len(resources(bundle, t)) for t in ("Patient", "Condition", "Observation", "Procedure")}
        assert 50 <= len(bundle["entry"]) <= 300, (pid, len(bundle["entry"]))
        assert counts["Patient"] == 1 and counts["Condition"] >= 2 and counts["Observation"] >= 40, (pid, counts)
        # noise is really there: vital signs and labs, and unrelated problems
        categories = {
            c["code"] for r in resources(bundle, "Observation") for cat in r["category"] for c in cat["coding"]
        }
        assert {"vital-signs", "laboratory"} <= categories, pid


def test_ids_are_unique_valid_fhir_ids_and_do_not_depend_on_now(bundles, later_bundles):
    seen: set[str] = set()
    for pid, bundle in bundles.items():
        ids = [f"{r['resourceType']}/{r['id']}" for r in resources(bundle)]
        assert ids == [f"{r['resourceType']}/{r['id']}" for r in resources(later_bundles[pid])]
        for rid in ids:
            assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", rid.split("/")[1]), rid
            assert rid.split("/")[1].startswith(pid), rid
        assert not seen & set(ids)
        seen.update(ids)
        assert len(ids) == len(set(ids)), pid


def test_same_now_gives_identical_bundles():
    assert json.dumps(patients.build_all(NOW)) == json.dumps(patients.build_all(NOW))


def _walk_pairs(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            yield from _walk_pairs(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _walk_pairs(x, y, f"{path}[{n}]")
    else:
        yield path, a, b


def test_dates_are_relative_to_now(bundles, later_bundles):
    """Built at two different `now`s, every instant keeps its distance to now; everything else is equal."""
    instants = dates = 0
    for pid in bundles:
        for path, a, b in _walk_pairs(bundles[pid], later_bundles[pid], pid):
            if isinstance(a, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", a):
                assert NOW - when(a) == LATER - when(b), path
                # only an order's due date may lie ahead (p20: an MRI ordered for this afternoon)
                assert when(a) <= NOW or "occurrencePeriod" in path, f"{path} is in the future"
                instants += 1
            elif isinstance(a, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", a):
                assert NOW.date() - date.fromisoformat(a) == LATER.date() - date.fromisoformat(b), path
                dates += 1
            elif not path.endswith("fullUrl"):
                assert a == b, path
    assert instants > 2000 and dates == len(bundles)


def test_every_clinical_coding_is_from_the_spec_or_the_noise_tables(bundles):
    noise = codes.noise_codings()
    # noise must never look like cancer to a C00-C96 prefix match
    assert not [code for system, code in noise if system == ICD10 and code.startswith("C")]
    for pid, bundle in bundles.items():
        for coding in codings([r for r in resources(bundle)]):
            if coding["system"] in CLINICAL_SYSTEMS:
                key = (coding["system"], coding["code"])
                assert in_spec(*key) or key in noise, (pid, key)


# ---------------------------------------------------------------- clinical content


class Chart:
    """Reads a built Bundle the way the clinical specification describes (an oracle independent of the builder)."""

    def __init__(self, bundle: dict[str, Any]):
        self.conditions = resources(bundle, "Condition")
        self.observations = resources(bundle, "Observation")

    def _codes(self, res: dict[str, Any]) -> set[tuple[str, str]]:
        return {(c["system"], c["code"]) for c in res["code"]["coding"]}

    def with_icd(self, *prefixes: str) -> list[dict[str, Any]]:
        return [
            c for c in self.conditions if any(s == ICD10 and code.startswith(prefixes) for s, code in self._codes(c))
        ]

    @property
    def cancer(self) -> bool:
        return any(
            s == ICD10 and re.match(r"C[0-9]", code) and int(code[1:3]) <= 96
            for c in self.conditions
            for s, code in self._codes(c)
        )

    @property
    def primary(self) -> str:
        for name, prefixes in (
            ("breast", ("C50",)),
            ("prostate", ("C61",)),
            ("lung", ("C34",)),
            ("myeloma", ("C90.0",)),
            ("lymphoma", ("C81", "C82", "C83", "C84", "C85", "C86")),
            ("other", ("C64", "C73")),
        ):
            if self.with_icd(*prefixes):
                return name
        return "unknown"

    def symptoms(self) -> list[dict[str, Any]]:
        return [c for c in self.conditions if any(s == SF and code in SYMPTOM_CODES for s, code in self._codes(c))]

    def latest(self, code: str) -> int | None:
        final = [o for o in self.observations if has_code(o, LOINC, code) and o["status"] == "final"]
        return max(final, key=lambda o: o["effectiveDateTime"])["valueInteger"] if final else None

    @property
    def kps(self) -> int | None:
        kps = self.latest("89243-0")
        if kps is None and self.latest("89247-1") is not None:
            kps = {0: 90, 1: 70, 2: 50, 3: 30, 4: 10}[self.latest("89247-1")]
        return kps

    @property
    def visceral(self) -> bool | None:
        if self.with_icd("C78.", "C79.3"):
            return True
        staging = [o for o in self.observations if has_code(o, SF, "visceral-metastases")]
        return staging[0]["valueBoolean"] if staging else None

    def mescc(self) -> list[dict[str, Any]]:
        return self.with_icd("G95.20")

    def mri_tier(self, now: datetime) -> int | None:
        if (
            not self.cancer
            or not self.symptoms()
            or any(m["verificationStatus"]["coding"][0]["code"] == "confirmed" for m in self.mescc())
        ):
            return None
        tiers = [1] if self.mescc() else []
        for s in self.symptoms():
            code = next(c["code"] for c in s["code"]["coding"] if c["system"] == SF)
            sides = {c["code"] for site in s.get("bodySite") or [] for c in site.get("coding") or []}
            bilateral = not sides or "51440002" in sides
            extensions = {e["url"].rsplit("/", 1)[1]: e["valueCode"] for e in s.get("extension") or []}
            course = extensions.get("symptom-course", "progressive")
            bilateral = bilateral or extensions.get("pain-pattern") == "band-like"
            # revision 2: "develops within seven days" runs from onset to presentation (recordedDate)
            presented = when(s["recordedDate"]) if "recordedDate" in s else now
            days = (presented - when(s["onsetDateTime"])).total_seconds() / 86400 if "onsetDateTime" in s else 0
            radicular = ("radicular-pain", "radicular-deficit", "radiating-pain")  # radiating pain is radicular
            if code in TIER1_SYMPTOMS or (code in radicular and bilateral):
                tiers.append(1)
            elif code == "radicular-deficit" and course == "progressive":
                tiers.append(2 if days <= 7 else 3)
            elif code in radicular:
                tiers.append(4)
            else:
                tiers.append(5)
        return min(tiers)

    def sins_ranges(self) -> list[tuple[int, int]]:
        points = dict(codes.SINS_POINTS)
        maxima = {
            "sins-location": 3,
            "sins-pain": 3,
            "sins-bone-lesion": 2,
            "sins-alignment": 4,
            "sins-collapse": 3,
            "sins-posterolateral": 3,
        }
        ranges = []
        for o in (o for o in self.observations if has_code(o, SF, "sins")):
            given = {
                comp["code"]["coding"][0]["code"]: points[comp["valueCodeableConcept"]["coding"][0]["code"]]
                for comp in o["component"]
            }
            low = sum(given.values())
            ranges.append((low, low + sum(m for k, m in maxima.items() if k not in given)))
        return ranges

    def van_der_linden(self) -> str | None:
        if self.kps is None or self.visceral is None or self.primary in ("unknown", "myeloma", "lymphoma"):
            return None
        score = (
            (2 if self.kps >= 80 else 1 if self.kps >= 50 else 0)
            + {"breast": 3, "prostate": 2, "lung": 1}.get(self.primary, 0)
            + (0 if self.visceral else 1)
        )
        return "A" if score <= 3 else "B" if score <= 5 else "C"


def _expected(pid: str) -> dict[str, Any]:
    return patients.description(pid).get("expect") or {}


def _card(pid: str, rule: str) -> dict[str, Any] | None:
    return next((c for c in _expected(pid).get("cards") or [] if c["ruleId"] == rule), None)


def test_expected_mri_tier_follows_from_the_chart(bundles):
    deadline = {1: 12, 2: 24, 3: 48, 4: 168, 5: 336}
    tiers_seen = set()
    for pid, bundle in bundles.items():
        tier, card = Chart(bundle).mri_tier(NOW), _card(pid, "mri-urgency")
        if card is None:
            assert tier is None, (pid, tier)
        else:
            assert (card["outcome"], card["deadlineHours"]) == (tier, deadline[tier]), pid
            tiers_seen.add(tier)
    assert tiers_seen == {1, 2, 3, 4, 5}


def test_expected_sins_cards_follow_from_the_components(bundles):
    categories = set()
    for pid, bundle in bundles.items():
        ranges, card = Chart(bundle).sins_ranges(), _card(pid, "sins-referral")
        worst = max(ranges, default=None)
        if card is None:
            assert worst is None or worst[1] < 7, pid
            continue
        categories.add(card["outcome"])
        if card["outcome"] == "incomplete":
            assert worst[0] < 7 <= worst[1] and card["sins"] == {"min": worst[0], "max": worst[1]}, pid
        else:
            assert worst[0] == worst[1] == card["sins"]["total"], pid
            assert card["outcome"] == ("unstable" if worst[0] >= 13 else "potentially-unstable"), pid
    assert categories == {"unstable", "potentially-unstable", "incomplete"}


def test_expected_survival_groups_follow_from_kps_primary_and_visceral_status(bundles):
    groups = set()
    for pid, bundle in bundles.items():
        card = _card(pid, "surgery-eligibility")
        if card is None:
            continue
        group = Chart(bundle).van_der_linden()
        if card["outcome"] == "undetermined":
            assert group is None, pid
            continue
        if "survival" not in card:  # p02: only the radiotherapy question (levels not recorded) is promised
            continue
        estimate = card["survival"][0]
        if "groups" in estimate:  # revision 2: an ECOG band reaches several groups; the lower bound's is one
            assert group in estimate["groups"], pid
            continue
        assert estimate["group"] == group, pid
        # revision 2: B or C meets the survival criterion, but MESCC (Van der Linden cannot decide alone)
        # or KPS 50-60 turn it into "discuss"; group A fails it
        assert card["outcome"] in (("not-eligible",) if group == "A" else ("eligible", "discuss")), pid
        groups.add(group)
    assert groups == {"A", "B", "C"}


def test_mescc_clocks(bundles):
    clocks = {}
    for pid, bundle in bundles.items():
        card = _card(pid, "mescc-treatment")
        confirmed = [m for m in Chart(bundle).mescc() if m["verificationStatus"]["coding"][0]["code"] == "confirmed"]
        assert bool(card) == bool(confirmed), pid
        if card:
            hours = (NOW - when(confirmed[0]["onsetDateTime"])).total_seconds() / 3600
            assert card["hoursLeft"] == 24 - hours
            assert card["outcome"] == ("within-window" if hours <= 24 else "overdue")
            clocks[card["outcome"]] = pid
    assert set(clocks) == {"within-window", "overdue"}


def test_the_special_situations_are_in_the_data(bundles):
    charts = {pid.removeprefix("spinecds-"): Chart(bundle) for pid, bundle in bundles.items()}
    provisional = [
        m for c in charts.values() for m in c.mescc() if m["verificationStatus"]["coding"][0]["code"] == "provisional"
    ]
    assert provisional, "a suspected (provisional) MESCC"
    assert {c.primary for c in charts.values()} >= {"breast", "prostate", "lung", "myeloma", "lymphoma", "unknown"}
    # ECOG only: no KPS recorded, KPS derived from ECOG
    ecog_only = [p for p, c in charts.items() if c.latest("89243-0") is None and c.latest("89247-1") is not None]
    assert ecog_only and all(charts[p].kps is not None for p in ecog_only)
    # incomplete data: a cancer without a coded primary and without any performance status
    assert any(c.cancer and c.primary == "unknown" and c.kps is None for c in charts.values())
    # a patient without cancer but with back pain, and one with bone metastases but no symptoms
    assert any(not c.cancer and c.symptoms() for c in charts.values())
    assert any(c.with_icd("C79.51") and not c.symptoms() for c in charts.values())
    # a preliminary KPS that must not decide (p13: latest final is 40)
    assert charts["p13"].kps == 40
    assert any(o["status"] == "preliminary" and has_code(o, LOINC, "89243-0") for o in charts["p13"].observations)
    # prior radiotherapy recorded as a Procedure somewhere
    assert any(has_code(p, SF, "spine-radiotherapy") for b in bundles.values() for p in resources(b, "Procedure"))
    # laterality and course as the profiles code them
    deficit = next(s for s in charts["p04"].symptoms() if has_code(s, SF, "radicular-deficit"))
    assert deficit["bodySite"][0]["coding"][0]["code"] == "24028007"
    assert deficit["extension"] == [{"url": codes.COURSE_URL, "valueCode": "progressive"}]
    assert NOW - when(deficit["onsetDateTime"]) == timedelta(days=3)


def test_index_md_is_generated_from_the_patient_files():
    assert patients.INDEX_PATH.read_text(encoding="utf-8") == patients.render_index(), (
        "run: python -m sandbox.patients --write-index"
    )


def test_bad_relative_time_names_the_file_and_the_fix():
    with pytest.raises(
        patients.PatientFileError, match=r"p99.yaml: symptoms\[0\].onset: time 'last tuesday' - write e.g."
    ):
        patients.parse_ago("last tuesday", "p99.yaml: symptoms[0].onset")
    assert patients.parse_ago("36 hours ago", "x") == timedelta(hours=36)
    assert patients.parse_ago("2 weeks ago", "x") == timedelta(days=14)


def test_bad_sins_answer_is_refused_with_the_options():
    desc = {
        **patients.description("p08"),
        "sins": [{"level": "T12", "when": "1 day ago", "location": "pain-mechanical"}],
    }
    with pytest.raises(
        patients.PatientFileError, match=r"sins\[0\].location: 'pain-mechanical' - use one of \['loc-junctional'"
    ):
        patients._Builder(desc, NOW).build()
