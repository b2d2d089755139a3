"""Issue 25 (helper h38-sc): IMG-FLARE is memoised per lesion (patient.FLARE_MEMO) on the lesion and the drug steps
(Context.drug_steps), and the drug steps are made once per patient while its systemic-drug records that count are the
same objects. Each test compares with what a cold process computes afresh (every memo forgotten before each event),
or with the plain definition the memo replaces."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from contracts.base import Message
from contracts.hospital import SystemicDrug, TreatmentEvent
from services.scoring.common import Context
from services.scoring.domain import ScoringState, apply_event, forget_memos
from shared.clinical.treatments import in_effect_order
from tests.unit.test_issue25_scoring_content_memo import by_site, drive_parsed_again, tick
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_issue25_scoring_history import PATIENT, START, _finding, _Gen, _lesion, _treatment, history


def _flare_history(seed: int) -> list[Message]:
    """Dense imaging (bone scans and PET with new foci) over drug lines with pauses and entries in error."""
    return history(seed, 1.2, lab_days=14, imaging_days=12, assessment_days=30, crises_per_year=2)


def _flares(steps: list[tuple[list[str], str, datetime | None]]) -> int:
    return sum('"rule_id":"IMG-FLARE"' in out for outs, _, _ in steps for out in outs)


def test_a_warm_process_decides_flares_as_a_cold_one_does() -> None:
    for seed in (1,):
        events = _flare_history(seed)
        cold = drive(events, cold=True)
        assert _flares(cold) > 0  # IMG-FLARE recommendations published: the memo is exercised
        forget_memos()
        assert drive(events, cold=False) == cold
        assert drive(events, cold=False) == cold  # again, every memo holding the first run's objects


def test_a_drug_record_changed_after_the_focus_decides_the_flare_again() -> None:
    """The lesion stays the same object while the drugs change under its focus: the start entered in error (no
    anticancer treatment any more: the flare recommendation withdrawn), then a late start recorded after the focus
    (a flare again, under the other drug). Warm (the lesion's flare memoised) as cold, and each step changes it."""
    g = _Gen(random.Random(7), 0)
    at = START + timedelta(days=100)
    day = timedelta(days=1)
    start = _treatment(g, at - 60 * day, kind="systemic_drug", drug="osimertinib", action="started")
    focus = _finding(g, at, _lesion(g, 1), "bone_scan").model_copy(update={"new_focus": True, "status": None})
    error = start.model_copy(
        update={"event_id": g.uid(), "record_status": "entered-in-error", "corrects": start.event_id}
    ).model_copy(update={"recorded_at": at + day})
    late = _treatment(g, at - 30 * day, kind="systemic_drug", drug="carboplatin", action="started")
    late = late.model_copy(update={"recorded_at": at + 2 * day})
    events: list[Message] = [start, focus, error, late]
    cold = drive(events, cold=True)
    forget_memos()
    warm = drive(events, cold=False)
    assert warm == cold
    flares = [[out for out in outs if "IMG-FLARE" in out] for outs, _, _ in cold]
    assert [len(x) for x in flares] == [0, 1, 1, 1]  # raised, withdrawn, raised again
    assert "osimertinib" in flares[1][0] and "carboplatin" in flares[3][0]


def test_a_state_parsed_again_decides_flares_as_a_cold_process_does() -> None:
    events = by_site(_flare_history(2), 2)
    cold = drive(events, cold=True)
    forget_memos()
    assert drive_parsed_again(events, 2) == cold


def test_drug_steps_are_the_plain_order_and_kept_while_the_drug_records_are_the_same() -> None:
    """After every event: the drug steps equal `in_effect_order` of the treatments that count; across an event that
    changes no systemic-drug record (a lab, a finding, a tick, a radiotherapy), they are the same object; with the
    memo off (decide_now's views B and C), made afresh."""
    forget_memos()
    s, kept, renewed = ScoringState(), 0, 0
    previous: list[tuple[TreatmentEvent, SystemicDrug]] | None = None
    queue = list(_flare_history(3))
    while queue:
        e: Message | None = tick(s, queue[0])
        if e is None:
            e = queue.pop(0)
        s, _ = apply_event(s, e, now=e.recorded_at)
        c = Context(s, PATIENT, e.recorded_at)
        steps = c.drug_steps
        assert steps == in_effect_order(c.treatments)
        assert Context(s, PATIENT, e.recorded_at, memo=False).drug_steps == steps
        drug_event = isinstance(e, TreatmentEvent) and isinstance(e.treatment, SystemicDrug)
        if previous is not None and not drug_event:
            assert steps is previous  # the same records by object: the same list, so FLARE_MEMO hits
            kept += 1
        elif previous is not None and steps is not previous:
            renewed += 1
        previous = steps
    assert kept > 100 and renewed > 3
