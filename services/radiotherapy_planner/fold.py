"""An event folded into the local-treatment planner's facts (pure): the table it changes is copied, the others are
shared with the previous state (never changed). The plan is decided from the facts in domain.py."""

from __future__ import annotations

from typing import Final

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner.facts import (
    LABS_PER_ANALYTE,
    FindingFact,
    LabFact,
    LocalState,
    ScoreFact,
    fold_assessment,
    refold_assessments,
)
from services.radiotherapy_planner.findings_kept import prune_findings
from services.radiotherapy_planner.retention import HORIZON
from shared.clinical.corrections import is_correction
from shared.clinical.treatments import canonical

_HAEMOSTASIS = ("platelets", "prothrombin_pct")


# ---- facts ---------------------------------------------------------------------------------------------------------
_TABLE: Final[dict[type, str]] = {
    ImagingFinding: "findings",
    ClinicalAssessment: "assessed",
    TreatmentEvent: "treatments",
    LocalTreatmentRequest: "requests",
    Score: "scores",
}


def relevant(e: Message) -> bool:
    """Whether the planner reads anything from this event (other lab analytes and dental care: nothing)."""
    if isinstance(e, NormalisedLab):
        return e.analyte in _HAEMOSTASIS
    if isinstance(e, TreatmentEvent):  # a correction of any kind may correct a course or a surgery (issue 18 review)
        return e.treatment.kind != "dental" or e.record_status != "final"
    return True


def merge(state: LocalState, e: Message) -> LocalState:
    # Copy only the table this event changes (shallow: the values held are immutable or replaced, never mutated in
    # place); the others are shared with the previous state, which is never changed either.
    if state.withdrawn and str(e.event_id) in state.withdrawn:  # a corrected record folded away (retention.py)
        return state.model_copy()
    changed = _TABLE.get(type(e))
    update: dict[str, object] = {}
    if changed is not None:
        update[changed] = dict(getattr(state, changed))
    if isinstance(e, ClinicalAssessment):
        update["opinions"] = dict(state.opinions)
    elif isinstance(e, NormalisedLab):
        update["labs"] = {k: dict(v) for k, v in state.labs.items()}
    s = state.model_copy(update=update)
    if isinstance(e, ImagingFinding):
        # every record is kept, corrections too: `lesions()` counts only the effective findings (shared/corrections),
        # so a corrected finding is never resurrected by a late or repeated delivery
        s.findings[str(e.event_id)] = FindingFact.of(e)
        prune_findings(s, e.lesion_id, HORIZON)  # a late study or a correction within HORIZON: exact
    elif isinstance(e, ClinicalAssessment):
        s.assessments = dict(sorted({**state.assessments, str(e.event_id): e}.items()))
        if any(is_correction(x) for x in s.assessments.values()):  # what a corrected one said no longer counts
            refold_assessments(s)
        else:
            fold_assessment(s, e)
    elif isinstance(e, TreatmentEvent):
        if e.treatment.kind != "dental" or e.record_status != "final":  # corrections kept beside what they correct
            s.treatments[str(e.event_id)] = canonical(e)
    elif isinstance(e, LocalTreatmentRequest):
        prev_req = s.requests.get(e.request_id)
        # a cancelled request folded away (retention) is known by the times of the version that closed it
        prev_at = (prev_req.occurred_at, prev_req.recorded_at) if prev_req else s.closed_requests.get(e.request_id)
        # the newest version of the request wins; on a tie the later delivery (an update sent in the same second)
        if prev_at is None or (e.occurred_at, e.recorded_at) >= prev_at:
            s.requests[e.request_id] = e
            if e.request_id in s.closed_requests:
                s.closed_requests = {k: v for k, v in s.closed_requests.items() if k != e.request_id}
    elif isinstance(e, Score):
        key = f"{e.score}:{e.subject}" if e.score != "oligometastatic" else "oligometastatic"
        prev = s.scores.get(key)
        if e.status == "withdrawn":  # no longer decided: absent (HAZ-22-ORDER-03), whatever the times it carries
            if prev is not None and (prev.event_id in e.supersedes or e.recorded_at >= prev.recorded_at):
                s.scores.pop(key)  # this table is the event's copy (merge)
        # one producer, in order: a re-derivation replaces, and so does the version naming the one it replaces
        elif prev is None or prev.event_id in e.supersedes or e.recorded_at >= prev.recorded_at:
            known = [c.points for c in e.components if c.points is not None]
            s.scores[key] = ScoreFact(
                total=e.total,
                band=e.band,
                complete=e.complete,
                floor=sum(known) if known else None,
                missing=list(e.missing),
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                event_id=e.event_id,
            )
    elif isinstance(e, NormalisedLab) and e.analyte in _HAEMOSTASIS:
        table = s.labs.setdefault(e.analyte, {})
        prev_lab = table.get(e.result_id)
        if prev_lab is None or e.recorded_at >= prev_lab.recorded_at:
            table[e.result_id] = LabFact(
                value=e.value,
                withdrawn=e.status == "withdrawn",
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                event_id=e.event_id,
                comparator=e.comparator,
            )
            newest_first = sorted(table.values(), key=lambda v: (v.occurred_at, v.recorded_at), reverse=True)
            keep = {id(v) for v in newest_first[:LABS_PER_ANALYTE]}
            s.labs[e.analyte] = {k: v for k, v in table.items() if id(v) in keep}
    return s
