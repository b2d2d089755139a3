"""Issue 25: scoring's bounded state. `retain(state)` keeps what the rules can still use and folds the rest into
compact summaries, at the end of every transition, so that the stored aggregate stays small and the cost of an event
does not grow with the patient's history. Pure and deterministic: the horizon is measured from the newest recorded
time among the facts, never from the wall clock, so a rebuild (a replay of the same events) gives the same state;
and retain(retain(s)) == retain(s).

Nothing changes a decision for an event within the horizon: its clinical time (`occurred_at`) at or after the cutoff
of its kind of record (the newest recorded time minus HORIZON, or the clinical time of the newest ..._KEPT records of
that kind when there are more), and, for a correction, the record it corrects also within it. Corrections of clinical
records arrive within days to weeks (LAB-CORRECTION, an amended imaging report); what is older is folded:

- corrected calcium (LAB-CA-CRISIS L300-306, CLASS-SRE L259-296): every result after the cutoff; before it, only
  what a decision reads: the newest counted value (the crisis, censored and unconfirmed decisions read the newest),
  and of each crisis episode (one SRE each) still under way or ended after the cutoff its first value, its newest
  value before the cutoff, and the value that ended it. The labs left out are re-measurements inside an episode or
  normal values between episodes, which change no episode. An episode that ended before the cutoff is forgotten
  with what was published for it (its historical SRE, its alert or late-value notice): nothing decides it again.
- imaging findings: every finding after the cutoff, and each chain of versions of a record (an original, its
  amendments, an entered-in-error) as a whole; the older ones that count are folded into the lesion's summary
  (`lesion_bases`), from which a correction folds the lesion again (shared/clinical/corrections.py), so a lesion's
  fold (first and newest fracture and cord compression, CLASS-SRE; modalities, IMG-ISOLATED; status; the newest new
  focus, IMG-FLARE) is what the whole history gives.
- clinical assessments: the same, into `assessment_base` (the newest value of each item, the newest life-expectancy
  estimates, each lesion's pain: SCORE-MIRELS, SCORE-SINS, MIRELS-HIGH, SURG-LE, CLASS-OLIGO).
- treatment events: every one scoring reads (systemic drugs: IMG-FLARE L391-395, whose window and interruption reach
  back to the start of a continuous treatment, however old; radiotherapy and surgery: CLASS-SRE, each an SRE for
  good) and every correction; a final event of a kind no scoring rule reads (dental care, metabolic radiotherapy,
  drug administrations such as monthly denosumab) is not kept.
- a lesion's new foci: the newest only (IMG-FLARE reads the newest, L357-405).

What was published (recommendation and score IDs per slot, SRE IDs) is kept as it is, but for the crisis episodes
forgotten: it is bounded by the lesions and the slots, and it is what idempotent publication compares with.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from contracts.base import derived_id
from contracts.hospital import ClinicalAssessment, ImagingFinding, SystemicDrug, TreatmentEvent
from services.scoring import retention_drugs
from services.scoring import rules as r
from services.scoring.retention_drugs import chain_roots, focus_days, fold_drugs
from services.scoring.state import (
    Assessment,
    LabValue,
    Lesion,
    ScoringState,
    merge_assessment,
    merge_finding,
    newest_held,
    same_part,
)
from shared.clinical.corrections import effective
from shared.clinical.dates import local_day
from shared.clinical.newest import instant

#: Late and corrected records arrive within this much clinical time of the newest one (LAB-CORRECTION: an amended
#: or withdrawn result within days; an amended imaging report or assessment within weeks). 90 days also covers the
#: longest window a decision reads on a single record (life expectancy and staging, 91 days: services/scoring/rules.py
#: Policy), although those read the folds, which keep the newest value of each item whatever its age.
HORIZON = timedelta(days=90)
#: ...and within the newest records of their kind: a patient with dense records (a crisis re-measured hourly) keeps
#: these many, not 90 days of them.
LABS_KEPT = 24
FINDINGS_KEPT = 16
ASSESSMENTS_KEPT = 8
#: Systemic-drug starts and stops are folded once there are more than these (the fold's own cost, once a day).
DRUGS_KEPT = 8
#: Treatment kinds no scoring rule reads (CLASS-SRE reads radiotherapy and surgery, IMG-FLARE systemic drugs).
UNREAD_TREATMENTS = frozenset({"dental", "metabolic_radiotherapy", "drug_administration"})


def retain(s: ScoringState, patient: str | None = None) -> ScoringState:
    """The state with what no decision can read any more folded away (see the module's docstring). With the
    `patient` it belongs to, the tables found clean are remembered (per patient and table) and not walked again."""
    anchor = s.newest_recorded if s.newest_recorded is not None else newest_held(s)
    if anchor is None:
        return s
    start = anchor - HORIZON
    # issue 25: the tables found clean at an earlier start that no record crossed since are not walked again
    if patient is not None and len(s.labs) + len(s.findings) + len(s.assessments) + len(s.treatments) < SMALL:
        patient = None  # a small state is walked faster than its tables are remembered
    at = instant(start)  # issue 25: compared as an integer (shared/clinical/newest.instant), once per table
    clean = set() if patient is None else {name for name in TABLES if _table_clean(patient, name, s, at)}
    drugs_done = s.drugs_cutoff == local_day(start)
    if anchor == s.newest_recorded and len(clean) == len(TABLES) and (drugs_done or _drugs(s.treatments) <= DRUGS_KEPT):
        return s
    if anchor == s.newest_recorded and not clean and _nothing_to_fold(s, start):
        _mark_clean(patient, s, start)
        return s
    update: dict[str, object] = {}
    if anchor != s.newest_recorded:
        update["newest_recorded"] = anchor
    dropped: list[datetime] = []
    labs, ended = (None, []) if "labs" in clean else _retain_labs(s.labs, start)
    if labs is not None:
        dropped += [v.recorded_at for rid, v in s.labs.items() if rid not in labs]
        update["labs"] = labs
    if ended:  # what was published for crisis episodes that ended before the cutoff: nothing decides it again
        sres = {str(derived_id("sre", "hypercalcaemia", rid, "historical")) for rid in ended}
        slots = {f"calcium:{kind}:{rid}" for rid in ended for kind in ("crisis", "late", "stale")}
        update["sres"] = [x for x in s.sres if x not in sres]
        update["calcium_sres"] = [x for x in s.calcium_sres if x not in sres]
        update["recommendations"] = {k: v for k, v in s.recommendations.items() if k not in slots}
    treatments = s.treatments if "treatments" in clean else {k: e for k, e in s.treatments.items() if not _unread(e)}
    if not drugs_done and _drugs(treatments) > DRUGS_KEPT:  # past a few, once a day of the horizon
        # issue 25: not run again while it keeps the same table whole (retention_drugs.fold_drugs)
        treatments = fold_drugs(patient, s.treatments, treatments, focus_days(s), start)
        update["drugs_cutoff"] = local_day(start)
    if len(treatments) < len(s.treatments):
        dropped += [e.recorded_at for k, e in s.treatments.items() if k not in treatments]
        update["treatments"] = treatments
    if dropped:
        update["dropped_recorded"] = max([*dropped, *([s.dropped_recorded] if s.dropped_recorded else [])])
    kept = None if "findings" in clean else _retain_records(s.findings, start, FINDINGS_KEPT, lambda f: f.lesion_id)
    if kept is not None:
        findings, folded = kept
        bases = dict(s.lesion_bases)
        for f in folded:
            bases[f.lesion_id] = merge_finding(bases.get(f.lesion_id), f)
        update["findings"] = findings
        # a lesion with no finding kept one by one is its own summary: its base is not kept twice (state.merge
        # takes the lesion as its base when a finding of it arrives)
        imaged = {f.lesion_id for f in findings.values()}
        update["lesion_bases"] = {k: _one_focus(v) for k, v in sorted(bases.items()) if k in imaged}
    if "lesions" not in clean:
        lesions = {k: _one_focus(v) for k, v in s.lesions.items()}
        if any(v is not s.lesions[k] for k, v in lesions.items()):
            update["lesions"] = lesions
    kept_a = (
        None
        if "assessments" in clean
        else _retain_records(s.assessments, start, ASSESSMENTS_KEPT, lambda a: a.patient_id)
    )
    if kept_a is not None:
        assessments, folded_a = kept_a
        base = s.assessment_base or Assessment()
        for a in folded_a:
            base = merge_assessment(base, a)
        update["assessments"] = assessments
        update["assessment_base"] = base if assessments else None  # else the fold is its own summary
    if not update:
        _mark_clean(patient, s, start, clean)
        return s
    return s.model_copy(update=update)


# ---- issue 25: nothing to fold, known without a scan ----------------------------------------------------------------
#: per patient and table, the table object (a transition copies only the table it changes: state.merge) retention
#: last found clean: the records' cut stays where it was while the horizon's start stays between the start it was
#: checked at and the oldest record kept after the cut (no record crosses it), so a table found clean stays clean
#: until one does. One entry per patient and table (a new table replaces it), the patients seen last.
CLEAN_SIZE: Final = 16384
#: below this many records, retention walks the state without remembering its tables
SMALL: Final = 24
_CLEAN: OrderedDict[tuple[str, str], tuple[object, int, int, int | None]] = OrderedDict()  # times as instants
_LOCK: Final = threading.Lock()  # the runtime applies events in its worker thread


def _table_clean(patient: str, name: str, s: ScoringState, at: int) -> bool:
    """`at`: the horizon's start as an instant (shared/clinical/newest.instant)."""
    table: dict[str, Any] = getattr(s, name)
    with _LOCK:
        hit = _CLEAN.get((patient, name))
    if hit is None or hit[1] != len(table) or not same_part(hit[0], table):  # by object, else by content
        return False
    return hit[2] <= at and (hit[3] is None or at <= hit[3])


def _mark_table(
    patient: str, name: str, table: dict[str, Any], times: list[datetime], start: datetime, kept: int
) -> None:
    cutoff = _cutoff(times, start, kept)
    # the cut (the start, or the kept-th newest record: never later than the oldest record after the cut) moves with
    # the start up to the oldest record after it without any record crossing it
    until = min((t for t in times if t >= cutoff), default=None)
    entry = (table, len(table), instant(start), None if until is None else instant(until))
    with _LOCK:
        _CLEAN[(patient, name)] = entry
        _CLEAN.move_to_end((patient, name))
        while len(_CLEAN) > CLEAN_SIZE:
            _CLEAN.popitem(last=False)


#: the tables retention walks (lesions: one new focus each; treatments: nothing unread; the others: the records' cut)
TABLES: Final = ("labs", "findings", "assessments", "lesions", "treatments")


def _mark_clean(patient: str | None, s: ScoringState, start: datetime, known: Iterable[str] = ()) -> None:
    """`s` is what retain gives for `start` (nothing to fold): remember it per table (those not `known` already)."""
    if patient is None:
        return
    kept = {"labs": LABS_KEPT, "findings": FINDINGS_KEPT, "assessments": ASSESSMENTS_KEPT}
    for name in TABLES:
        if name not in known:
            table = getattr(s, name)
            # labs by clinical time (calcium.py leaves a future-dated value out; retention residual, HAZ-27)
            at = (lambda x: x.occurred_at) if name == "labs" else _kept_at
            times = [at(x) for x in table.values()] if name in kept else []
            _mark_table(patient, name, table, times, start, kept.get(name, 0))


def _drugs(treatments: dict[str, TreatmentEvent]) -> int:
    return sum(isinstance(e.treatment, SystemicDrug) for e in treatments.values())


def _nothing_to_fold(s: ScoringState, start: datetime) -> bool:
    """The common case, cheaply: every record within the horizon and the counts, nothing else to fold."""
    return (
        len(s.labs) <= LABS_KEPT
        and len(s.findings) <= FINDINGS_KEPT
        and len(s.assessments) <= ASSESSMENTS_KEPT
        and all(v.occurred_at >= start for v in s.labs.values())
        and all(_kept_at(f) >= start for f in s.findings.values())
        and all(_kept_at(a) >= start for a in s.assessments.values())
        and not any(len(x.new_foci) > 1 for x in s.lesions.values())
        and not any(_unread(e) for e in s.treatments.values())
        and (
            s.drugs_cutoff == local_day(start)
            or sum(isinstance(e.treatment, SystemicDrug) for e in s.treatments.values()) <= DRUGS_KEPT
        )
    )


#: HAZ-27-FUTURE-HIDES: a record dated after its own recording by more than this is dated ahead (its producer's clock)
AHEAD: Final = r.DEFAULT_POLICY.future_tolerance


def _kept_at(x: ImagingFinding | ClinicalAssessment | TreatmentEvent) -> datetime:
    """The time a record is kept by (its clinical time; for one dated ahead of its own recording, its recorded time).
    HAZ-27-FUTURE-HIDES (review R28-SC): records dated ahead (a producer's clock) are otherwise the newest, kept first,
    and a current record is folded into a summary with a future-dated one of its lesion, where "decide twice"
    (as_of.py) can no longer leave the future one out. Identity when no record is dated ahead (the stored state of a
    history without clock skew is unchanged). Labs are kept by clinical time (the calcium residual)."""
    return x.occurred_at if x.occurred_at <= x.recorded_at + AHEAD else x.recorded_at


def _cutoff(times: Iterable[datetime], start: datetime, kept: int) -> datetime:
    """The clinical time from which records of a kind are kept one by one: the horizon's start, or later when more
    than `kept` records are within it."""
    every = list(times)
    # the kept-th newest (a sort in C, of instants: newest.instant; these tables hold a few dozen records at most)
    return start if len(every) <= kept else max(start, sorted(every, key=instant, reverse=True)[kept - 1])


def _unread(e: TreatmentEvent) -> bool:
    # a correction is kept whatever its kind: an amendment may turn a record scoring reads into one it does not
    return e.record_status == "final" and e.treatment.kind in UNREAD_TREATMENTS


def _one_focus(lesion: Lesion) -> Lesion:
    """IMG-FLARE reads a lesion's newest new focus only (patient.decide_flare)."""
    if len(lesion.new_foci) <= 1:
        return lesion
    return lesion.model_copy(update={"new_foci": lesion.new_foci[-1:]})


# ---- corrected calcium ---------------------------------------------------------------------------------------------
def _order(v: LabValue) -> tuple[int, int, str]:
    return instant(v.occurred_at), instant(v.recorded_at), str(v.event_id)  # as instants (newest.instant)


def _retain_labs(labs: dict[str, LabValue], start: datetime) -> tuple[dict[str, LabValue] | None, list[str]]:
    """The labs to keep (None when all are kept), and the crisis episodes that ended before the cutoff (the result
    IDs of their first values). What services/scoring/calcium.py reads before the cutoff: the newest counted value,
    and of each episode still under way or ended after the cutoff its first value, newest value before the cutoff
    and ending value. An episode that ended before the cutoff decides nothing new: its SRE is historical and
    published, its alert kept as published (or its late-value notice published); no event within the horizon can
    change it, so it is forgotten (retain() drops what was published for it)."""
    cutoff = _cutoff((v.occurred_at for v in labs.values()), start, LABS_KEPT)
    # only the values before the cutoff are walked: those after it are kept, and an episode under way at the cutoff
    # keeps the same values before it whether a value after it ends it or not
    before = sorted(((rid, v) for rid, v in labs.items() if v.occurred_at < cutoff), key=lambda kv: _order(kv[1]))
    if not before:
        return None, []
    keep = {rid for rid, v in labs.items() if v.occurred_at >= cutoff}
    counted = [(rid, v) for rid, v in before if not v.withdrawn]
    if counted:
        keep.add(counted[-1][0])  # the newest value (when nothing newer counts)
    ended: list[str] = []
    episode: list[tuple[str, LabValue]] = []  # LAB-CA-CRISIS: a run of crisis values, straddling ones left aside

    def close(ended_by: tuple[str, LabValue] | None) -> None:
        if ended_by is not None and ended_by[1].occurred_at < cutoff:
            ended.append(episode[0][0])
            return
        keep.add(episode[0][0])
        keep.add(episode[-1][0])  # its newest value before the cutoff

    for rid, v in counted:
        if v.value is None:
            continue  # no albumin: neither opens nor closes an episode
        side = r.crisis_side(v.value, v.comparator)
        if side == "above":
            episode.append((rid, v))
        elif side == "below" and episode:
            close((rid, v))
            episode = []
    if episode:
        close(None)
    if len(keep) == len(labs):
        return None, ended
    return {rid: v for rid, v in labs.items() if rid in keep}, ended


# ---- imaging findings and assessments: whole chains of versions ---------------------------------------------------
R = TypeVar("R", ImagingFinding, ClinicalAssessment, TreatmentEvent)


def _retain_records(
    records: dict[str, R], start: datetime, kept: int, group: Callable[[R], Hashable]
) -> tuple[dict[str, R], list[R]] | None:
    """The records to keep (every chain of versions with a record at or after the cutoff), and those of the others
    that count, in clinical order, to fold into the summary; None when all are kept."""
    rows = list(records.values())
    cutoff = _cutoff((_kept_at(x) for x in rows), start, kept)
    if all(_kept_at(x) >= cutoff for x in rows):
        return None
    roots = chain_roots(rows, group)
    recent = {roots[x.event_id] for x in rows if _kept_at(x) >= cutoff}
    if all(roots[x.event_id] in recent for x in rows):
        return None
    counted = {x.event_id for x in effective(rows, group)}
    folded = sorted(
        (x for x in rows if roots[x.event_id] not in recent and x.event_id in counted),
        key=lambda x: (instant(x.occurred_at), instant(x.recorded_at), x.event_id.int),
    )
    return {k: x for k, x in records.items() if roots[x.event_id] in recent}, folded


def clear() -> None:
    """Forget what is memoised (a cold process)."""
    with _LOCK:
        _CLEAN.clear()
    retention_drugs.clear()
