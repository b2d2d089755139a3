"""HAZ-27-FUTURE-HIDES: "decide twice" when a fact is dated in the future. Pure.

The state keeps one fact per name (the newest by clinical time: state.merge_finding, state.merge_assessment), and
the rules then find a future-dated one "not current" (r.is_future: `occurred_at > now + tolerance`): it hides the
current one, even when it says the same (CLASS-SRE L259-296: today's cord compression withdrawn by a neurological
deficit assessed again with tomorrow's date; RT-MSCC L1397-1402). Today's decision is A (`domain.decide`). When the
decision at `now` involves a future-dated fact, two more decisions are made on two views of the same state, memo
bypassed (the memo keys use record IDs, which a re-dated fact keeps):

- B, "the current one holds" (`current_view`): the future-dated records left out, AFTER the corrections are resolved
  on the whole record set (shared/clinical/corrections.py: never re-targeted, an entered-in-error withdraws whatever
  its date; a version in force dated in the future is replaced by the newest version of its chain, by recorded time,
  that is not dated in the future and not withdrawn: review R29-SC);
- C, "the future one holds now" (`redated_view`): every future-dated fact of the folds, and every future-dated
  treatment record, re-dated to exactly `now + tolerance` (current, and still the newest), nothing else changed.

Per output unit (`merge`: a recommendation or a score by slot, an SRE by kind and subject): B and C agree (same
presence, rule and severity; a score's band; an SRE's currency): B's unit (decided from current data). They
disagree: A's unit (today's, cautious in most contradictions), except where B has an emergency A lacks (a critical
recommendation, a current SRE: CLASS-SRE, LAB-CA-CRISIS, RT-MSCC): B's unit, marked "à vérifier" with the future-dated
records as inputs; and where A has an emergency B lacks (it rests on a future-dated record: FH-SC2's case, review
R29-SC), A's unit kept (the cautious side) but marked "à vérifier" the same way. A unit only C gives is never
published.

Corrected calcium is not re-decided: calcium.py already leaves a future-dated value out of every decision, and says
so (LAB-CA-CRISIS L300-306); B's labs are A's, so under the merge every calcium unit is A's. Retention's summaries
(`lesion_bases`, `assessment_base`, a lesion or an assessment with no record kept one by one) cannot be unfolded: a
future-dated fact folded there stays in B as in A (the retention residuals of HAZ-27-FUTURE-HIDES).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

from contracts.base import InputUsed, derived_id
from contracts.clinical import Recommendation, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.scoring import rules as r
from services.scoring import texts as t
from services.scoring.clock import AFTER as CLOCK_AFTER
from services.scoring.clock import next_due as clock_next_due
from services.scoring.common import Decisions
from services.scoring.state import NAMED, Assessment, Lesion, ScoringState, merge_assessment, merge_finding
from shared.clinical.corrections import chains, effective
from shared.clinical.facts import Fact
from shared.clinical.newest import TimesAfter, values_at
from shared.clinical.recommend import Lazy
from shared.clinical.treatments import _kind as treatment_group

R = TypeVar("R", ImagingFinding, ClinicalAssessment, TreatmentEvent)


# ---- which facts are future-dated ---------------------------------------------------------------------------------
def limit_of(ref: datetime, policy: r.Policy) -> datetime:
    """A fact dated after this is future-dated at `ref` (r.is_future)."""
    return ref + policy.future_tolerance


def has_future(s: ScoringState, limit: datetime) -> bool:
    """Whether a decision reads a future-dated fact: a lesion's newest finding (every fact of a lesion's fold is at
    most as new), an assessment item, a treatment record (CLASS-SRE reads treatments whatever their date). Labs:
    calcium.py leaves them out itself (the module's docstring). Issue 25: each table's newest time is found once per
    table object (shared/clinical/newest.py): three integer comparisons per event, a scan only near the limit."""
    return _LESIONS(s.lesions, limit) or _ASSESSMENT(s.assessment, limit) or _TREATMENTS(s.treatments, limit)


#: issue 25: the newest clinical time per table object (shared/clinical/newest.py)
_LESIONS: Final = TimesAfter[dict[str, Lesion]](lambda t: (x.latest.occurred_at for x in t.values()))
_ASSESSMENT: Final = TimesAfter[Assessment](lambda a: (f.occurred_at for f in a.every()))
_TREATMENTS: Final = TimesAfter[dict[str, TreatmentEvent]](values_at("occurred_at"))
_FINDINGS: Final = TimesAfter[dict[str, ImagingFinding]](values_at("occurred_at"))
_ASSESSMENTS: Final = TimesAfter[dict[str, ClinicalAssessment]](values_at("occurred_at"))


@dataclass(frozen=True)
class FutureRecord:
    """A future-dated record, shown as an input of a unit marked "à vérifier"."""

    event_id: uuid.UUID
    occurred_at: datetime
    lesion_id: str | None  # a finding's lesion (None: an assessment or a treatment)


def future_records(s: ScoringState, limit: datetime) -> list[FutureRecord]:
    """The future-dated records kept one by one and the future-dated facts of the folds (one per record)."""
    found: dict[uuid.UUID, FutureRecord] = {}
    for f in s.findings.values():
        if f.occurred_at > limit:
            found[f.event_id] = FutureRecord(f.event_id, f.occurred_at, f.lesion_id)
    for x in s.lesions.values():
        if x.latest.occurred_at > limit and x.latest.event_id not in found:
            found[x.latest.event_id] = FutureRecord(x.latest.event_id, x.latest.occurred_at, x.latest.lesion_id)
    others: list[Any] = [*s.assessments.values(), *s.assessment.every(), *s.treatments.values()]
    for e in others:
        if e.occurred_at > limit and e.event_id not in found:
            found[e.event_id] = FutureRecord(e.event_id, e.occurred_at, None)
    return sorted(found.values(), key=lambda x: (x.occurred_at, str(x.event_id)))


def forget() -> None:
    """Forget the newest time of every table (a cold process; tests: review R30-NEWEST)."""
    for memo in (_LESIONS, _ASSESSMENT, _TREATMENTS, _FINDINGS, _ASSESSMENTS):
        memo.clear()


def becoming_current(s: ScoringState, now: datetime, policy: r.Policy) -> datetime | None:
    """clock.py's convention (+1 s): the first instant a future-dated record kept one by one becomes current (its date
    minus the tolerance), after `now`; the folds' facts already have theirs (clock._windows). A treatment record's
    date is no window of A's, but B reads it from then on."""
    limit = limit_of(now, policy)
    if not (_FINDINGS(s.findings, limit) or _ASSESSMENTS(s.assessments, limit) or _TREATMENTS(s.treatments, limit)):
        return None
    records: list[Any] = [*s.findings.values(), *s.assessments.values(), *s.treatments.values()]
    first = min((e.occurred_at for e in records if e.occurred_at > limit), default=None)
    return None if first is None else first - policy.future_tolerance + CLOCK_AFTER


def next_due_ahead(s: ScoringState, now: datetime, policy: r.Policy) -> datetime | None:
    """The ticks "decide twice" adds to A's (clock.next_due), with a future-dated fact: the first instant a future-dated
    record becomes current (`becoming_current`), and B's own moments (review R29-SC: B reads a current fact A's fold
    replaced; when it leaves its window, CLASS-SRE `current_until` or a pain's validity, B's unit changes and so may
    the merged one). B's are scanned, not remembered (clock's memo is per patient and part: never shared with A). C
    needs none: its facts are re-dated to each decision's own limit, so its windows move with `now`."""
    first, limit = becoming_current(s, now, policy), limit_of(now, policy)
    if not has_future(s, limit):
        return first
    moments = (first, clock_next_due(current_view(s, limit), now, policy))
    return min((t for t in moments if t is not None), default=None)


# ---- B: the current one holds ---------------------------------------------------------------------------------------
def _recorded(x: R) -> tuple[datetime, int]:
    return (x.recorded_at, x.event_id.int)


def _clinical(x: R) -> tuple[datetime, datetime, int]:
    return (x.occurred_at, x.recorded_at, x.event_id.int)


def in_force_now(rows: list[R], group: Callable[[R], Hashable], limit: datetime) -> list[R]:
    """The versions that count, resolved on the WHOLE record set (never re-targeted once a record is left out: review
    R28-SC), then each one dated in the future replaced by the newest version of ITS CHAIN (by recorded time) that is
    not dated in the future and not withdrawn (review R29-SC: not the version its `corrects` names, which may be one
    a current amendment already replaced); none when the chain holds no such version."""
    kept = effective(rows, group)
    if all(x.occurred_at <= limit for x in kept):
        return kept
    by_id = {x.event_id: x for x in rows}
    # each correction's target on the whole set (corrections.resolve's: an amendment naming none, its group's newest)
    walked = chains(rows, group)
    targets, origin, versions = walked.targets, walked.root, walked.versions
    out: list[R] = []
    for x in kept:
        if x.occurred_at <= limit:
            out.append(x)
            continue
        root = origin(x.event_id)
        if root == x.event_id:
            continue  # a record of its own dated ahead (never amended): no earlier version
        v = _replayed(root, versions.get(root, []), targets, limit)
        found = None if v is None else by_id.get(v)
        if found is not None and found.occurred_at <= limit:
            out.append(found)
    return sorted(out, key=_clinical)


def _replayed(
    root: uuid.UUID, versions: list[R], targets: dict[uuid.UUID, uuid.UUID | None], limit: datetime
) -> uuid.UUID | None:
    """The version of a chain that counts (corrections.resolve's replay, by recorded time) with its amendments dated
    in the future left out: the newest current amendment, else the original; None once withdrawn (an
    entered-in-error naming the version that counts or the original, whatever its date: never brought back)."""
    current, gone = root, False
    for c in sorted(versions, key=_recorded):
        if c.record_status == "amended":
            if c.occurred_at > limit:
                continue  # a version dated in the future: not in B
            current, gone = c.event_id, False
        elif not gone and targets[c.event_id] in (current, root):
            gone = True
    return None if gone else current


def _current_lesions(s: ScoringState, limit: datetime) -> dict[str, Lesion]:
    """Each lesion whose fold holds a future-dated finding folded again from retention's summary and the versions in
    force now (`in_force_now`); a lesion known only from the future is left out; a lesion with no finding kept one by
    one is its own summary (as A: retention residual)."""
    ahead = {k for k, x in s.lesions.items() if x.latest.occurred_at > limit}
    if not ahead:
        return s.lesions
    rows = list(s.findings.values())
    kept = in_force_now(rows, lambda f: f.lesion_id, limit)
    effective_ids = {f.event_id for f in effective(rows, lambda f: f.lesion_id)}
    ahead |= {f.lesion_id for f in kept if f.event_id not in effective_ids}  # an earlier version back in its lesion
    imaged = {f.lesion_id for f in rows}
    folded: dict[str, Lesion] = {k: v for k, v in s.lesion_bases.items() if k in ahead and k in imaged}
    for f in kept:
        if f.lesion_id in ahead:
            folded[f.lesion_id] = merge_finding(folded.get(f.lesion_id), f)
    out: dict[str, Lesion] = {}
    for k in sorted({*s.lesions, *folded}):
        if k not in ahead or k not in imaged:
            if k in s.lesions:
                out[k] = s.lesions[k]
        elif k in folded:
            out[k] = folded[k]
    return out


def _current_assessment(s: ScoringState, limit: datetime) -> Assessment:
    """The assessment folded again from retention's summary and the versions in force now; with no assessment kept
    one by one, it is its own summary (as A: retention residual)."""
    if not s.assessments or not any(f.occurred_at > limit for f in s.assessment.every()):
        return s.assessment
    a = s.assessment_base or Assessment()
    for x in in_force_now(list(s.assessments.values()), lambda e: e.patient_id, limit):
        a = merge_assessment(a, x)
    return a


def _current_treatments(s: ScoringState, limit: datetime) -> dict[str, TreatmentEvent]:
    """The treatment records in force now, as final records (already resolved: the view never resolves again)."""
    if not any(e.occurred_at > limit for e in s.treatments.values()):
        return s.treatments
    kept = in_force_now(list(s.treatments.values()), treatment_group, limit)
    done = [
        e if e.record_status == "final" else e.model_copy(update={"record_status": "final", "corrects": None})
        for e in kept
    ]
    return {str(e.event_id): e for e in sorted(done, key=lambda e: str(e.event_id))}


def current_view(s: ScoringState, limit: datetime) -> ScoringState:
    """B: the state with the future-dated records left out (the module's docstring)."""
    return s.model_copy(
        update={
            "lesions": _current_lesions(s, limit),
            "assessment": _current_assessment(s, limit),
            "treatments": _current_treatments(s, limit),
        }
    )


# ---- C: the future one holds now ------------------------------------------------------------------------------------
F = TypeVar("F", bound=Fact[Any])


def _at(f: F | None, limit: datetime) -> F | None:
    if f is None or f.occurred_at <= limit:
        return f
    return f.model_copy(update={"occurred_at": limit})


def _redated_lesion(x: Lesion, limit: datetime) -> Lesion:
    if x.latest.occurred_at <= limit:
        return x
    update: dict[str, Any] = {
        name: _at(getattr(x, name), limit)
        for name in (
            "cord_compression",
            "fracture",
            "status",
            "compression_stated",
            "epidural_stated",
            "fracture_seen_last",
            "compression_seen_last",
        )
    }
    update["latest"] = x.latest.model_copy(update={"occurred_at": limit})
    update["first_seen"] = min(x.first_seen, limit)
    update["new_foci"] = [_at(f, limit) for f in x.new_foci]
    return x.model_copy(update=update)


def _redated_assessment(a: Assessment, limit: datetime) -> Assessment:
    if not any(f.occurred_at > limit for f in a.every()):
        return a
    update: dict[str, Any] = {name: _at(getattr(a, name), limit) for name in NAMED}
    update["life_expectancy_estimates"] = [_at(f, limit) for f in a.life_expectancy_estimates]
    for name in ("lesion_pain_intensity", "lesion_pain_character"):
        update[name] = {k: _at(f, limit) for k, f in getattr(a, name).items()}
    return a.model_copy(update=update)


def redated_view(s: ScoringState, limit: datetime) -> ScoringState:
    """C: every future-dated fact of the folds and treatment record re-dated to `limit`, nothing else changed (the
    folds are the state's: each fact is still the newest, or the earliest, of its name)."""
    treatments = s.treatments
    if any(e.occurred_at > limit for e in treatments.values()):
        treatments = {
            k: e.model_copy(update={"occurred_at": limit}) if e.occurred_at > limit else e
            for k, e in treatments.items()
        }
    return s.model_copy(
        update={
            "lesions": {k: _redated_lesion(x, limit) for k, x in s.lesions.items()},
            "assessment": _redated_assessment(s.assessment, limit),
            "treatments": treatments,
        }
    )


# ---- the merge, per output unit -------------------------------------------------------------------------------------
Unit = tuple[object, ...] | None  # what is compared: presence, rule and severity; a score's band; an SRE's currency


def _recommendation(d: Decisions, slot: str) -> tuple[Unit, Lazy[Recommendation] | None]:
    lazy, kept = d.recommendations.get(slot), slot in d.keep
    if lazy is None:
        return (("kept",) if kept else None), None
    rec = lazy.build()
    return ("recommendation", kept, rec.rule_id, rec.severity), Lazy(lazy.event_id, lambda: rec)


def _sre_key(sre: SkeletalEvent, patient_id: str) -> Hashable:
    """An SRE's unit: a lesion's fracture or cord compression by kind and lesion (current or historical: sre.py
    `_lesion_sre`), else by kind and its first evidence (a treatment's record, a crisis episode's first value). A
    marked SRE (`_marked_sre`) has the key of the SRE it marks."""
    if sre.lesion_id is not None and sre.kind in ("cord_compression", "pathological_fracture"):
        shown = [str(i.source_event_id) for i in sre.evidence if i.name == "future_dated_record_to_verify"]
        for version in ((), ("historical",)):
            base = derived_id("sre", sre.kind, patient_id, sre.lesion_id, *version)
            if sre.event_id == base or (shown and sre.event_id == derived_id("sre-to-verify", base, *shown)):
                return ("lesion", sre.kind, sre.lesion_id)
    first = sre.evidence[0].source_event_id if sre.evidence else None
    return (sre.kind, str(first), sre.lesion_id)


def _sres(d: Decisions, patient_id: str) -> dict[Hashable, SkeletalEvent]:
    return {_sre_key(x, patient_id): x for x in d.sres.values()}


def _emergency(unit: Unit) -> bool:
    """An emergency (critical recommendation: LAB-CA-CRISIS, SINS-SURGICAL >= 13; a current SRE: CLASS-SRE)."""
    return unit is not None and (unit[0], unit[-1]) in (("recommendation", "critical"), ("sre", True))


@dataclass
class Merged:
    """What the merge chose, per unit source (for the differential test and the report)."""

    a: int = 0
    agreed: int = 0
    escalated: int = 0
    a_marked: int = 0  # A's emergency B lacks, kept and marked "à vérifier" (review R29-SC)


def merge(
    a: Decisions, b: Decisions, c: Decisions, patient_id: str, future: list[FutureRecord], seen: Merged | None = None
) -> Decisions:
    """A, B and C merged per unit (the module's docstring). `seen`, when given, counts the choices. A pick: "b" (B and
    C agree), "b!" (B's emergency A lacks, marked), "a" (A's), "a!" (A's emergency B lacks: kept, the cautious side,
    but marked, since only a future-dated record gives it: review R29-SC, FH-SC2's case)."""
    out, seen = Decisions(), seen if seen is not None else Merged()

    def choose(ua: Unit, ub: Unit, uc: Unit) -> str:
        if ub == uc:
            seen.agreed += 1
            return "b"
        if _emergency(ub) and not _emergency(ua):
            seen.escalated += 1
            return "b!"
        if _emergency(ua) and not _emergency(ub):
            seen.a_marked += 1
            return "a!"
        seen.a += 1
        return "a"

    slots = dict.fromkeys([*a.recommendations, *sorted(a.keep), *b.recommendations, *sorted(b.keep)])
    slots |= dict.fromkeys([*c.recommendations, *sorted(c.keep)])
    for slot in slots:
        (ua, la), (ub, lb), (uc, _) = (_recommendation(d, slot) for d in (a, b, c))
        pick = choose(ua, ub, uc)
        unit, lazy = (ua, la) if pick[0] == "a" else (ub, lb)
        if unit is not None and (unit[0] == "kept" or unit[1] is True):  # a published slot left as it is
            out.keep.add(slot)
        if lazy is not None:
            out.recommendations[slot] = _marked_recommendation(lazy, slot, future, pick) if pick[-1] == "!" else lazy
    for name in dict.fromkeys([*a.scores, *b.scores, *c.scores]):
        units = [_score(d, name) for d in (a, b, c)]
        pick = choose(*(u for u, _ in units))  # a score is never an emergency: "b" or "a"
        chosen = units[0][1] if pick[0] == "a" else units[1][1]
        if chosen is not None:
            out.scores[name] = chosen
    sa, sb, sc = _sres(a, patient_id), _sres(b, patient_id), _sres(c, patient_id)
    for key in dict.fromkeys([*sa, *sb, *sc]):
        xa, xb, xc = sa.get(key), sb.get(key), sc.get(key)
        pick = choose(*(None if x is None else ("sre", x.current) for x in (xa, xb, xc)))
        x = xa if pick[0] == "a" else xb
        if x is not None and pick[-1] == "!":
            x = _marked_sre(x, future, pick)
        if x is not None:
            out.sres[str(x.event_id)] = x
    return out


def _score(d: Decisions, name: str) -> tuple[Unit, Any]:
    lazy = d.scores.get(name)
    if lazy is None:
        return None, None
    built = lazy.build()
    return ("score", built.band), Lazy(lazy.event_id, lambda: built)


def _relevant(future: list[FutureRecord], lesion_id: str | None) -> list[FutureRecord]:
    """The future-dated records a unit of `lesion_id` may read: its own findings, every assessment and treatment."""
    return [x for x in future if lesion_id is None or x.lesion_id is None or x.lesion_id == lesion_id]


Text = Callable[[list[datetime]], str]


def _inputs(future: list[FutureRecord], text: Text) -> list[InputUsed]:
    return [
        InputUsed(
            name="future_dated_record_to_verify",
            value=text([x.occurred_at]),
            occurred_at=x.occurred_at,
            source_event_id=x.event_id,
        )
        for x in future
    ]


def _text(pick: str) -> Text:
    """B's emergency: the future-dated record contradicts it; A's: it rests on the future-dated record."""
    return t.to_verify_text if pick == "b!" else t.rests_on_future_text


def _marked_recommendation(
    lazy: Lazy[Recommendation], slot: str, future: list[FutureRecord], pick: str
) -> Lazy[Recommendation]:
    """A recommendation marked "à vérifier" (`merge`'s pick "b!" or "a!"): its own ID (so it is published, superseding
    an unmarked version)."""
    parts = slot.split(":")
    shown = _relevant(future, parts[1] if len(parts) == 2 and parts[0] in ("mirels", "sins", "flare") else None)
    rec, text = lazy.build(), _text(pick)
    event_id = derived_id("to-verify", rec.event_id, *(str(x.event_id) for x in shown))
    marked = rec.model_copy(
        update={
            "event_id": event_id,
            "inputs": [*rec.inputs, *_inputs(shown, text)],
            "text_fr": f"{rec.text_fr} {text([x.occurred_at for x in shown])}",
        }
    )
    return Lazy(event_id, lambda: marked)


def _marked_sre(sre: SkeletalEvent, future: list[FutureRecord], pick: str) -> SkeletalEvent:
    """An SRE marked "à vérifier" (`merge`'s pick "b!" or "a!"; SkeletalEvent has no text: the French text is each
    future record's input)."""
    shown = _relevant(future, sre.lesion_id)
    return sre.model_copy(
        update={
            "event_id": derived_id("sre-to-verify", sre.event_id, *(str(x.event_id) for x in shown)),
            "evidence": [*sre.evidence, *_inputs(shown, _text(pick))],
        }
    )
