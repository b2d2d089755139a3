"""Issue 25 (helper HS): scoring's memos recognise a part by content when it is not the same object (a state parsed
again from its stored JSON), a lesion's SREs are decided again only when the lesion, its own local treatments or the
deficit it reads change, and the score slot is made in one place (`slot_of`). Each test compares with what a cold
process computes afresh, or with the plain definition it replaces."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from contracts.base import Message, derived_id
from contracts.clinical import Score
from contracts.clock import ClockTick
from contracts.hospital import ImagingFinding, TreatmentEvent
from services.scoring.common import Context
from services.scoring.domain import ScoringState, apply_event, current_scores, forget_memos, slot_of, slot_parts
from services.scoring.sre import _MAKES_HISTORICAL, _index, _local_by_lesion, treats
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_issue25_scoring_history import PATIENT, history


def by_site(events: list[Message], seed: int) -> list[Message]:
    """The same events, most radiotherapy courses and surgeries naming their lesion by a site only (the lesion ID, its
    skeletal site, its bone or its vertebral level), as `treats` matches them."""
    rng = random.Random(seed)
    where = {e.lesion_id: e for e in events if isinstance(e, ImagingFinding)}
    out: list[Message] = []
    for e in events:
        if isinstance(e, TreatmentEvent) and e.treatment.kind in ("radiotherapy", "surgery") and rng.random() < 0.7:
            tr = e.treatment
            f = where.get(getattr(tr, "lesion_id", None) or "")
            sites = [getattr(tr, "site", None) or ""]
            if f is not None:
                sites += [f.skeletal_site, f.skeletal_site.split("_")[0], f.vertebral_level or f.lesion_id]
            e = e.model_copy(update={"treatment": tr.model_copy(update={"lesion_id": None, "site": rng.choice(sites)})})
        out.append(e)
    return out


def tick(s: ScoringState, before: Message) -> ClockTick | None:
    """The clock tick the runtime fires before `before`, if the state's deadline comes first."""
    due = s.next_due
    if due is None or due >= before.recorded_at:
        return None
    return ClockTick(
        event_id=derived_id("clock", "scoring", before.patient_id, due.isoformat()),
        patient_id=before.patient_id,
        occurred_at=due,
        recorded_at=due + timedelta(milliseconds=1),
        source="scoring",
        service="scoring",
        due_at=due,
    )


def drive_parsed_again(events: list[Message], every: int) -> list[tuple[list[str], str, datetime | None]]:
    """As `drive` with warm memos, the state parsed again from its stored JSON before every `every`-th event (as a
    process whose parsed-state cache missed): new objects, the same content."""
    s, steps, queue, n = ScoringState(), [], list(events), 0
    while queue:
        e: Message | None = tick(s, queue[0])
        if e is None:
            e = queue.pop(0)
        n += 1
        if n % every == 0:
            s = ScoringState.model_validate_json(s.model_dump_json())
        s, out = apply_event(s, e, now=e.recorded_at)
        steps.append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
    return steps


@pytest.mark.parametrize(("seed", "every"), [(1, 1), (2, 3)])
def test_a_state_parsed_again_decides_what_a_cold_process_does(seed: int, every: int) -> None:
    events = by_site(history(seed, 1, lab_days=4, imaging_days=30, assessment_days=15, crises_per_year=6), seed)
    cold = drive(events, cold=True)
    forget_memos()
    assert drive_parsed_again(events, every) == cold
    assert drive_parsed_again(events, every) == cold  # again, every memo holding the first run's objects


def test_treatments_named_by_site_decide_what_a_cold_process_does() -> None:
    events = by_site(history(3, 1.5, lab_days=7, imaging_days=20, assessment_days=15), 3)
    assert any(
        isinstance(e, TreatmentEvent) and getattr(e.treatment, "lesion_id", "x") is None for e in events
    )  # the site path of `treats` is exercised
    cold = drive(events, cold=True)
    forget_memos()
    assert drive(events, cold=False) == cold


def test_each_lesions_local_treatments_are_those_treats_matches() -> None:
    """What a lesion's SREs are decided on (`_local_by_lesion`, from the lesions' index) is exactly the local treatments
    of a procedure or intent they read for which `treats` holds, in the order the decisions walked them before."""
    checked = 0
    for seed in range(4, 10):
        events = by_site(history(seed, 3, lab_days=30, imaging_days=20, assessment_days=30), seed)
        forget_memos()
        s = ScoringState()
        for e in events:
            s, _ = apply_event(s, e, now=e.recorded_at)
            c = Context(s, PATIENT, e.recorded_at)
            local = _local_by_lesion(c, _index(c))
            for lesion_id, lesion in s.lesions.items():
                expected = tuple(
                    (t, what)
                    for t, what in c.local_treatments
                    if what in _MAKES_HISTORICAL and treats(t.treatment, lesion.latest)
                )
                assert local.get(lesion_id, ()) == expected
                checked += len(expected)
    assert checked > 0


def test_a_scores_slot_is_made_and_split_in_one_place() -> None:
    events = history(5, 1, lab_days=10, imaging_days=20, assessment_days=15)
    s = ScoringState()
    published: list[Score] = []
    for e in events:
        s, out = apply_event(s, e, now=e.recorded_at)
        published += [o for o in out if isinstance(o, Score)]
    scores = current_scores(s, PATIENT, now=events[-1].recorded_at)
    assert {x.score for x in scores} >= {"oligometastatic"} and len({x.score for x in scores}) > 1
    for sc in [*scores, *published]:
        kind, lesion_id = slot_parts(slot_of(sc))
        assert (kind, lesion_id or "patient") == (sc.score, sc.subject)
    assert {slot_of(sc) for sc in scores} == set(s.scores)
