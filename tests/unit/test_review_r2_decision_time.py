"""Review R2 of issue 22 (HAZ-22-ORDER-01): the radiotherapy planner decides at the clock, never at the triggering
record's time. The order-independence tests decide at a clock later than every record, where the old decision time
max(last decision, trigger's recorded time, clock) equals the clock, so they pass on the old code too. A record
recorded slightly ahead of the clock (within the decoder's clock-skew tolerance) moved the old decision time forward:
a cord compression still current at the clock (RT-MSCC, L1397-1402, an emergency decided from current data only)
was judged stale because of which record triggered the re-plan. This test fails on the old formula."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.base import Message
from contracts.hospital import ImagingFinding
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import COMPRESSION_CURRENT, apply_event
from services.radiotherapy_planner.facts import LocalState
from tests.unit.order_independence import active
from tests.unit.test_order_independence_radiotherapy import tick

T = datetime(2026, 3, 2, 9, tzinfo=UTC)
ENV = {"patient_id": "pt-r2-time", "source": "test"}


def _finding(n: int, lesion: dict[str, object], at: datetime, recorded: datetime) -> ImagingFinding:
    return ImagingFinding.model_validate(
        {
            **ENV,
            **lesion,
            "event_id": str(uuid.UUID(int=n, version=4)),
            "occurred_at": at.isoformat(),
            "recorded_at": recorded.isoformat(),
        }
    )


def _mscc(last: Message, now: datetime) -> list[tuple[str, str]]:
    memo.clear()
    compression = _finding(
        1,
        {"lesion_id": "t8", "skeletal_site": "spine", "vertebral_level": "T8", "modality": "mri"}
        | {"epidural_extension": True, "cord_compression": True},
        T,
        T,
    )
    s, out = apply_event(LocalState(), compression, now=T)
    s, more = apply_event(s, last, now=now)
    return sorted((a[0], a[1]) for a in active([*out, *more]).values() if a[0] == "RT-MSCC")


def test_a_record_recorded_ahead_of_the_clock_does_not_move_the_decision_time() -> None:
    now = T + COMPRESSION_CURRENT - timedelta(minutes=2)  # the compression is still current at the clock
    skewed = _finding(  # another lesion's older study, recorded 4 min ahead of the clock (skew tolerance: 5 min)
        2,
        {"lesion_id": "fem", "skeletal_site": "femur_shaft", "modality": "xray"},
        T - timedelta(days=3),
        now + timedelta(minutes=4),
    )
    by_record = _mscc(skewed, now)
    by_tick = _mscc(tick(ENV["patient_id"], now), now)
    assert by_record == by_tick
    assert ("RT-MSCC", "critical") in by_record
