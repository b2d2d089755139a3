"""Review R29B (HAZ-27-FUTURE-HIDES, the lead's follow-up ac19852, radiotherapy planner `as_of.view_b`).

ac19852 (for R29-RT's break 2) makes view B read a name as UNKNOWN when its record was corrected by a correction
dated ahead, and a lesion with a finding corrected ahead "as A reads it". Both tests look at the correction's date
only, never at the corrected record's: when the corrected record is ITSELF dated ahead (a report dated tomorrow,
amended by a record dated the day after), nothing current was superseded, yet B drops today's record (the deficit
unknown) or reads the lesion as A does (the future report newest, "donnée non actuelle"). B then disagrees with C and
the merge keeps A: today's emergency (RT-MSCC L1397-1402, critical) is shown as a warning "non actuelle(s)", the R27B
hazard back. Its parent (6e81ddd, dt-rt) keeps the emergency in both cases; 982e00c shows the warning (so no
regression against main, but a regression of the fix against its own R27B cases).

Fix (suggested): apply the R29-RT rule only where the corrected record is current (`corrects` names a record not
dated ahead); a correction of a future record is left out with it (the parent's B).

Fixed by the lead (2026-12-06): the cases below pass (they were strict xfails)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from contracts.base import Message
from services.radiotherapy_planner import domain, memo
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW, plan_items, vertebra
from tests.unit.test_review_r28rt_future_left_out import _assessment

DAY = timedelta(days=1)


def _amended(e: Message, **update: object) -> Message:
    fields = {"occurred_at": NOW + 2 * DAY, "recorded_at": NOW, "corrects": e.event_id, "record_status": "amended"}
    return e.model_copy(update={"event_id": uuid.UUID(int=29_2929, version=4), **fields, **update})


def _deficit() -> list[Message]:
    tomorrow = _assessment(NOW + DAY, neurological_deficit=True, frail=False)  # re-confirms today's deficit
    return [
        vertebra(at=NOW - 12 * DAY, epidural_extension=True, status="confirmed"),
        _assessment(NOW - DAY, neurological_deficit=True),
        tomorrow,
        _amended(tomorrow, frail=True),  # only `frail` amended, the deficit re-stated
    ]


def _compression() -> list[Message]:
    tomorrow = vertebra(at=NOW + DAY, cord_compression=True, status="confirmed", canal_narrowing_pct=10.0)
    tomorrow = tomorrow.model_copy(update={"recorded_at": NOW})
    return [
        vertebra(at=NOW - DAY, cord_compression=True, status="confirmed"),
        tomorrow,
        _amended(tomorrow, canal_narrowing_pct=40.0),  # only the narrowing amended, the compression re-stated
    ]


def _mscc(events: list[Message]) -> list[tuple[str, str, str]]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = domain.apply_event(s, e, now=NOW)
        out += o
    return [(i.status, i.severity, i.title) for i in plan_items(out) if i.rule_id == "RT-MSCC"]


@pytest.mark.parametrize("history", [_deficit, _compression], ids=["deficit", "compression"])
def test_review_r29b_re_confirmed_tomorrow_without_amendment_today_s_emergency_stays(
    history: Callable[[], list[Message]],
) -> None:
    """The R27B fix, held: the same history without the amendment stays critical."""
    events = history()[:-1]
    [(_, severity, title)] = _mscc(events)
    assert severity == "critical", title


@pytest.mark.parametrize("history", [_deficit, _compression], ids=["deficit", "compression"])
def test_review_r29b_a_future_report_amended_ahead_does_not_hide_today_s_emergency(
    history: Callable[[], list[Message]],
) -> None:
    [(_, severity, title)] = _mscc(history())
    assert severity == "critical", title
