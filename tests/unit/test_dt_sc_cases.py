"""HAZ-27-FUTURE-HIDES in scoring, "decide twice" (services/scoring/as_of.py): minimal cases (CLASS-SRE L259-296,
RT-MSCC L1397-1402)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from services.scoring import as_of
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


def test_dt_sc_a_compression_stated_only_tomorrow_over_a_current_no_is_a_s_marked_to_verify() -> None:
    """FH-SC2's case: B (current "no": no SRE) and C (the future "yes" now: current) disagree; A's emergency B lacks:
    A's unit kept (the cautious side), marked "à vérifier" with the future-dated report, saying it rests on it
    (review R29-SC)."""
    no = sc.finding(0, **sc.T9, cord_compression=False)
    yes = _at(sc.finding(0, **sc.T9, cord_compression=True), T0 + DAY, NOW)
    _, out = _run([no, yes])
    [sre] = _compressions(out)
    assert sre.current is True
    [shown] = [i for i in sre.evidence if i.name == "future_dated_record_to_verify"]
    assert (shown.source_event_id, shown.occurred_at) == (yes.event_id, yes.occurred_at)
    assert isinstance(shown.value, str) and shown.value.startswith("À vérifier : cette décision repose sur")


def test_dt_sc_an_entered_in_error_dated_ahead_never_brings_back_what_it_withdraws() -> None:
    """Corrections resolved on the whole record set before anything is left out (review R28-SC)."""
    later = sc.finding(5, **sc.T9)
    error = _at(
        sc.finding(0, **sc.T9, record_status="entered-in-error", corrects=SEEN.event_id), T0 + DAY, T0 + 30 * MINUTE
    )
    ahead = _at(sc.finding(0, **sc.T9, size_cm=3.0), T0 + DAY, T0 + 40 * MINUTE)  # a future fact: views decided
    _, out = _run([SEEN, later, error, ahead])
    assert _compressions(out) == []


# ---- review R29-SC: view B's versions (as_of.in_force_now), chain by chain -------------------------------------------
HOUR = timedelta(hours=1)
LIMIT = NOW + TOLERANCE


def _version(status: str, corrects: Any, occurred: datetime, recorded: datetime) -> Any:
    return _at(sc.finding(0, **sc.T9, record_status=status, corrects=corrects), occurred, recorded)


def _in_force(rows: list[Any]) -> list[Any]:
    return as_of.in_force_now(rows, lambda f: f.lesion_id, LIMIT)


def test_dt_sc_b_reads_the_chain_s_newest_current_version_not_the_one_a_future_amendment_names() -> None:
    o = _version("final", None, T0, T0)
    a1 = _version("amended", o.event_id, T0 + HOUR, T0 + HOUR)
    for named in (o.event_id, a1.event_id, None):  # by the original's ID, the version in force's, or none
        a2 = _version("amended", named, T0 + DAY, NOW)
        assert _in_force([o, a1, a2]) == [a1], named


def test_dt_sc_b_never_brings_back_a_record_withdrawn_before_a_future_amendment() -> None:
    """An entered-in-error (current) withdrew the record; an amendment dated ahead gives it a version again: in B the
    record is still withdrawn (never its origin, never the version withdrawn)."""
    o = _version("final", None, T0, T0)
    a1 = _version("amended", o.event_id, T0 + HOUR, T0 + HOUR)
    for named in (o.event_id, a1.event_id):
        error = _version("entered-in-error", named, T0 + HOUR, T0 + HOUR + MINUTE)
        a2 = _version("amended", o.event_id, T0 + DAY, NOW)
        assert _in_force([o, a1, error, a2]) == [], named


def test_dt_sc_b_reads_the_origin_only_when_no_current_amendment_exists() -> None:
    o = _version("final", None, T0, T0)
    a2 = _version("amended", o.event_id, T0 + DAY, NOW)
    assert _in_force([o, a2]) == [o]
    ahead = _version("final", None, T0 + DAY, T0)  # an origin dated ahead itself: no version in B
    assert _in_force([ahead, _version("amended", ahead.event_id, T0 + 2 * DAY, NOW)]) == []
    # a current amendment recorded after the one dated ahead counts (the newest by recorded time): unchanged
    a3 = _version("amended", o.event_id, T0 + HOUR, NOW + MINUTE)
    assert _in_force([o, a2, a3]) == [a3]
