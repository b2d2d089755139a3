"""Review RS (issue 25, helper HS's memos): a dense, adversarial history of spinal and long-bone lesions (epidural
extension and compression stated then not, a neurological deficit stated then resolved, fractures, fixations,
decompressions and cord-compression radiotherapy named by lesion, site, bone or level, corrected or entered in
error, a lesion's pain given then only the overall pain) decides, event by event with the clock's ticks, exactly
what a cold process does: warm, and with the state parsed again from its stored JSON (CLASS-SRE, SCORE-MIRELS,
SCORE-SINS, CLASS-OLIGO)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.scoring.domain import ScoringState, apply_event, forget_memos
from tests.unit.test_issue25_scoring_content_memo import drive_parsed_again, tick
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_issue25_scoring_history import START, _Gen

LESIONS: tuple[dict[str, Any], ...] = (
    {"lesion_id": "s8", "skeletal_site": "spine", "vertebral_level": "T8"},
    {"lesion_id": "s9", "skeletal_site": "spine", "vertebral_level": "T9"},
    {"lesion_id": "sa", "skeletal_site": "sacrum", "vertebral_level": "S1"},
    {"lesion_id": "fe", "skeletal_site": "femur_neck"},
)
NAMES = ("s8", "s9", "sa", "fe", "T8", "T9", "T8-T9", "S1", "spine", "sacrum", "femur", "femur_neck", "tibia")
PROCEDURES = ("fracture_fixation", "prophylactic_fixation", "decompression")
INTENTS = ("cord_compression", "pain", "preventive")


def _finding(g: _Gen, at: Any, lesion: dict[str, Any]) -> ImagingFinding:
    rng = g.rng
    fields: dict[str, Any] = {
        **g.env(at, timedelta(hours=rng.randint(1, 30))),
        **lesion,
        "modality": rng.choice(("ct", "mri", "mri", "bone_scan")),
        "lesion_type": rng.choice(("lytic", "mixed", "blastic")),
        "size_cm": rng.choice((1.0, 2.5)),
        "status": rng.choice((None, None, None, "confirmed", "resolved")),
        "pathological_fracture": rng.choice((None, True, False)),
    }
    if lesion["skeletal_site"] in ("spine", "sacrum"):
        fields |= {
            "alignment": rng.choice(("normal", None)),
            "vertebral_collapse": rng.choice(("none", "gt_50", None)),
            "posterolateral_involvement": rng.choice(("none", "bilateral", None)),
            "epidural_extension": rng.choice((None, True, False)),
            "cord_compression": rng.choice((None, True, False, False)),
        }
    else:
        fields["cortical_involvement_fraction"] = rng.choice((0.2, 0.5, 0.8, None))
    return ImagingFinding.model_validate(fields)


def _assessment(g: _Gen, at: Any) -> ClinicalAssessment:
    rng = g.rng
    fields: dict[str, Any] = {**g.env(at, timedelta(hours=rng.randint(1, 30)))}
    if rng.random() < 0.5:
        fields["neurological_deficit"] = rng.random() < 0.6
    if rng.random() < 0.4:
        fields["pain"] = {"intensity": rng.choice(("mild", "functional"))}
    if rng.random() < 0.4:
        fields["lesion_pain"] = [
            {
                "lesion_id": rng.choice(LESIONS)["lesion_id"],
                "intensity": rng.choice(("none", "mild", "functional")),
                "character": rng.choice(("mechanical", "none")),
            }
        ]
    if rng.random() < 0.2:
        fields["life_expectancy_months"] = rng.choice((2, 6, 24))
    return ClinicalAssessment.model_validate(fields)


def _treatment(g: _Gen, at: Any) -> TreatmentEvent:
    rng = g.rng
    named: dict[str, Any] = {"site": rng.choice(NAMES)}
    if rng.random() < 0.3:
        named["lesion_id"] = rng.choice(LESIONS)["lesion_id"]
    if rng.random() < 0.5:
        t: dict[str, Any] = {"kind": "surgery", "procedure": rng.choice(PROCEDURES), **named}
    else:
        t = {"kind": "radiotherapy", "intent": rng.choice(INTENTS), "total_dose_gy": 8, "fractions": 1, **named}
    on = (at + timedelta(days=rng.choice((-20, -1, 0, 2)))).date()
    return TreatmentEvent.model_validate(
        {**g.env(at, timedelta(hours=rng.randint(1, 30))), "treatment": {"on": on, **t}}
    )


def adversarial(seed: int, n: int = 70) -> list[Message]:
    g = _Gen(random.Random(seed), late_days=10)
    at, made = START, []
    for _ in range(n):
        at += timedelta(days=g.rng.choice((0.5, 3, 10, 40)))
        r = g.rng.random()
        if r < 0.4:
            e: Message = _finding(g, at, g.rng.choice(LESIONS))
        elif r < 0.7:
            e = _assessment(g, at)
        else:
            e = _treatment(g, at)
        g.emit(e)
        made.append(e)
        if g.rng.random() < 0.15:  # corrected or entered in error later
            status = g.rng.choice(("amended", "entered-in-error"))
            later = e.recorded_at + timedelta(days=g.rng.uniform(0.5, 5))
            if isinstance(e, TreatmentEvent):
                again: Message = _treatment(g, at)
            elif isinstance(e, ImagingFinding):
                again = _finding(g, at, {k: getattr(e, k) for k in ("lesion_id", "skeletal_site", "vertebral_level")})
            else:
                again = _assessment(g, at)
            g.emit(again.model_copy(update={"record_status": status, "corrects": e.event_id, "recorded_at": later}))
    return [e for _, _, e in sorted(g.out, key=lambda x: (x[0], x[1]))]


@pytest.mark.parametrize("seed", range(6))
def test_an_adversarial_history_decides_what_a_cold_process_does(seed: int) -> None:
    events = adversarial(seed)
    cold = drive(events, cold=True)
    forget_memos()
    assert drive(events, cold=False) == cold
    assert drive_parsed_again(events, 2) == cold


def test_memos_evicting_at_every_step_between_two_patients_of_equal_content_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two patients with the same history (equal content, other IDs), their events interleaved, every memo holding one
    or two entries: each patient's events decide what a cold process does (no hit across patients, none evicted
    half-way)."""
    from services.scoring import calcium, clock, common, lesions, patient, sre

    for memo in (sre.SRE_MEMO, lesions.MIRELS_MEMO, lesions.SINS_MEMO, patient.OLIGO_MEMO, calcium.MEMO):
        monkeypatch.setattr(memo, "size", 2)
        monkeypatch.setattr(memo, "bands", 1)
    for module, name in ((sre, "INDEXES_SIZE"), (sre, "TREATMENT_SRE_SIZE"), (common, "EFFECTIVE_SIZE")):
        monkeypatch.setattr(module, name, 1)
    monkeypatch.setattr(clock, "MEMO_SIZE", 1)
    a = adversarial(7)
    b = [e.model_copy(update={"patient_id": "p-rs-other"}) for e in a]
    assert_interleaved_decide_as_cold(a, b)


def assert_interleaved_decide_as_cold(a: list[Message], b: list[Message]) -> None:
    """Two patients' events (with the clock ticks they fall due) interleaved one by one in a warm process: each step
    (outputs, stored state, next deadline) what each patient's events give in a cold process (`drive`)."""
    cold = {"a": drive(a, cold=True), "b": drive(b, cold=True)}
    forget_memos()
    states = {"a": ScoringState(), "b": ScoringState()}
    queues = {"a": list(a), "b": list(b)}
    steps: dict[str, list[tuple[list[str], str, datetime | None]]] = {"a": [], "b": []}
    while queues["a"] or queues["b"]:
        for who in ("a", "b"):
            if queues[who]:
                s = states[who]
                e = tick(s, queues[who][0]) or queues[who].pop(0)
                s, out = apply_event(s, e, now=e.recorded_at)
                steps[who].append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
                states[who] = s
    assert steps == cold
