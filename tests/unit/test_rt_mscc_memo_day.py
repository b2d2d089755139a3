"""RT-MSCC (L1397-1402) counts a course on the compressed lesion begun on or after the onset and by today
(items_mscc.mscc_items); its memoised family was keyed without the day, so a course recorded ahead of its date left
the emergency in force after the course had begun, until the next change of its facts (found with HAZ-25-LOCAL-03)."""

from __future__ import annotations

from datetime import timedelta

from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_rt_compression_onset_retention import T0, _Records


def _mscc(s: LocalState, fresh: bool) -> list[tuple[str, str]]:
    if fresh:
        memo.clear()
    now = s.decided_at
    return [(i.status, i.severity) for sec in build_plan(s, now=now) for i in sec.items if i.rule_id == "RT-MSCC"]


def test_a_course_recorded_ahead_of_its_date_ends_the_emergency_once_begun() -> None:
    r = _Records()
    compression = r.finding(T0, cord_compression=True, epidural_extension=True)
    planned = r.course(T0 + timedelta(days=3))  # recorded on the day of the compression, dated 3 days later
    planned = planned.model_copy(update={"occurred_at": T0, "recorded_at": T0 + timedelta(hours=5)})
    other_lesion = r.finding(T0 + timedelta(days=5), lesion="l2", cord_compression=False)
    memo.clear()
    s = LocalState()
    for e in (compression, planned):
        s, _ = apply_event(s, e, now=e.recorded_at)
    assert _mscc(s, fresh=False) == [("recommended", "critical")]  # not yet begun: the emergency stands
    s, _ = apply_event(s, other_lesion, now=other_lesion.recorded_at)  # 5 days on: the course has begun
    assert _mscc(s, fresh=False) == _mscc(s, fresh=True) == [("done", "info")]
