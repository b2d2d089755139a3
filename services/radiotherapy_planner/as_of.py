"""Decide twice when facts are dated in the future (pure; HAZ-27-FUTURE-HIDES).

The state keeps, per name, sign and lesion, the newest fact by clinical time: a fact dated beyond FUTURE_TOLERANCE
after the decision time (a producer's clock ahead of ours) is the newest and the rules find it "not current", so it
hides the current one even when it says the same (RT-MSCC L1397-1402: a compression seen again tomorrow turned
today's emergency into a warning; SURG-LE L2776-2834: a life expectancy dated tomorrow made it "cannot decide").
Reading only the current facts, or choosing between the two by their values, was less cautious in many
contradictions (reviews R28-RT, R28-RT2; both reverted). The plan is therefore decided three times:
- A: the state as it is (`domain.build_plan`'s single decision, the only one when no fact is dated in the future);
- B, "the current one holds": the future-dated facts left out (`view_b`), corrections resolved on the whole record
  set first (an amendment dated ahead takes the version it corrects out with it: never re-targeted or brought back);
- C, "the future one holds now": every future-dated fact re-dated to `now + FUTURE_TOLERANCE` (`view_c`), so it is
  current and still the newest, nothing else changed.
Per plan item (its key), `merge`: B where B and C decide the same (the future fact does not change the answer, so it
must not hide the current one); else A (today's reading, cautious in most contradictions), except where B, from
current data only, gives an emergency (critical) A does not: B's item, marked "à vérifier" with the future-dated
facts as inputs. An item only C gives is never published (no order is drafted on a fact not yet current).
The stored state is unchanged: the views are made at each decision, and decided outside the family memo (their facts
keep their event IDs, which the memo keys read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from contracts.hospital import ClinicalAssessment
from services.radiotherapy_planner.facts import (
    SIGNS,
    FindingFact,
    LabFact,
    Lesion,
    LocalState,
    SurgicalOpinionFact,
    _lesions_of,
    fold_assessment,
)
from services.radiotherapy_planner.items_base import In, Item
from services.radiotherapy_planner.memo import READS
from shared.clinical.corrections import effective, findings_by_lesion, pending_ahead, pinned
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.facts import Fact
from shared.clinical.newest import SKEW, Newest, TimesAfter, instant, values_at

#: clock skew tolerated before a fact counts as dated in the future
FUTURE_TOLERANCE: Final = timedelta(minutes=15)
_US: Final = timedelta(microseconds=1)


def is_future(t: datetime, now: datetime) -> bool:
    return t > now + FUTURE_TOLERANCE


@dataclass(frozen=True)
class Ahead:
    """One value of a fact dated in the future, as an item marked for verification shows it."""

    name: str
    value: float | int | str | bool | None
    occurred_at: datetime
    event_id: uuid.UUID
    lesion_id: str | None  # None: the patient's (an assessment without a lesion)
    finding: bool = False  # an imaging finding's sign (else an assessed fact, an opinion, a result)

    def shown(self) -> In:
        return In(f"{self.name} (daté du futur)", self.value, None, self.occurred_at, self.event_id)


def ahead(s: LocalState, by_lesion: Mapping[str, Lesion], now: datetime) -> list[Ahead]:
    """The facts the decision at `now` reads that are dated in the future: the folded assessed facts and surgical
    opinions, each lesion's effective findings, the haemostasis results. Empty in the common case (then the plan is
    decided once, as before). A future record a correction withdrew is not read, so not listed."""
    out: list[Ahead] = []
    limit = now + FUTURE_TOLERANCE  # is_future, the sum made once (issue 25)
    at = instant(limit) - SKEW
    # issue 25: a table scanned only when its newest fact is dated ahead (its newest time, once per table object:
    # shared/clinical/newest.py; the lesions below likewise, by instant)
    if _OCCURRED.after(s.assessed, limit):
        for key, f in s.assessed.items():
            if f.occurred_at > limit:
                name, _, lid = key.partition("@")
                value = f.value if isinstance(f.value, str | int | float | bool) else str(f.value)
                out.append(Ahead(name, value, f.occurred_at, f.event_id, lid or None))
    if _OCCURRED.after(s.opinions, limit):
        for o in s.opinions.values():
            if o.occurred_at > limit:
                out.append(Ahead("surgical_opinion_operable", o.operable, o.occurred_at, o.event_id, o.lesion_id))
    for lid, lesion in by_lesion.items():
        if lesion.newest_at < at:  # issue 25: a lesion's findings scanned only when one may be dated ahead (R30)
            continue
        for x in lesion.history:
            if x.occurred_at > limit:
                signs = [(n, v) for n in (*SIGNS, "status") if (v := getattr(x, n)) is not None]
                for n, v in signs or [("imaging_finding", x.record_status)]:
                    out.append(Ahead(n, v, x.occurred_at, x.event_id, lid, finding=True))
    for analyte, table in s.labs.items():
        for v in table.values():
            if not v.withdrawn and v.occurred_at > limit:
                out.append(Ahead(analyte, v.value, v.occurred_at, v.event_id, None))
    # review R32-FA: a correction dated ahead of a current record (an entry in error of today's finding or
    # assessment) is applied at once by the folds, so no fact above shows it: listed, so the plan is decided twice
    # (view B keeps the record until the correction's date) and the items name it. Checked once per table object.
    edge = instant(limit)
    if _FINDING_FIXES.any(s.findings, edge, lambda t: t > limit):
        for x in pending_ahead(s.findings, _lesion, lambda t: is_future(t, now)).values():
            out.append(Ahead("imaging_finding", x.record_status, x.occurred_at, x.event_id, x.lesion_id, finding=True))
    if _ASSESSMENT_FIXES.any(s.assessments, edge, lambda t: t > limit):
        for y in pending_ahead(s.assessments, _patient, lambda t: is_future(t, now)).values():
            out.append(Ahead("clinical_assessment", y.record_status, y.occurred_at, y.event_id, None))
    return out


#: the newest clinical time of each assessed facts or opinions table object (`ahead`)
_OCCURRED: Final = Newest[Mapping[str, Any], datetime](values_at("occurred_at"))


def _fix_times(table: Mapping[str, FindingFact] | Mapping[str, ClinicalAssessment]) -> Iterator[datetime]:
    return (x.occurred_at for x in table.values() if x.record_status != "final")


#: the corrections' clinical times of each findings and assessments table object (never changed in place), so that
#: `ahead` scans a table for a correction dated ahead only when its newest correction may be
_FINDING_FIXES: Final = TimesAfter[Mapping[str, FindingFact]](_fix_times)
_ASSESSMENT_FIXES: Final = TimesAfter[Mapping[str, ClinicalAssessment]](_fix_times)


def future_times(facts: Sequence[Ahead]) -> Iterator[datetime]:
    """When each fact dated in the future becomes current (the views then collapse into A: domain.next_due)."""
    for a in facts:
        yield a.occurred_at - FUTURE_TOLERANCE


# ---- view B: the current one holds -----------------------------------------------------------------------------------
def view_b(s: LocalState, by_lesion: Mapping[str, Lesion], now: datetime) -> tuple[LocalState, dict[str, Lesion]]:
    """The facts with those dated in the future left out. Each name whose newest fact is future-dated reads the
    newest current one of the effective assessments (corrections resolved on the WHOLE set first, then the future
    records left out: an amendment dated ahead never brings back the version it corrects), else none; findings,
    opinions and haemostasis results likewise. The other names keep the state's own fact. A correction dated ahead of
    a current record does not apply yet: that record stands as it is until the correction's date (reviews R29-RT,
    R29B: never the older fact it superseded, never unknown; the merge publishes B only where C agrees, or marked)."""
    names = {k for k, f in s.assessed.items() if is_future(f.occurred_at, now)}
    keys = {k for k, o in s.opinions.items() if is_future(o.occurred_at, now)}

    def ahead(t: datetime) -> bool:
        return is_future(t, now)

    # a correction dated ahead of a current record is left out with its correction of it (R29B): not yet in force,
    # but one a current correction builds on (shared/clinical/corrections.py `pending_ahead`, review R32-FA)
    pending = pending_ahead(s.assessments, _patient, ahead)
    # each amendment naming none kept on its whole-set target (`pinned`: never re-targeted once one is left out)
    held = pinned(s.assessments.values(), _patient) if pending else s.assessments.values()
    records = [e for e in held if e.event_id not in pending]
    update: dict[str, object] = {}
    if names or keys or pending:
        named = {a.corrects for a in records if a.corrects is not None}
        scratch = LocalState(
            assessed={k: f for k, f in s.assessed_base.items() if f.event_id not in named},
            opinions={k: o for k, o in s.opinions_base.items() if o.event_id not in named},
        )
        for e in effective(records, lambda _: "patient"):  # the corrections resolved on all (but those not yet)
            if not is_future(e.occurred_at, now):
                fold_assessment(scratch, e, refold=True)
        assessed: dict[str, Fact[bool | float | str]] = {}
        for k in [*s.assessed, *(k for k in scratch.assessed if k not in s.assessed)] if pending else s.assessed:
            # review R32-FA: with a correction held back (the fold applied it at once), every name is read again
            g = scratch.assessed.get(k) if pending or k in names else s.assessed[k]
            if g is not None and not is_future(g.occurred_at, now):
                assessed[k] = g
        update["assessed"] = assessed
        opinions = [*s.opinions, *(k for k in scratch.opinions if k not in s.opinions)] if pending else s.opinions
        update["opinions"] = {
            k: o
            for k in opinions
            if (o := scratch.opinions.get(k) if pending or k in keys else s.opinions[k]) is not None
            and not is_future(o.occurred_at, now)
        }
    if any(is_future(v.occurred_at, now) for t in s.labs.values() for v in t.values()):
        update["labs"] = {
            a: {k: v for k, v in t.items() if not is_future(v.occurred_at, now)} for a, t in s.labs.items()
        }
    held_back = pending_ahead(s.findings, _lesion, ahead)
    if held_back:
        # a finding corrected ahead: the lesions folded again without those corrections (R29B; not cached), with every
        # lesion holding a finding A does not count: one a withdrawn record of which stands again in B (review R32-FA:
        # an entry in error ahead of its only one), one a current amendment moved a finding to (review R32-PIN)
        kept = {str(f.event_id): f for f in pinned(s.findings.values(), _lesion) if f.event_id not in held_back}
        refolded = _lesions_of(findings_by_lesion(kept))
        counted = {f.event_id for x in by_lesion.values() for f in x.history}
        by_lesion = {
            lid: x
            for lid, x in refolded.items()
            if lid in by_lesion or any(f.event_id not in counted for f in x.history)
        }
    out: dict[str, Lesion] = {}
    for lid, x in by_lesion.items():
        current = tuple(f for f in x.history if not is_future(f.occurred_at, now))
        if len(current) == len(x.history):
            out[lid] = x
        elif current:  # the effective findings (corrections resolved on all), the future ones left out
            out[lid] = Lesion(lid, current[-1], current)
    return s.model_copy(update=update), out


def _patient(_: ClinicalAssessment) -> str:
    return "patient"


def _lesion(f: FindingFact) -> str:
    return f.lesion_id


# ---- view C: the future one holds now -------------------------------------------------------------------------------
def view_c(
    s: LocalState, by_lesion: Mapping[str, Lesion], now: datetime
) -> tuple[LocalState, dict[str, Lesion]] | None:
    """The facts with each one dated in the future re-dated to just before `now + FUTURE_TOLERANCE` (current, and
    still newer than every current fact), nothing else changed. Their order is kept across kinds (review R29-RT: a
    deficit dated after a future imaging must stay after it, RT-MSCC's "imaging after the deficit"): the newest at
    the edge, each older one a microsecond before the next (`_redated`), all after the newest current fact (review
    R29B); None when they cannot all fit between it and the edge (C undecidable: the caller reads A as C)."""
    moved = _redated(s, by_lesion, now)
    if moved is None:
        return None
    if not moved:
        return s, dict(by_lesion)
    update: dict[str, object] = {
        "assessed": {k: _at(f, moved) for k, f in s.assessed.items()},
        "opinions": {k: _at(o, moved) for k, o in s.opinions.items()},
    }
    if any(is_future(v.occurred_at, now) for t in s.labs.values() for v in t.values()):
        update["labs"] = {a: {k: _at(v, moved) for k, v in t.items()} for a, t in s.labs.items()}
    lesions: dict[str, Lesion] = {}
    for lid, x in by_lesion.items():
        if any(is_future(f.occurred_at, now) for f in x.history):
            history = tuple(_at(f, moved) for f in x.history)
            lesions[lid] = Lesion(lid, history[-1], history)
        else:
            lesions[lid] = x
    return s.model_copy(update=update), lesions


T = TypeVar("T", Fact[bool | float | str], SurgicalOpinionFact, FindingFact, LabFact)
_Order = tuple[datetime, datetime, int]


def _order(f: Fact[bool | float | str] | SurgicalOpinionFact | FindingFact | LabFact) -> _Order:
    """A fact's place in time: clinical time, recorded time, event ID (the facts of one record share it)."""
    return (f.occurred_at, f.recorded_at or f.occurred_at, f.event_id.int)


def _redated(s: LocalState, by_lesion: Mapping[str, Lesion], now: datetime) -> dict[_Order, datetime] | None:
    """Each future fact's place -> its time in view C: the newest at `now + FUTURE_TOLERANCE`, the k-th newest k
    microseconds before (the order of every future fact kept, whatever its kind), every one strictly after the
    newest current fact (review R29B: a deficit dated ahead moved onto an MRI dated at the edge read as "imaging
    after the deficit"); None when that leaves no room."""
    facts: list[Fact[bool | float | str] | SurgicalOpinionFact | FindingFact | LabFact] = [
        *s.assessed.values(),
        *s.opinions.values(),
        *(f for x in by_lesion.values() for f in x.history),
        *(v for t in s.labs.values() for v in t.values()),
    ]
    ahead = sorted({_order(f) for f in facts if is_future(f.occurred_at, now)}, reverse=True)
    edge = now + FUTURE_TOLERANCE
    current = [f.occurred_at for f in facts if not is_future(f.occurred_at, now)]
    if ahead and current and edge - (len(ahead) - 1) * _US <= max(current):
        return None
    return {o: edge - k * _US for k, o in enumerate(ahead)}


def _at(f: T, moved: Mapping[_Order, datetime]) -> T:
    t = moved.get(_order(f))
    return f if t is None else f.model_copy(update={"occurred_at": t})


# ---- the merge ------------------------------------------------------------------------------------------------------
def _decision(i: Item | None) -> str | None:
    """What B and C must agree on for B's item to be published: the whole decision as notified (status, severity,
    title, text, data missing, what would change, checks: `Item.content`), not its inputs (their dates). The text
    too, not only status and severity: RT-MSCC's "surgery then RT" and "RT alone" are both critical "recommended"
    (L1397-1402 with the surgeon's opinion: review R28-RT's "not operable" dated ahead)."""
    return None if i is None else i.content


def merge(
    a: Mapping[str, list[Item]],
    b: Mapping[str, list[Item]],
    c: Mapping[str, list[Item]],
    facts: Sequence[Ahead],
    tz: ZoneInfo = HOSPITAL_TZ,
) -> dict[str, list[Item]]:
    """The items per lesion ID: per item key, B's where B and C decide the same (both absent: absent); else A's,
    except B's critical item where A's is not critical (marked for verification, `verify`); A's item decided as C
    decides (it reads a record dated ahead as holding now: a contraindication, a fact no rule checks the currency of)
    says so, to verify (review R29-SYS's rule, applied here too). Lesions and items in A's order, then B's."""
    out: dict[str, list[Item]] = {}
    for lid in [*a, *(x for x in b if x not in a)]:
        mine_a = {i.key: i for i in a.get(lid, ())}
        mine_b = {i.key: i for i in b.get(lid, ())}
        mine_c = {i.key: i for i in c.get(lid, ())}
        items: list[Item] = []
        for key in [*mine_a, *(k for k in mine_b if k not in mine_a)]:
            ia, ib, ic = mine_a.get(key), mine_b.get(key), mine_c.get(key)
            if _decision(ib) == _decision(ic):
                chosen = ib
            elif ib is not None and ib.severity == "critical" and (ia is None or ia.severity != "critical"):
                chosen = verify(ib, [f for f in facts if f.lesion_id in (None, lid)], tz)
            elif ia is not None and _decision(ia) == _decision(ic):  # A read the record ahead as holding now
                mine = [f for f in facts if f.lesion_id in (None, lid)]
                drafts = (
                    ia.status == "recommended" and ia.severity != "critical" and (ib is None or ib.status != ia.status)
                )
                # R29B: no procedure recommended (an order drafted) on a record not yet current that current data
                # would not recommend (a contraindication lifted only ahead, IR-CEMENT Tableau 8): suspended
                chosen = suspended(ia, mine, tz) if drafts else verify(ia, mine, tz, ahead=True)
            else:
                chosen = ia
            if chosen is not None:
                items.append(chosen)
        if items:
            out[lid] = items
    return out


#: Per rule that can give an emergency, the facts besides the lesion's findings it reads (memo.READS, and the
#: surgeon's opinion for RT-MSCC): only those are shown on its item marked for verification.
_READ: Final[dict[str, frozenset[str]]] = {
    "RT-MSCC": frozenset({*READS["mscc"], "surgical_opinion_operable"}),  # L1397-1402
    "RT-SBRT-CI": frozenset(READS["sbrt"]),  # L1629-1636 (vertebral instability: critical)
}


def suspended(i: Item, facts: Sequence[Ahead], tz: ZoneInfo = HOSPITAL_TZ) -> Item:
    """A's recommendation that rests on a record dated in the future and that current data do not give (review R29B):
    neither recommended (no order drafted on a record not yet current) nor silently dropped: "cannot decide", a
    warning naming the records, to verify (as the systemic planner's `suspended`)."""
    marked = verify(i, facts, tz, ahead=True)
    return Item(
        i.key,
        i.rule_id,
        "cannot_decide",
        "warning",
        f"À vérifier : {i.title}",
        "Suspendu : " + marked.text_fr.lstrip(),
        marked.inputs,
        i.missing,
        "La date de l'enregistrement daté du futur vérifiée, ou cette date atteinte.",
        i.checks,
    )


def verify(i: Item, facts: Sequence[Ahead], tz: ZoneInfo = HOSPITAL_TZ, ahead: bool = False) -> Item:
    """B's emergency (decided from current data only) marked for verification: the future-dated facts its rule
    reads shown as inputs (their event, date and value), and the text saying that a record dated in the future, not
    yet taken into account, leads to another decision and is to be verified (HAZ-27-FUTURE-HIDES)."""
    names = _READ.get(i.rule_id)
    read = [f for f in facts if names is None or f.finding or f.name in names] or list(facts)
    days = sorted({f.occurred_at for f in read})
    when = ", ".join(f"{t.astimezone(tz):%d/%m/%Y %H:%M}" for t in days[:3]) + (" ..." if len(days) > 3 else "")
    note = (
        f" À vérifier : décision qui tient compte d'un enregistrement daté du futur ({when}) ; sans lui, les données "
        "actuelles conduisent à une autre décision : vérifier sa date et son contenu auprès de sa source."
        if ahead
        else f" À vérifier : décision prise sans l'enregistrement daté du futur ({when}), pas encore pris en compte, "
        "qui conduit à une autre décision : vérifier sa date et son contenu auprès de sa source."
    )
    shown = tuple(f.shown() for f in sorted(read, key=lambda f: (f.occurred_at, f.name, str(f.event_id))))
    return Item(
        i.key,
        i.rule_id,
        i.status,
        i.severity,
        i.title,
        i.text_fr + note,
        (*i.inputs, *shown),
        i.missing,
        i.what_would_change_fr,
        i.checks,
    )
