"""The local-treatment planner's aggregate (pure): issue 9 items 9.1 and 9.11, SURG-LE under 6 weeks, finding
corrections, and what is published (recommendations, withdrawals, plan versions)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import Recommendation
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentPlan
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState, lesions

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def env(at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": "pt-local",
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "source": "test",
        **fields,
    }


def finding(at: datetime, lesion: str, level: str, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(
        env(at, lesion_id=lesion, skeletal_site="spine", vertebral_level=level, modality="mri", **fields)
    )


def surgery(at: datetime, on: date, **fields: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate(
        env(at, treatment={"kind": "surgery", "site": "spine", "procedure": "decompression", "on": on, **fields})
    )


def assessment(at: datetime, **fields: Any) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(env(at, **fields))


def run(events: list[Message]) -> tuple[LocalState, list[Message]]:
    s, out = LocalState(), []
    for e in events:
        s, o = apply_event(s, e)
        out += o
    return s, out


def active(out: list[Message], rule_id: str) -> list[Recommendation]:
    """Recommendations of `rule_id` still active at the end (not withdrawn later)."""
    recs = [o for o in out if isinstance(o, Recommendation) and o.rule_id == rule_id]
    gone = {sid for o in out if isinstance(o, Recommendation) and o.status == "withdrawn" for sid in o.supersedes}
    return [r for r in recs if r.status == "active" and r.event_id not in gone]


def test_rt_mscc_9_1_t5_decompression_does_not_downgrade_a_new_l1_compression() -> None:
    """Issue 9.1: a decompression at T5 treated the T5 compression only; an L1 compression months later is an
    emergency (critical), not an adjuvant RT with past dates."""
    events: list[Message] = [
        assessment(T0, life_expectancy_months=12),
        finding(T0, "t5", "T5", cord_compression=True),
        surgery(T0 + timedelta(days=1), date(2026, 3, 2), vertebral_level="T5", lesion_id="t5"),
        finding(T0 + timedelta(days=150), "l1", "L1", cord_compression=True),
    ]
    _, out = run(events)
    l1 = [r for r in active(out, "RT-MSCC") if "L1" in r.title]
    assert [r.severity for r in l1] == ["critical"]
    assert "urgence" in l1[0].text_fr
    t5 = [r for r in active(out, "RT-MSCC") if "T5" in r.title]
    assert [r.severity for r in t5] == ["warning"] and "adjuvante" in t5[0].text_fr


def test_rt_mscc_9_1_a_decompression_before_the_compression_did_not_treat_it() -> None:
    events: list[Message] = [
        surgery(T0, date(2026, 3, 1), vertebral_level="L1"),
        finding(T0 + timedelta(days=90), "l1", "L1", cord_compression=True),
    ]
    _, out = run(events)
    assert [r.severity for r in active(out, "RT-MSCC")] == ["critical"]


def test_rt_mscc_9_1_an_unlinked_decompression_is_named_missing_not_assumed() -> None:
    events: list[Message] = [
        finding(T0, "l1", "L1", cord_compression=True),
        surgery(T0 + timedelta(days=1), date(2026, 3, 2)),  # no lesion, no level
    ]
    _, out = run(events)
    [rec] = active(out, "RT-MSCC")
    assert rec.severity == "critical" and "lesion or level of the decompression surgery" in rec.missing


def test_rt_mscc_9_11_resolved_compression_withdraws_its_alert() -> None:
    events: list[Message] = [
        finding(T0, "l1", "L1", cord_compression=True),
        finding(T0 + timedelta(days=20), "l1", "L1", cord_compression=False),
    ]
    _, out = run(events)
    assert active(out, "RT-MSCC") == []
    assert any(isinstance(o, Recommendation) and o.status == "withdrawn" and o.rule_id == "RT-MSCC" for o in out)


def test_rt_mscc_9_11_neurological_deficit_and_epiduritis_are_used() -> None:
    # epiduritis + deficit without a reported compression: critical, rule out a compression now
    _, out = run([finding(T0, "t9", "T9", epidural_extension=True), assessment(T0, neurological_deficit=True)])
    [rec] = active(out, "RT-MSCC")
    assert rec.severity == "critical" and "déficit" in rec.title.lower()
    assert {i.name for i in rec.inputs} >= {"epidural_extension", "neurological_deficit"}
    # a compression with epiduritis and a deficit: fractionated 30 Gy / 10 favoured even with a poor prognosis
    _, out = run(
        [
            assessment(T0, life_expectancy_months=2, neurological_deficit=True),
            finding(T0, "t9", "T9", cord_compression=True, epidural_extension=True),
        ]
    )
    [rec] = active(out, "RT-MSCC")
    assert rec.severity == "critical" and "Épidurite" in rec.text_fr and "Déficit neurologique" in rec.text_fr
    assert rec.text_fr.index("30 Gy en 10") < rec.text_fr.index("8 Gy en 1")


def test_surg_le_under_6_weeks_no_surgery_and_no_urgent_local_procedure() -> None:
    """A patient under 6 weeks of expected survival: no decompression proposed for a compression, no surgery for a
    fracture, and the texts say so (SURG-LE)."""
    events: list[Message] = [
        assessment(T0, life_expectancy_months=1.0, surgical_opinion={"operable": True, "on": "2026-03-01"}),
        finding(T0, "l2", "L2", cord_compression=True, pathological_fracture=True),
    ]
    _, out = run(events)
    [mscc] = active(out, "RT-MSCC")
    assert "Chirurgie de décompression" not in mscc.text_fr and "pas de chirurgie" in mscc.text_fr
    [surg] = active(out, "SURG-LE")
    assert "pas de chirurgie" in surg.title and "aucun bénéfice" in surg.text_fr
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    items = {i.key: i for sec in plan.sections for i in sec.items}
    assert items["l2:surgery"].status == "not_indicated"


def test_corrected_finding_withdraws_what_it_caused() -> None:
    first = finding(T0, "l1", "L1", cord_compression=True)
    error = ImagingFinding.model_validate(
        {
            **first.model_dump(mode="json"),
            "event_id": str(uuid.uuid4()),
            "record_status": "entered-in-error",
            "corrects": str(first.event_id),
        }
    )
    s, out = run([first, error])
    assert active(out, "RT-MSCC") == []
    assert lesions(s) == {}  # the records are kept (so a late original is never resurrected); none counts
    plans = [o for o in out if isinstance(o, LocalTreatmentPlan)]
    assert [p.version for p in plans] == [1, 2] and plans[-1].sections == []


def test_replay_is_idempotent() -> None:
    e = finding(T0, "l1", "L1", cord_compression=True)
    s, out1 = run([e])
    s2, out2 = apply_event(s, e)
    assert out2 == [] and s2 == s and len(out1) == 2


def test_rt_mscc_9_11_lesion_marked_resolved_withdraws_its_compression() -> None:
    events: list[Message] = [
        finding(T0, "l1", "L1", cord_compression=True),
        finding(T0 + timedelta(days=60), "l1", "L1", status="resolved"),
    ]
    _, out = run(events)
    assert active(out, "RT-MSCC") == []


def test_rt_pain_reads_the_lesion_own_pain_before_the_patient_pain() -> None:
    from contracts.local import LocalTreatmentRequest

    req = LocalTreatmentRequest.model_validate(env(T0, request_id="r1", lesion_id="t4", modality="palliative_rt"))
    lesion_pain = [{"lesion_id": "t4", "resistant_to_analgesics": True}]
    _, out = run(
        [
            finding(T0, "t4", "T4"),
            assessment(T0, pain={"resistant_to_analgesics": False}, lesion_pain=lesion_pain),
            req,
        ]
    )
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    item = next(i for sec in plan.sections for i in sec.items if i.key == "t4:rt-pain")
    assert item.status == "recommended" and "premier" in item.text_fr


def test_rt_mscc_an_old_or_future_compression_is_not_a_current_emergency() -> None:
    """An emergency is decided from current data only: a compression seen 43 days before it reached us (no newer
    imaging), or one dated in the future, asks to reassess (warning) instead of the critical alert."""
    for occurred, recorded in (
        (T0, T0 + timedelta(days=43)),
        (T0 + timedelta(days=1), T0),
    ):
        old = ImagingFinding.model_validate(
            {
                **env(occurred, lesion_id="l1", skeletal_site="spine", vertebral_level="L1", modality="mri"),
                "cord_compression": True,
                "recorded_at": recorded.isoformat(),
            }
        )
        _, out = run([old])
        [rec] = active(out, "RT-MSCC")
        assert rec.severity == "warning" and "non actuelle" in rec.title
        assert rec.missing == ["current imaging of the cord compression"]
    fresh = ImagingFinding.model_validate(
        {
            **env(T0, lesion_id="l1", skeletal_site="spine", vertebral_level="L1", modality="mri"),
            "cord_compression": True,
            "recorded_at": (T0 + timedelta(days=42)).isoformat(),
        }
    )
    _, out = run([fresh])
    assert [r.severity for r in active(out, "RT-MSCC")] == ["critical"]


def test_surg_le_an_estimate_older_than_3_months_is_asked_again() -> None:
    events: list[Message] = [
        assessment(T0, life_expectancy_months=1.0),
        finding(T0 + timedelta(days=92), "l2", "L2", pathological_fracture=True),
    ]
    _, out = run(events)
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    surgery = next(i for sec in plan.sections for i in sec.items if i.key == "l2:surgery")
    assert surgery.status == "cannot_decide" and "estimate again" in surgery.missing[0]
    _, out = run(
        [
            assessment(T0, life_expectancy_months=1.0),
            finding(T0 + timedelta(days=91), "l2", "L2", pathological_fracture=True),
        ]
    )
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    surgery = next(i for sec in plan.sections for i in sec.items if i.key == "l2:surgery")
    assert surgery.status == "not_indicated"
