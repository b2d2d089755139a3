"""Scoring's own clock (issue 18): the moments a decision may change with no new event, so currency windows pass
on time. Pure. A crisis calcium stops being current (LAB-CA-CRISIS: an emergency from current data only), a
fracture or cord compression leaves its currency window (CLASS-SRE `current_until`), a lesion's pain, the staging
or the life-expectancy estimate ages out, a future-dated fact becomes current, and what remains of the estimate
crosses 1 year, 3 months or 6 weeks (MIRELS-HIGH L1324, SURG-LE L2804-2806). A deadline at which nothing changes
costs one decision and publishes nothing (the transition only publishes differences)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.scoring import rules as r
from services.scoring.state import ScoringState
from shared.clinical.facts import Fact
from shared.clinical.life_expectancy import Remaining

_AFTER: timedelta = timedelta(seconds=1)


def next_due(s: ScoringState, now: datetime, policy: r.Policy = r.DEFAULT_POLICY) -> datetime | None:
    times: list[datetime] = []

    def window(at: datetime, valid: timedelta) -> None:
        times.extend((at - policy.future_tolerance, at + valid))  # it becomes current, then it is too old

    for v in s.labs.values():
        window(v.occurred_at, policy.calcium_current)
    for lesion in s.lesions.values():
        seen: list[Fact[Any] | None] = [
            lesion.cord_compression,
            lesion.fracture,
            lesion.fracture_seen_last,
            lesion.compression_seen_last,
        ]
        for f in seen:
            if f is not None:
                window(f.occurred_at, policy.lesion_event_current)
    a = s.assessment
    pains: list[Fact[Any] | None] = [
        a.pain_character,
        a.pain_intensity,
        *a.lesion_pain_intensity.values(),
        *a.lesion_pain_character.values(),
    ]
    for f in pains:
        if f is not None:
            window(f.occurred_at, policy.lesion_pain_valid)
    for g in (a.primary_controlled, a.extra_osseous):
        if g is not None:
            window(g.occurred_at, policy.staging_valid)
    for le in a.life_expectancy_estimates:
        window(le.occurred_at, policy.life_expectancy_valid)
        crossing = Remaining.at(float(le.value), le.occurred_at, now).next_crossing(now)
        if crossing is not None:
            times.append(crossing)
    later = [t + _AFTER for t in times if t + _AFTER > now]
    return min(later, default=None)
