"""The scoring aggregate: order-independent facts per patient (state.py), and pure decisions over them.

`decide()` derives every score, recommendation and skeletal-related event from the facts, through one module per
decision family: calcium.py (LAB-CA-CRISIS), lesions.py (Mirels, SINS), sre.py (lesion and treatment SREs),
patient.py (CLASS-OLIGO, IMG-FLARE, IMG-ISOLATED). `apply_event()` publishes only what changed since the last time.
The time decisions are made for (`now`) and the policy (recency windows, clock-skew tolerance) are passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from contracts.topics import SCORES
from services.scoring import as_of
from services.scoring import rules as r
from services.scoring.calcium import decide_calcium
from services.scoring.clock import AFTER, next_due
from services.scoring.common import Context, Decisions
from services.scoring.lesions import decide_mirels, decide_sins
from services.scoring.patient import decide_flare, decide_isolated, decide_oligo
from services.scoring.retention import retain
from services.scoring.sre import decide_sres
from services.scoring.state import Assessment, LabValue, Lesion, ScoringState, merge
from shared.clinical.recommend import caused_by, withdrawal

__all__ = [
    "Assessment",
    "Decisions",
    "LabValue",
    "Lesion",
    "ScoringState",
    "apply_event",
    "current_scores",
    "decide",
    "decide_now",
    "retain",
]

SERVICE = r.SERVICE


@dataclass(frozen=True)
class Scope:
    """Which decisions an event can change (their dependencies), so only those are recomputed."""

    calcium: bool = False
    lesions: frozenset[str] | None = None  # the lesions concerned; None: all of them
    scores: bool = False  # Mirels and SINS (finding, pain, life expectancy)
    sres: bool = False  # fracture, cord compression (findings, deficit, treatments), RT for pain, surgery
    flare: bool = False  # IMG-FLARE (finding, treatments)
    patient: bool = False  # oligometastatic status (findings, assessment), isolated lesion (findings)

    def has_lesion(self, lesion_id: str) -> bool:
        return self.lesions is None or lesion_id in self.lesions

    def owns(self, slot: str) -> bool:
        kind, _, lesion = slot.partition(":")
        if kind == "calcium":
            return self.calcium
        if kind in ("mirels", "sins"):
            return self.scores and self.has_lesion(lesion)
        if kind == "flare":
            return self.flare and self.has_lesion(lesion)
        return self.patient  # "oligometastatic", "isolated"


EVERYTHING = Scope(calcium=True, scores=True, sres=True, flare=True, patient=True)


def scope_of(event: Message) -> Scope:
    if isinstance(event, NormalisedLab):
        return Scope(calcium=True, lesions=frozenset())
    if isinstance(event, ImagingFinding):
        # a correction may concern another lesion (the one of the finding it corrects): every lesion
        lesions = frozenset({event.lesion_id}) if event.record_status == "final" else None
        return Scope(lesions=lesions, scores=True, sres=True, flare=True, patient=True)
    if isinstance(event, ClinicalAssessment):
        return Scope(scores=True, sres=True, patient=True)
    if isinstance(event, TreatmentEvent):
        return Scope(flare=True, sres=True)
    return EVERYTHING


def decide(
    s: ScoringState,
    patient_id: str,
    scope: Scope = EVERYTHING,
    *,
    now: datetime | None = None,
    policy: r.Policy = r.DEFAULT_POLICY,
    memo: bool = True,
) -> Decisions:
    c = Context(s, patient_id, now, policy, memo)
    d = Decisions()
    if scope.calcium:
        decide_calcium(c, d)
    for lesion_id, lesion in s.lesions.items():
        if not scope.has_lesion(lesion_id):
            continue
        f = lesion.latest
        scored = lesion.effective_status() != "resolved"
        if scope.scores and scored and f.skeletal_site in r.LONG_BONE_SITES:
            decide_mirels(c, lesion, d)
        spinal = f.skeletal_site == "spine" or (f.skeletal_site == "sacrum" and f.vertebral_level is not None)
        if scope.scores and scored and spinal:
            decide_sins(c, lesion, d)
        if scope.flare:
            decide_flare(c, lesion, d)
    if scope.sres:
        decide_sres(c, d)
    if scope.patient:
        decide_oligo(c, d)
        decide_isolated(c, d)
    return d


def decide_now(
    s: ScoringState,
    patient_id: str,
    scope: Scope = EVERYTHING,
    *,
    now: datetime | None = None,
    policy: r.Policy = r.DEFAULT_POLICY,
    memo: bool = True,
    seen: as_of.Merged | None = None,
) -> Decisions:
    """`decide` (decision A), and HAZ-27-FUTURE-HIDES's "decide twice" when it reads a future-dated fact: B (the
    current one holds) and C (the future one holds now), memo bypassed, merged per unit (services/scoring/as_of.py).
    With no future-dated fact (the common case), A itself: the same code path and objects."""
    d = decide(s, patient_id, scope, now=now, policy=policy, memo=memo)
    ref = now if now is not None else s.as_of()
    if ref is None:
        return d
    limit = as_of.limit_of(ref, policy)
    if not as_of.has_future(s, limit):
        return d
    b = decide(as_of.current_view(s, limit), patient_id, scope, now=ref, policy=policy, memo=False)
    c = decide(as_of.redated_view(s, limit), patient_id, scope, now=ref, policy=policy, memo=False)
    return as_of.merge(d, b, c, patient_id, as_of.future_records(s, limit), seen)


# ---- applying an event: merge, decide, publish the difference -------------------------------------------------
def apply_event(
    state: ScoringState,
    event: Message,
    *,
    now: datetime | None = None,
    policy: r.Policy = r.DEFAULT_POLICY,
    retained: bool = True,
    skip_unread: bool = True,
) -> tuple[ScoringState, list[Message]]:
    """Merge the event, decide what it can change, publish the difference; the state returned is the retained one
    (issue 25, services/scoring/retention.py; `retained=False` keeps every record, for tests that compare).
    `skip_unread=False` decides again on a lab scoring does not read (`unread`): the reference for tests."""
    if skip_unread and unread(state, event, now):
        return state, []
    s = merge(state, event)
    # review R36: once a moment passed whose tick is not applied yet (live timers poll every second), the first
    # event decides everything, as that tick would: an event of another scope would otherwise write a later deadline
    # and step over the moment (a crisis value become current, or no longer current: LAB-CA-CRISIS)
    overdue = now is not None and state.next_due is not None and state.next_due <= now
    scope = EVERYTHING if overdue else scope_of(event)
    # only what this event can change; issue 25: the decisions and the clock's moments are remembered per patient
    # whatever the state's size (common.FamilyMemo, clock.py; stop 34: 40 two-year cohort patients -28 % CPU per
    # event, a new patient's first 20 events +4 %); retention remembers its clean tables from retention.SMALL records
    d = decide_now(s, event.patient_id, scope, now=now, policy=policy)
    out: list[Message] = []
    for slot, lazy in d.recommendations.items():
        old = s.recommendations.get(slot)
        if old == str(lazy.event_id):
            continue
        rec = lazy.build().model_copy(update={"alert_key": f"{SERVICE}:{slot}"})  # one identity per slot (22)
        if old is not None:
            out.append(
                withdrawal(
                    uuid.UUID(old), rec.rule_id, event, SERVICE, "Recommandation remplacée : les données ont changé."
                )
            )
        out.append(rec)
    for slot, old in s.recommendations.items():
        if scope.owns(slot) and slot not in d.recommendations and slot not in d.keep:
            out.append(
                withdrawal(
                    uuid.UUID(old),
                    _rule_of_slot(slot),
                    event,
                    SERVICE,
                    "Recommandation retirée : elle ne s'applique plus aux données actuelles.",
                )
            )
    published_scores, score_ids = _publish_scores(s, d, scope, event)
    out += published_scores
    known = set(s.sres)
    out += [sre for key, sre in sorted(d.sres.items()) if key not in known]
    # an SRE no longer decided is withdrawn (LAB-CORRECTION downstream: a crisis value corrected; a cord compression
    # resolved), and so is an earlier version of one whose currency changed; the new version is published first
    if scope.calcium:
        current = sorted(key for key, sre in d.sres.items() if sre.kind == "hypercalcaemia")
        gone = [key for key in s.calcium_sres if key not in current]
        out += [_sre_withdrawal(key, "hypercalcaemia", event) for key in gone]
        known -= set(gone)
        s.calcium_sres = current
    if scope.sres:
        lesion_sres: dict[str, str] = {
            key: sre.kind for key, sre in sorted(d.sres.items()) if sre.kind != "hypercalcaemia"
        }
        gone = [key for key in s.lesion_sres if key not in lesion_sres]
        out += [_sre_withdrawal(key, s.lesion_sres[key], event) for key in gone]
        known -= set(gone)
        s.lesion_sres = lesion_sres
    published = {slot: old for slot, old in s.recommendations.items() if not scope.owns(slot) or slot in d.keep}
    published |= {slot: str(lazy.event_id) for slot, lazy in d.recommendations.items()}
    s.recommendations = dict(sorted(published.items()))
    scores = {slot: old for slot, old in s.scores.items() if not scope.owns(slot)}
    scores |= {slot: str(lazy.event_id) for slot, lazy in d.scores.items()}
    s.scores = dict(sorted(scores.items()))
    s.score_ids = dict(sorted(score_ids.items()))
    s.sres = sorted(known | set(d.sres))
    if retained:
        s = retain(s, event.patient_id)
    reference = now if now is not None else s.as_of()
    s.next_due = None if reference is None else next_due(s, reference, policy, event.patient_id)
    if reference is not None:  # HAZ-27-FUTURE-HIDES: B's moments too (as_of.next_due_ahead)
        ahead = as_of.next_due_ahead(s, reference, policy)
        if ahead is not None and (s.next_due is None or ahead < s.next_due):
            s.next_due = ahead
    return s, caused_by(out, event)


def unread(state: ScoringState, event: Message, now: datetime | None) -> bool:
    """Issue 25: a lab scoring does not read (every analyte but corrected calcium, LAB-CA-CRISIS: `merge` keeps no
    other) that arrives before the first moment the decisions may change with time (`next_due`, services/scoring/
    clock.py: a currency window passes, a future-dated fact becomes current, an estimate crosses a threshold) changes
    nothing: the decisions, and so the state, stand as they are; the clock tick at `next_due` decides again. At or
    after that moment (a tick not yet applied), or with no `now`, it is decided as any event."""
    return (
        isinstance(event, NormalisedLab)
        and event.analyte != "corrected_calcium"
        and now is not None
        and (state.next_due is None or now < state.next_due - AFTER)
    )


def forget_memos() -> None:
    """Issue 25: forget every memoised decision family, clock moment and retention check (a cold process; tests)."""
    from services.scoring import as_of, calcium, clock, common, lesions, patient, retention, sre

    for memo in (
        calcium.MEMO,
        sre.SRE_MEMO,
        lesions.SINS_MEMO,
        lesions.MIRELS_MEMO,
        patient.OLIGO_MEMO,
        patient.FLARE_MEMO,
    ):
        memo.clear()
    sre.clear()
    common.clear()
    clock.clear()
    retention.clear()
    as_of.forget()


def _publish_scores(s: ScoringState, d: Decisions, scope: Scope, event: Message) -> tuple[list[Score], dict[str, str]]:
    """The score versions to publish, and slot -> ID of the version in force downstream when not its content ID
    (HAZ-22-ORDER-03). A version after another derives its ID from the one it replaces: back to an earlier content
    it is still new (never dropped downstream as a second delivery). A score no longer decided is published as
    withdrawn (total and band None, the reason in `missing`), never left in force by silence."""
    out: list[Score] = []
    ids = dict(s.score_ids)
    for slot, lazy in d.scores.items():
        content = str(lazy.event_id)
        if s.scores.get(slot) == content:
            continue
        prev = s.score_ids.get(slot, s.scores.get(slot))
        version = lazy.build()
        if prev is not None:
            version = version.model_copy(
                update={"event_id": derived_id("score-version", content, prev), "supersedes": [uuid.UUID(prev)]}
            )
            ids[slot] = str(version.event_id)
        out.append(version)
    for slot, content in s.scores.items():
        if scope.owns(slot) and slot not in d.scores:
            withdrawn = _score_withdrawal(slot, s.score_ids.get(slot, content), s, event)
            out.append(withdrawn)
            ids[slot] = str(withdrawn.event_id)
    return out, ids


def slot_of(score: Score) -> str:
    """The slot a score is kept and published under: its kind for a patient-level score (CLASS-OLIGO), else
    `kind:lesion` (SCORE-MIRELS, SCORE-SINS). `slot_parts` is its inverse."""
    return score.score if score.subject == "patient" else f"{score.score}:{score.subject}"


def slot_parts(slot: str) -> tuple[str, str]:
    """A score slot's kind and lesion ("" for a patient-level score): the inverse of `slot_of`."""
    kind, _, lesion_id = slot.partition(":")
    return kind, lesion_id


def recall_published(state: ScoringState, published: list[tuple[str, bytes]]) -> ScoringState:
    """After a replay (shared/runtime/rebuild.py): each score's ID in force downstream, from the last version of it
    on the scores topic. The replay recomputes the contents, not the version chain (HAZ-22-ORDER-03): that depends
    on the order the live service saw the events in, and the next version must name the one downstream holds."""
    last: dict[str, tuple[str, str | None]] = {}  # slot -> (version ID, content ID it carries; None: withdrawn)
    for topic, value in published:
        if topic != SCORES.name:
            continue
        score = Score.model_validate_json(value)
        slot = slot_of(score)
        version = str(score.event_id)
        last[slot] = (version, None if score.status == "withdrawn" else _content_of(score, state.scores.get(slot)))
    if not last:
        return state
    ids, scores = dict(state.score_ids), dict(state.scores)
    for slot, (version, content) in last.items():
        # review RK: a rebuild deciding otherwise than the live service last published (new code; a replay output
        # already on the topic is not sent again) never leaves the state claiming what downstream does not hold
        if slot not in scores:
            if content is None:
                ids[slot] = version  # withdrawn, and not decided: the next version names the withdrawal
            else:  # downstream holds a score no longer decided: its next decision withdraws it (or replaces it)
                scores[slot] = version
                ids.pop(slot, None)
        elif content != scores[slot]:  # downstream holds none, or other content: the next decision publishes it again
            del scores[slot]
            ids[slot] = version
        elif version == scores[slot]:
            ids.pop(slot, None)  # the content ID itself is in force
        else:
            ids[slot] = version
    return state.model_copy(update={"score_ids": dict(sorted(ids.items())), "scores": dict(sorted(scores.items()))})


def _content_of(version: Score, content: str | None) -> str | None:
    """`content` when `version` carries it (its ID is that content ID, or derives from it and the version it replaces:
    `_publish_scores`), else a marker that it carries other content (review RK)."""
    if content is None:
        return str(version.event_id)
    if str(version.event_id) == content:
        return content
    derived = (str(derived_id("score-version", content, str(prev))) for prev in version.supersedes)
    return content if str(version.event_id) in derived else f"other:{version.event_id}"


def _score_withdrawal(slot: str, prev: str, s: ScoringState, event: Message) -> Score:
    """The version of a score scoring no longer decides: same score and subject, no total, no band; its ID names its
    cause (the version it withdraws)."""
    kind, lesion_id = slot_parts(slot)
    rule_ids = {"mirels": ["SCORE-MIRELS"], "sins": ["SCORE-SINS", "SINS-SURGICAL"]}.get(kind, ["CLASS-OLIGO"])
    lesion = s.lesions.get(lesion_id) if lesion_id else None
    if lesion_id and lesion is None:
        reason = "plus de constat d'imagerie pour cette lésion"
    elif lesion is not None and lesion.effective_status() == "resolved":
        reason = "lésion résolue : plus de score"
    elif lesion_id:
        reason = "le site de la lésion (corrigé) ne relève plus de ce score"
    else:
        reason = "statut plus décidé sur les données actuelles"
    name = {"mirels": "Score de Mirels", "sins": "SINS"}.get(kind, "Statut oligométastatique")
    return Score(
        event_id=derived_id("score", prev, "withdrawn"),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=SERVICE,
        score=kind,
        subject=lesion_id or "patient",
        total=None,
        complete=False,
        band=None,
        components=[],
        missing=[reason],
        rule_ids=rule_ids,
        ruleset_version=RULESET_VERSION,
        text_fr=f"{name} {'de ' + lesion_id + ' ' if lesion_id else ''}plus en vigueur : {reason}.",
        citation=cite(rule_ids[0]),
        inputs=[InputUsed(name="trigger_event", value=str(event.event_id), source_event_id=event.event_id)],
        status="withdrawn",
        supersedes=[uuid.UUID(prev)],
    )


def _sre_withdrawal(sre_id: str, kind: str, event: Message) -> SkeletalEvent:
    return SkeletalEvent(
        event_id=derived_id("sre-withdrawn", sre_id, event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=SERVICE,
        kind=kind,
        rule_id="CLASS-SRE",
        evidence=[InputUsed(name="trigger_event", value=str(event.event_id), source_event_id=event.event_id)],
        status="withdrawn",
        supersedes=[uuid.UUID(sre_id)],
    )


def _rule_of_slot(slot: str) -> str:
    prefix = slot.split(":")[0]
    return {
        "calcium": "LAB-CA-CRISIS",
        "mirels": "SCORE-MIRELS",
        "sins": "SINS-SURGICAL",
        "flare": "IMG-FLARE",
        "isolated": "IMG-ISOLATED",
    }.get(prefix, "CLASS-SRE")


def current_scores(
    state: ScoringState | None, patient_id: str, *, now: datetime | None = None, policy: r.Policy = r.DEFAULT_POLICY
) -> list[Score]:
    if state is None:
        return []
    out: list[Score] = []
    for slot, lazy in decide_now(state, patient_id, now=now, policy=policy).scores.items():
        sc = lazy.build()
        published = state.score_ids.get(slot)
        if published is not None and state.scores.get(slot) == str(lazy.event_id):
            sc = sc.model_copy(update={"event_id": uuid.UUID(published)})  # the ID it was published with
        out.append(sc)
    return sorted(out, key=lambda x: (x.score, x.subject))
