"""Bounded state of the local-treatment planner (issue 25): `retain()` keeps what the rules can still use and folds
the rest, so that a patient followed for years costs the same per event as a new one. Pure and deterministic: the
horizon counts back from the newest `recorded_at` the state has applied (`LocalState.newest_at`), never from the
wall clock, so a rebuild gives the same state; retain(retain(s)) == retain(s).

Nothing it drops can change a decision (tests/unit/test_issue25_local_retention.py) for events arriving within
HORIZON of the newest one: what is dropped is what no fold of the rules reads any more.
- Radiotherapy courses, metabolic radiotherapy and surgeries: never dropped (RT-REIRR L2076-2095 sums the cord EQD2
  of every course of a segment; RT-SBRT-CI L1629-1636 reads the latest radiotherapy of any kind; RT-POSTOP and
  SURG-LE list each operation).
- Drug events dated before the cut: per drug, only those that still decide its fold (facts_treatments.drug_uses: the
  last dose, whether it is taken, the daily dose, the provenance), WRITERS_KEPT deep, and every dose of their days (the
  48-hour DOAC count, IR-CEMENT L2665-2700), and the same for the drugs given up to the date of each open request dated
  before the cut (its windows count back from it). The rest never changes RT-DRUG (L1948-2014) or IR-CEMENT.
- Clinical assessments older than HORIZON that provide no current fact: their facts folded into `assessed_base` /
  `opinions_base` (the newest per name), which a correction's re-fold starts from: withdrawing the newer assessment
  gives back the value the older one said, as the full history would.
- Correction chains older than HORIZON: an assessment or drug chain to its version in force; an imaging finding
  withdrawn in error, with its correction, dropped (it counts neither way).
- Cancelled requests older than HORIZON: to a tombstone (request_id -> the version's times), so that an older
  version delivered late never reopens them.
Haemostasis labs (LABS_PER_ANALYTE) and findings per lesion are bounded by `merge` already: findings_kept.prune_findings
keeps the newest FINDINGS_PER_LESION, each sign's reports within HORIZON and its newest older ones, and the onset of the
current compression with the "no" before it (RT-MSCC L1397-1402, HAZ-25-LOCAL-03).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Final

from contracts.hospital import (
    ClinicalAssessment,
    DrugAdministration,
    ImagingFinding,
    SystemicDrug,
    TreatmentEvent,
)
from services.radiotherapy_planner.facts import FindingFact, LocalState, fold_assessment, lesions
from services.radiotherapy_planner.retention_drugs import DRUG_KINDS, fold_writers, is_drug
from services.radiotherapy_planner.retention_drugs import WRITERS_KEPT as WRITERS_KEPT
from shared.clinical.components import components
from shared.clinical.corrections import effective, effective_findings, resolve
from shared.clinical.drugs import identify
from shared.clinical.facts import newest

#: Records younger than this (by the newest `recorded_at` applied) are kept whole: a correction, a late delivery or
#: an older version of them can still arrive and be decided on exactly. Beyond it a correction of a folded record
#: is conservative (what it names is unknown; see docs/hazard-log.md HAZ-25-RT-02). Six months: well beyond the
#: longest window a rule counts back (drug relevance 120 days, facts_treatments.DRUG_RELEVANCE; life expectancy 91 days,
#: domain.LE_VALID; SBRT "moins de 3 mois", L1631).
HORIZON: Final = timedelta(days=183)


def retain(s: LocalState) -> LocalState:
    """The state with what no rule can read any more folded away (see the module's docstring)."""
    if s.newest_at is None:
        return s
    cut = s.newest_at - HORIZON
    update: dict[str, object] = {}
    _assessments(s, cut, update)
    _treatments(s, cut, update)
    _findings(s, cut, update)
    _requests(s, cut, update)
    return s.model_copy(update=update) if update else s


def _count(s: LocalState, update: dict[str, object], kind: str, n: int) -> None:
    folded = update.get("folded", s.folded)
    assert isinstance(folded, dict)
    update["folded"] = dict(sorted({**folded, kind: folded.get(kind, 0) + n}.items()))


def _marked(s: LocalState, update: dict[str, object], kind: str, mark: str) -> bool:
    """Whether `kind` was folded with nothing new since (the same count of records past the cut): skip the scan. Else
    the mark is set to what is held now (a fold that drops something sets it to what it keeps)."""
    if s.fold_marks.get(kind) == mark:
        return True
    _mark(update, s, kind, mark)
    return False


def _mark(update: dict[str, object], s: LocalState, kind: str, mark: str) -> None:
    marks = update.get("fold_marks", s.fold_marks)
    assert isinstance(marks, dict)
    update["fold_marks"] = dict(sorted({**marks, kind: mark}.items()))


def _withdraw(s: LocalState, update: dict[str, object], ids: list[str]) -> None:
    """Records of a correction chain folded away: a second delivery of one of them must not count again."""
    if ids:
        update["withdrawn"] = sorted({*s.withdrawn, *ids})


def _old(r: ClinicalAssessment | TreatmentEvent | FindingFact, cut: datetime) -> bool:
    return r.occurred_at < cut and r.recorded_at < cut


def _components(rows: Iterable[tuple[str, uuid.UUID | None]]) -> dict[str, str]:
    """Union-find over 'record -> the record it corrects': each record's chain, named by one member."""
    return components((rid, None if target is None else str(target)) for rid, target in rows)


# ---- clinical assessments -------------------------------------------------------------------------------------------
def _order(r: ClinicalAssessment) -> tuple[datetime, datetime, int]:
    return (r.occurred_at, r.recorded_at, r.event_id.int)


def _assessments(s: LocalState, cut: datetime, update: dict[str, object]) -> None:
    held = s.assessments
    old = sum(1 for a in held.values() if a.occurred_at < cut and a.recorded_at < cut)
    if not old or _marked(s, update, "assessments", str(old)):
        return
    providers = {f.event_id for f in s.assessed.values()} | {o.event_id for o in s.opinions.values()}
    # an amendment naming no record corrects the newest recorded before it (shared/corrections._target): the newest
    # record is never folded, and one an amendment held now corrects is part of its chain
    newest_one = max(held.values(), key=_order)
    chain = _components((k, a.corrects or _unnamed_target(a, held.values())) for k, a in held.items())
    by_chain: dict[str, list[ClinicalAssessment]] = {}
    for k, a in held.items():
        by_chain.setdefault(chain[k], []).append(a)
    fold: list[ClinicalAssessment] = []  # the effective records of the chains dropped, folded into the bases
    drop: set[str] = set()
    corrected: list[str] = []
    for members in by_chain.values():
        if any(not _old(a, cut) or a.event_id in providers or a is newest_one for a in members):
            continue
        if len(members) > 1 or members[0].record_status != "final":
            fold += effective(members, lambda _: "patient")
            corrected += [str(a.event_id) for a in members]  # what it said lives in the bases now
        else:
            fold.append(members[0])
        drop.update(str(a.event_id) for a in members)
    if not drop:
        return
    _mark(update, s, "assessments", str(old - len(drop)))
    base = dict(s.assessed_base)
    opinions = dict(s.opinions_base)
    for a in fold:
        scratch = LocalState()
        fold_assessment(scratch, a)
        for name, f in scratch.assessed.items():
            base[name] = newest(base.get(name), f)
        for key, o in scratch.opinions.items():
            prev = opinions.get(key)
            opinions[key] = o if prev is None or o.order() >= prev.order() else prev
    update["assessments"] = {k: a for k, a in held.items() if k not in drop}
    _withdraw(s, update, corrected)
    update["assessed_base"] = dict(sorted(base.items()))
    update["opinions_base"] = dict(sorted(opinions.items()))
    _count(s, update, "assessments", len(drop))


def _unnamed_target(a: ClinicalAssessment, rows: Iterable[ClinicalAssessment]) -> uuid.UUID | None:
    """The record an amendment naming none corrects, as shared/corrections resolves it: the newest (clinical order)
    of the patient's records recorded before it, an entry in error excepted."""
    if a.record_status != "amended" or a.corrects is not None:
        return None
    earlier = [
        x
        for x in rows
        if x.event_id != a.event_id and x.record_status != "entered-in-error" and x.recorded_at < a.recorded_at
    ]
    return max(earlier, key=_order).event_id if earlier else None


# ---- treatment events -----------------------------------------------------------------------------------------------
def _kind(e: TreatmentEvent) -> str:
    return e.treatment.kind


def references(s: LocalState, day: date) -> list[date]:
    """The reference dates before `day` of the open requests: RT-DRUG and IR-CEMENT fold the drugs given up to the
    request's date (items_base.reference_date: its planned date, else the hospital-local day it was made; the day
    either side of its UTC date, whatever the time zone)."""
    out: set[date] = set()
    for r in s.requests.values():
        if r.status == "active":
            if r.planned_on is not None:
                out.add(r.planned_on)
            else:
                d = r.occurred_at.date()
                out.update((d - timedelta(days=1), d, d + timedelta(days=1)))
    return sorted(x for x in out if x < day)


def _treatments(s: LocalState, cut: datetime, update: dict[str, object]) -> None:
    held = s.treatments
    day = cut.date() - timedelta(days=1)  # a day early: the hospital's calendar day may be the UTC one's next
    old = sum(1 for e in held.values() if e.treatment.kind in DRUG_KINDS and e.treatment.on < day)
    if not old:
        return
    points = references(s, day)
    if _marked(s, update, "drugs", f"{old}|{','.join(map(str, points))}"):
        return
    # each record's chain of corrections; with none held, each record is its own
    chain = _components((k, e.corrects) for k, e in held.items()) if any(e.corrects for e in held.values()) else {}
    by_chain: dict[str, list[tuple[str, TreatmentEvent]]] = {}
    for k, e in held.items():
        by_chain.setdefault(chain.get(k, k), []).append((k, e))
    key_of = {id(e): k for k, e in held.items()}  # an event's key in the table (by object: a UUID hashes in Python)
    keep: set[str] = set()
    old_drugs: dict[str, list[TreatmentEvent]] = {}  # by identity: the events the fold may drop
    corrected: list[str] = []
    for pairs in by_chain.values():
        members = [e for _, e in pairs]
        drugs_only = all(is_drug(e) for e in members)
        if not drugs_only or any(e.treatment.on >= day or not _old(e, cut) for e in members):
            keep.update(k for k, _ in pairs)
            continue
        # an old chain of drug events: its version in force (if any) stands alone, then folds like any other
        in_force = members if len(members) == 1 and members[0].record_status == "final" else effective(members, _kind)
        corrected += [k for k, e in pairs if e not in in_force]  # an entry in error alone (what it names gone): all
        for e in in_force:
            t = e.treatment
            assert isinstance(t, SystemicDrug | DrugAdministration)
            old_drugs.setdefault(identify(t.drug, t.atc_code).key, []).append(e)
    for events in old_drugs.values():  # and an open request dated before the cut, the drugs given up to its date
        keep.update(key_of[id(e)] for e in fold_writers(events, points))
    if len(keep) < len(held):
        update["treatments"] = {k: e for k, e in held.items() if k in keep}
        _withdraw(s, update, [k for k in corrected if k not in keep])
        _count(s, update, "drug_events", len(held) - len(keep))
        _mark(update, s, "drugs", f"{old - len(held) + len(keep)}|{','.join(map(str, points))}")


# ---- imaging findings -----------------------------------------------------------------------------------------------
def _findings(s: LocalState, cut: datetime, update: dict[str, object]) -> None:
    """A finding withdrawn in error and its corrections, all older than HORIZON and older than the lesion's newest
    effective finding (so no amendment naming no record can mean it): dropped, they count neither way. Scanned only
    once the cut has passed a chain that may drop (`_first_drop`, the correction chains only: issue 25, the scan of
    every chain at every event was a third of a long history's cost per event)."""
    first = _first_drop(s)
    if first is None or cut <= first:
        return  # no chain has all its records before the cut: nothing drops (as the scan below would find)
    _scan_findings(s, cut, update)


def _scan_findings(s: LocalState, cut: datetime, update: dict[str, object]) -> None:
    held = s.findings
    corrections = [f for f in held.values() if f.record_status != "final"]
    old = sum(1 for f in corrections if _old(f, cut))
    if not old:  # no count mark to skip on: whether a chain drops also depends on the lesion's newest finding and
        return  # on its original being held (prune_findings), so a mark made it depend on arrival order (issue 22)
    if any(f.record_status == "amended" and f.corrects is None for f in corrections):
        return
    chain = _components((k, f.corrects) for k, f in held.items())
    by_chain: dict[str, list[FindingFact]] = {}
    for k, f in held.items():
        by_chain.setdefault(chain[k], []).append(f)
    latest: dict[str, tuple[datetime, datetime, int]] = {}
    for f in effective_findings(held.values()):
        latest[f.lesion_id] = max(latest.get(f.lesion_id, _forder(f)), _forder(f))
    drop: set[str] = set()
    named: set[str] = set()
    for members in by_chain.values():
        # an entry in error alone (its original pruned by findings_kept.prune_findings) drops as its whole chain would
        lone = len(members) == 1 and members[0].record_status == "entered-in-error"
        if (len(members) < 2 and not lone) or any(not _old(f, cut) for f in members):
            continue
        if resolve(members, lambda f: f.lesion_id).kept:  # a version in force: it is a finding of its lesion
            continue
        if any(f.lesion_id not in latest or _forder(f) >= latest[f.lesion_id] for f in members):
            continue
        drop.update(str(f.event_id) for f in members)
        named.update(str(f.corrects) for f in members if f.corrects is not None)  # never resurrected if redelivered
    if drop:
        update["findings"] = {k: f for k, f in held.items() if k not in drop}
        _withdraw(s, update, sorted(drop | named))
        _count(s, update, "findings", len(drop))


def _forder(f: FindingFact | ImagingFinding) -> tuple[datetime, datetime, int]:
    return (f.occurred_at, f.recorded_at, f.event_id.int)


#: `_first_drop` by findings table: a state's table is never changed once its event is applied (fold.merge changes
#: only its own copy; retention makes a new table), and most events keep the previous state's table. The table is
#: held, so its ID is not reused while it is here.
FIRST_DROP_SIZE: Final = 2048
_FIRST_DROP: dict[int, tuple[dict[str, FindingFact], int, datetime | None]] = {}
_FIRST_DROP_LOCK: Final = threading.Lock()


def _first_drop(s: LocalState) -> datetime | None:
    """The cut after which `_scan_findings` may drop a chain of this table, None when it never will: of the chains
    that meet its conditions other than age (what they are does not depend on the cut), the earliest newest time of
    one (a chain drops once every record's clinical and recorded times are before the cut)."""
    held = s.findings
    hit = _FIRST_DROP.get(id(held))
    if hit is not None and hit[0] is held and hit[1] == len(held):
        return hit[2]
    first = _first_drop_of(s)
    with _FIRST_DROP_LOCK:
        if len(_FIRST_DROP) >= FIRST_DROP_SIZE:
            _FIRST_DROP.clear()
        _FIRST_DROP[id(held)] = (held, len(held), first)
    return first


def _first_drop_of(s: LocalState) -> datetime | None:
    """`_first_drop` of the state's findings, from the chains of the corrections only (a final no correction names is
    a chain of one, which never drops) and each lesion's newest effective finding as facts.lesions has it: the cost of
    the corrections held, not of the whole table (issue 25)."""
    held = s.findings
    edges = [(k, f.corrects) for k, f in held.items() if f.record_status != "final" or f.corrects is not None]
    if not edges:
        return None
    by_chain: dict[str, list[FindingFact]] = {}
    for k, root in _components(edges).items():
        if k in held:  # a record named but not held is no member
            by_chain.setdefault(root, []).append(held[k])
    candidates = []
    for members in by_chain.values():
        lone = len(members) == 1 and members[0].record_status == "entered-in-error"
        if (len(members) >= 2 or lone) and not resolve(members, lambda f: f.lesion_id).kept:
            candidates.append(members)
    if not candidates:
        return None
    latest = {lid: _forder(lesion.latest) for lid, lesion in lesions(s).items()}
    first: datetime | None = None
    for members in candidates:
        if any(f.lesion_id not in latest or _forder(f) >= latest[f.lesion_id] for f in members):
            continue
        newest = max(max(f.occurred_at, f.recorded_at) for f in members)  # _old(f, cut) for all: cut > newest
        first = newest if first is None else min(first, newest)
    return first


# ---- requests -------------------------------------------------------------------------------------------------------
def _requests(s: LocalState, cut: datetime, update: dict[str, object]) -> None:
    gone = [k for k, r in s.requests.items() if r.status != "active" and r.occurred_at < cut and r.recorded_at < cut]
    if not gone:
        return
    update["requests"] = {k: r for k, r in s.requests.items() if k not in gone}
    closed = {**s.closed_requests, **{k: (s.requests[k].occurred_at, s.requests[k].recorded_at) for k in gone}}
    update["closed_requests"] = dict(sorted(closed.items()))
    _count(s, update, "requests", len(gone))
