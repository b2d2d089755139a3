"""Plans per second that one systemic-planner process sustains (each input event decides the patient's plan again
and diffs it; issue 25: the readings and item families an event cannot change are reused, memo.py), next to a
pass-through handler on the same runtime and events, in the same run.

    .venv/bin/python bench/systemic_planner.py [--events 4000] [--rounds 5]

A stream over n/30 patients of bone metastases, assessments, creatinine clearances, vitamin D, oligometastatic
scores, SREs and drug events, with stable per-patient facts (see `events`). Every event decides the patient's
plan again and diffs it; a new version and notifications go out only when something changed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from bench.harness import cli, versus_passthrough
from bench.scoring import passthrough_all
from contracts.rules import RULESET_VERSION, cite
from contracts.topics import (
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LABS_NORMALISED,
    SCORES,
    SKELETAL_EVENTS,
    TREATMENT_EVENTS,
    Topic,
)
from services.systemic_planner.app import build
from services.systemic_planner.settings import SystemicSettings

NOW = datetime.now(UTC)
TOPICS = (IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, LABS_NORMALISED, SCORES, SKELETAL_EVENTS, TREATMENT_EVENTS)


def env(i: int, n: int) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": f"bench-{i % max(1, n // 30)}",
        "source": "bench",
        "occurred_at": (NOW - timedelta(hours=n - i)).isoformat(),
        "recorded_at": NOW.isoformat(),
    }


def events(n: int) -> dict[Topic, list[dict[str, object] | bytes]]:
    """A realistic stream: each patient keeps stable facts (life expectancy, oligometastatic status, drugs);
    renal function declines slowly (-1 mL/min per event), so some patients cross a Tableau 2 band or 30 mL/min."""
    patients = max(1, n // 30)  # about 30 events per patient: onboarding, then follow-up
    out: dict[Topic, list[dict[str, object] | bytes]] = {t: [] for t in TOPICS}
    for i in range(n):
        p, round_ = i % patients, i // patients  # round_ = this patient's event number, 0..9
        kind = round_ % 7
        if kind == 0:
            out[IMAGING_FINDINGS].append(
                {**env(i, n), "lesion_id": f"l{round_}", "skeletal_site": "pelvis", "modality": "ct", "size_cm": 2}
            )
        elif kind == 1:
            out[CLINICAL_ASSESSMENTS].append(
                {
                    **env(i, n),
                    "life_expectancy_months": 2 if p % 10 == 0 else 12,
                    "oncological_response": "good" if p % 4 == 0 else "stable",
                }
            )
        elif kind in (2, 3):
            analyte, value, unit = (
                ("creatinine_clearance", 75 - round_ - p % 40, "mL/min")
                if kind == 2
                else ("vitamin_d_25oh", 8 + p % 40, "ng/mL")
            )
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
        elif kind == 4:
            out[SCORES].append(
                {
                    **env(i, n),
                    "source": "scoring",
                    "score": "oligometastatic",
                    "subject": "patient",
                    "total": None,
                    "complete": True,
                    "band": "oligometastatic" if p % 3 == 0 else "multi_metastatic",
                    "components": [],
                    "rule_ids": ["CLASS-OLIGO"],
                    "ruleset_version": RULESET_VERSION,
                    "text_fr": "x",
                    "citation": cite("CLASS-OLIGO").model_dump(),
                }
            )
        elif kind == 5:
            out[SKELETAL_EVENTS].append(
                {
                    **env(i, n),
                    "source": "scoring",
                    "kind": "pathological_fracture",
                    "rule_id": "CLASS-SRE",
                    "evidence": [],
                }
            )
        else:
            out[TREATMENT_EVENTS].append(
                {
                    **env(i, n),
                    "treatment": {
                        "kind": "systemic_drug",
                        "drug": ["carboplatin", "pemetrexed", "zoledronic_acid"][p % 3],
                        "action": "started",
                        "on": "2026-10-01",
                    },
                }
            )
    return out


async def main(n: int, rounds: int) -> None:
    await versus_passthrough(
        "systemic_planner",
        "plans/s",
        rounds,
        events(n),
        lambda s: SystemicSettings.model_validate(s.model_dump()),
        lambda s: build(s)[0],  # type: ignore[arg-type]
        passthrough_all,  # type: ignore[arg-type]
        extra_topics=(SCORES, SKELETAL_EVENTS),  # the planner's topics that scoring does not read
    )


if __name__ == "__main__":
    cli(__doc__, main)
