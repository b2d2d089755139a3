"""Review R31-SYS2 of 11def4a (HAZ-27-FUTURE-HIDES, systemic planner "decide twice",
services/systemic_planner/as_of.py):
a correction of a clinical assessment dated ahead (a producer's clock ahead) makes the planner decide twice; view B
leaves out the corrections "not yet in force" (`_pending` / `_fixes_ahead`, as_of.py L233-251).

SYS-SCHEDULE (RULES.md; guideline L1136-1140, L1279-1281): zoledronic acid is monthly in the multi-metastatic situation;
"en cas d'obtention d'une réponse complète oncologique (ou d'une bonne réponse), il sera possible d'espacer [...] à un
rythme trimestriel". SYS-AR-START (L1068-1074): a start when life expectancy is > 3 months.

Defect (strict xfails until the session-31 fix, markers removed: `as_of._pending` no longer leaves out a correction
ahead that a current correction builds on; tests/unit/test_s31_sys2_fix.py): `_fixes_ahead` left out of B a
correction dated ahead of a CURRENT record even when a CURRENT correction has already built on it (an entry in error
of that amendment, an amendment of that amendment). B then breaks the chain: the record the amendment ahead replaced
counts again (corrections.py: "withdrawing an amendment never brings back what it replaced"), B's P3M (a "good"
response the hospital withdrew or replaced) is published with its order, marked, though every current record says
progression. Regression of 11def4a: its parent 1dc5611 decided A alone there (P1M), as the history where the
amendment was never dated ahead does.

Concern (strict xfail until the session-31 fix, marker removed: where B's orders only space zoledronic acid that A's
keep monthly, A's monthly order is published marked, `as_of_merge._spaces`; the review's judgment): an entry in error
dated ahead of today's only "good" now makes the planner decide twice, and B's P3M (the entry not yet in force) is
drafted, marked, where the parent drafted P1M.

Guards (pass): the tick of an amendment naming none dated ahead, and the plan from then equal to a history where it
was never ahead; any arrival order of the same records; the shared `target()` is the fold's `_target`; current
corrections only: decision A alone."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from contracts.hospital import ClinicalAssessment
from services.systemic_planner import as_of
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from services.systemic_planner.records import AssessmentRecord
from services.systemic_planner.state import SystemicState
from shared.clinical.corrections import chains, target
from tests.unit.test_review_r29sys_future_silent import _ahead, _base, _plan, _za
from tests.unit.test_systemic_rules import NOW, le, met, oligo, run

DAY = timedelta(days=1)


def _history(today: str, older: str = "progression") -> tuple[list[Any], ClinicalAssessment]:
    """A zoledronic acid course under way, multi-metastatic; an assessment 40 days ago (`older`), today's (`today`)."""
    past = le(-60 * 24 * 40, 12.0, oncological_response=older)
    now = le(5, 12.0, oncological_response=today)
    return [*_base(met(0)), _za(4, "2026-10-25"), past, now, oligo(6, "multi_metastatic")], now


def _intervals(s: SystemicState, now: datetime = NOW) -> list[str | None]:
    m.clear()
    plan = {x.key: x for x in build_plan(s, r.AsOf(now=now, memo=False))}
    return [o.interval for o in plan["antiresorptive"].orders]


def _dumped(s: SystemicState, now: datetime) -> list[str]:
    m.clear()
    return [x.model_dump_json() for x in build_plan(s, r.AsOf(now=now, memo=False))]


def _eie_of_amendment_ahead() -> tuple[list[Any], ClinicalAssessment, ClinicalAssessment, ClinicalAssessment]:
    """Today's "good" amended by a record dated tomorrow (clock ahead); a clinician's entry in error of that amendment,
    current (recorded after it)."""
    events, today = _history("good")
    amended = _ahead(today, DAY, record_status="amended", corrects=today.event_id, oncological_response="good")
    eie = today.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "entered-in-error",
            "corrects": amended.event_id,
            "occurred_at": NOW,
            "recorded_at": NOW + timedelta(minutes=1),
        }
    )
    return events, today, amended, eie


def test_review_r31sys2_an_entry_in_error_of_an_amendment_ahead_does_not_space_the_infusions() -> None:
    """SYS-SCHEDULE L1136-1140: spacing to every 3 months needs a good response. Today's "good" was amended by a record
    dated tomorrow, and that amendment was then entered in error (current): the record is withdrawn (corrections.py:
    withdrawing an amendment never brings back what it replaced), the response in force is the older progression.
    `_fixes_ahead` (as_of.py L239-251) counts the amendment "not yet in force" (it corrects today's record, current),
    whatever the current entry in error says of it; B's `effective` (L213-214) then finds the entry naming a record not
    held and today's "good" corrected by nothing: B reads "good", C (A's) progression, and the merge publishes B's
    P3M order, marked "décidé sur les données actuelles". The parent 1dc5611 published P1M (decision A)."""
    events, _, amended, eie = _eie_of_amendment_ahead()
    s, _ = run([*events, amended, eie])
    never_ahead, _ = run([*events, amended.model_copy(update={"occurred_at": NOW - timedelta(minutes=5)}), eie])
    assert _intervals(never_ahead) == ["P1M"]  # the record withdrawn: the older progression holds
    assert _intervals(s) != ["P3M"], "P3M drafted on a 'good' response whose record was entered in error"


def test_review_r31sys2_a_current_amendment_of_an_amendment_ahead_does_not_space_the_infusions() -> None:
    """SYS-SCHEDULE L1136-1140. Today's "good" (08:05) was amended by a record dated tomorrow (clock ahead); that
    amendment was amended again, current, with the consultation's own time (08:03) and "progression": the version that
    counts is that current one (A: P1M). B leaves out the amendment ahead (`_fixes_ahead` L239-251: it corrects today's
    record, current), so both today's original and the current amendment count in B, and the newer by clinical time,
    the superseded "good", is B's response: P3M published with its order, marked."""
    events, today = _history("good")
    amended = _ahead(today, DAY, record_status="amended", corrects=today.event_id, oncological_response="good")
    again = today.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "record_status": "amended",
            "corrects": amended.event_id,
            "occurred_at": today.occurred_at - timedelta(minutes=2),
            "recorded_at": NOW + timedelta(minutes=1),
            "oncological_response": "progression",
        }
    )
    s, _ = run([*events, amended, again])
    never_ahead, _ = run([*events, amended.model_copy(update={"occurred_at": today.occurred_at}), again])
    assert _intervals(never_ahead) == ["P1M"]  # the version in force: progression
    assert _intervals(s) != ["P3M"], "P3M drafted on a superseded version of today's assessment"


def test_review_r31sys2_an_amendment_naming_none_ahead_ticks_and_then_equals_a_history_where_it_was_never_ahead() -> (
    None
):
    """SYS-SCHEDULE L1136-1140: today's progression amended (naming none) by a record dated tomorrow saying "good".
    Today: monthly (B and A agree on P1M or P1M is published marked), never P3M. A tick no later than the amendment
    becomes current; from then, the plan is the one of a history where the amendment arrived then (not ahead)."""
    events, today = _history("progression", older="good")
    base, _ = run(events)
    am = _ahead(today, DAY, record_status="amended", oncological_response="good")  # corrects: None
    s, _ = run([am], base)
    assert as_of.involves_future(s, r.AsOf(now=NOW))
    assert _intervals(s) == ["P1M"]
    m.clear()
    at = r.AsOf(now=NOW, memo=False)
    build_plan(s, at)
    edge = am.occurred_at - r.Recency().future_tolerance
    due = at.next_due()
    assert due is not None and due <= edge + timedelta(seconds=1), (due, edge)
    then = edge + timedelta(minutes=1)
    assert not as_of.involves_future(s, r.AsOf(now=then))
    arrived, _ = run([am.model_copy(update={"recorded_at": then})], base, now=then)
    assert _dumped(s, then) == _dumped(arrived, then)
    assert _intervals(s, then) == ["P3M"]  # in force from its date (good response: may be spaced)


def test_review_r31sys2_any_arrival_order_of_the_same_records_gives_the_same_plan() -> None:
    """Determinism: the entry in error of an amendment dated ahead, the amendment, today's and the older assessments,
    in every arrival order (the state, hence the plan, is the set's): one plan."""
    events, _, amended, eie = _eie_of_amendment_ahead()
    assessed = [e for e in events if isinstance(e, ClinicalAssessment)] + [amended, eie]
    rest = [e for e in events if not isinstance(e, ClinicalAssessment)]
    plans = set()
    for order in itertools.permutations(assessed):
        s, _ = run([*rest, *order])
        plans.add(tuple(_dumped(s, NOW)))
    assert len(plans) == 1


def _record(rnd: random.Random, rows: list[AssessmentRecord], i: int) -> AssessmentRecord:
    at = NOW + timedelta(minutes=rnd.randint(-600, 600))
    kind = rnd.choice(["final", "final", "amended", "entered-in-error"]) if rows else "final"
    named = rnd.choice(rows).event_id if rows and (kind == "entered-in-error" or rnd.random() < 0.5) else None
    return AssessmentRecord.of(
        ClinicalAssessment.model_validate(
            {
                "event_id": uuid.UUID(int=rnd.getrandbits(128)),
                "patient_id": "p1",
                "occurred_at": at,
                "recorded_at": NOW + timedelta(minutes=i),
                "source": "t",
                "life_expectancy_months": 12.0,
                "record_status": kind,
                "corrects": named,
            }
        )
    )


def test_review_r31sys2_the_shared_target_is_the_folds() -> None:
    """`corrections.target` (used by as_of._fixes_ahead) gives, for every correction, the target the fold's walk uses
    (`chains(...).targets`, `_target`): an amendment naming none, its patient's newest record recorded before it."""
    rnd = random.Random(31)
    for _ in range(200):
        rows: list[AssessmentRecord] = []
        for i in range(rnd.randint(1, 7)):
            rows.append(_record(rnd, rows, i))
        rnd.shuffle(rows)
        walked = chains(rows, lambda _: "patient")
        for x in rows:
            if x.record_status != "final":
                assert target(x, reversed(rows), lambda _: "patient") == walked.targets[x.event_id]


def test_review_r31sys2_current_corrections_only_are_decision_a() -> None:
    """No record dated ahead (a current entry in error and a current amendment naming none): no second decision."""
    events, today = _history("good")
    eie = today.model_copy(
        update={"event_id": uuid.uuid4(), "record_status": "entered-in-error", "corrects": today.event_id}
    )
    am = today.model_copy(update={"event_id": uuid.uuid4(), "record_status": "amended", "recorded_at": NOW})
    for extra in ([eie], [am]):
        s, _ = run([*events, *extra])
        assert not as_of.involves_future(s, r.AsOf(now=NOW))
        assert "antiresorptive" in _plan(s)


def test_review_r31sys2_an_entry_in_error_ahead_of_todays_good_response_does_not_draft_the_spacing() -> None:
    """SYS-SCHEDULE L1136-1140: spacing to every 3 months is an option ("il sera possible") after a good response;
    monthly is the rule. Today's "good" is the only good response; an entry in error of it, dated tomorrow (clock
    ahead) but recorded now, says it is wrong. The new trigger (`_fixes_assessments_ahead`, L103-105, L118) sends this
    case to the views: B (the entry "not yet in force", L239-251) reads "good", C (A's) the older progression, and the
    merge drafts B's P3M order, marked. The parent 1dc5611 decided A alone: P1M. The symmetric case (an entry in
    error ahead of today's progression) publishes P1M (B's, R30-SYS); here the less cautious order is drafted on a
    response the hospital has already withdrawn (judgment of the review: the spacing should be suspended, or P1M)."""
    events, today = _history("good")
    eie = _ahead(today, DAY, record_status="entered-in-error", corrects=today.event_id)
    s, _ = run([*events, eie])
    assert as_of.involves_future(s, r.AsOf(now=NOW))
    assert _intervals(s) != ["P3M"], "P3M drafted on a response an entry in error (dated ahead) withdraws"
