"""Events per second that one scoring process sustains (decode, Redis state update, decisions, outputs),
next to a pass-through handler on the same runtime and the same events, measured in the same run.

    .venv/bin/python bench/scoring.py [--events 4000] [--rounds 5]

The events are a mix over n/10 patients, each patient receiving every kind in turn: imaging findings (long
bones and spine), clinical assessments, treatment events and normalised labs (corrected calcium).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.harness import Run, alternate, bench_settings, cli, consume_rate, preload, report
from contracts.base import Message, derived_id
from contracts.clinical import Recommendation
from contracts.rules import RULESET_VERSION, cite
from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, LABS_NORMALISED, TREATMENT_EVENTS, Topic
from devstack import infra
from services.scoring.app import build
from services.scoring.settings import ScoringSettings
from shared.runtime.service import Service
from shared.runtime.subscription import Context

NOW = datetime.now(UTC)
TOPICS = (IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS, LABS_NORMALISED)


def env(i: int, n: int) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": f"bench-{i % max(1, n // 10)}",
        "source": "bench",
        "occurred_at": (NOW - timedelta(hours=n - i)).isoformat(),
        "recorded_at": NOW.isoformat(),
    }


def events(n: int) -> dict[Topic, list[dict[str, object] | bytes]]:
    out: dict[Topic, list[dict[str, object] | bytes]] = {t: [] for t in TOPICS}
    patients = max(1, n // 10)
    for i in range(n):
        kind = (i // patients) % 6  # each patient gets every kind of event, in turn
        if kind in (0, 1):
            site = (
                {
                    "lesion_id": f"fem-{i % 3}",
                    "skeletal_site": "femur_trochanteric",
                    "lesion_type": "lytic",
                    "cortical_involvement_fraction": (i % 10) / 10,
                }
                if kind == 0
                else {
                    "lesion_id": f"v-{i % 4}",
                    "skeletal_site": "spine",
                    "vertebral_level": f"L{1 + i % 5}",
                    "lesion_type": "mixed",
                    "alignment": "normal",
                    "vertebral_collapse": "lt_50",
                    "posterolateral_involvement": "unilateral",
                }
            )
            out[IMAGING_FINDINGS].append({**env(i, n), "modality": "ct", "size_cm": 1 + i % 6, **site})
        elif kind == 2:
            out[CLINICAL_ASSESSMENTS].append(
                {
                    **env(i, n),
                    "ecog": i % 3,
                    "life_expectancy_months": 2 + i % 20,
                    "pain": {"intensity": "moderate", "character": "mechanical"},
                }
            )
        elif kind == 3:
            out[TREATMENT_EVENTS].append(
                {
                    **env(i, n),
                    "treatment": {
                        "kind": "systemic_drug",
                        "drug": "carboplatin",
                        "action": "started",
                        "on": "2026-10-01",
                    },
                }
            )
        else:
            out[LABS_NORMALISED].append(
                {
                    **env(i, n),
                    "source": "lab-normalisation",
                    "analyte": "corrected_calcium",
                    "result_id": f"corrected:{i}",
                    "value": 2.3 + (i % 15) / 10,
                    "unit": "mmol/L",
                    "rule_ids": ["LAB-CA-CORR"],
                }
            )
    return out


def passthrough_all(settings: ScoringSettings) -> Service:
    """The same runtime and the same topics, one output per event, no state."""
    service = Service(settings)

    async def handler(event: Message, ctx: Context) -> list[Message]:
        return [
            Recommendation(
                event_id=derived_id("echo", event.event_id),
                patient_id=event.patient_id,
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                source="bench",
                rule_id="CLASS-SRE",
                ruleset_version=RULESET_VERSION,
                severity="info",
                title="echo",
                text_fr="echo",
                citation=cite("CLASS-SRE"),
                inputs=[],
                produced_by="bench",
            )
        ]

    for topic in TOPICS:
        service.subscriber(topic)(handler)
    return service


async def measure(
    docs: dict[Topic, list[dict[str, object] | bytes]], name: str, make: Callable[[ScoringSettings], Service]
) -> Run:
    with infra.kafka(prefer_docker=False) as kafka, infra.redis(prefer_docker=False) as redis:
        settings = ScoringSettings.model_validate(bench_settings(kafka, redis.url, "scoring").model_dump())
        for topic, items in docs.items():
            await preload(settings, topic, items)
        total = sum(len(v) for v in docs.values())
        return await consume_rate(make(settings), TOPICS[0], total, name)


async def main(n: int, rounds: int) -> None:
    docs = events(n)
    baseline, scoring = await alternate(
        rounds,
        lambda: measure(docs, "pass-through", passthrough_all),
        lambda: measure(docs, "scoring", lambda s: build(s)[0]),
    )
    report("scoring", "events/s", rounds, baseline, scoring)


if __name__ == "__main__":
    cli(__doc__, main)
