"""Review R29-SC: view B's corrections (services/scoring/as_of.in_force_now) walk a future version's `corrects`
pointer back, not its chain's versions.

shared/clinical/corrections.py: a record is a chain of versions; the one that counts is the NEWEST BY RECORDED TIME;
"an entered-in-error names a record as the hospital knows it, often by its first ID" (and so does a second
amendment). With an original O, a current amendment A1 of O (the version in force until now), and a second amendment
A2 of O recorded now but dated tomorrow (a producer's clock), the version in force is A2 (future-dated). B must read
the version that counts without A2: A1. in_force_now follows A2.corrects to O instead: the version A1 corrected
comes back in B.
- O says compression, A1 corrects it to "no", A2 (dated ahead) says "no" again: B (O) has a current compression,
  C (A2) none, A (A2) none: B's "emergency" is published, marked "à vérifier" -- a cord compression the record in
  force an hour ago had corrected away; 982e00c publishes none (a false emergency, a regression).
- O says no, A1 corrects it to compression, A2 (dated ahead) says no: B (O) none, C none: they agree, B's (none)
  is published silently: today's compression (A1, current) is withdrawn by the future-dated record with no "à
  vérifier" (as 982e00c: the R27B hazard this fix is for, left open on corrections).
Guideline: CLASS-SRE L259-296 (compression médullaire), RT-MSCC L1397-1402 (urgence).
Fix: replace a future-dated version in force by the newest version of ITS CHAIN (corrections.chain_roots, by
recorded time) that is not dated ahead and not withdrawn, instead of walking `corrects`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from services.scoring.domain import ScoringState, apply_event
from tests.unit import test_scoring_scores as sc

T0 = sc.T0
HOUR = timedelta(hours=1)
NOW = T0 + 2 * HOUR
TOMORROW = T0 + timedelta(days=1)


def _at(e: Any, occurred: datetime, recorded: datetime) -> Any:
    return e.model_copy(update={"occurred_at": occurred, "recorded_at": recorded})


def _chain(first: bool, amended: bool, ahead: bool) -> tuple[list[SkeletalEvent], list[SkeletalEvent], Any]:
    o = _at(sc.finding(0, **sc.T9, cord_compression=first), T0, T0)
    a1 = _at(
        sc.finding(0, **sc.T9, cord_compression=amended, record_status="amended", corrects=o.event_id),
        T0 + HOUR,
        T0 + HOUR,
    )
    a2 = sc.finding(0, **sc.T9, cord_compression=ahead, record_status="amended", corrects=o.event_id)
    a2 = _at(a2, TOMORROW, NOW)
    s, before = ScoringState(), list[Message]()
    for e, now in ((o, T0), (a1, T0 + HOUR)):
        s, out = apply_event(s, e, now=now)
        before += out
    _, out = apply_event(s, a2, now=NOW)
    return sc.live_sres(before), sc.live_sres(before + out), a2


def test_review_r29sc_a_second_amendment_dated_ahead_does_not_bring_back_a_corrected_compression() -> None:
    before, after, _ = _chain(first=True, amended=False, ahead=False)
    assert before == []  # A1 (in force) says no compression
    assert after == []  # is [cord_compression current, marked "à vérifier"]


def test_review_r29sc_a_second_amendment_dated_ahead_keeps_todays_amended_compression_to_verify() -> None:
    before, after, a2 = _chain(first=False, amended=True, ahead=False)
    assert [(x.kind, x.current) for x in before] == [("cord_compression", True)]
    [sre] = after  # is []: withdrawn
    assert sre.current is True
    shown = [i for i in sre.evidence if i.name == "future_dated_record_to_verify"]
    assert [(i.source_event_id, i.occurred_at) for i in shown] == [(a2.event_id, a2.occurred_at)]


def test_review_r29sc_a_second_amendment_dated_ahead_naming_the_first_amendment_holds() -> None:
    """Held: when A2 names A1 (the version in force), the walk back reaches A1: no compression comes back."""
    o = _at(sc.finding(0, **sc.T9, cord_compression=True), T0, T0)
    a1 = _at(
        sc.finding(0, **sc.T9, cord_compression=False, record_status="amended", corrects=o.event_id),
        T0 + HOUR,
        T0 + HOUR,
    )
    a2 = _at(
        sc.finding(0, **sc.T9, cord_compression=False, record_status="amended", corrects=a1.event_id), TOMORROW, NOW
    )
    s, out = ScoringState(), list[Message]()
    for e, now in ((o, T0), (a1, T0 + HOUR), (a2, NOW)):
        s, more = apply_event(s, e, now=now)
        out += more
    assert sc.live_sres(out) == []
