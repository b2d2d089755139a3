"""The in-process replay of the five services (devstack/replay.py; issue 25's benchmarks, issue 21's impact replay):
outputs on every topic downstream of the hospital inputs, the same twice, patient by patient as in one stream."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.topics import (
    ALERTS,
    LABS_NORMALISED,
    LOCAL_PLANS,
    PLANS,
    RECOMMENDATIONS,
    SCORES,
    SKELETAL_EVENTS,
)
from devstack.cohort import Cohort
from devstack.replay import Record, Replay, replay_patients

COHORT = Cohort(4, 4, 1)


def _outputs(replay: Replay) -> dict[str, list[tuple[str, str, str]]]:
    return {name: [(o.topic, o.key, o.value) for o in replay.outputs(name)] for name in replay.services}


@pytest.fixture(scope="module")
def replayed() -> Replay:
    replay = Replay()
    replay.run(COHORT.events())
    return replay


def test_a_small_cohort_gives_outputs_on_every_downstream_topic(replayed: Replay) -> None:
    topics = {topic for (_, topic), n in replayed.produced.items() if n > 0}
    assert {LABS_NORMALISED.name, SCORES.name, RECOMMENDATIONS.name, PLANS.name, LOCAL_PLANS.name} <= topics
    assert {SKELETAL_EVENTS.name, ALERTS.name} <= topics
    assert replayed.reasons == []
    assert replayed.ticks["notification"] > 0  # settle windows passed as clock ticks


def test_twice_gives_identical_outputs(replayed: Replay) -> None:
    again = Replay()
    again.run(COHORT.events())
    assert _outputs(again) == _outputs(replayed)


def test_states_read_back_from_json_decide_the_same(replayed: Replay) -> None:
    """roundtrip=True stores each state as JSON and reads it back before the next event, as the runtime does."""
    small = Cohort(4, 2, 1)
    direct, stored = Replay(), Replay(roundtrip=True)
    direct.run(small.events())
    stored.run(small.events())
    assert _outputs(stored) == _outputs(direct)


def test_patient_by_patient_gives_what_one_stream_gives(replayed: Replay) -> None:
    last = max(g.message.recorded_at for g in COHORT.events())
    alone: dict[str, list[tuple[str, str, str]]] = {}
    runs = replay_patients(((COHORT.patient_id(i), COHORT.patient(i)) for i in range(COHORT.patients)), Replay(), last)
    for run in runs:
        for name, outs in run.outputs.items():
            alone.setdefault(name, []).extend((o.topic, o.key, o.value) for o in outs)
    together = _outputs(replayed)
    for name in together:
        assert sorted(alone.get(name, [])) == sorted(together[name])
        by_patient = [o for o in together[name] if o[1] == COHORT.patient_id(0)]
        assert [o for o in alone.get(name, []) if o[1] == COHORT.patient_id(0)] == by_patient  # in order


def test_the_clocked_services_decide_at_the_time_of_the_record() -> None:
    checked: list[str] = []

    def on_apply(service: str, patient: str, record: Record, state: object) -> None:
        if service in ("systemic-planner", "radiotherapy-planner"):
            assert replay.services[service].clock() == datetime.fromtimestamp(record.timestamp / 1000, UTC)
            checked.append(service)

    replay = Replay(keep=False, on_apply=on_apply)
    replay.run(Cohort(9, 1, 0.5).events())
    assert {"systemic-planner", "radiotherapy-planner"} <= set(checked)


def test_a_record_delivered_twice_is_applied_once() -> None:
    g = next(iter(Cohort(9, 1, 0.5).events()))
    replay = Replay()
    first = replay.feed(g.topic, g.key, g.value(), g.timestamp_ms)
    again = replay.feed(g.topic, g.key, g.value(), g.timestamp_ms)
    assert first and not [a for a in again if a.record.topic == g.topic]
    assert replay.duplicates["lab-normalisation"] == 1
