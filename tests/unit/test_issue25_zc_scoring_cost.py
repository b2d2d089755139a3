"""Issue 25 (helper ZC): scoring's per-event cost without a decision, a text or a stored byte changed. What each
shortcut relies on is checked on generated histories (tests/unit/test_issue25_scoring_history.py), event by event:
a small state's stored JSON assembled from its parts' JSON is pydantic's, byte for byte; a lesion never showing a
fracture, a cord compression or an epidural extension decides no SRE (decide_sres skips it); with no surgery or
radiotherapy that counts no treatment SRE is decided (decide_sres skips the lesions' index); a Mirels or SINS
built lazily (texts and inputs made with the message only) carries what its decision said; and the clock of a state
not remembered, scanned once, gives the moment the sorted moments give."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from contracts.base import Message
from services.scoring import rules as r
from services.scoring.clock import next_due
from services.scoring.common import Context, Decisions
from services.scoring.domain import ScoringState, apply_event, decide, forget_memos
from services.scoring.sre import _index, _lesion_sres, _treatment_sres
from services.scoring.state import STORED
from tests.unit.test_issue25_scoring_history import history


def states(events: list[Message]) -> list[ScoringState]:
    """The state after each event, applied at its recorded time (the objects kept, as the runtime's parsed states)."""
    s, out = ScoringState(), []
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
        out.append(s)
    return out


def records(s: ScoringState) -> int:
    return sum(len(getattr(s, name)) for name in STORED.maps)


@pytest.mark.parametrize("seed", [3, 4])
def test_a_small_state_is_stored_as_pydantic_writes_it(seed: int) -> None:
    forget_memos()
    events = history(seed, 1.5, lab_days=6, imaging_days=40, assessment_days=20, crises_per_year=4)
    small = 0
    for s in states(events):
        stored = s.model_dump_json()
        if records(s) < STORED.small:
            small += 1
            assert stored == BaseModel.model_dump_json(s)  # byte for byte, field order included
            assert s.model_dump_json() == stored  # and again, from the parts' JSON kept by object
        assert ScoringState.model_validate_json(stored) == s
    assert small > 10  # the history went through small states


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_the_lesions_and_treatments_decide_sres_skips_decide_none(seed: int) -> None:
    events = history(seed, 2, lab_days=10, imaging_days=30, assessment_days=15, crises_per_year=1)
    skipped = without_local = 0
    for e, s in zip(events, states(events), strict=True):
        c = Context(s, e.patient_id, e.recorded_at, r.DEFAULT_POLICY, memo=False)
        local = c.local_treatments
        for lesion_id, lesion in s.lesions.items():
            epidural = lesion.epidural_stated
            if lesion.fracture is None and lesion.cord_compression is None and not (epidural and epidural.value):
                skipped += 1
                d = Decisions()
                _lesion_sres(c, lesion_id, lesion, local, d)  # every local treatment: none can make one
                assert not d.sres and not d.fixations
        if not local:
            without_local += 1
            assert _treatment_sres(c, _index(c), frozenset()) == {}
    assert skipped > 50 and without_local > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_lazy_mirels_and_sins_carry_what_was_decided(seed: int) -> None:
    events = history(seed, 2, lab_days=10, imaging_days=30, assessment_days=15, crises_per_year=1)
    built = 0
    for e, s in zip(events, states(events), strict=True):
        d = decide(s, e.patient_id, now=e.recorded_at, memo=False)
        for slot, lazy in d.recommendations.items():
            if not slot.startswith(("mirels:", "sins:")):
                continue
            rec = lazy.build()
            built += 1
            assert (
                rec.event_id == lazy.event_id
                and rec.text_fr
                and rec.title.endswith(
                    f"({slot.partition(':')[2]})" if slot.startswith("mirels:") else "avis chirurgical"
                )
            )
            scored = d.scores[slot].build()
            assert [i.model_dump() for i in scored.inputs] == [i.model_dump() for i in rec.inputs]
            assert lazy.build() == rec  # built again, the same message
    assert built > 20


@pytest.mark.parametrize("seed", [2, 6])
def test_the_clock_in_one_pass_gives_the_moment_the_sorted_moments_give(seed: int) -> None:
    """A state not remembered (no patient) is scanned once, unsorted; a remembered one's moments are sorted and
    bisected: the same moment, written the same (its offset included), at every step and either side of it."""
    forget_memos()
    events = history(seed, 1.5, lab_days=5, imaging_days=30, assessment_days=10, crises_per_year=4)
    checked = 0
    for e, s in zip(events, states(events), strict=True):
        due = s.next_due
        times = [e.recorded_at + timedelta(days=d) for d in (0, 3, 29, 95, 400)]
        times += [] if due is None else [due - timedelta(seconds=1), due, due + timedelta(microseconds=1)]
        for now in times:
            scanned, sorted_ = next_due(s, now), next_due(s, now, patient=e.patient_id)
            assert (None if scanned is None else scanned.isoformat()) == (
                None if sorted_ is None else sorted_.isoformat()
            )
            checked += 1
    assert checked > 500
