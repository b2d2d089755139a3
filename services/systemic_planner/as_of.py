"""HAZ-27-FUTURE-HIDES: "decide twice" where a fact dated in the future would hide the current one (pure).

The planner reads most dated facts as of `now` already: a lab value, a life-expectancy estimate, an SRE or a biopsy
dated beyond the clock-skew tolerance is left out until it becomes effective (`labs.latest`, LIFE_EXPECTANCY_KEPT,
`AsOf.is_future`: "never hides the newest real one"). Two folds keep the newest fact whatever its date instead:

- a lesion (IMG-ISOLATED, L489-491, read by SYS-AR-START, L1070-1074, L1263-1265): its newest stated status, and the
  modalities it was seen on (a CT dated tomorrow confirms a lesion seen on a bone scan today);
- the oncological response (SYS-SCHEDULE, L1138-1140, L1279-1281: a good response spaces zoledronic acid to every 3
  months, which is also how long an infusion keeps a course under way).

(The oligometastatic status, the third such fold, keeps one score only: the one it replaced is not held, so there is
no current reading to decide on; it stays as it is, see the report.)

When no such fact is dated in the future, nor a correction of a clinical assessment (the fold applies it at once:
review R30-SYS), the plan is decision A, the same code path (`decide`: one check of the dates, no view). Otherwise
the plan is decided on two more views of the same state, built here at decision time, never stored (the state is
unchanged):

- B, "the current one holds": the future-dated findings and responses left out, corrections resolved on the whole
  record set first (an amendment dated ahead never brings back the version it corrects), but a correction dated
  ahead of the current record it corrects (named, or resolved as the fold does) is not yet in force, unless a current
  correction builds on it (review R31-SYS2: its chain is then resolved as the fold does);
- C, "the future one holds now": each future-dated fact re-dated to `now + tolerance`, nothing else changed.

Per plan item (its key), A, B and C are merged (as_of_merge.py `merged`: which item is published, and how it is
marked). B and C are decided with the memo off (memo.py keys on fact IDs, which re-dating keeps). `next_due` keeps
A's deadlines and adds the views' and the instants the future facts become current (`t - tolerance`, as
`AsOf.is_future`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from contracts.plan import PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner.as_of_merge import merged
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from services.systemic_planner.state import LesionFacts, SystemicState, _merge_assessment, _merge_finding
from shared.clinical.corrections import effective, effective_findings, pending_ahead, pinned
from shared.clinical.facts import Fact, newest
from shared.clinical.newest import Newest, TimesAfter, instant, values_at

Decide = Callable[[SystemicState, r.AsOf], list[PlanItem]]
Rec = TypeVar("Rec", FindingRecord, AssessmentRecord)
_MICROSECOND: Final = timedelta(microseconds=1)


def _edge(t: datetime, at: r.AsOf) -> datetime | None:
    """`t - tolerance`, the instant `t` stops being in the future (`AsOf.is_future`), None when out of range."""
    try:
        return t - at.recency.future_tolerance
    except OverflowError:
        return None


def _ahead(t: datetime, at: r.AsOf) -> bool:
    """`at.is_future(t)` without narrowing `at`'s span nor offering a deadline (a check, not a reading)."""
    edge = _edge(t, at)
    return edge is not None and at.now < edge


def _lesion_times(lesions: dict[str, LesionFacts]) -> Iterator[datetime]:
    for x in lesions.values():
        yield x.first.occurred_at
        if x.status is not None:
            yield x.status.occurred_at


#: the newest clinical time of each findings and lesions table object (a table is never changed in place: `merge`
#: copies on write), so that the check costs one comparison per table and decision (shared/clinical/newest.py)
_FINDINGS: Final = Newest[dict[str, FindingRecord], datetime](values_at("occurred_at"), size=8192)
_LESIONS: Final = TimesAfter[dict[str, LesionFacts]](_lesion_times)


def _correction_times(assessments: dict[str, AssessmentRecord]) -> Iterator[datetime]:
    return (x.occurred_at for x in assessments.values() if x.record_status != "final")


#: the clinical assessments' corrections (review R30-SYS): one dated ahead applies at once in the fold (an entry in
#: error of today's estimate or response), whatever the fold then reads, so it is checked apart, once per table
_ASSESSMENT_FIXES: Final = TimesAfter[dict[str, AssessmentRecord]](_correction_times)


def _patient(_: AssessmentRecord) -> Hashable:
    return "patient"


def _lesion(x: FindingRecord) -> Hashable:
    return x.lesion_id


def _fixes_assessments_ahead(s: SystemicState, at: r.AsOf, limit: int) -> bool:
    """A correction of a clinical assessment dated ahead (`limit`: `_ahead`'s, as an instant)."""
    return _ASSESSMENT_FIXES.any(s.assessments, limit, lambda t: _ahead(t, at))


def involves_future(s: SystemicState, at: r.AsOf) -> bool:
    """A fact of the two folds is dated in the future (a finding, a lesion's status or first sighting, the
    response), or a correction of a clinical assessment (review R30-SYS: an entry in error dated ahead of today's
    life-expectancy estimate or response). False: the plan is decision A alone."""
    newest_finding = _FINDINGS(s.findings)
    if newest_finding is not None and _ahead(newest_finding, at):
        return True
    if s.response is not None and _ahead(s.response.occurred_at, at):
        return True
    limit = instant(at.now) + at.recency.future_tolerance // _MICROSECOND  # `_ahead`'s, as an instant
    return _LESIONS.any(s.lesions, limit, lambda t: _ahead(t, at)) or _fixes_assessments_ahead(s, at, limit)


@dataclass(frozen=True)
class Views:
    """B (current facts only) and C (the future ones re-dated to `now + tolerance`), and the future-dated facts."""

    current: SystemicState
    redated: SystemicState
    future: tuple[Fact[str], ...]
    #: the clinical times of every record dated in the future, effective or not (a CT an entry in error dated after it
    #: withdraws, that entry itself): each one's date is a moment the views change (review R30-SYS), a tick
    ahead: tuple[datetime, ...] = ()


def views(s: SystemicState, at: r.AsOf) -> Views | None:
    """The two views, or None when B cannot be built: a fold of records no longer held (`finding_base`,
    `assessment_base`, retention.py) is itself dated in the future, so what was current before it is not known (the
    plan is then A, today's behaviour)."""
    try:
        redate_to = at.now + at.recency.future_tolerance
    except OverflowError:
        return None
    future: list[Fact[str]] = []

    def redate(f: Fact[str]) -> Fact[str]:
        return f.model_copy(update={"occurred_at": redate_to}) if _ahead(f.occurred_at, at) else f

    # lesions: B folds each lesion with a future-dated record again from its effective records (resolved on the
    # whole set: HAZ-27-FUTURE-HIDES, corrections are never re-targeted) but those; C re-dates A's fold. A correction
    # dated ahead of the current record it names is not yet in force in B (review R29-SYS, R29B's rule as the
    # radiotherapy planner's): that record stands as it is until the correction's date
    found = effective_findings(s.findings.values())
    pending = _pending(s.findings, _lesion, at)
    in_force = (  # each amendment naming none kept on its whole-set target (`pinned`, reviews R32-FA2, R32-RETAIN)
        found
        if not pending
        else effective_findings(x for x in pinned(s.findings.values(), _lesion) if x.event_id not in pending)
    )
    ahead = [x for x in found if _ahead(x.occurred_at, at)]
    future += [x.fact(x.status or x.modality) for x in ahead]
    listed = {x.event_id for x in ahead}
    future += [x.fact(x.record_status) for x in pending.values() if x.event_id not in listed]  # an entry in error
    # every lesion whose records counting differ once those corrections are left out (review R30-SYS: the lesion of
    # the record named, of the version that counts, moved to another lesion ID, of an amendment naming none)
    changed = {x.event_id for x in found} ^ {x.event_id for x in in_force}
    touched = (
        {x.lesion_id for x in ahead}
        | {x.lesion_id for x in (*found, *in_force) if x.event_id in changed}
        | {
            lesion_id
            for lesion_id, x in s.lesions.items()
            if _ahead(x.first.occurred_at, at) or (x.status is not None and _ahead(x.status.occurred_at, at))
        }
    )
    current, redated = dict(s.lesions), dict(s.lesions)
    for lesion_id in sorted(touched):
        base = s.finding_base.get(lesion_id)
        if base is not None and (
            _ahead(base.first.occurred_at, at) or (base.status is not None and _ahead(base.status.occurred_at, at))
        ):
            return None
        folded: LesionFacts | None = base
        for x in in_force:
            if x.lesion_id == lesion_id and not _ahead(x.occurred_at, at):
                folded = _merge_finding(folded, x)
        if folded is None:
            current.pop(lesion_id, None)
        else:
            current[lesion_id] = folded
        lesion = s.lesions.get(lesion_id)
        if lesion is not None:
            status = None if lesion.status is None else redate(lesion.status)
            redated[lesion_id] = LesionFacts(first=redate(lesion.first), modalities=lesion.modalities, status=status)
    # the oncological response: B the newest effective one not dated in the future, C A's re-dated; the
    # life-expectancy estimates (SYS-AR-START L1070-1074; `life_expectancy` leaves out those dated ahead): B's fold
    # without the corrections not yet in force (review R30-SYS), C A's (an amended estimate dated ahead is not
    # re-dated: A, B and C would then all differ and the merge would keep A's item unmarked; as it is, A = C, marked)
    response = s.response
    response_ahead = response is not None and _ahead(response.occurred_at, at)
    fixes: dict[uuid.UUID, AssessmentRecord] = {}
    if _fixes_assessments_ahead(s, at, instant(at.now) + at.recency.future_tolerance // _MICROSECOND):
        fixes = _pending(s.assessments, _patient, at)
    update_b: dict[str, Any] = {"lesions": current}
    update_c: dict[str, Any] = {"lesions": redated}
    if response_ahead or fixes:
        kept = s.assessment_base.response if s.assessment_base is not None else None
        if kept is not None and _ahead(kept.occurred_at, at):
            return None
        assessed: list[AssessmentRecord] = effective(s.assessments.values(), _patient)
        if response_ahead:
            future += [
                y.fact(y.oncological_response)
                for y in assessed
                if y.oncological_response is not None and _ahead(y.occurred_at, at)
            ]
        listed = {f.event_id for f in future}
        future += [y.fact(y.record_status) for y in fixes.values() if y.event_id not in listed]
        # B: a correction dated ahead of the current assessment it corrects is not yet in force (as the findings')
        held = (
            effective((y for y in pinned(s.assessments.values(), _patient) if y.event_id not in fixes), _patient)
            if fixes
            else assessed
        )
        for y in held:
            if y.oncological_response is not None and not _ahead(y.occurred_at, at):
                kept = newest(kept, y.fact(y.oncological_response))
        update_b["response"] = kept
        if fixes:  # folded as `state.merge` folds them, from what assessments no longer held said
            fold = s.assessment_base
            scratch = SystemicState(life_expectancies=list(fold.life_expectancies) if fold is not None else [])
            for y in held:
                _merge_assessment(scratch, y)
            update_b["life_expectancies"] = scratch.life_expectancies
        update_c["response"] = None if response is None else redate(response)
    b, c = s.model_copy(update=update_b), s.model_copy(update=update_c)
    records: list[FindingRecord | AssessmentRecord] = [*s.findings.values(), *s.assessments.values()]
    dates = tuple(sorted({x.occurred_at for x in records if _ahead(x.occurred_at, at)}))
    return Views(b, c, tuple(sorted(future, key=lambda f: f.order())), dates)


def _pending(records: Mapping[str, Rec], group: Callable[[Rec], Hashable], at: r.AsOf) -> dict[uuid.UUID, Rec]:
    """The corrections dated ahead of a current record not yet in force in B (shared/clinical/corrections.py
    `pending_ahead`, review R31-SYS2: but those a current correction builds on; SYS-SCHEDULE L1136-1140, a withdrawn
    "good" spacing to P3M)."""
    return pending_ahead(records, group, lambda t: _ahead(t, at))


def _view_at(at: r.AsOf) -> r.AsOf:
    """A fresh `AsOf` at the same `now` and settings, memo off: a view never shares a memo entry with A."""
    return r.AsOf(now=at.now, tz=at.tz, recency=at.recency, memo=False)


def decide(s: SystemicState, at: r.AsOf, once: Decide) -> list[PlanItem]:
    """The plan as of `at.now`: `once(s, at)` (A) when no fact of the two folds is dated in the future; else the
    per-item merge of A, B and C. `at` keeps A's deadlines and gets the views' and the future facts' own."""
    if not involves_future(s, at):
        return once(s, at)
    a = once(s, at)
    made = views(s, at)
    if made is None:
        return a
    at_b, at_c = _view_at(at), _view_at(at)
    b, c = once(made.current, at_b), once(made.redated, at_c)
    for d in (*at_b.deadlines, *at_c.deadlines):
        at.after(d)
    for t in (*(f.occurred_at for f in made.future), *made.ahead):
        edge = _edge(t, at)
        if edge is not None:
            at.after(edge)  # when it becomes current (`AsOf.is_future`'s edge, HAZ-27-SYS-FUTURE; R30-SYS)
    return merged(a, b, c, made.future)
