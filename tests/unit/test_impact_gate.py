"""Issue 21 (speed, stop 36): the candidate's gate (devstack/impact_child.py `_same_as_base`) runs a patient through
the services it runs live and those upstream of them only; which services those are comes from the topic registry
(contracts/topics.py: each topic's producers and consumers). The end-to-end check, the report equal to both sides
run in full, is tests/test_impact.py (the crisis threshold)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.topics import TOPICS
from devstack.replay import MODULES
from tests import impact_shared

ROOT = Path(__file__).resolve().parents[2]


def _feeds() -> dict[str, set[str]]:
    """Per service, the services whose topics it consumes, read here from the registry without the child's code."""
    feeds: dict[str, set[str]] = {name: set() for name in MODULES}
    for topic in TOPICS:
        for consumer in topic.consumers:
            if consumer in feeds:
                feeds[consumer] |= {p for p in topic.producers if p in MODULES and p != consumer}
    return feeds


@pytest.mark.parametrize(
    ("own", "upstream"),
    [
        ({"lab-normalisation"}, {"lab-normalisation"}),
        ({"scoring"}, {"lab-normalisation", "scoring"}),
        ({"systemic-planner"}, {"lab-normalisation", "scoring", "systemic-planner"}),
        ({"radiotherapy-planner"}, {"lab-normalisation", "scoring", "radiotherapy-planner"}),
        ({"notification"}, set(MODULES)),
        ({"scoring", "radiotherapy-planner"}, {"lab-normalisation", "scoring", "radiotherapy-planner"}),
    ],
)
def test_the_gate_runs_the_live_services_and_every_service_upstream_of_them(own: set[str], upstream: set[str]) -> None:
    assert impact_shared.child()._upstream(own, set(MODULES)) == upstream


def test_upstream_is_closed_under_the_registry_feeds() -> None:
    """Whatever the live services, every service feeding one of those the gate runs is run too (a record the base's
    run gave a live service cannot be missing from the gate's)."""
    feeds, child = _feeds(), impact_shared.child()
    for name in MODULES:
        found = child._upstream({name}, set(MODULES))
        assert all(feeds[s] <= found for s in found), name
