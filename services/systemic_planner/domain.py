"""The systemic-planner aggregate: facts per patient, the plan they imply (pure), and what to publish.

Each event updates the facts (`state.py`, read by `disease.py`, `labs.py`, `treatments.py`, `drug_checks.py`);
`build_plan()` derives the whole plan from them as of `now`, along the
guideline's sections: prerequisites (`prerequisites.py`), starting and dosing (`dosing.py`), follow-up
(`follow_up.py`). `apply_event()` publishes a new plan version when it changed, and one recommendation per plan
item that changed (a changed item withdraws the one it replaces), so clinicians are notified of the differences
only. It also sets `next_due`, the earliest deadline after `now` at which the plan may change with no new event
(a review falling due, an input going stale): the runtime fires a clock tick then (shared/runtime/timers.py)."""

from __future__ import annotations

import functools
import hashlib
import threading
import uuid
from collections import OrderedDict
from datetime import date, datetime, timedelta
from typing import Any, Final

from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab, Score
from contracts.plan import PlanItem, TreatmentPlan
from contracts.rules import RULESET_VERSION
from services.systemic_planner import as_of
from services.systemic_planner import rules as r
from services.systemic_planner.disease import bone_metastasis, life_expectancy
from services.systemic_planner.dosing import (
    Hold,
    anticancer,
    antiresorptive_item,
    ar_start_item,
    correction_item,
    first_infusion,
    orders_a_drug,
    renal_safety,
    sre_inputs_of,
    unidentified_item,
)
from services.systemic_planner.drug_checks import corrections, unidentified
from services.systemic_planner.follow_up import URGENT_SRES, denosumab_stop, oncology, osteonecrosis, review
from services.systemic_planner.labs import calcium, renal, vitamin_d
from services.systemic_planner.memo import memo
from services.systemic_planner.prerequisites import prerequisites, supplements_fr, vitamin_d_item
from services.systemic_planner.quality import bone_biopsy, pathway
from services.systemic_planner.retention import retain
from services.systemic_planner.state import LAB_TABLES, SystemicState, merge
from services.systemic_planner.treatments import dental, drug_history
from shared.clinical.facts import Fact
from shared.clinical.life_expectancy import surgery_excluded
from shared.clinical.newest import Newest, values_at
from shared.clinical.recommend import PlanNotice, caused_by, notify_plan_changes

SERVICE = "systemic-planner"
__all__ = ["SystemicState", "apply_event", "build_plan", "current_plan", "merge", "retain"]


def build_plan(s: SystemicState, at: r.AsOf) -> list[PlanItem]:
    """The whole plan as of `at.now`: `plan_once` (decision A), or, when a lesion's status or sighting or the response
    is dated in the future, A merged per item with the views where that fact is left out or holds now (as_of.py,
    HAZ-27-FUTURE-HIDES: a future-dated fact never hides the current one where both readings decide the same)."""
    return as_of.decide(s, at, plan_once)


def plan_once(s: SystemicState, at: r.AsOf) -> list[PlanItem]:
    """The whole plan as of `at.now`, the facts read as they are (decision A). Issue 25: each reading and item family
    is memoised (memo.py) on the tables and readings it reads; `at.memo` False computes every one (the reference)."""
    drugs = drug_history(s, at)
    on_ar = drugs.antiresorptives()  # a zoledronic acid relay within its window is not a restart (SYS-DENO-STOP)
    ar_key = tuple(on_ar.items())
    le = life_expectancy(s, at)
    metastasis = memo("metastasis", at, (s.lesions,), lambda: bone_metastasis(s, at))
    stop = drugs.ar_review_stop if not on_ar else None
    # after a deliberate stop at the 2-year review, only an SRE after the stop counts (SYS-REVIEW-2Y)
    sres = memo("sres", at, (s.sres,), lambda: [f for f in s.sres.values() if not at.is_future(f.occurred_at)])
    if stop is not None:
        sres = [f for f in sres if at.day(f.occurred_at) > stop]
    decision = r.antiresorptive_start(
        has_sre=bool(sres),
        bone_metastasis=metastasis is not None,
        life_expectancy_months=le.remaining,
        on_antiresorptive=bool(on_ar),
        stopped_after_review=stop is not None,
    )
    items: list[PlanItem] = []
    if decision.outcome == "no_trigger" and not drugs.ever_started.keys() & r.ANTIRESORPTIVES:
        return items
    # issue 18 review: a drug not identified, or a drug record whose amendment was entered in error, may be an
    # anti-resorptive: said so, and no start is proposed with an order before it is checked
    active = (tuple(drugs.active.items()), tuple(drugs.atc.items()))  # what the memoised families read of `drugs`
    unknown = memo("unidentified", at, (s.treatments,), lambda: unidentified(s, drugs, at), active)
    to_check = corrections(s)
    holding = tuple(c for c in to_check if c.holds_start)
    kidney = memo("renal", at, (s.creatinine_clearance,), lambda: renal(s, at))
    # issue 25 (helper ZI): calcium reads of the SREs only the hypercalcaemias and their currency (LAB-CA-CRISIS)
    crises = [f for f in s.sres.values() if f.value == "hypercalcaemia"]
    currency = [s.sre_currency.get(str(f.event_id)) for f in crises]
    ca = memo("calcium", at, (s.corrected_calcium, *crises, *currency), lambda: calcium(s, at), (len(crises),))
    # second review: in a current hypercalcaemic crisis (L302-306) the start and its order do not wait for the check
    # ("sauf urgence", L799, L1267); outside one, they do
    hold = (
        Hold(tuple(unknown), holding, emergency=ca.emergency and not on_ar)
        if decision.outcome == "start" and (unknown or holding)
        else None
    )
    sre_inputs = memo("sre_inputs", at, (s.sres,), lambda: sre_inputs_of(s))
    # issue 25 (helper HV): the item reads no `now`; what it reads of the life expectancy is its estimate, status and
    # what remains rounded as cited (the same text for the same float: repr)
    remains = None if le.remaining is None else repr(round(le.remaining, 2))
    items.append(
        memo(
            "ar_start",
            at,
            (sre_inputs, metastasis, le.fact, hold),
            lambda: ar_start_item(s, decision, on_ar, drugs, metastasis, le, hold, sre_inputs),
            (decision, ar_key, drugs.ar_review_stop, drugs.ar_relay, le.status, le.future_ignored, remains),
        )
    )
    items += [unidentified_item(u) for u in unknown]
    items += [correction_item(c) for c in to_check]
    onj_items, onj_blocks = memo(
        "osteonecrosis", at, (s.treatments,), lambda: osteonecrosis(s, at, drugs), tuple(drugs.ever_started.items())
    )
    za_planned = False
    if decision.outcome in ("start", "already_treated"):
        loading = drugs.runs.get("cholecalciferol")
        vit_d = memo("vitamin_d", at, (s.vitamin_d,), lambda: vitamin_d(s, drugs, at), (loading,))
        # issue 25 (helper ZI): of the treatments the prerequisites read the dental events (SYS-AR-PREREQ), of the
        # SREs whether a hypercalcaemia is known: keyed on those, a drug record or another SRE does not remake them
        dental_events = memo("dental", at, (s.treatments,), lambda: dental(s, at))
        reads = (s.vitamin_d, s.creatinine_clearance, kidney, vit_d, ca, *(e for e, _ in dental_events))
        prereq = memo(
            "prerequisites",
            at,
            reads,
            lambda: prerequisites(s, at, kidney, vit_d, ca, on_ar, dental_events, bool(crises)),
            (ar_key, len(dental_events), bool(crises)),
        )
        items.append(prereq.item)
        vit_d_item, supplements = memo(
            "vitamin_d_item", at, (vit_d, ca), lambda: (vitamin_d_item(vit_d, ca, at), supplements_fr(vit_d, ca, at))
        )
        items.append(vit_d_item)
        # issue 25 (helper ZI): the oligometastatic status and the response are read only on the way to an order
        ordering = orders_a_drug(kidney, prereq, hold, onj_blocks)
        disease = (s.oligometastatic, s.response, s.oligo_missing) if ordering else (None, None, None)
        ar = memo(
            "antiresorptive",
            at,
            (*disease, s.creatinine_clearance, kidney, prereq, hold),
            lambda: antiresorptive_item(
                s, kidney, on_ar, prereq, ca.hold_supplements, supplements, onj_blocks, at, hold
            ),
            (ar_key, ca.hold_supplements, supplements, onj_blocks, ordering),
        )
        items.append(ar)
        za_planned = any(o.drug == "zoledronic_acid" for o in ar.orders)  # only this item orders it
        if za_planned and "zoledronic_acid" not in drugs.ever_started:
            items.append(first_infusion())
        if on_ar:
            exposure = (
                drugs.ar_course_start,
                drugs.ar_review_due,
                tuple(drugs.ever_started.items()),
                drugs.ar_exposure_days,
                drugs.ar_interrupted,
            )
            rev = memo("review", at, (s.ctx,), lambda: review(s, at, drugs), exposure)
            if rev is not None:
                items.append(rev)
    low = kidney.failure == "below"  # CrCl < 30 for certain (issue 12: a censored bound never as exact)
    deno_stop = memo(
        "denosumab_stop",
        at,
        (s.ctx,),
        lambda: denosumab_stop(s, at, drugs, low),
        (low, drugs.stopped.get("denosumab"), drugs.starts),
    )
    if deno_stop is not None:
        items.append(deno_stop)
    items += memo("renal_safety", at, (kidney,), lambda: renal_safety(kidney, drugs, za_planned), (za_planned, *active))
    items += onj_items
    # issue 25 (helpers HV, ZI): what SYS-ONCO reads: the drugs under way (their identity: `active`), whether a
    # metastasis or any SRE is known, the fractures and cord compressions and their currency, whether surgery is
    # excluded (SURG-LE), and then only the estimate (cited)
    short = le.remaining is not None and surgery_excluded(le.remaining)
    urgent = [f for f in s.sres.values() if f.value in URGENT_SRES]
    onco = memo(
        "oncology",
        at,
        (*urgent, *[s.sre_currency.get(str(f.event_id)) for f in urgent], le.fact if short else None),
        lambda: oncology(s, at, anticancer(drugs), metastasis, le),
        (active, metastasis is None, short, bool(s.sres), len(urgent)),
    )
    if onco is not None:
        items.append(onco)
    biopsy = memo("bone_biopsy", at, (s.care,), lambda: bone_biopsy(s, at))  # MOL-BIOPSY
    if biopsy is not None:
        items.append(biopsy)
    items.append(memo("pathway", at, (s.care,), lambda: pathway(s, at)))  # QUAL-PATHWAY
    return items


# ---- publishing ------------------------------------------------------------------------------------------------
NOTIFY_STATUSES = frozenset({"recommended", "to_do", "cannot_decide", "warning", "waived"})


def decision_content(item: PlanItem) -> str:
    """What a clinician is notified about: the item's decision and text, not its provenance or check details."""
    orders = "".join(o.model_dump_json() for o in item.orders)
    checks = ",".join(f"{c.name}={c.status}" for c in item.checks)
    return "|".join(
        (
            item.key,
            item.rule_id,
            item.status,
            item.severity,
            item.title,
            item.text_fr,
            ",".join(item.missing),
            item.what_would_change_fr or "",
            orders,
            checks,
        )
    )


#: issue 25: each item object's decision content and notice, made once (an item memoised by memo.py is the same
#: object at every decision it holds for; a PlanItem is never changed in place). The entry holds the item.
_PUBLISHED: OrderedDict[int, tuple[PlanItem, str, PlanNotice | None]] = OrderedDict()
_PUBLISHED_MAX = 8192


def _published_as(item: PlanItem) -> tuple[str, PlanNotice | None]:
    """The item's decision content, and its notice when it is notified."""
    hit = _PUBLISHED.get(id(item))
    if hit is not None and hit[0] is item:
        return hit[1], hit[2]
    content = decision_content(item)
    notice = (
        PlanNotice(
            key=item.key,
            digest=hashlib.blake2b(content.encode(), digest_size=8).hexdigest(),
            rule_id=item.rule_id,
            severity=item.severity,
            title=item.title,
            text_fr=item.text_fr,
            inputs=functools.partial(list, item.inputs),
            missing=item.missing,
            content=content,
        )
        if _notify(item)
        else None
    )
    _PUBLISHED[id(item)] = (item, content, notice)
    if len(_PUBLISHED) > _PUBLISHED_MAX:
        _PUBLISHED.popitem(last=False)
    return content, notice


#: issue 25 (helper HV): the plan digest of each list of item objects (items memoised by memo.py are the same
#: objects from one decision to the next). The entry holds the items: ids in use are theirs alone.
_DIGESTS: OrderedDict[tuple[int, ...], tuple[tuple[PlanItem, ...], str]] = OrderedDict()
_DIGESTS_MAX = 4096
_DIGESTS_LOCK = threading.Lock()  # decisions may be taken in more than one thread (memo.py)


def _plan_digest(decisions: list[tuple[PlanItem, str, PlanNotice | None]]) -> str:
    """sha256 of the items' decision contents, one a line."""
    key = tuple(id(item) for item, _, _ in decisions)
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(key)
    if hit is not None:
        return hit[1]
    digest = hashlib.sha256("\n".join(content for _, content, _ in decisions).encode()).hexdigest()
    with _DIGESTS_LOCK:
        _DIGESTS[key] = (tuple(item for item, _, _ in decisions), digest)
        if len(_DIGESTS) > _DIGESTS_MAX:
            _DIGESTS.popitem(last=False)
    return digest


def _notify(item: PlanItem) -> bool:
    return item.status in NOTIFY_STATUSES and not (item.rule_id == "SYS-ONCO" and item.severity == "info")


def _unchanged(state: SystemicState, event: Message, at: r.AsOf) -> bool:
    """The event changes no fact the planner reads (a result of another analyte, a score other than the
    oligometastatic status), and the last decision still holds at `at.now`."""
    irrelevant = (isinstance(event, NormalisedLab) and event.analyte not in LAB_TABLES) or (
        isinstance(event, Score) and (event.score != "oligometastatic" or event.band is None)
    )
    return (
        irrelevant
        and state.decided_at is not None
        and state.decided_at <= at.now
        and (state.next_due is None or at.now < state.next_due)
        and not _dated_after(state, state.decided_at)
    )


def _dated_after(s: SystemicState, t: datetime) -> bool:
    """A fact dated after `t` (a day before, for dates: any time zone) is held: it may become effective with no new
    event (not every reader of a future-dated fact records a deadline), so the plan is decided again."""
    day = t.date() - timedelta(days=1)
    tables: list[dict[str, Any]] = [s.findings, s.assessments, s.sres, s.care]
    tables += [getattr(s, table) for table in LAB_TABLES.values()]
    if any(_OCCURRED.after(rows, t) for rows in tables):
        return True
    treated, care = _TREATED_ON(s.treatments), _CARE_ON(s.care)
    return (treated is not None and treated >= day) or (care is not None and care >= day)


#: issue 25: the newest date of each table object (tables are never changed in place: merge and retain copy), so that
#: an event that changes nothing the plan reads does not scan the whole history (shared/clinical/newest.py)
_OCCURRED: Final = Newest[dict[str, Any], datetime](values_at("occurred_at"), size=8192)
_TREATED_ON: Final = Newest[dict[str, Any], date](lambda t: (e.treatment.on for e in t.values()))
_CARE_ON: Final = Newest[dict[str, Any], date](lambda t: (e.event.on for e in t.values()))


def apply_event(
    state: SystemicState, event: Message, at: r.AsOf, *, keep_all: bool = False
) -> tuple[SystemicState, list[Message]]:
    """Pure: the new state and what to publish, as of `at.now` (passed in by the adapter). The state returned is
    the retained one (issue 25, retention.py); `keep_all` keeps the whole history (the reference the retention
    tests compare with)."""
    s = merge(state, event)
    at.memo = at.memo and not keep_all  # the reference decides everything again (memo.py)
    if not keep_all and _unchanged(state, event, at):
        # issue 25: no fact the plan reads changed and no deadline passed since the last decision (`next_due`: the
        # plan changes with time only at one), so the decision is the last one: nothing to publish
        s.decided_at = at.now
        return retain(s), []
    items = build_plan(s, at)
    s.next_due = at.next_due()
    s.decided_at = at.now
    decisions = [(item, *_published_as(item)) for item in items]
    notices = [notice for _, _, notice in decisions if notice is not None]
    s.published, out = notify_plan_changes(
        s.published,
        notices,
        event,
        SERVICE,
        "Plan mis à jour : cet élément a changé.",
        "Plan mis à jour : cet élément ne s'applique plus.",
    )
    # a new version when a decision changes; newer provenance alone (same decisions) does not make a new version
    digest = _plan_digest(decisions)
    if items and digest != s.plan_digest:
        s.plan_version += 1
        s.plan_digest = digest
        s.plan_event = Fact[str].of(event, str(derived_id("plan", event.patient_id, s.plan_version, digest)))
        plan = current_plan(s, event.patient_id, items)
        assert plan is not None
        out.append(plan)
    if not keep_all:  # a tick too: it moves `decided_at`, so retention's `ahead_clock` (review R33-AHEAD 2)
        s = retain(s)
    return s, caused_by(out, event)


def current_plan(
    s: SystemicState, patient_id: str, items: list[PlanItem] | None = None, at: r.AsOf | None = None
) -> TreatmentPlan | None:
    """The current plan: rebuilt from the facts (pure) as of the last decision, with the version and time it was
    last published. `at` carries the settings (recency, time zone); its `now` is replaced by the decision time."""
    if s.plan_event is None:
        return None
    if items is None:
        base = at or r.AsOf(now=s.decided_at or s.plan_event.recorded_at)
        items = build_plan(s, r.AsOf(now=s.decided_at or base.now, tz=base.tz, recency=base.recency))
    return TreatmentPlan(
        event_id=uuid.UUID(s.plan_event.value),
        patient_id=patient_id,
        occurred_at=s.plan_event.occurred_at,
        recorded_at=s.plan_event.recorded_at,
        source=SERVICE,
        version=s.plan_version,
        ruleset_version=RULESET_VERSION,
        items=items,
    )
