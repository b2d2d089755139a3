"""HAZ-27-FUTURE-HIDES in scoring, "decide twice" (services/scoring/as_of.py): minimal cases (CLASS-SRE L259-296,
RT-MSCC L1397-1402)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event
from tests.unit import test_scoring_scores as sc

T0 = sc.T0
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
NOW = T0 + timedelta(hours=2)
TOLERANCE = r.DEFAULT_POLICY.future_tolerance


def _at(e: Any, occurred: datetime, recorded: datetime) -> Any:
    return e.model_copy(update={"occurred_at": occurred, "recorded_at": recorded})


def _run(events: list[Message], now: datetime = NOW) -> tuple[ScoringState, list[Message]]:
    s, out = ScoringState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=now)
        out += o
    return s, out


def _compressions(out: list[Message]) -> list[SkeletalEvent]:
    return [x for x in sc.live_sres(out) if x.kind == "cord_compression"]


SEEN = sc.finding(0, **sc.T9, cord_compression=True)
SURGERY = sc.treatment(0, kind="surgery", site="T9", procedure="decompression", on="2026-11-02")


def test_dt_sc_a_decompression_dated_tomorrow_keeps_the_compression_current_marked_to_verify() -> None:
    """B (current data: untreated) has the emergency A (the decompression read at once) lacks: B's SRE, marked, with
    the future-dated record (its ID and date) and the French text; the unmarked version is withdrawn."""
    ahead = _at(SURGERY, T0 + DAY, T0 + 30 * MINUTE)
    s, out = _run([SEEN, ahead])
    [sre] = _compressions(out)
    assert sre.current is True
    [shown] = [i for i in sre.evidence if i.name == "future_dated_record_to_verify"]
    assert (shown.source_event_id, shown.occurred_at) == (ahead.event_id, ahead.occurred_at)
    assert isinstance(shown.value, str) and shown.value.startswith("À vérifier")
    assert "02/11/2026 à 08:00" in shown.value
    # its date come (a clock tick then): every view is A, the SRE historical, unmarked
    assert s.next_due == ahead.occurred_at - TOLERANCE + timedelta(seconds=1)
    later = ahead.occurred_at
    _, more = apply_event(s, sc.assessment(0, ecog=1).model_copy(update={"recorded_at": later}), now=later)
    [after] = _compressions(out + more)
    assert after.current is False
    assert all(i.name != "future_dated_record_to_verify" for i in after.evidence)


def test_dt_sc_a_compression_seen_again_tomorrow_publishes_nothing_new() -> None:
    """A re-confirmation (B and C agree): B's SRE, the one already published (same ID): nothing is published."""
    s, out = _run([SEEN])
    again = _at(sc.finding(0, **sc.T9, cord_compression=True), T0 + DAY, NOW)
    _, more = apply_event(s, again, now=NOW)
    assert [x for x in more if isinstance(x, SkeletalEvent)] == []
    assert [x.current for x in _compressions(out + more)] == [True]


def test_dt_sc_a_compression_stated_only_tomorrow_over_a_current_no_is_a_s() -> None:
    """FH-SC2's case: B (current "no": no SRE) and C (the future "yes" now: current) disagree; B has no emergency: A's
    unit, today's behaviour (a current SRE from the future-dated report, unmarked; see the report to the lead)."""
    no = sc.finding(0, **sc.T9, cord_compression=False)
    yes = _at(sc.finding(0, **sc.T9, cord_compression=True), T0 + DAY, NOW)
    _, out = _run([no, yes])
    [sre] = _compressions(out)
    assert sre.current is True
    assert all(i.name != "future_dated_record_to_verify" for i in sre.evidence)


def test_dt_sc_an_entered_in_error_dated_ahead_never_brings_back_what_it_withdraws() -> None:
    """Corrections resolved on the whole record set before anything is left out (review R28-SC)."""
    later = sc.finding(5, **sc.T9)
    error = _at(
        sc.finding(0, **sc.T9, record_status="entered-in-error", corrects=SEEN.event_id), T0 + DAY, T0 + 30 * MINUTE
    )
    ahead = _at(sc.finding(0, **sc.T9, size_cm=3.0), T0 + DAY, T0 + 40 * MINUTE)  # a future fact: views decided
    _, out = _run([SEEN, later, error, ahead])
    assert _compressions(out) == []
