"""Review R28-SC of HAZ-27-FUTURE-HIDES in scoring (services/scoring/current.py, merge de07ce7 + cb97e73).

`current_lesions` / `current_assessment` leave the future-dated records out BEFORE resolving the corrections
(`effective_findings(f for f in rows if f.occurred_at <= limit)`), where corrections.py resolves a chain of versions
over the whole set of records ("the answer depends only on the set of records"). Two regressions against c63da6d
(where each case below decides as the baseline says):

- an amendment that names no record (`corrects` None: "or the lesion's latest", contracts/hospital.py) replaces the
  newest record recorded before it, by clinical time: a future-dated one. Left out first, the amendment replaces
  the current record behind it instead, and what that one showed is lost until the future date comes: today's cord
  compression SRE (CLASS-SRE L259-296) is withdrawn; for an assessment, the deficit that infers it (RT-MSCC
  L1397-1402) is replaced by an older "no deficit";
- an entered-in-error dated in the future of a current record: left out, the record it withdraws counts again, as a
  current value: a cord compression entered in error is asserted as today's emergency. (An amended version dated in
  the future brings back the version it replaced as well: a judgment call, not tested here; with the version in
  force left out and nothing in its place, an amendment re-confirming today's compression with tomorrow's date
  would withdraw it: R27B's case, as an amendment.)

Resolving the chains over every record, then, for a chain whose version in force is dated in the future, reading
its newest version that is not (none when it is withdrawn, whatever the withdrawal's date) keeps every case here
and R27B's.

Two more, not from the change but worse than its stated residuals (HAZ-27-FUTURE-HIDES):
- past retention's FINDINGS_KEPT (16, per patient, not per lesion) future-dated findings, a future one is folded
  into a lesion's summary with the current one and its `cord_compression: false` acts at once: the current
  compression SRE is withdrawn (the residual says "a lesion status/site"; current.py's docstring says "never a wrong
  current value");
- a decompression dated tomorrow makes today's cord compression SRE historical now (`current` false): an emergency
  downgraded, not only "future-dated treatments make their SRE at once".

Each needs a producer whose clock runs ahead of scoring's (shared/runtime/decoding.not_future checks a record's
dates against its own timestamp). current.py was reverted (f605b74): the first three cases pass on main and stay as
regression tests for the next fix; the last two are pre-existing, strict xfails."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from services.scoring.domain import ScoringState, apply_event
from services.scoring.retention import FINDINGS_KEPT
from tests.unit import test_scoring_scores as sc

T0 = sc.T0
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
NOW = T0 + timedelta(hours=2)
RESIDUAL = "review R28-SC: a future-dated fact folded into a lesion's summary withdraws a current compression"
TREATMENT = "review R28-SC: a future-dated decompression makes today's cord compression historical"


def _at(e: Any, occurred: datetime, recorded: datetime) -> Any:
    return e.model_copy(update={"occurred_at": occurred, "recorded_at": recorded})


def _compressions(events: list[Message]) -> list[bool | None]:
    """The live cord-compression SREs' `current` after `events`, each applied at NOW."""
    s, out = ScoringState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        out += o
    return [x.current for x in sc.live_sres(out) if x.kind == "cord_compression"]


def _compression_seen() -> Any:
    return sc.finding(0, **sc.T9, cord_compression=True)


def _redated_report() -> list[Message]:
    """A report of T9 dated tomorrow (its producer's clock ahead), then its amendment with the right date, naming
    no record (so, the lesion's latest recorded before it: that report)."""
    ahead = _at(sc.finding(0, **sc.T9, size_cm=2.0), T0 + DAY, T0 + 30 * MINUTE)
    fixed = _at(sc.finding(0, **sc.T9, size_cm=2.0, record_status="amended"), T0 + 40 * MINUTE, T0 + 50 * MINUTE)
    return [ahead, fixed]


def test_review_r28sc_the_baselines() -> None:
    """What the xfails compare with (they pass): today's compression alone; the same with the report and its
    amendment once the report's date has come (every record current: the amendment replaces that report); a
    correction dated today withdraws the compression."""
    seen = _compression_seen()
    assert _compressions([seen]) == [True]
    s, out = ScoringState(), list[Message]()
    for e in [seen, *_redated_report()]:
        s, o = apply_event(s, e, now=T0 + 2 * DAY)
        out += o
    assert [x.current for x in sc.live_sres(out) if x.kind == "cord_compression"] == [True]
    later = sc.finding(5, **sc.T9)
    error = _at(
        sc.finding(0, **sc.T9, record_status="entered-in-error", corrects=seen.event_id), T0 + MINUTE, T0 + 30 * MINUTE
    )
    assert _compressions([seen, later, error]) == []


def test_review_r28sc_an_amendment_dating_a_future_report_again_keeps_todays_compression() -> None:
    """CLASS-SRE: the amendment replaces the report dated tomorrow (c63da6d: [True]); current.py makes it replace
    today's compression report, and the compression SRE is withdrawn (it comes back at tomorrow's date)."""
    assert _compressions([_compression_seen(), *_redated_report()]) == [True]  # is []


def test_review_r28sc_an_assessment_amendment_of_a_future_one_keeps_todays_deficit() -> None:
    """RT-MSCC L1397-1402 / CLASS-SRE: an epidural extension with today's deficit is a compression; an assessment
    dated tomorrow and its amendment with today's date (naming none) replace no current deficit (c63da6d: [True]).
    current.py makes the amendment replace today's deficit: yesterday's "no deficit" is read, the SRE withdrawn."""
    yesterday = _at(sc.assessment(0, neurological_deficit=False), T0 - DAY, T0 - DAY)
    epidural = sc.finding(0, **sc.T9, epidural_extension=True)
    deficit = sc.assessment(10, neurological_deficit=True)
    ahead = _at(sc.assessment(0, ecog=2), T0 + DAY, T0 + 30 * MINUTE)
    fixed = _at(sc.assessment(0, ecog=1, record_status="amended"), T0 + 40 * MINUTE, T0 + 50 * MINUTE)
    assert _compressions([yesterday, epidural, deficit]) == [True]
    assert _compressions([yesterday, epidural, deficit, ahead, fixed]) == [True]  # is []


def test_review_r28sc_an_entered_in_error_dated_tomorrow_brings_back_no_withdrawn_compression() -> None:
    """Corrections: a record entered in error never counts again (shared/clinical/corrections.py); the withdrawal
    states no clinical fact, its date decides nothing. Today's compression report withdrawn by a record dated
    tomorrow: c63da6d asserts no current compression; current.py asserts the withdrawn report's compression as
    today's (a wrong current value)."""
    seen, later = _compression_seen(), sc.finding(5, **sc.T9)
    fields: dict[str, Any] = {"record_status": "entered-in-error", "corrects": seen.event_id}
    error = _at(sc.finding(0, **sc.T9, **fields), T0 + DAY, T0 + 30 * MINUTE)
    assert _compressions([seen, later, error]) == []  # is [True]


def test_review_r28sc_past_the_kept_findings_a_future_one_does_not_withdraw_todays_compression() -> None:
    """One finding of T9 dated tomorrow saying "no compression" and FINDINGS_KEPT of other lesions dated later: the
    T9 one is folded with today's report into T9's summary (retention keeps the newest by clinical time, patient-
    wide), whose newest statement is the future "no compression": the current SRE is withdrawn (with one finding
    fewer it stays). Fail-safe would keep it, or read it as not current, never withdraw the emergency."""
    no_longer = _at(sc.finding(0, **sc.T9, cord_compression=False), T0 + DAY, T0 + 30 * MINUTE)
    others = [
        _at(sc.finding(0, lesion_id=f"hum-{i}", skeletal_site="humerus"), T0 + (i + 2) * DAY, T0 + 30 * MINUTE)
        for i in range(FINDINGS_KEPT)
    ]
    then = sc.assessment(20, ecog=1)  # the next event decided (retention folds after a transition's decisions)
    assert _compressions([_compression_seen(), no_longer, *others[:-1], then]) == [True]
    assert _compressions([_compression_seen(), no_longer, *others, then]) == [True]  # is []


def test_review_r28sc_a_decompression_dated_tomorrow_leaves_todays_compression_current() -> None:
    """CLASS-SRE: a cord compression is current while untreated; a decompression dated tomorrow (left out of every
    decision) makes it historical today (also on c63da6d)."""
    surgery = sc.treatment(0, kind="surgery", site="T9", procedure="decompression", on="2026-11-02")
    assert _compressions([_compression_seen(), _at(surgery, T0 + DAY, T0 + 30 * MINUTE)]) == [True]  # is [False]
