"""Review R29-RT (of branch dt-rt, HAZ-27-FUTURE-HIDES "decide twice", as_of.view_b).

View B ("the current one holds") resolves corrections on the whole set, then leaves out the records dated ahead. An
amendment dated ahead of a CURRENT record takes that record out with it, so B reads the name's OLDER fact, one the
current record superseded: not "current data only". Case: a deficit 10 days ago, "no deficit" yesterday (current,
the newest), then yesterday's assessment amended (only `frail` changed, "no deficit" re-stated) by a producer 20 min
ahead. Every record after the old deficit says "no deficit"; B reads the 10-day-old deficit and, with the epidural
extension, publishes RT-MSCC's emergency (critical, "compression médullaire à éliminer", L1397-1402) marked "À
vérifier : décision prise sur les seules données actuelles" (it is not); C (the amendment holds) gives the prevention
item (L1290, "Prévention de la morbidité ... (ex : épidurite vertébrale)"), as do 982e00c and the same history
without the amendment. A false emergency (over-cautious, alert fatigue, an emergency MRI ordered on a deficit the
clinicians said yesterday is gone), and a verification text that misstates its basis.

Fixed by the lead (2026-12-06): a record corrected by a correction dated ahead is unknown in view B (an assessment's
names), and a lesion with a finding corrected ahead is read as A reads it: both cases below pass."""

from __future__ import annotations

import uuid
from datetime import timedelta

from contracts.base import Message
from services.radiotherapy_planner import domain, memo
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW, plan_items, vertebra
from tests.unit.test_review_r28rt_future_left_out import _assessment

DAY = timedelta(days=1)


def _mscc(events: list[Message]) -> list[tuple[str, str, str]]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = domain.apply_event(s, e, now=NOW)
        out += o
    return [(i.status, i.severity, i.title) for i in plan_items(out) if i.rule_id == "RT-MSCC"]


def _history() -> tuple[list[Message], Message]:
    yesterday = _assessment(NOW - DAY, neurological_deficit=False, frail=False)
    amended = yesterday.model_copy(
        update={
            "event_id": uuid.UUID(int=29, version=4),
            "occurred_at": NOW + timedelta(minutes=20),  # a producer's clock 20 min ahead
            "recorded_at": NOW,
            "corrects": yesterday.event_id,
            "record_status": "amended",
            "frail": True,  # the only value amended; "no deficit" re-stated
        }
    )
    past: list[Message] = [
        vertebra(at=NOW - 12 * DAY, epidural_extension=True, status="confirmed"),
        _assessment(NOW - 10 * DAY, neurological_deficit=True),
        yesterday,
    ]
    return past, amended


def test_review_r29rt_without_the_amendment_the_superseded_deficit_is_no_emergency() -> None:
    past, _ = _history()
    [(status, severity, title)] = _mscc(past)
    assert severity != "critical" and "prévention" in title, (status, severity, title)


def test_review_r29rt_an_amendment_dated_ahead_does_not_bring_back_a_superseded_deficit_as_an_emergency() -> None:
    past, amended = _history()
    [(status, severity, title)] = _mscc([*past, amended])
    assert severity != "critical", (status, severity, title)


def _imaging() -> tuple[list[Message], Message]:
    yesterday = vertebra(at=NOW - DAY, cord_compression=False, status="confirmed", canal_narrowing_pct=10.0)
    amended = yesterday.model_copy(
        update={
            "event_id": uuid.UUID(int=2929, version=4),
            "occurred_at": NOW + timedelta(minutes=20),  # a producer's clock 20 min ahead
            "recorded_at": NOW,
            "corrects": yesterday.event_id,
            "record_status": "amended",
            "canal_narrowing_pct": 40.0,  # the only value amended; "no compression" re-stated
        }
    )
    return [vertebra(at=NOW - 10 * DAY, cord_compression=True, status="confirmed"), yesterday], amended


def test_review_r29rt_a_compression_ruled_out_yesterday_is_no_emergency() -> None:
    past, _ = _imaging()
    assert _mscc(past) == []


def test_review_r29rt_an_mri_amended_ahead_does_not_bring_back_the_compression_it_ruled_out() -> None:
    """The same in the findings (RT-MSCC L1397-1402: urgent RT / decompression is for a compression current on the
    data): every record since the compression says none, yet the emergency treatment is recommended."""
    past, amended = _imaging()
    assert [x for x in _mscc([*past, amended]) if x[1] == "critical"] == []
