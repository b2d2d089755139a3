"""Found at stop 20 with `./osteocds impact` (issue 21) on the CI cohort: for patient cohort-1-1 the radiotherapy
planner's bounded state (retention, FINDINGS_PER_LESION) publishes on 2026-10-27 a new critical RT-MSCC version whose
cord compression comes from a finding of 2025-06-11, where the unbounded state (every finding kept, no retention)
publishes nothing then; the version also reuses the ID of the alert's first version (its wording is the first one's).
HAZ-25-LOCAL-03, closed: findings_kept.prune_findings kept the newest six findings of the lesion only, so the
compression's first sighting (2025-03-28) was dropped, its onset moved to 2025-06-11, after the course that irradiated
it (2025-04-02), and RT-MSCC raised the emergency again; a compression's first sightings are kept now
(tests/unit/test_rt_compression_onset_retention.py tests the cause on a small history)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import services.radiotherapy_planner.app as rt_app
import services.radiotherapy_planner.domain as rt_domain
import services.radiotherapy_planner.findings_kept as rt_kept
from devstack.cohort import Cohort
from devstack.replay import Replay
from services.radiotherapy_planner import memo


def _mscc(unbounded: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    if unbounded:
        apply_event = rt_domain.apply_event

        def keep_everything(*args: Any, **kwargs: Any) -> Any:
            return apply_event(*args, **{**kwargs, "retention": False})

        monkeypatch.setattr(rt_kept, "FINDINGS_PER_LESION", 10**9)
        monkeypatch.setattr(rt_app, "apply_event", keep_everything)
    memo.clear()  # memoised items are keyed on event IDs: each run decides afresh
    replay = Replay()
    for g in Cohort(1, 40, 2).patient(1):
        replay.feed(g.topic, g.key, g.value(), g.timestamp_ms)
    replay.finish()
    records = [json.loads(o.value) for o in replay.outputs("radiotherapy-planner")]
    return [
        (r["event_id"], r.get("status"), [(i["name"], i.get("value"), i.get("occurred_at")) for i in r["inputs"]])
        for r in records
        if str(r.get("alert_key", "")).endswith(":mscc")
    ]


@pytest.fixture
def both(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    bounded = _mscc(False, monkeypatch)
    with monkeypatch.context() as m:
        unbounded = _mscc(True, m)
    yield bounded, unbounded


def test_the_bounded_planner_publishes_the_same_cord_compression_decisions_as_the_unbounded_one(
    both: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]],
) -> None:
    bounded, unbounded = both
    assert unbounded, "the cohort patient has a cord compression: the comparison must not be empty"
    assert bounded == unbounded
