"""Review r36 of the impact replay's gate (issue 21, stop 36: devstack/impact_child.py `_same_as_base`, HAZ-21-04).

The gate runs a patient through the candidate's live services and those the topic registry says feed them, and takes
the base's canonical outputs when the live services did what the base taped. The registry (contracts/topics.py) is
common code, so it is the base's; a live service's SUBSCRIPTIONS are the candidate's own app. A candidate service
that newly subscribes to a topic produced by a service outside the gate (the registry not updated) receives those
records in a full run but never in the gate: the gate passed, and the base's line was written where a full run
differs (a false "no change"). Fixed: the gate also fails when a service outside it published, in the base's run of
that patient, on a topic a service of the gate reads (the two tests below were strict xfails before). The guard
below (each service's subscriptions and outputs against the registry) holds for the committed services; it cannot
hold for a candidate tree the impact replays before its tests run."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from contracts.base import Message
from contracts.topics import PLANS, SERVICES, TOPICS
from devstack.cohort import Cohort
from devstack.impact_trees import ALL_TAPED, child_env
from devstack.replay import MODULES, Replay, Tape, build_services, replay_patients
from shared.errors import Rejected
from shared.runtime import decoding
from shared.runtime.subscription import Subscription
from tests import impact_shared

ROOT = Path(__file__).resolve().parents[2]
#: one patient of a 1-year cohort (seed 1) who gets treatment plans from the systemic planner
COHORT = Cohort(seed=1, patients=1, years=1.0)


def _refuse_plans(state: BaseModel, message: Any) -> tuple[BaseModel, Sequence[Message]]:
    raise Rejected("candidate: a treatment plan is not applied by the local planner")


def _candidate_services() -> dict[str, Any]:
    """The base's five services, except that the candidate's radiotherapy planner (its own package changed, so it
    runs live) also consumes the systemic planner's plans (osteocds.plans.v1), the registry left as it was: here it
    refuses them (a dead letter each), standing for any decision a plan would change."""
    services = build_services()
    rt = services["radiotherapy-planner"]
    model = next(s.aggregate[0] for s in rt.subscriptions.values() if s.aggregate is not None)
    rt.subscriptions[PLANS.name] = Subscription(
        PLANS, decoding.json_decoder(PLANS.value), aggregate=(model, _refuse_plans)
    )
    return services


def _line(child: ModuleType, replay: Replay, patient: str, stream: list[Any], until: datetime) -> dict[str, Any]:
    (run,) = replay_patients([(patient, stream)], replay, until)
    line: dict[str, Any] = child.canonical(run.patient, run.outputs, len(run.dead_letters))
    return line


def test_a_candidate_service_newly_fed_by_a_service_outside_the_gate_is_not_taken_from_the_base() -> None:
    child = impact_shared.child()
    patient, stream = COHORT.patient_id(0), list(COHORT.patient(0))
    until = COHORT.end
    # the base: every service taped (as impact.py records them when the candidate reuses some), and its line
    recording = Tape(MODULES, True)
    recording.start()
    base = _line(child, Replay(build_services(), store=False, tape=recording), patient, stream, until)
    entries = recording.entries
    assert any(o[0] == PLANS.name for _, take in entries["systemic-planner"] for o in take[6]), "no plan: pick another"
    # the candidate run in full (every service live): the plans reach its radiotherapy planner
    full = _line(child, Replay(_candidate_services(), store=False), patient, stream, until)
    assert full != base and full["dead_letters"] > base["dead_letters"]
    # the gate, as impact_child.main builds it: the live service and those upstream of it in the registry
    own = {"radiotherapy-planner"}
    upstream = child._upstream(own, set(MODULES))
    assert upstream == {"lab-normalisation", "scoring", "radiotherapy-planner"}
    candidate = _candidate_services()
    gate = Replay({n: candidate[n] for n in sorted(upstream)}, store=False, profile=True)
    alike, _ = child._same_as_base(_replay_module(), gate, own, entries, patient, stream, until)
    # the gate may only say "the base's line" where a full run gives it
    assert not alike or full == base


def _replay_module() -> ModuleType:
    import devstack.replay

    return devstack.replay


def test_every_services_subscriptions_and_outputs_are_in_the_registry() -> None:
    """The registry the gate reads its upstream services from (contracts/topics.py TOPICS) lists each of the five
    services as a consumer of every topic it subscribes to, and as a producer of every topic it published over
    five patients' year (a clock tick is no output: it goes to its own service only)."""
    registry = {t.name: t for t in TOPICS}
    services = build_services()
    for name, service in services.items():
        for topic in service.subscriptions:
            assert topic in registry and name in registry[topic].consumers, (name, topic)
    recording = Tape(MODULES, True)
    recording.start()
    replay = Replay(services, store=False, tape=recording)
    cohort = Cohort(seed=1, patients=5, years=1.0)  # five patients: every topic but alert actions (HTTP) published
    streams = [(cohort.patient_id(i), list(cohort.patient(i))) for i in range(cohort.patients)]
    list(replay_patients(streams, replay, cohort.end))
    published = {(name, o[0]) for name, taken in recording.entries.items() for _, take in taken for o in take[6]}
    assert {n for n, _ in published} == set(SERVICES)
    assert len({topic for _, topic in published}) >= 6  # labs, scores, skeletal events, recommendations, plans, alerts
    for name, topic in sorted(published):
        assert topic in registry and name in registry[topic].producers, (name, topic)


def _side(tmp: Path, name: str, stream: Path, options: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """One side's child (devstack/impact_child.py) on this checkout's tree, as devstack/impact.py runs it."""
    args = [sys.executable, str(ROOT / "devstack" / "impact_child.py"), str(ROOT), str(stream)]
    args += [str(tmp / f"{name}.jsonl"), json.dumps(options)]
    env = child_env() | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_gate_reads_the_base_line_of_a_patient_whose_key_is_not_ascii(tmp_path: Path) -> None:
    """--from-topics replays the input topics' history keyed by each record's key as it is (impact_stream.py
    `_read_topics`): a key that is not a valid patient ID is dead-lettered by lab-normalisation, and the impact
    must still run (that dead letter is part of the report), not stop at the gate's order check."""
    stream = tmp_path / "stream.pickle"
    until = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    with stream.open("wb") as f:
        pickle.dump({"patients": 1, "until_ms": until, "store": False}, f)
        pickle.dump(("patiént-1", [("hospital.lab-results.v1", "patiént-1".encode(), b"{}", until - 1000)]), f)
    tape = tmp_path / "tape.pickle"
    base = _side(tmp_path, "base", stream, {"taped": list(ALL_TAPED), "record": str(tape)})
    assert base.returncode == 0, base.stderr[-2000:]
    candidate = _side(
        tmp_path,
        "candidate",
        stream,
        {
            "settings": {"scoring": {"calcium_current_hours": 48}},
            "taped": list(ALL_TAPED),
            "replay": str(tape),
            "base_taped": list(ALL_TAPED),
            "base_out": str(tmp_path / "base.jsonl"),
        },
    )
    assert candidate.returncode == 0, candidate.stderr[-2000:]
    lines = [(tmp_path / f"{side}.jsonl").read_text(encoding="utf-8") for side in ("base", "candidate")]
    assert lines[0] == lines[1] and json.loads(lines[0])["dead_letters"] == 1
