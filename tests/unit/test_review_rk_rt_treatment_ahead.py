"""Review RK (RT-MSCC L1397-1402, issue 18 clock, 142b5ce): a course or a decompression recorded ahead of its date.
RT-MSCC counts a course begun by today (142b5ce keyed its memo on the day), but the planner's clock had no deadline on
that day: the emergency stayed critical up to COMPRESSION_CURRENT after the course had begun. A decompression dated
ahead (a booking, or an error: not current data) counted at once: the emergency became "opérée : radiothérapie
adjuvante" days before any surgery. Now both count from their day, and the clock ticks then."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, TreatmentEvent
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.memo import clear
from shared.clinical.dates import HOSPITAL_TZ
from tests.unit.test_issue18_local import NOW, env, plan_items, tick, vertebra

COURSE = {"kind": "radiotherapy", "total_dose_gy": 30.0, "fractions": 10, "cord_dmax_gy": 29.0}


def _treatment(on: datetime, **treatment: object) -> TreatmentEvent:
    doc = {"site": "spine", "lesion_id": "t8", "vertebral_level": "T8", "on": on.date().isoformat(), **treatment}
    return TreatmentEvent.model_validate(env(NOW, treatment=doc))


def _mscc(out: list[Message]) -> list[tuple[str, str]]:
    return [(i.severity, i.title) for i in plan_items(out) if i.rule_id == "RT-MSCC"]


def _until_day(events: list[Message], day: datetime) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """RT-MSCC as decided at NOW, and after the clock's ticks up to the start of `day` (no other event)."""
    clear()
    s, out, first = LocalState(), list[Message](), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        first = [*first, *o]
    start = datetime.combine(day.astimezone(HOSPITAL_TZ).date(), datetime.min.time(), HOSPITAL_TZ)
    while s.next_due is not None and s.next_due <= start + timedelta(minutes=1):
        s, o = apply_event(s, tick(s))
        out = o or out
    return _mscc(first), _mscc(out)


def test_a_course_recorded_ahead_of_its_date_ends_the_emergency_on_that_day_by_the_clock() -> None:
    compression = vertebra(at=NOW - timedelta(hours=2), cord_compression=True)
    begins = NOW + timedelta(days=2)
    now, then = _until_day([compression, _treatment(begins, **COURSE)], begins)
    assert [sev for sev, _ in now] == ["critical"]
    assert [sev for sev, _ in then] == ["info"] and "irradiée" in then[0][1]


def test_a_decompression_dated_ahead_is_not_done_until_its_day() -> None:
    for first in (
        [vertebra(at=NOW - timedelta(hours=2), cord_compression=True)],
        [
            vertebra(at=NOW - timedelta(days=5), epidural_extension=True),
            ClinicalAssessment.model_validate(env(NOW - timedelta(hours=3), neurological_deficit=True)),
        ],
    ):
        operated = NOW + timedelta(days=7)
        now, then = _until_day([*first, _treatment(operated, kind="surgery", procedure="decompression")], operated)
        assert [sev for sev, _ in now] == ["critical"], now
        assert [sev for sev, _ in then] == ["warning"] and "adjuvante" in then[0][1], then
