"""Issue 25, the radiotherapy planner's cost per event (helper HW): what was made cheaper decides the same.

- A plan item and its notice hold no reference to each other (a bound method did): an item dropped from the memo is
  freed at once, not left to the garbage collector's full passes.
- The fingerprints kept per table (memo._by_table) are those computed from the tables afresh, at every state of a
  mixed timeline.
- A segment's history kept per plan (Patient.segments) is the one computed again.
- Retention's findings fold, skipped until the cut passes the first chain that may drop, folds what the full scan
  folds.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from hypothesis import HealthCheck, given, settings, target

from bench.radiotherapy_planner import events
from contracts.base import Message
from contracts.hospital import ImagingFinding
from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.items_base import Item, as_input
from services.radiotherapy_planner.items_patient import Patient
from services.radiotherapy_planner.items_reirr import _segment, segment
from services.radiotherapy_planner.retention import HORIZON, _findings, _scan_findings
from tests.unit.test_issue25_local_retention import histories


def _stream(n: int) -> list[Message]:
    docs = events(n)
    return sorted(
        (cast(Message, t.value.model_validate(d)) for t, items in docs.items() for d in items),
        key=lambda e: e.occurred_at,
    )


def _states(n: int) -> Iterator[LocalState]:
    states: dict[str, LocalState] = {}
    for e in _stream(n):
        s, _ = apply_event(states.get(e.patient_id) or LocalState(), e)
        states[e.patient_id] = s
        yield s


def _live_items() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, Item))


def test_items_dropped_from_the_memo_are_freed_without_the_garbage_collector() -> None:
    m.clear()
    gc.collect()
    before = _live_items()
    gc.disable()
    try:
        published = 0
        for s in _states(300):
            for sec in build_plan(s):
                for i in sec.items:
                    notice, model = i.notice, i.model  # both made, as when an item is published
                    assert list(notice.inputs()) == model.inputs == [as_input(x) for x in i.inputs]
                    published += 1
        assert published > 0 and _live_items() > before
        del sec, i, notice, model  # the loop's last ones
        m.clear()  # the memo was the items' only holder
        assert _live_items() == before
    finally:
        gc.enable()


def test_table_fingerprints_are_those_of_the_tables_computed_afresh() -> None:
    m.clear()
    checked = 0
    for s in _states(400):
        warm = m.Fingerprints.of(s)
        fresh = s.model_copy(
            update={
                "treatments": dict(s.treatments),
                "assessed": dict(s.assessed),
                "opinions": dict(s.opinions),
                "labs": {k: dict(v) for k, v in s.labs.items()},
                "scores": dict(s.scores),
            }
        )
        assert warm == m.Fingerprints.of(fresh)
        assert m.Fingerprints.of(s) == warm  # and again from the tables kept
        checked += 1
    assert checked == 400


def test_a_segment_history_kept_per_plan_is_the_one_computed_again() -> None:
    m.clear()
    compared = 0
    for s in _states(300):
        p = Patient(s, now=s.decided_at)
        for lesion in lesions(s).values():
            for req in s.requests.values():
                if not isinstance(req, LocalTreatmentRequest) or req.lesion_id != lesion.lesion_id:
                    continue
                day = req.planned_on or lesion.latest.occurred_at.date()
                first = segment(p, lesion, req, day)
                assert segment(p, lesion, req, day) is first  # once per plan
                assert first == _segment(p, lesion, req, day)
                compared += 1
    assert compared > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_the_findings_fold_skipped_before_its_first_drop_is_the_fold_scanned(events: list[Message]) -> None:
    """retention._findings scans the correction chains only once the cut has passed `_first_drop`: at every state of
    generated histories (corrections, entries in error, amendments naming no record, years long) and at cuts on and
    around every finding's times, it folds exactly what the scan of every chain folds."""
    m.clear()
    s = LocalState()
    scanned = 0
    for e in events:
        s, _ = apply_event(s, e)
        times = sorted({t for f in s.findings.values() for t in (f.occurred_at, f.recorded_at)})
        for t in times:
            scanned += sum(_folds_around(s, t))
    target(float(scanned))


def _folds_around(s: LocalState, t: datetime) -> list[bool]:
    """At cuts a second before `t`, at it, a second after and a horizon after: the skipped fold equals the full scan;
    whether the scan dropped something at each."""
    dropped = []
    for cut in (t - timedelta(seconds=1), t, t + timedelta(seconds=1), t + HORIZON):
        fast: dict[str, object] = {}
        full: dict[str, object] = {}
        _findings(s, cut, fast)
        _scan_findings(s, cut, full)
        assert fast == full
        dropped.append(bool(full))
    return dropped


def test_a_chain_withdrawn_in_error_drops_after_its_first_drop_and_not_before() -> None:
    """A finding entered in error, with a newer finding of its lesion: the chain drops once the cut passes its newest
    time (as the full scan finds), and not a second before (the skipped fold)."""
    t0 = datetime(2023, 1, 10, 9, tzinfo=UTC)

    def finding(n: int, at: datetime, **fields: Any) -> ImagingFinding:
        return ImagingFinding.model_validate(
            {
                "event_id": str(uuid.UUID(int=n, version=4)),
                "patient_id": "pt-hw",
                "source": "test",
                "occurred_at": at.isoformat(),
                "recorded_at": (at + timedelta(hours=1)).isoformat(),
                "lesion_id": "t8",
                "skeletal_site": "spine",
                "vertebral_level": "T8",
                "modality": "mri",
                "epidural_extension": False,
                **fields,
            }
        )

    first = finding(1, t0)
    error = finding(2, t0 + timedelta(days=2), record_status="entered-in-error", corrects=str(first.event_id))
    s = LocalState()
    for e in (first, error, finding(3, t0 + timedelta(days=30))):
        s, _ = apply_event(s, e, retention=False)
    newest = t0 + timedelta(days=2, hours=1)  # the entry in error's recorded time: the chain's newest
    assert _folds_around(s, newest) == [False, False, True, True]
