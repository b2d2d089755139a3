"""Decisions per second that one local-treatment (radiotherapy) planner process sustains (each input event rebuilds
and diffs the patient's whole local plan), next to a pass-through handler on the same runtime and events, in the
same run.

    .venv/bin/python bench/radiotherapy_planner.py [--events 4000] [--rounds 5]

A stream over n/30 patients: spinal and long-bone findings (some with cord compression or epiduritis), assessments
(life expectancy, pain, operability), SINS scores, normalised labs (platelets and prothrombin, which the planner
reads, and corrected calcium and creatinine clearance, which it skips), drug administrations
(gemcitabine, carboplatin, clopidogrel, aspirin), RT courses and local-treatment requests (palliative RT, SBRT,
re-irradiation with earlier courses, cementoplasty, surgery). Every event recomputes the patient's whole plan.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from bench.harness import cli, versus_passthrough
from bench.scoring import passthrough_all
from contracts.rules import RULESET_VERSION, cite
from contracts.topics import (
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LABS_NORMALISED,
    LOCAL_TREATMENT_REQUESTS,
    SCORES,
    TREATMENT_EVENTS,
    Topic,
)
from services.radiotherapy_planner.app import build
from services.radiotherapy_planner.settings import RadiotherapySettings

NOW = datetime.now(UTC)
TODAY = NOW.date()
TOPICS = (IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS, LOCAL_TREATMENT_REQUESTS, SCORES, LABS_NORMALISED)
LEVELS = ("T5", "T8", "T11", "L1", "L3")
MODALITIES = ("palliative_rt", "sbrt", "reirradiation", "cementoplasty", "surgery")


def env(i: int, n: int) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": f"bench-{i % max(1, n // 30)}",
        "source": "bench",
        "occurred_at": (NOW - timedelta(hours=n - i)).isoformat(),
        "recorded_at": NOW.isoformat(),
    }


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def events(n: int) -> dict[Topic, list[dict[str, object] | bytes]]:
    """About 30 events per patient; each patient has 2 or 3 lesions and asks for a decision on each."""
    patients = max(1, n // 30)
    out: dict[Topic, list[dict[str, object] | bytes]] = {t: [] for t in TOPICS}
    for i in range(n):
        p, round_ = i % patients, i // patients
        lesion = f"v{round_ % 3}"
        level = LEVELS[(p + round_ % 3) % len(LEVELS)]  # a lesion keeps its level
        kind = round_ % 8
        if kind in (0, 7):
            out[IMAGING_FINDINGS].append(
                {
                    **env(i, n),
                    "lesion_id": lesion,
                    "skeletal_site": "spine",
                    "vertebral_level": level,
                    "lesion_type": "lytic" if p % 2 else "mixed",
                    "modality": "mri",
                    "cord_compression": p % 7 == 0 and kind == 0,
                    "epidural_extension": p % 5 == 0,
                    "vertebral_body_involvement_fraction": 0.3,
                    "canal_narrowing_pct": 10 + p % 30,
                    "tumour_cord_distance_mm": 3 + p % 6,
                }
            )
        elif kind == 1:
            out[CLINICAL_ASSESSMENTS].append(
                {
                    **env(i, n),
                    "life_expectancy_months": 1 if p % 11 == 0 else 14,
                    "pain": {"character": "mechanical", "intensity": "moderate", "resistant_to_analgesics": True},
                    "surgical_opinion": {"operable": p % 2 == 0, "on": _day(3)},
                    "frail": p % 4 == 0,
                }
            )
        elif kind == 2:
            total = 5 + p % 14
            out[SCORES].append(
                {
                    **env(i, n),
                    "source": "scoring",
                    "score": "sins",
                    "subject": lesion,
                    "total": total,
                    "complete": True,
                    "band": "stable" if total <= 6 else "potentially_unstable" if total <= 12 else "unstable",
                    "components": [],
                    "rule_ids": ["SCORE-SINS"],
                    "ruleset_version": RULESET_VERSION,
                    "text_fr": "x",
                    "citation": cite("SCORE-SINS").model_dump(),
                }
            )
        elif kind == 3:
            # the normalised-lab topic carries every analyte; the planner reads platelets and prothrombin only
            analyte, value, unit = (
                ("platelets", 30 + p % 80, "G/L"),
                ("prothrombin_pct", 70, "%"),
                ("corrected_calcium", 2.4, "mmol/L"),
                ("creatinine_clearance", 70, "mL/min"),
            )[round_ % 4]
            out[LABS_NORMALISED].append(
                {
                    **env(i, n),
                    "source": "lab-normalisation",
                    "analyte": analyte,
                    "result_id": f"{analyte}-{i}",
                    "value": value,
                    "unit": unit,
                }
            )
        elif kind in (4, 5):
            drug = ("gemcitabine", "carboplatin", "clopidogrel", "aspirin")[(p + round_) % 4]
            treatment: dict[str, object] = (
                {
                    "kind": "drug_administration",
                    "drug": drug,
                    "on": _day(10),
                    "ongoing": drug in ("clopidogrel", "aspirin"),
                }
                if kind == 4
                else {
                    "kind": "radiotherapy",
                    "site": "spine",
                    "vertebral_level": level,
                    "total_dose_gy": 30,
                    "fractions": 10,
                    "on": _day(200),
                    "cord_dmax_gy": 30,
                }
            )
            out[TREATMENT_EVENTS].append({**env(i, n), "treatment": treatment})
        else:
            modality = MODALITIES[(p + round_) % len(MODALITIES)]
            first = date.fromisoformat(_day(150 + 30 * (p % 4)))
            out[LOCAL_TREATMENT_REQUESTS].append(
                {
                    **env(i, n),
                    "request_id": f"r-{lesion}-{modality}",
                    "lesion_id": lesion,
                    "modality": modality,
                    "intent": "ablative_oligometastatic" if modality == "sbrt" else "pain",
                    "total_dose_gy": 27,
                    "fractions": 3,
                    "planned_cord_dmax_gy": 9 + p % 12,
                    "planned_on": _day(-7),
                    "previous_courses": [{"on": first.isoformat(), "fractions": 10, "cord_dmax_gy": 30}]
                    if modality == "reirradiation"
                    else [],
                }
            )
    return out


async def main(n: int, rounds: int) -> None:
    await versus_passthrough(
        "radiotherapy_planner",
        "decisions/s",
        rounds,
        events(n),
        lambda s: RadiotherapySettings.model_validate(s.model_dump()),
        lambda s: build(s)[0],  # type: ignore[arg-type]
        passthrough_all,  # type: ignore[arg-type]
        extra_topics=(SCORES, LOCAL_TREATMENT_REQUESTS),  # the planner's topics that scoring does not read
    )


if __name__ == "__main__":
    cli(__doc__, main)
