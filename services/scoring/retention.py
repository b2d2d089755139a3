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
  and of each crisis episode (one SRE each, historical once ended) its first value, its newest value before the
  cutoff, and the value that ended it. The labs left out are only re-measurements inside an episode or normal
  values between episodes, which change no episode.
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

What was published (recommendation and score IDs per slot, SRE IDs) is kept as it is: it is bounded by the slots
and episodes, and it is what idempotent publication compares with.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.scoring import rules as r
from services.scoring.state import Assessment, LabValue, Lesion, ScoringState, merge_assessment, merge_finding
from shared.clinical.corrections import _target as correction_target
from shared.clinical.corrections import effective

#: Late and corrected records arrive within this much clinical time of the newest one (LAB-CORRECTION: an amended
#: or withdrawn result within days; an amended imaging report or assessment within weeks). 90 days also covers the
#: longest window a decision reads on a single record (life expectancy and staging, 91 days: services/scoring/rules.py
#: Policy), although those read the folds, which keep the newest value of each item whatever its age.
HORIZON = timedelta(days=90)
#: ...and within the newest records of their kind: a patient with dense records (a crisis re-measured hourly) keeps
#: these many, not 90 days of them.
LABS_KEPT = 48
FINDINGS_KEPT = 48
ASSESSMENTS_KEPT = 16
#: Treatment kinds no scoring rule reads (CLASS-SRE reads radiotherapy and surgery, IMG-FLARE systemic drugs).
UNREAD_TREATMENTS = frozenset({"dental", "metabolic_radiotherapy", "drug_administration"})


def retain(s: ScoringState) -> ScoringState:
    """The state with what no decision can read any more folded away (see the module's docstring)."""
    anchor = _newest_recorded(s)
    if anchor is None:
        return s
    start = anchor - HORIZON
    update: dict[str, object] = {}
    if anchor != s.newest_recorded:
        update["newest_recorded"] = anchor
    dropped: list[datetime] = []
    labs = _retain_labs(s.labs, start)
    if labs is not None:
        dropped += [v.recorded_at for rid, v in s.labs.items() if rid not in labs]
        update["labs"] = labs
    treatments = {k: e for k, e in s.treatments.items() if not _unread(e)}
    if len(treatments) < len(s.treatments):
        dropped += [e.recorded_at for k, e in s.treatments.items() if k not in treatments]
        update["treatments"] = treatments
    if dropped:
        update["dropped_recorded"] = max([*dropped, *([s.dropped_recorded] if s.dropped_recorded else [])])
    kept = _retain_records(s.findings, start, FINDINGS_KEPT, lambda f: f.lesion_id)
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
    lesions = {k: _one_focus(v) for k, v in s.lesions.items()}
    if any(v is not s.lesions[k] for k, v in lesions.items()):
        update["lesions"] = lesions
    kept_a = _retain_records(s.assessments, start, ASSESSMENTS_KEPT, lambda a: a.patient_id)
    if kept_a is not None:
        assessments, folded_a = kept_a
        base = s.assessment_base or Assessment()
        for a in folded_a:
            base = merge_assessment(base, a)
        update["assessments"] = assessments
        update["assessment_base"] = base if assessments else None  # else the fold is its own summary
    return s.model_copy(update=update) if update else s


def _newest_recorded(s: ScoringState) -> datetime | None:
    times: list[datetime] = [x.recorded_at for x in s.findings.values()]
    times += [x.recorded_at for x in s.assessments.values()]
    times += [x.recorded_at for x in s.treatments.values()]
    times += [x.recorded_at for x in s.labs.values()]
    if s.newest_recorded is not None:
        times.append(s.newest_recorded)
    return max(times, default=None)


def _cutoff(times: Iterable[datetime], start: datetime, kept: int) -> datetime:
    """The clinical time from which records of a kind are kept one by one: the horizon's start, or later when more
    than `kept` records are within it."""
    ordered = sorted(times)
    return start if len(ordered) <= kept else max(start, ordered[-kept])


def _unread(e: TreatmentEvent) -> bool:
    # a correction is kept whatever its kind: an amendment may turn a record scoring reads into one it does not
    return e.record_status == "final" and e.treatment.kind in UNREAD_TREATMENTS


def _one_focus(lesion: Lesion) -> Lesion:
    """IMG-FLARE reads a lesion's newest new focus only (patient.decide_flare)."""
    if len(lesion.new_foci) <= 1:
        return lesion
    return lesion.model_copy(update={"new_foci": lesion.new_foci[-1:]})


# ---- corrected calcium ---------------------------------------------------------------------------------------------
def _order(v: LabValue) -> tuple[datetime, datetime, str]:
    return v.occurred_at, v.recorded_at, str(v.event_id)


def _retain_labs(labs: dict[str, LabValue], start: datetime) -> dict[str, LabValue] | None:
    """The labs to keep, or None when all are kept. What services/scoring/calcium.py reads before the cutoff: the
    newest counted value, and each crisis episode's first value, newest value before the cutoff and ending value."""
    cutoff = _cutoff((v.occurred_at for v in labs.values()), start, LABS_KEPT)
    if all(v.occurred_at >= cutoff for v in labs.values()):
        return None
    ordered = sorted(labs.items(), key=lambda kv: _order(kv[1]))
    keep = {rid for rid, v in ordered if v.occurred_at >= cutoff}
    counted = [(rid, v) for rid, v in ordered if not v.withdrawn]
    old = [rid for rid, v in counted if v.occurred_at < cutoff]
    if old:
        keep.add(old[-1])  # the newest value (when nothing newer counts)
    episode: list[tuple[str, LabValue]] = []  # LAB-CA-CRISIS: a run of crisis values, straddling ones left aside

    def close(ended_by: str | None) -> None:
        keep.add(episode[0][0])
        before = [rid for rid, v in episode if v.occurred_at < cutoff]
        if before:
            keep.add(before[-1])
        if ended_by is not None:
            keep.add(ended_by)

    for rid, v in counted:
        if v.value is None:
            continue  # no albumin: neither opens nor closes an episode
        side = r.crisis_side(v.value, v.comparator)
        if side == "above":
            episode.append((rid, v))
        elif side == "below" and episode:
            close(rid)
            episode = []
    if episode:
        close(None)
    return {rid: v for rid, v in labs.items() if rid in keep}


# ---- imaging findings and assessments: whole chains of versions ---------------------------------------------------
R = TypeVar("R", ImagingFinding, ClinicalAssessment)


def _roots(rows: list[R], group: Callable[[R], Hashable]) -> dict[uuid.UUID, uuid.UUID]:
    """Each record's chain of versions, named by its original's ID (as shared/clinical/corrections.resolve does)."""
    targets = {x.event_id: correction_target(x, rows, group) for x in rows if x.record_status != "final"}

    def root(event_id: uuid.UUID) -> uuid.UUID:
        seen = {event_id}
        while (up := targets.get(event_id)) is not None and up not in seen:
            seen.add(up)
            event_id = up
        return event_id

    return {x.event_id: root(x.event_id) for x in rows}


def _retain_records(
    records: dict[str, R], start: datetime, kept: int, group: Callable[[R], Hashable]
) -> tuple[dict[str, R], list[R]] | None:
    """The records to keep (every chain of versions with a record at or after the cutoff), and those of the others
    that count, in clinical order, to fold into the summary; None when all are kept."""
    rows = list(records.values())
    cutoff = _cutoff((x.occurred_at for x in rows), start, kept)
    if all(x.occurred_at >= cutoff for x in rows):
        return None
    roots = _roots(rows, group)
    recent = {roots[x.event_id] for x in rows if x.occurred_at >= cutoff}
    if all(roots[x.event_id] in recent for x in rows):
        return None
    counted = {x.event_id for x in effective(rows, group)}
    folded = sorted(
        (x for x in rows if roots[x.event_id] not in recent and x.event_id in counted),
        key=lambda x: (x.occurred_at, x.recorded_at, x.event_id.int),
    )
    return {k: x for k, x in records.items() if roots[x.event_id] in recent}, folded
