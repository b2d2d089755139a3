"""Review RK (HAZ-18-17, e1567e3): scoring's clock (services/scoring/clock.py) names every moment a decision about a
cord compression changes with no new event, the compression seen on imaging or inferred from an epidural extension
with a neurological deficit (CLASS-SRE, RT-MSCC L1397-1402). Property: whenever what scoring decides at a later time
differs from what it decides now, `next_due` from now falls on or before that later time (no window passes unseen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring.clock import next_due
from services.scoring.domain import ScoringState, apply_event, decide, forget_memos
from tests.unit.histories import assert_every_change_is_due, envelope

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PATIENT = "pt-rk-clock"


def _env(at: datetime, n: int) -> dict[str, Any]:
    return envelope(at, n, PATIENT, (7919, 11))


@st.composite
def _histories(draw: st.DrawFn) -> list[Message]:
    out: list[Message] = []
    at = T0
    for n in range(draw(st.integers(1, 8))):
        at += timedelta(days=draw(st.integers(0, 50)), hours=draw(st.integers(0, 23)))
        if draw(st.booleans()):
            signs = {
                "cord_compression": draw(st.sampled_from((True, False, None))),
                "epidural_extension": draw(st.sampled_from((True, False, None))),
            }
            doc = _env(at, n) | {"lesion_id": "t8", "skeletal_site": "spine", "vertebral_level": "T8"}
            out.append(ImagingFinding.model_validate(doc | {"modality": "mri", "status": "confirmed", **signs}))
        else:
            deficit = draw(st.sampled_from((True, True, False)))
            out.append(ClinicalAssessment.model_validate(_env(at, n) | {"neurological_deficit": deficit}))
    return out


def _decided(s: ScoringState, at: datetime) -> object:
    d = decide(s, PATIENT, now=at, memo=False)
    recs = {k: (x.build().severity, x.build().title, tuple(x.build().missing)) for k, x in d.recommendations.items()}
    sres = {k: (x.kind, x.current, x.status) for k, x in d.sres.items()}
    return recs, sres


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories())
def test_review_rk_no_compression_window_passes_without_a_deadline(events: list[Message]) -> None:
    forget_memos()
    s = ScoringState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
    start = max(e.recorded_at for e in events)
    grid = [start + timedelta(hours=12 * k) for k in range(0, 2 * 120)]
    assert_every_change_is_due(lambda t: _decided(s, t), lambda t: next_due(s, t), grid)
