import shutil
from pathlib import Path

import pytest

from engine.scores import DEFAULT_DIRECTORY, ScoreTableError, load_scores, survival_facts


@pytest.fixture(scope="module")
def tables():
    return load_scores()


ALL_ZERO = {
    "location": "loc-rigid",
    "pain": "pain-free",
    "bone-lesion": "lesion-blastic",
    "alignment": "align-normal",
    "collapse": "collapse-none",
    "posterolateral": "postero-none",
}


def sins_with(**changes):
    answers = dict(ALL_ZERO)
    answers.update({k.replace("_", "-"): v for k, v in changes.items()})
    return answers


@pytest.mark.parametrize(
    "answers, total, category",
    [
        (sins_with(location="loc-junctional", pain="pain-mechanical"), 6, "stable"),
        (
            sins_with(location="loc-junctional", pain="pain-mechanical", posterolateral="postero-unilateral"),
            7,
            "potentially-unstable",
        ),
        (
            sins_with(
                location="loc-junctional",
                pain="pain-mechanical",
                bone_lesion="lesion-lytic",
                alignment="align-subluxation",
            ),
            12,
            "potentially-unstable",
        ),
        (
            sins_with(
                location="loc-junctional",
                pain="pain-mechanical",
                bone_lesion="lesion-lytic",
                alignment="align-subluxation",
                posterolateral="postero-unilateral",
            ),
            13,
            "unstable",
        ),
        (
            sins_with(
                location="loc-junctional",
                pain="pain-mechanical",
                bone_lesion="lesion-lytic",
                alignment="align-subluxation",
                collapse="collapse-gt50",
                posterolateral="postero-bilateral",
            ),
            18,
            "unstable",
        ),
        (ALL_ZERO, 0, "stable"),
    ],
)
def test_sins_band_boundaries(tables, answers, total, category):
    result = tables.sins.compute(answers)
    assert (result.total, result.min, result.max, result.band.name) == (total, total, total, category)
    assert result.missing == []


def test_each_sins_answer_scores_as_fisher_2010(tables):
    expected = {
        "loc-junctional": 3,
        "loc-mobile": 2,
        "loc-semirigid": 1,
        "loc-rigid": 0,
        "pain-mechanical": 3,
        "pain-occasional": 1,
        "pain-free": 0,
        "lesion-lytic": 2,
        "lesion-mixed": 1,
        "lesion-blastic": 0,
        "align-subluxation": 4,
        "align-deformity": 2,
        "align-normal": 0,
        "collapse-gt50": 3,
        "collapse-lt50": 2,
        "collapse-involved-gt50": 1,
        "collapse-none": 0,
        "postero-bilateral": 3,
        "postero-unilateral": 1,
        "postero-none": 0,
    }
    got = {answer: points for c in tables.sins.components for answer, points in c.points.items()}
    assert got == expected


def test_incomplete_sins_gives_range_and_missing_components(tables):
    result = tables.sins.compute(
        {"location": "loc-junctional", "pain": "pain-mechanical", "bone-lesion": "lesion-lytic"}
    )
    assert result.total is None
    assert (result.min, result.max) == (8, 18)
    assert result.band is None  # 8-18 spans two categories
    assert result.missing == ["alignment", "collapse", "posterolateral involvement"]


def test_incomplete_sins_within_one_band_keeps_the_category(tables):
    answers = sins_with(
        location="loc-junctional",
        pain="pain-mechanical",
        bone_lesion="lesion-lytic",
        alignment="align-subluxation",
        collapse="collapse-gt50",
    )
    del answers["posterolateral"]
    result = tables.sins.compute(answers)
    assert (result.min, result.max, result.band.name) == (15, 18, "unstable")


def test_incomplete_sins_crossing_seven(tables):
    result = tables.sins.compute(
        {
            "location": "loc-rigid",
            "pain": "pain-free",
            "bone-lesion": "lesion-blastic",
            "alignment": "align-normal",
            "collapse": "collapse-none",
        }
    )
    assert (result.min, result.max, result.band) == (0, 3, tables.sins.band_of(0))
    result = tables.sins.compute({"location": "loc-junctional", "pain": "pain-mechanical"})
    assert (result.min, result.max, result.band) == (6, 18, None)


@pytest.mark.parametrize(
    "kps, primary, visceral, score, group, months",
    [
        (40, "lung", True, 1, "A", 3.0),
        (70, "prostate", True, 3, "A", 3.0),  # upper edge of A
        (80, "prostate", True, 4, "B", 9.0),  # KPS 80 scores 2: lower edge of B
        (70, "breast", True, 4, "B", 9.0),
        (70, "breast", False, 5, "B", 9.0),  # upper edge of B
        (80, "breast", False, 6, "C", 18.7),
        (50, "kidney", False, 2, "A", 3.0),  # other primary scores 0, KPS 50 scores 1
        (49, "breast", False, 4, "B", 9.0),  # KPS below 50 scores 0
    ],
)
def test_van_der_linden_boundaries(tables, kps, primary, visceral, score, group, months):
    facts = survival_facts(tables, {"kps": kps, "primary": primary, "visceral_metastases": visceral})
    assert (facts["vdl.score"], facts["vdl.group"], facts["vdl.median_months"]) == (score, group, months)
    assert facts["vdl.applicable"] is True and facts["vdl.missing"] == []


def test_van_der_linden_names_each_missing_datum(tables):
    facts = survival_facts(tables, {})
    assert facts["vdl.missing"] == ["KPS", "primary tumour", "visceral metastases status"]
    assert "vdl.score" not in facts and "vdl.group" not in facts


@pytest.mark.parametrize("primary", ["myeloma", "lymphoma", "unknown"])
def test_models_not_applicable_to_haematological_and_unknown_primaries(tables, primary):
    facts = survival_facts(tables, {"kps": 90, "primary": primary, "visceral_metastases": False})
    assert facts["vdl.applicable"] is False and "vdl.group" not in facts
    assert facts["bollen.applicable"] is False and "bollen.group" not in facts


@pytest.mark.parametrize(
    "kps, primary, visceral, group, months",
    [
        (80, "breast", False, "A", 31.2),
        (80, "breast", True, "B", 15.4),
        (70, "breast", False, "B", 15.4),
        (70, "breast", True, "C", 4.8),
        (100, "prostate", None, "B", 15.4),  # visceral status not needed for a moderate profile
        (70, "prostate", True, "C", 4.8),
        (80, "lung", None, "C", 4.8),
        (70, "lung", False, "D", 1.6),
    ],
)
def test_bollen_lookup(tables, kps, primary, visceral, group, months):
    facts = {"kps": kps, "primary": primary}
    if visceral is not None:
        facts["visceral_metastases"] = visceral
    out = survival_facts(tables, facts)
    assert (out["bollen.group"], out["bollen.median_months"]) == (group, months)
    assert out["bollen.missing"] == []


def test_bollen_missing_visceral_only_matters_for_favourable_profile(tables):
    out = survival_facts(tables, {"kps": 80, "primary": "breast"})
    assert "bollen.group" not in out and out["bollen.missing"] == ["visceral metastases status"]
    out = survival_facts(tables, {"primary": "lung"})
    assert out["bollen.missing"] == ["KPS"]


def test_bollen_is_a_draft_and_says_why(tables):
    out = survival_facts(tables, {"kps": 80, "primary": "breast", "visceral_metastases": False})
    assert out["bollen.status"] == "draft"
    assert "not verified" in out["bollen.draft_reason"]


def test_bollen_unverified_profile_is_not_guessed(tables):
    out = survival_facts(tables, {"kps": 80, "primary": "kidney", "visceral_metastases": False})
    assert out["bollen.applicable"] is False and "bollen.group" not in out


def test_ecog_to_kps_bands_are_data(tables):
    # revision 2: each ECOG grade is its conventional KPS band, no longer the band's lower bound
    bands = {e: tables.ecog_to_kps.get(e) for e in range(6)}
    assert bands == {0: (90, 100), 1: (70, 80), 2: (50, 60), 3: (30, 40), 4: (10, 20), 5: None}


def test_surgery_criteria_are_data(tables):
    crit = tables.criteria
    assert (crit.single_months, crit.combined_months) == (3, 6)
    assert (crit.poor_below, crit.discuss_below, crit.recent_days) == (50, 70, 14)
    assert (crit.old_after_days, crit.old_floor, crit.range_when_unknown) == (30, 10, (10, 100))
    assert "leg-weakness" in crit.deficit_codes and "radicular-deficit" in crit.outdated_progressive_codes


def test_broken_criteria_report_file_and_line(tmp_path):
    target = _copy(tmp_path)
    path = target / "surgery-criteria.yaml"
    text = path.read_text().replace("poor_below: 50", "poor_below: fifty")
    path.write_text(text)
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "poor_below: fifty" in text_line)
    with pytest.raises(ScoreTableError, match=rf"surgery-criteria\.yaml:{line}: surgery-criteria: clinical_condition"):
        load_scores(target)


def test_an_ecog_band_must_be_low_high(tmp_path):
    target = _copy(tmp_path)
    path = target / "ecog-to-kps.yaml"
    path.write_text(path.read_text().replace("1: [70, 80]", "1: [80, 70]"))
    with pytest.raises(ScoreTableError, match=r"ecog-to-kps\.yaml:\d+: ecog-to-kps: mapping\.1: expected a band"):
        load_scores(target)


def test_tables_load_once():
    assert load_scores() is load_scores()


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "scores"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    return target


def test_broken_points_report_file_and_line(tmp_path):
    target = _copy(tmp_path)
    path = target / "sins.yaml"
    text = path.read_text().replace("pain-mechanical: 3", "pain-mechanical: three")
    path.write_text(text)
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "pain-mechanical: three" in text_line)
    with pytest.raises(ScoreTableError, match=rf"sins\.yaml:{line}: sins: components\.1\.points\.pain-mechanical"):
        load_scores(target)


def test_gap_between_bands_is_an_error(tmp_path):
    target = _copy(tmp_path)
    path = target / "van-der-linden.yaml"
    path.write_text(path.read_text().replace("{min: 4, max: 5, group: B", "{min: 5, max: 5, group: B"))
    with pytest.raises(
        ScoreTableError, match=r"van-der-linden\.yaml:\d+: van-der-linden: bands\.1: bands must be contiguous"
    ):
        load_scores(target)


def test_invalid_yaml_reports_line(tmp_path):
    target = _copy(tmp_path)
    (target / "bollen.yaml").write_text("id: bollen\nrows: [\n")
    with pytest.raises(ScoreTableError, match=r"bollen\.yaml:\d+: not valid YAML"):
        load_scores(target)


def test_unknown_group_in_lookup_row(tmp_path):
    target = _copy(tmp_path)
    path = target / "bollen.yaml"
    path.write_text(path.read_text().replace("kps: low, group: D}", "kps: low, group: E}"))
    with pytest.raises(ScoreTableError, match=r"bollen\.yaml:\d+: bollen: rows\.7: group 'E' is not defined"):
        load_scores(target)


def test_draft_without_reason_is_an_error(tmp_path):
    target = _copy(tmp_path)
    path = target / "bollen.yaml"
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.startswith("draft_reason")
        and not line.startswith("  tumour")
        and not line.startswith("  and lung")
        and not line.startswith("  classified")
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScoreTableError, match="a draft table needs a 'draft_reason'"):
        load_scores(target)
