"""Issue 25, the radiotherapy planner's cost per event (helper ZG): the lesions folded again per lesion an event
changes, and the corrections resolved per set of lesions they link, are those folded from the whole table."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.hospital import ImagingFinding
from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import Lesion, LocalState, lesions
from shared.clinical.corrections import effective_findings
from tests.unit.test_issue25_local_retention import histories
from tests.unit.test_issue25_rt_cost import _stream


def _afresh(s: LocalState) -> dict[str, Lesion]:
    by: dict[str, list[object]] = {}
    for f in effective_findings(s.findings.values()):
        by.setdefault(f.lesion_id, []).append(f)
    fresh = lesions(s.model_copy(update={"findings": dict(s.findings)}))  # a table never seen: folded whole
    assert {lid: list(x.history) for lid, x in fresh.items()} == dict(sorted(by.items()))
    return fresh


def _check(events: list[Message], retention: bool = True) -> int:
    m.clear()
    states: dict[str, LocalState] = {}
    checked = 0
    for e in events:
        s, _ = apply_event(states.get(e.patient_id) or LocalState(), e, retention=retention)
        states[e.patient_id] = s
        assert lesions(s) == _afresh(s)
        checked += 1
    return checked


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_lesions_folded_per_lesion_changed_are_those_of_the_whole_table(events: list[Message]) -> None:
    """Generated histories (corrections naming records of other lesions, entries in error, amendments naming none,
    late and repeated deliveries, years long), with and without retention: at every state."""
    _check(events)
    _check(events, retention=False)


def test_lesions_of_a_mixed_timeline_are_those_of_the_whole_table() -> None:
    assert _check(_stream(400)) > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_a_finding_delivered_again_under_another_lesion_leaves_its_old_one(
    events: list[Message], data: st.DataObject
) -> None:
    """Review RZG: a finding delivered again under its event ID but naming another lesion (a correction of the
    lesion by redelivery, or the same ID reused past the deduplication window) is folded as the whole table is."""
    findings = [i for i, e in enumerate(events) if isinstance(e, ImagingFinding)]
    assume(findings)
    i = data.draw(st.sampled_from(findings))
    finding = events[i]
    assert isinstance(finding, ImagingFinding)
    others = sorted({e.lesion_id for e in events if isinstance(e, ImagingFinding)} - {finding.lesion_id} | {"zz"})
    moved = finding.model_copy(
        update={
            "lesion_id": data.draw(st.sampled_from(others)),
            "recorded_at": finding.recorded_at + timedelta(hours=1),
        }
    )
    j = data.draw(st.integers(i + 1, len(events)))
    _check([*events[:j], moved, *events[j:]])
