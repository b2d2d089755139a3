"""Issue 21 (speed): a patient whose records to a taped service differ from the base's runs again with only the
services that diverged live (HAZ-21-04), the others taken from a tape: the base's for the services both sides share,
the candidate's own first run for the service it changed. Real trees and real cohorts, no mocks: the report must be
the one of both sides run with every service live (`full`).

The trees are HEAD's with this checkout's devstack/replay.py (the Tape under test), so the test checks the replay
being changed, not the one committed (tests/impact_shared.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from devstack.replay import MODULES, Record, Take, Tape, record_digest
from tests import impact_shared


def _record(topic: str, value: bytes) -> Record:
    return Record(topic, b"p1", value, int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000))


def _take(patient: str, topic: str) -> Take:
    return (patient, None, None, False, True, None, ((topic, patient, "{}", "s"),))


def test_a_tape_diverges_per_service_and_the_others_go_on() -> None:
    """One service's records differ: that service takes nothing more and is `divergent`; another service's tape is
    still taken whole; a service recorded alongside (`record`) keeps what it did for a later run."""
    a1, a2, b1 = _record("a", b"1"), _record("a", b"2"), _record("b", b"1")
    base = {"x": [(record_digest(a1), _take("p1", "out-x")), (record_digest(a2), _take("p1", "out-x"))]}
    base["y"] = [(record_digest(b1), _take("p1", "out-y"))]
    tape = Tape({"x", "y"}, False, record={"z"})
    tape.start(base)
    assert tape.take("x", record_digest(a1)) == base["x"][0][1]
    assert tape.take("x", record_digest(_record("a", b"other"))) is None  # differs: x is divergent
    assert tape.take("x", record_digest(a2)) is None  # and takes nothing more, even the taped next record
    assert tape.take("y", record_digest(b1)) == base["y"][0][1]  # y goes on
    assert tape.divergent() == {"x"} and tape.diverged and not tape.consumed()
    tape.add("z", record_digest(b1), _take("p1", "out-z"))
    assert tape.recorded == {"z"} and tape.entries["z"] == [(record_digest(b1), _take("p1", "out-z"))]
    # a service that did not take all of its tape (a record missing) is divergent too
    short = Tape({"x", "y"}, False)
    short.start(base)
    assert short.take("x", record_digest(a1)) is not None and short.take("y", record_digest(b1)) is not None
    assert short.divergent() == {"x"} and not short.diverged
    # recording: everything it runs is recorded, nothing is divergent
    rec = Tape({"x"}, True)
    rec.start()
    rec.add("x", record_digest(a1), _take("p1", "out-x"))
    assert rec.recorded == {"x"} and rec.divergent() == frozenset() and rec.consumed()


def test_a_patient_run_again_runs_only_the_services_whose_records_differ() -> None:
    """The crisis threshold raised (scoring only): the patients whose scoring outputs change run again with only the
    services downstream of scoring whose records differ; scoring is taken from the candidate's own first run and
    lab-normalisation (upstream, its records unchanged) from the base's, never run again; the report is the one of
    both sides run in full (the runs are shared with tests/test_impact.py: tests/impact_shared.py)."""
    report, text, full = impact_shared.crisis_runs()
    reused = report["reused"]
    assert reused["services"] == sorted(set(MODULES) - {"scoring"})
    again = reused["live_again"]
    assert reused["patients_run_again"] > 0 and set(again) == set(MODULES)
    assert again["scoring"] == 0 and again["lab-normalisation"] == 0
    assert 0 < max(again.values()) <= reused["patients_run_again"]
    assert "seuls les services dont les entrées diffèrent rejouent" in text
    assert full["reused"]["services"] == [] and full["reused"]["patients_run_again"] == 0
    for key in ("patients", "patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules"):
        assert report[key] == full[key], key
    assert report["patients_changed"] > 0
