"""Review R30-SYS (HAZ-27-FUTURE-HIDES, systemic planner view B, `as_of.views`, session 30): the oncological response.

SYS-SCHEDULE (RULES.md; guideline L1136-1140, L1279-1281): in the multi-metastatic situation zoledronic acid is given
monthly; only after a complete (or good) oncological response may it be spaced to every 3 months. Today's assessment
says "progression" (monthly, P1M); an older one said "good". A correction of today's assessment dated ahead (a
producer's clock ahead) must not space the infusions, and never silently:

1. An entry in error dated tomorrow naming today's progression: the merge withdraws it at once (the fold resolves the
   corrections on every record, whatever its date), the older "good" comes back as the response, and the order
   becomes P3M with nothing said (`involves_future` reads `s.response`, the fold's result, which is no longer dated
   ahead, never `s.assessments`: the new "not yet in force" branch of view B is never reached).
2. An amendment dated tomorrow naming no record (`corrects` is optional for an amendment: the patient's latest), saying
   the same "progression": `_fixes_ahead` needs `corrects`, so view B resolves it on the whole set, loses today's
   progression too and reads the older "good": B's P3M is published (marked), although today's record, the
   amendment and A all say progression.

Both are also af35b1a's decisions (not regressions of the change; what it leaves uncovered).

Fixed in session 31: a correction of an assessment dated ahead makes the planner decide twice, and the record an
amendment naming none corrects is resolved as the fold does (`as_of._fixes_ahead`), so B reads today's progression."""

from __future__ import annotations

from datetime import timedelta

from contracts.hospital import ClinicalAssessment
from services.systemic_planner.state import SystemicState
from tests.unit.test_review_r29sys_future_silent import _ahead, _base, _plan, _za
from tests.unit.test_systemic_rules import le, met, oligo, run

DAY = timedelta(days=1)


def _history() -> tuple[SystemicState, ClinicalAssessment]:
    good = le(-60 * 24 * 40, 12.0, oncological_response="good")  # 40 days ago
    prog = le(5, 12.0, oncological_response="progression")  # today
    base, _ = run([*_base(met(0)), _za(4, "2026-10-25"), good, prog, oligo(6, "multi_metastatic")])
    assert [o.interval for o in _plan(base)["antiresorptive"].orders] == ["P1M"]
    return base, prog


def test_review_r30sys_an_entry_in_error_dated_ahead_of_todays_progression_does_not_space_the_infusions() -> None:
    """SYS-SCHEDULE L1136-1140: P3M only after a good response; today's is a progression until the correction's date."""
    base, prog = _history()
    eie = _ahead(prog, DAY, record_status="entered-in-error", corrects=prog.event_id)
    s, _ = run([eie], base)
    ar = _plan(s)["antiresorptive"]
    named = eie.event_id in {i.source_event_id for i in ar.inputs} and "vérifier" in ar.text_fr
    assert [o.interval for o in ar.orders] == ["P1M"] or (named and [o.interval for o in ar.orders] != ["P3M"])


def test_review_r30sys_an_amendment_naming_none_dated_ahead_saying_the_same_does_not_space_the_infusions() -> None:
    """SYS-SCHEDULE L1136-1140: every reading (today's record, the amendment, A) says progression: monthly."""
    base, prog = _history()
    am = _ahead(prog, DAY, record_status="amended", oncological_response="progression")  # corrects: None
    s, _ = run([am], base)
    ar = _plan(s)["antiresorptive"]
    assert [o.interval for o in ar.orders] == ["P1M"], (ar.orders, ar.text_fr[-200:])
