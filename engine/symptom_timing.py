"""Per-finding timing facts for the MRI rule: presentation, development, look-back, MRI done, MESCC.

- ``symptom.presented_hours_ago``: hours since the presentation time (engine/presentation.py); the
  rule engine adds the tier's hours to it for the due time.
- ``symptom.development_days``: onset to presentation (tiers 2 vs 3: "develops within seven days").
- ``symptom.in_lookback``: presented within the look-back window, or after the latest spine MRI.
- ``symptom.stale``: outside the window with no spine MRI since ("recorded N days ago, no spine MRI").
- ``symptom.mri_answered``: a whole-spine MRI at or after the presentation answers it.
- ``symptom.regional_mri``: a regional MRI of the symptom's own region (from its bodySite) since.
- ``symptom.mescc_relation``: ``none`` (no confirmed MESCC), ``covered`` (presented before both the
  treatment start and diagnosis + the MESCC window: the MESCC card covers it),
  ``known-before-treatment`` (treated, the same finding was recorded before the treatment and it is
  not progressive) or ``new`` (the MRI rule applies again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from engine.imaging import REGIONS, SpineImaging
from engine.localtime import date_text
from engine.presentation import development_days, presentation_of
from fhir_profiles.terminology import Terminology


@dataclass
class SymptomTiming:
    tz: tzinfo
    now: datetime
    first_seen: Mapping[str, datetime]
    imaging: SpineImaging
    term: Terminology
    lookback_days: float
    mescc_window_days: float
    diagnosed_at: datetime | None = None  # confirmed MESCC diagnosis time
    treated_at: datetime | None = None  # MESCC treatment start

    def presented(self, ref: str, raw: Mapping[str, Any]) -> datetime:
        return presentation_of(ref, raw, self.tz, self.now, self.first_seen).at

    def region(self, raw: Mapping[str, Any]) -> str | None:
        for site in raw.get("bodySite") or []:
            if isinstance(site, dict):
                concepts = self.term.concepts(site.get("coding") or [])
                for region in REGIONS:
                    if f"site-{region}-spine" in concepts:
                        return region
        return None

    def facts(
        self, ref: str, raw: Mapping[str, Any], course: str, recorded_before_treatment: bool
    ) -> tuple[dict[str, Any], list[str]]:
        presentation = presentation_of(ref, raw, self.tz, self.now, self.first_seen)
        at = presentation.at
        hours_ago = max(0.0, round((self.now - at) / timedelta(hours=1), 2))
        latest = self.imaging.latest()
        in_window = hours_ago <= self.lookback_days * 24
        after_latest = latest is not None and at > latest.at
        answered = self.imaging.whole_spine_after(at) is not None
        any_mri_since = any(m.at >= at for m in self.imaging.done)
        region = self.region(raw)
        regional = self.imaging.regional_after(at, region)
        facts: dict[str, Any] = {
            "symptom.presented_hours_ago": hours_ago,
            "symptom.presented_days": round(hours_ago / 24.0, 2),
            "symptom.presented_whole_days": int(hours_ago // 24),
            "symptom.presented": date_text(at, self.tz),
            "symptom.presented_at": at.isoformat(),
            "symptom.presentation_recorded": presentation.recorded,
            "symptom.development_days": development_days(raw, at, self.tz),
            "symptom.in_lookback": in_window or after_latest,
            "symptom.stale": not (in_window or after_latest) and not any_mri_since,
            "symptom.mri_answered": answered,
            "symptom.regional_mri_done": regional is not None,
            "symptom.mescc_relation": self.mescc_relation(at, course, recorded_before_treatment),
        }
        if region is not None:
            facts["symptom.region"] = region
        if regional is not None:
            facts["symptom.regional_mri"] = f"{regional.region} MRI done on {date_text(regional.at, self.tz)}"
        missing = []
        if not presentation.recorded:
            missing.append("presentation time not recorded: counted from when this service first saw the finding")
        return facts, missing

    def mescc_relation(self, presented: datetime, course: str, recorded_before_treatment: bool) -> str:
        if self.diagnosed_at is None:
            return "none"
        window_end = self.diagnosed_at + timedelta(days=self.mescc_window_days)
        before_treatment = self.treated_at is None or presented < self.treated_at
        if presented < window_end and before_treatment:
            return "covered"
        treated_before = self.treated_at is not None and presented >= self.treated_at
        if treated_before and recorded_before_treatment and course != "progressive":
            return "known-before-treatment"
        return "new"
