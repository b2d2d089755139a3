"""HAZ-27-FUTURE-HIDES: "decide twice" where a fact dated in the future would hide the current one (pure).

The planner reads most dated facts as of `now` already: a lab value, a life-expectancy estimate, an SRE or a biopsy
dated beyond the clock-skew tolerance is left out until it becomes effective (`inputs.latest`, LIFE_EXPECTANCY_KEPT,
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

Per plan item (its key), `merged`: B and C agree (the item but its inputs: presence, rule, status, severity, texts,
orders, checks): B's item (decided on current data). They disagree: A's item (today's behaviour), except when B's item
is critical and A's is not (or absent): B's item, marked "à vérifier" with the future-dated facts as inputs; and when
A has none: B's recommendation (or any item of B's with an order) suspended ("cannot decide", a warning, no order, the
future-dated facts as inputs), B's other items kept with their texts, marked and naming those facts (`kept`), left out
only when not an alert and contradicting A's reading published marked (`read_ahead`, `contradicts`): never a silent
withdrawal (session 31, review R31-MERGE). Where A reads the record ahead (A decides as C) with no alert and B gives
one, B's item is published, suspended or marked (an alert is never withdrawn on a record not yet current); where
it drafts another order than B's, B's, marked (R29B), but where B's only spaces zoledronic acid A's keeps monthly,
A's, marked (review R31-SYS2, SYS-SCHEDULE L1136-1140: monthly holds on either reading). An item
only C gives is never published. B and C are
decided with the memo off (memo.py keys on fact IDs, which re-dating keeps). `next_due` keeps A's deadlines and adds
the views' and the instants the future facts become current (`t - tolerance`, as `AsOf.is_future`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from contracts.base import InputUsed
from contracts.plan import PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date
from services.systemic_planner.inputs import LesionFacts, SystemicState, _merge_assessment, _merge_finding
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from shared.clinical.corrections import effective, effective_findings, pending_ahead, pinned
from shared.clinical.dates import HOSPITAL_TZ
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
        if fixes:  # folded as `inputs.merge` folds them, from what assessments no longer held said
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


def _decision(x: PlanItem | None) -> str | None:
    """What B and C must agree on: the item but its inputs (presence, rule, status, severity, texts, orders, checks:
    the schedule a response gives is said in the text only, SYS-SCHEDULE L1138-1140), not the facts' provenance."""
    return None if x is None else x.model_dump_json(exclude={"inputs"})


def _dates(future: tuple[Fact[str], ...]) -> str:
    """The records' days in the hospital's zone, as the planner's other dates (review R29-SYS)."""
    days = sorted({f.occurred_at.astimezone(HOSPITAL_TZ).date() for f in future})
    return ", ".join(fr_date(d) for d in days)


def _shown(future: tuple[Fact[str], ...]) -> list[InputUsed]:
    return [
        InputUsed(name="future_dated_record", value=f.value, occurred_at=f.occurred_at, source_event_id=f.event_id)
        for f in future
    ]


def read_ahead(x: PlanItem, future: tuple[Fact[str], ...], spacing: bool = False) -> PlanItem:
    """A's item where A read a record dated in the future as holding now (A decides as C) and current data decide
    otherwise (review R29-SYS: a "good" response dated tomorrow spacing the infusions, a restart shown under way):
    kept, said to rest on that record, to verify. `spacing`: current data would space the infusions A keeps monthly
    (review R31-SYS2, SYS-SCHEDULE L1136-1140): said so."""
    note = (
        f" À vérifier : cet élément tient compte d'un enregistrement daté dans le futur ({_dates(future)} ; "
        "imagerie ou évaluation clinique) ; les données actuelles conduisent à une autre décision : vérifier sa date "
        "(horloge du système qui l'a produit) et son contenu."
    )
    if spacing:
        note += (
            " Sur les données actuelles, l'espacement trimestriel serait possible (bonne réponse) ; il n'est pas "
            "proposé tant que cet enregistrement n'est pas vérifié : le rythme mensuel vaut dans les deux cas."
        )
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *_shown(future)]})


def to_verify(x: PlanItem, future: tuple[Fact[str], ...]) -> PlanItem:
    """B's emergency, published over A: the future-dated records shown as inputs and said to be verified."""
    dates = _dates(future)
    note = (
        f" À vérifier : un enregistrement daté dans le futur ({dates} ; imagerie ou évaluation clinique) contredit cet "
        "élément, décidé sur les données actuelles : sa date (horloge du système qui l'a produit) est à vérifier."
    )
    shown = _shown(future)
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *shown]})


#: what may differ between two readings' orders of one drug besides its interval: the dose and its wording (review
#: R31-SYS3: a course under way on one reading is dosed on the initial clearance, a restart on today's, Tableau 2)
_DOSING: Final = {"interval": "", "dose": 0.0, "instructions_fr": ""}


def _spaces(x_b: PlanItem, x_a: PlanItem) -> bool:
    """`x_b`'s orders are `x_a`'s with zoledronic acid spaced to every 3 months where `x_a`'s is monthly, nothing else
    changed but the dose (SYS-SCHEDULE L1136-1140: the spacing a good response allows; the views differ on the
    response; review R31-SYS3: the spacing is withheld whatever the dose each reading gives)."""
    if len(x_a.orders) != len(x_b.orders):
        return False
    spaced = False
    for o_a, o_b in zip(x_a.orders, x_b.orders, strict=True):
        if o_a == o_b:
            continue
        if o_a.drug != "zoledronic_acid" or (o_a.interval, o_b.interval) != ("P1M", "P3M"):
            return False
        if o_b.model_copy(update=_DOSING) != o_a.model_copy(update=_DOSING):
            return False
        spaced = True
    return spaced


#: what a clinician would act on (a recommendation: an order drafted; its prerequisites follow it)
_ACTIONABLE = ("recommended",)


def _drafts(x: PlanItem) -> bool:
    """An item a clinician would prescribe from: a recommendation, or any item carrying an order."""
    return x.status in _ACTIONABLE or bool(x.orders)


def kept(x: PlanItem, future: tuple[Fact[str], ...]) -> PlanItem:
    """B's item that A lacks and that drafts no order (session 31, reviews R30-SYS and R30-MERGE): what current data
    say, published as it is (status, severity, text, checks), the records dated in the future named and said to be
    verified. Never "cannot decide" nor "Suspendu": a non-indication stays one, an advice its advice."""
    note = (
        " À vérifier : élément décidé sur les données actuelles ; un enregistrement daté dans le futur "
        f"({_dates(future)} ; imagerie ou évaluation clinique), pas encore actuel, le retirerait du plan : vérifier sa "
        "date (horloge du système qui l'a produit) et son contenu."
    )
    return x.model_copy(update={"text_fr": x.text_fr + note, "inputs": [*x.inputs, *_shown(future)]})


def _alert(x: PlanItem) -> bool:
    """Notified to the clinician (domain's rule: NOTIFY_STATUSES; SYS-ONCO's info item is not)."""
    from services.systemic_planner.domain import _notify  # domain imports this module: read at call time

    return _notify(x)


def _course_under_way(x: PlanItem) -> bool | None:
    """What `x` states of an anti-resorptive course being under way, None when nothing. SYS-REVIEW-2Y's item is given
    only with a course under way (L1275-1277: "poursuivi pendant au moins 2 ans puis réévalué"; domain: `if on_ar`);
    SYS-AR-START's item says "Anti-résorptif en cours" ("done") only then, and any other of its decisions is taken on
    no course under way (L1068-1074, L1263-1265: `antiresorptive_start` reads `on_antiresorptive` first)."""
    if x.rule_id == "SYS-REVIEW-2Y":
        return True
    if x.rule_id == "SYS-AR-START":
        return x.status == "done"
    return None


def contradicts(x: PlanItem, y: PlanItem) -> bool:
    """`x` and `y` cannot both hold (review R31-MERGE): one states an anti-resorptive course under way, the other none
    (a start, L1263-1265, beside the 2-year review of a course under way, L1275-1277: R30-MERGE). Items saying nothing
    of the course (a warning, the prerequisites, SYS-ONCO, the pathway) contradict nothing."""
    mine, theirs = _course_under_way(x), _course_under_way(y)
    return mine is not None and theirs is not None and mine != theirs


def suspended(x: PlanItem, future: tuple[Fact[str], ...], ahead: bool = False) -> PlanItem:
    """B's actionable item that A lacks (a record dated in the future, read as holding now, withdraws it: a lesion
    "resolved" tomorrow and SYS-AR-START today, review R27B): neither drafted (no order while a record says
    otherwise) nor silently dropped: a warning "cannot decide" naming the records dated in the future, to verify."""
    dates = _dates(future)
    note = (
        (
            f"Suspendu, à vérifier : « {x.title} » repose sur un enregistrement daté dans le futur ({dates} ; imagerie "
            "ou évaluation clinique), pas encore actuel ; les données actuelles ne le prescrivent pas. Vérifier sa "
            "date (horloge du système qui l'a produit) et son contenu avant toute prescription."
        )
        if ahead
        else (
            f"Suspendu, à vérifier : sur les données actuelles, « {x.title} » ; un enregistrement daté dans le futur "
            f"({dates} ; imagerie ou évaluation clinique) le contredit. Vérifier sa date (horloge du système qui l'a "
            "produit) et son contenu avant toute prescription."
        )
    )
    shown = _shown(future)
    return x.model_copy(
        update={
            "status": "cannot_decide",
            "severity": "warning",
            "title": f"À vérifier : {x.title}",
            "text_fr": note,
            "inputs": [*x.inputs, *shown],
            "orders": [],
            "what_would_change_fr": "La date de l'enregistrement daté dans le futur vérifiée, ou cette date atteinte.",
        }
    )


def merged(a: list[PlanItem], b: list[PlanItem], c: list[PlanItem], future: tuple[Fact[str], ...]) -> list[PlanItem]:
    """Per item key (HAZ-27-FUTURE-HIDES): B where B and C agree, else A, but B's critical item A lacks (marked),
    B's item A lacks that drafts an order suspended (`suspended`), B's other items A lacks kept (`kept`) unless one
    contradicts A's reading of the record ahead published marked (`read_ahead`, `contradicts`) and is no alert, and
    B's alert where A's reading is none (suspended, or marked), A's marked items contradicting it left out when no
    alert (review R31-MERGE)."""
    by_a, by_b, by_c = ({x.key: x for x in items} for items in (a, b, c))
    out: list[PlanItem | str] = []  # a key: B's item kept, decided once every other item is
    marked: list[PlanItem] = []  # A's items published as A's reading of the record ahead
    raised: list[PlanItem] = []  # B's alerts published where A's reading of the record ahead has none
    starts: dict[str, PlanItem] = {}  # B's start among them, published suspended
    for key in [*by_a, *(k for k in by_b if k not in by_a)]:
        x_a, x_b, x_c = by_a.get(key), by_b.get(key), by_c.get(key)
        if _decision(x_b) == _decision(x_c):
            chosen = x_b
        elif x_b is not None and x_b.severity == "critical" and (x_a is None or x_a.severity != "critical"):
            chosen = to_verify(x_b, future)
        elif x_a is None and x_b is not None and _drafts(x_b):
            # an order drafted on data a record dated ahead contradicts (SYS-AR-START L1068-1074: "dès la
            # découverte d'une métastase osseuse", the metastasis resolved ahead): suspended, never silently withdrawn
            chosen = suspended(x_b, future)  # (the lead, 2026-12-06)
        elif x_a is None and x_b is not None:
            out.append(key)  # no order: what current data say, kept below (session 31)
            continue
        elif x_a is not None and _decision(x_a) == _decision(x_c):  # A read the record ahead as holding now
            # review R29-SYS: never silently; no order drafted on it that current data would not draft; where
            # current data draft another order, theirs, said to be contradicted (review R29B: P1M, not P3M)
            if x_a.orders and x_b is not None and x_b.orders and _spaces(x_b, x_a):
                # review R31-SYS2: current data space the infusions (a "good" response an entry in error dated ahead,
                # recorded now, withdraws) where A's reading keeps them monthly: monthly is the rule and holds on
                # either reading, spacing is only possible (SYS-SCHEDULE L1136-1140, L1279-1281): A's, marked
                marked.append(x_a)
                chosen = read_ahead(x_a, future, spacing=True)
            elif x_a.orders and x_b is not None and x_b.orders and x_b.orders != x_a.orders:
                chosen = to_verify(x_b, future)
            elif x_b is not None and _alert(x_b) and not _alert(x_a):
                # review R31-MERGE: current data raise an alert A's reading does not (the start recommended today,
                # A's "pas d'indication à débuter" on a resolution dated ahead, SYS-AR-START L1068-1074): B's,
                # suspended when it drafts, else marked; the alert is reworded, never withdrawn "ne s'applique plus"
                raised.append(x_b)
                chosen = suspended(x_b, future) if _drafts(x_b) else to_verify(x_b, future)
                if chosen.status == "cannot_decide" and x_b.rule_id == "SYS-AR-START" and not x_b.orders:
                    starts[key] = x_b  # decided below, once every key's orders are (review R31-MERGE2)
            else:  # A's reading, said to rest on the record ahead (current data decide otherwise)
                marked.append(x_a)
                same = not x_a.orders or (x_b is not None and x_b.orders == x_a.orders)
                chosen = read_ahead(x_a, future) if same else suspended(x_a, future, ahead=True)
        else:
            chosen = x_a
        if chosen is not None:
            out.append(chosen)
    # B's items A lacks that draft no order (reviews R30-SYS, R30-MERGE): kept as current data give them, marked:
    # the estimate SYS-AR-START asks for (L1070-1074), its non-indication (L1072-1074: "espérance de vie [...]
    # supérieure à 3 mois"), SYS-RENAL-TOX's advice at a clearance < 30 (L736-738: "baisser les doses de
    # chimiothérapie") or its warning (L726-730, L770-772), SYS-ONCO's (L725-726: the bone extension "ne conditionne
    # pas le choix des molécules de chimiothérapie ni leur dose"). Left out only when it contradicts A's item published
    # marked "les données actuelles conduisent à une autre décision" (`read_ahead`) and is no alert (review R31-MERGE:
    # SYS-REVIEW-2Y's review of a course under way, L1275-1277, beside A's start, L1263-1265, R30-MERGE); an alert is
    # kept whatever A publishes (never withdrawn on a record not yet current). Likewise A's item marked beside B's
    # alert published in A's reading's place (the review of a course under way read ahead beside the restart today)
    read = {x.key for x in marked}

    def shown(x: PlanItem | str) -> bool:
        if isinstance(x, str):
            return _alert(by_b[x]) or not any(contradicts(by_b[x], y) for y in marked)
        return x.key not in read or _alert(x) or not any(contradicts(by_a[x.key], y) for y in raised)

    plan = [x if isinstance(x, PlanItem) else kept(by_b[x], future) for x in out if shown(x)]
    # review R31-MERGE2, across keys: B's start suspended "avant toute prescription" while another key publishes an
    # anti-resorptive order current data draft (R29B: B's monthly zoledronic acid beside A's spacing). Both readings
    # treat (A: the course under way, L1275-1277; B: the start, L1068-1074, L1263-1265, drafted only with its
    # prerequisites met or an emergency: dosing.orders_a_drug), monthly holds on either (SYS-SCHEDULE L1136-1140):
    # suspending the order would withdraw what both give. The start is B's recommendation, marked as the order is
    if starts and any(_treats(x) and _treats(by_b.get(x.key)) for x in plan):
        plan = [to_verify(starts[x.key], future) if x.key in starts else x for x in plan]
    return plan


def _treats(x: PlanItem | None) -> bool:
    """`x` drafts an anti-resorptive order (zoledronic acid, denosumab: SYS-AR-START L1263-1265)."""
    return x is not None and any(o.drug in r.ANTIRESORPTIVES for o in x.orders)


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
