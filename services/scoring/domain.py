"""The scoring aggregate: order-independent facts per patient, and pure decisions over them.

Facts merge commutatively (the newest clinical time wins, ties broken by recorded time then event ID), so
the same events give the same state in any order: a late event never hides a newer one, and a rebuild
from the Kafka topics reproduces the state exactly. `decide()` derives every score, recommendation and
skeletal-related event from the facts; `apply_event()` publishes only what changed since the last time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import NormalisedLab, Recommendation, Score, ScoreComponent, SkeletalEvent, SourceRef
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from services.scoring import rules as r
from services.scoring.texts import (
    crisis_text,
    flare_text,
    isolated_text,
    mirels_text,
    oligo_text,
    sins_text,
    unconfirmed_crisis_text,
)
from shared.facts import Fact, earliest, newest
from shared.recommend import Lazy, caused_by, lazy_recommendation, withdrawal

SERVICE = r.SERVICE


class Lesion(BaseModel):
    latest: ImagingFinding
    first_seen: datetime
    modalities: list[str]
    cord_compression: Fact[str] | None = None  # first finding showing it
    fracture: Fact[str] | None = None
    new_foci: list[Fact[str]] = Field(default_factory=list)  # metabolic findings flagged new_focus; value=modality


class Assessment(BaseModel):
    ecog: Fact[int] | None = None
    pain_character: Fact[str] | None = None
    pain_intensity: Fact[str] | None = None
    neurological_deficit: Fact[bool] | None = None
    life_expectancy_months: Fact[float] | None = None
    primary_controlled: Fact[bool] | None = None


class LabValue(BaseModel):
    analyte: str
    value: float | None
    sources: list[SourceRef] = Field(default_factory=list)  # what a derived value came from
    measured_total_calcium: float | None
    withdrawn: bool
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID


class ScoringState(BaseModel):
    lesions: dict[str, Lesion] = Field(default_factory=dict)
    assessment: Assessment = Field(default_factory=Assessment)
    treatments: dict[str, TreatmentEvent] = Field(default_factory=dict)  # by event_id
    labs: dict[str, LabValue] = Field(default_factory=dict)  # by result_id
    #: what was last published, derived from the facts: slot -> recommendation ID; slot -> score ID; SRE IDs
    recommendations: dict[str, str] = Field(default_factory=dict)
    scores: dict[str, str] = Field(default_factory=dict)
    sres: list[str] = Field(default_factory=list)
    calcium_sres: list[str] = Field(default_factory=list)  # the published SREs that are hypercalcaemias


# ---- merging facts (commutative) ----------------------------------------------------------------------------
def _fact(event: Message, value: Any) -> Fact[Any]:
    return Fact[Any].of(event, value)


def merge(state: ScoringState, event: Message) -> ScoringState:
    s = state.model_copy(
        update={"lesions": dict(state.lesions), "treatments": dict(state.treatments), "labs": dict(state.labs)}
    )
    if isinstance(event, ImagingFinding):
        s.lesions[event.lesion_id] = _merge_finding(s.lesions.get(event.lesion_id), event)
    elif isinstance(event, ClinicalAssessment):
        s.assessment = _merge_assessment(s.assessment, event)
    elif isinstance(event, TreatmentEvent):
        s.treatments[str(event.event_id)] = event
    elif isinstance(event, NormalisedLab) and event.analyte == "corrected_calcium":  # the only lab scoring uses
        prev = s.labs.get(event.result_id)
        # one producer, in order on the patient's partition: an equal recorded_at is a re-derivation (ties go to
        # the later delivery); only a strictly older version is ignored
        if prev is None or event.recorded_at >= prev.recorded_at:
            measured = next(
                (x.value for x in event.derived_from if x.analyte == "total_calcium" and isinstance(x.value, float)),
                None,
            )
            s.labs[event.result_id] = LabValue(
                analyte=event.analyte,
                value=event.value,
                sources=event.derived_from,
                measured_total_calcium=measured,
                withdrawn=event.status == "withdrawn",
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                event_id=event.event_id,
            )
    # canonical key order, so that the same facts always serialise to the same bytes
    return s.model_copy(
        update={
            "lesions": dict(sorted(s.lesions.items())),
            "treatments": dict(sorted(s.treatments.items())),
            "labs": dict(sorted(s.labs.items())),
        }
    )


def _merge_finding(lesion: Lesion | None, f: ImagingFinding) -> Lesion:
    key = (f.occurred_at, f.recorded_at, str(f.event_id))
    if lesion is None:
        lesion = Lesion(latest=f, first_seen=f.occurred_at, modalities=[])
    elif key > (lesion.latest.occurred_at, lesion.latest.recorded_at, str(lesion.latest.event_id)):
        lesion = lesion.model_copy(update={"latest": f})
    lesion = lesion.model_copy(
        update={
            "first_seen": min(lesion.first_seen, f.occurred_at),
            "modalities": sorted({*lesion.modalities, f.modality}),
        }
    )
    if f.cord_compression:
        lesion.cord_compression = earliest(lesion.cord_compression, _fact(f, f.modality))
    if f.pathological_fracture:
        lesion.fracture = earliest(lesion.fracture, _fact(f, f.modality))
    if f.new_focus and f.modality in r.METABOLIC_MODALITIES:
        foci = {str(x.event_id): x for x in lesion.new_foci}
        foci[str(f.event_id)] = _fact(f, f.modality)
        lesion.new_foci = sorted(foci.values(), key=lambda x: x.order())
    return lesion


def _merge_assessment(a: Assessment, e: ClinicalAssessment) -> Assessment:
    a = a.model_copy()
    pain = e.pain
    for name, value in (
        ("ecog", e.ecog),
        ("pain_character", pain.character if pain else None),
        ("pain_intensity", pain.intensity if pain else None),
        ("neurological_deficit", e.neurological_deficit),
        ("life_expectancy_months", e.life_expectancy_months),
        ("primary_controlled", e.primary_controlled),
    ):
        if value is not None:  # an absent field leaves what is known unchanged
            setattr(a, name, newest(getattr(a, name), _fact(e, value)))
    return a


# ---- decisions (pure functions of the facts) ---------------------------------------------------------------
@dataclass
class Decisions:
    recommendations: dict[str, Lazy[Recommendation]] = field(default_factory=dict)
    scores: dict[str, Lazy[Score]] = field(default_factory=dict)
    sres: dict[str, SkeletalEvent] = field(default_factory=dict)
    #: published slots to leave as they are although no longer current (a crisis episode that ended)
    keep: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Scope:
    """Which decisions an event can change (their dependencies), so only those are recomputed."""

    calcium: bool = False
    lesions: frozenset[str] | None = None  # the lesions concerned; None: all of them
    scores: bool = False  # Mirels and SINS (finding, pain, life expectancy)
    lesion_sres: bool = False  # cord compression, fracture (finding)
    flare: bool = False  # IMG-FLARE (finding, treatments)
    treatment_sres: bool = False  # RT for pain, orthopaedic surgery (treatments)
    patient: bool = False  # oligometastatic status (findings, primary control), isolated lesion (findings)

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


EVERYTHING = Scope(calcium=True, scores=True, lesion_sres=True, flare=True, treatment_sres=True, patient=True)


def scope_of(event: Message) -> Scope:
    if isinstance(event, NormalisedLab):
        return Scope(calcium=True, lesions=frozenset())
    if isinstance(event, ImagingFinding):
        return Scope(lesions=frozenset({event.lesion_id}), scores=True, lesion_sres=True, flare=True, patient=True)
    if isinstance(event, ClinicalAssessment):
        return Scope(scores=True, patient=True)
    if isinstance(event, TreatmentEvent):
        return Scope(flare=True, treatment_sres=True)
    return EVERYTHING


def decide(s: ScoringState, patient_id: str, scope: Scope = EVERYTHING) -> Decisions:
    d = Decisions()
    if scope.calcium:
        _calcium(s, patient_id, d)
    for lesion_id, lesion in s.lesions.items():
        if not scope.has_lesion(lesion_id):
            continue
        f = lesion.latest
        if scope.scores and f.skeletal_site in r.LONG_BONE_SITES:
            _mirels(s, lesion, d)
        if scope.scores and (f.skeletal_site == "spine" or (f.skeletal_site == "sacrum" and f.vertebral_level)):
            _sins(s, lesion, d)
        if scope.lesion_sres:
            _lesion_sres(lesion, d)
        if scope.flare:
            _flare(s, lesion, d)
    if scope.treatment_sres:
        _treatment_sres(s, patient_id, d)
    if scope.patient:
        if s.lesions:
            _oligo(s, patient_id, d)
        _isolated(s, d)
    return d


Component = tuple[str, str | float | bool | None, int | None, uuid.UUID | None]  # name, value, points, source


def _score(
    kind: str,
    subject: str,
    trigger: Message,
    components: list[Component],
    total: int | None,
    complete: bool,
    band: str | None,
    missing: list[str],
    rule_ids: list[str],
    text: str,
    inputs: list[InputUsed],
    also: Sequence[Fact[Any] | None] = (),
) -> Lazy[Score]:
    """A score (its ID now, the message when needed); its times are the newest of all its inputs, so a
    re-scored version is never older."""
    signature = (kind, subject, total, band, tuple(c[:3] for c in components), tuple(missing))
    event_id = derived_id("score", trigger.patient_id, *signature)

    def build() -> Score:
        facts = [f for f in also if f is not None]
        return Score(
            event_id=event_id,
            patient_id=trigger.patient_id,
            occurred_at=max([trigger.occurred_at] + [f.occurred_at for f in facts]),
            recorded_at=max([trigger.recorded_at] + [f.recorded_at for f in facts]),
            source=SERVICE,
            score=kind,
            subject=subject,
            total=total,
            complete=complete,
            band=band,
            components=[ScoreComponent(name=n, value=v, points=p, source_event_id=src) for n, v, p, src in components],
            missing=missing,
            rule_ids=rule_ids,
            ruleset_version=RULESET_VERSION,
            text_fr=text,
            citation=cite(rule_ids[0]),
            inputs=inputs,
        )

    return Lazy(event_id, build)


def _components(items: tuple[r.Item, ...], sources: dict[str, uuid.UUID | None]) -> list[Component]:
    return [(i.name, i.value, i.points, sources.get(i.name)) for i in items]


def _calcium(s: ScoringState, patient_id: str, d: Decisions) -> None:
    """LAB-CA-CRISIS. An episode is a run of consecutive crisis values (corrected calcium > 3.5 mmol/L) in
    clinical time; each is one SRE. Only the episode still under way (the newest value is a crisis) alerts; an
    episode that has ended keeps its alert, and is withdrawn only if its first value is corrected or withdrawn.
    A late, older value therefore never opens a new alert once a newer normal value is known."""
    values = sorted(
        ((rid, v) for rid, v in s.labs.items() if v.analyte == "corrected_calcium" and not v.withdrawn),
        key=lambda kv: (kv[1].occurred_at, kv[1].recorded_at, str(kv[1].event_id)),
    )
    if not values:
        return
    starts: list[tuple[str, LabValue]] = []
    in_crisis = False
    for rid, v in values:
        if v.value is None:
            continue  # not computable (no albumin): neither opens nor closes an episode
        crisis = r.is_hypercalcaemic_crisis(v.value)
        if crisis and not in_crisis:
            starts.append((rid, v))
        in_crisis = crisis
    for start_id, start in starts:
        assert start.value is not None
        used = [
            InputUsed(
                name="corrected_calcium",
                value=start.value,
                unit="mmol/L",
                occurred_at=start.occurred_at,
                source_event_id=start.event_id,
            )
        ]
        provenance = [
            InputUsed(name=x.analyte, value=x.value, unit=x.unit, occurred_at=x.occurred_at, source_event_id=x.event_id)
            for x in start.sources
        ]
        sre = SkeletalEvent(
            event_id=derived_id("sre", "hypercalcaemia", start_id),
            patient_id=patient_id,
            occurred_at=start.occurred_at,
            recorded_at=start.recorded_at,
            source=SERVICE,
            kind="hypercalcaemia",
            rule_id="CLASS-SRE",
            evidence=used,
        )
        d.sres[str(sre.event_id)] = sre
        slot = f"calcium:crisis:{start_id}"
        if not (in_crisis and start_id == starts[-1][0]):
            d.keep.add(slot)  # an ended episode: its alert stays as it is
            continue
        d.recommendations[slot] = lazy_recommendation(
            rule_id="LAB-CA-CRISIS",
            trigger=_lab_message(start, patient_id),
            produced_by=SERVICE,
            severity="critical",
            title=f"Crise aiguë hypercalcémique : calcémie corrigée {start.value:.2f} mmol/L",
            text_fr=crisis_text(start.value),
            inputs=used + provenance,
            key=("crisis", start_id),
        )
    latest_id, latest = values[-1]
    measured = latest.measured_total_calcium
    if latest.value is None and measured is not None and r.is_hypercalcaemic_crisis(measured):
        d.recommendations[f"calcium:unconfirmed:{latest_id}"] = lazy_recommendation(
            rule_id="LAB-CA-CRISIS",
            trigger=_lab_message(latest, patient_id),
            produced_by=SERVICE,
            severity="warning",
            title=f"Calcémie totale {measured:.2f} mmol/L : calcémie corrigée non calculable",
            text_fr=unconfirmed_crisis_text(measured),
            inputs=[
                InputUsed(
                    name="total_calcium",
                    value=measured,
                    unit="mmol/L",
                    occurred_at=latest.occurred_at,
                    source_event_id=latest.event_id,
                )
            ],
            key=("unconfirmed", latest_id),
            missing=["albumin drawn within 48 h of the calcium"],
        )


class _LabTrigger(Message):
    """A message-shaped handle on a lab fact: the times and ID of what it triggers. Never published."""

    schema_id = "osteocds.internal.lab-trigger/0"


def _lab_message(v: LabValue, patient_id: str) -> Message:
    return _LabTrigger(
        event_id=v.event_id, patient_id=patient_id, occurred_at=v.occurred_at, recorded_at=v.recorded_at, source=SERVICE
    )


def _finding_inputs(f: ImagingFinding) -> list[InputUsed]:
    return [
        InputUsed(
            name="imaging_finding",
            value=f"{f.lesion_id} ({f.modality})",
            occurred_at=f.occurred_at,
            source_event_id=f.event_id,
        )
    ]


def _mirels(s: ScoringState, lesion: Lesion, d: Decisions) -> None:
    f, a = lesion.latest, s.assessment
    pain = a.pain_intensity
    m = r.mirels(f.skeletal_site, f.cortical_involvement_fraction, f.lesion_type, pain.value if pain else None)
    sources = {
        "site": f.event_id,
        "size": f.event_id,
        "lesion_type": f.event_id,
        "pain": pain.event_id if pain else None,
    }
    inputs = _finding_inputs(f) + ([pain.used("pain_intensity")] if pain else [])
    le = a.life_expectancy_months
    ct = r.ct_osteolysis_criterion(f.axial_cortical_osteolysis_pct, f.circumferential_cortical_osteolysis_pct)
    band = None
    if m.total is not None:
        band = "≤7" if m.total <= 7 else "8" if m.total == 8 else "≥9"
    d.scores[f"mirels:{f.lesion_id}"] = _score(
        "mirels",
        f.lesion_id,
        f,
        _components(m.items, sources),
        m.total,
        m.complete,
        band,
        list(m.missing),
        ["SCORE-MIRELS"],
        mirels_text(f.lesion_id, m, None, None, ct),
        inputs,
        also=[pain],
    )
    if m.total is None:
        return
    rule_id, decision = r.mirels_decision(m.total, le.value if le else None)
    if le is not None:
        inputs.append(le.used("life_expectancy", "months"))
    if f.axial_cortical_osteolysis_pct is not None and f.circumferential_cortical_osteolysis_pct is not None:
        inputs.append(
            InputUsed(
                name="ct_cortical_osteolysis_axial_circumferential_pct",
                value=f"{f.axial_cortical_osteolysis_pct:g}/{f.circumferential_cortical_osteolysis_pct:g}",
                unit="%",
                occurred_at=f.occurred_at,
                source_event_id=f.event_id,
            )
        )
    severity = {
        "low": "info",
        "rcp": "warning",
        "fixation": "critical",
        "high_short_survival": "warning",
        "high_survival_unknown": "warning",
    }[decision]
    d.recommendations[f"mirels:{f.lesion_id}"] = lazy_recommendation(
        rule_id=rule_id,
        trigger=f,
        produced_by=SERVICE,
        severity=severity,
        title=f"Score de Mirels {m.total}/12 ({f.lesion_id})",
        text_fr=mirels_text(f.lesion_id, m, decision, le.value if le else None, ct),
        inputs=inputs,
        key=(f.lesion_id, decision, m.total, ct),
        missing=["life expectancy estimate"] if decision == "high_survival_unknown" else [],
    )


def _sins(s: ScoringState, lesion: Lesion, d: Decisions) -> None:
    f, pain = lesion.latest, s.assessment.pain_character
    scored = r.sins(
        f.vertebral_level,
        pain.value if pain else None,
        f.lesion_type,
        f.alignment,
        f.vertebral_collapse,
        f.posterolateral_involvement,
    )
    sources = {i.name: f.event_id for i in scored.items} | {"pain": pain.event_id if pain else None}
    inputs = _finding_inputs(f) + ([pain.used("pain_character")] if pain else [])
    band = r.sins_band(scored.total) if scored.total is not None else None
    where = f.vertebral_level or f.lesion_id
    d.scores[f"sins:{f.lesion_id}"] = _score(
        "sins",
        f.lesion_id,
        f,
        _components(scored.items, sources),
        scored.total,
        scored.complete,
        band,
        list(scored.missing),
        ["SCORE-SINS", "SINS-SURGICAL"],
        sins_text(where, scored, band),
        inputs,
        also=[pain],
    )
    floor = scored.total if scored.total is not None else scored.known_points  # a lower bound when incomplete
    if floor < 7:
        return
    severity = "critical" if floor >= 13 else "warning"
    d.recommendations[f"sins:{f.lesion_id}"] = lazy_recommendation(
        rule_id="SINS-SURGICAL",
        trigger=f,
        produced_by=SERVICE,
        severity=severity,
        title=(
            f"SINS {scored.total}/18 en {where} : avis chirurgical"
            if scored.total is not None
            else f"SINS d'au moins {floor}/18 en {where} : avis chirurgical"
        ),
        text_fr=sins_text(where, scored, band, decision=True),
        inputs=inputs,
        key=(f.lesion_id, severity, scored.total, floor),
        missing=list(scored.missing),
    )


def _lesion_sres(lesion: Lesion, d: Decisions) -> None:
    f = lesion.latest
    for kind, fact in (("cord_compression", lesion.cord_compression), ("pathological_fracture", lesion.fracture)):
        if fact is None:
            continue
        sre = SkeletalEvent(
            event_id=derived_id("sre", kind, f.patient_id, f.lesion_id),
            patient_id=f.patient_id,
            occurred_at=fact.occurred_at,
            recorded_at=fact.recorded_at,
            source=SERVICE,
            kind=kind,
            rule_id="CLASS-SRE",
            evidence=[fact.used(f"{kind}:{f.lesion_id}")],
        )
        d.sres[str(sre.event_id)] = sre


def _treatment_sres(s: ScoringState, patient_id: str, d: Decisions) -> None:
    for key, e in s.treatments.items():
        t = e.treatment
        kind = None
        if t.kind == "radiotherapy" and t.intent == "pain":
            kind = "radiotherapy_for_pain"
        elif t.kind == "surgery" and t.procedure == "prophylactic_fixation":
            kind = "orthopaedic_surgery"
        elif t.kind == "surgery" and t.procedure == "fracture_fixation":
            kind = "pathological_fracture"
        if kind is None:
            continue
        sre = SkeletalEvent(
            event_id=derived_id("sre", kind, key),
            patient_id=patient_id,
            occurred_at=e.occurred_at,
            recorded_at=e.recorded_at,
            source=SERVICE,
            kind=kind,
            rule_id="CLASS-SRE",
            evidence=[
                InputUsed(
                    name=f"{t.kind}:{getattr(t, 'site', '')}",
                    value=t.on.isoformat(),
                    occurred_at=e.occurred_at,
                    source_event_id=e.event_id,
                )
            ],
        )
        d.sres[str(sre.event_id)] = sre


def _oligo(s: ScoringState, patient_id: str, d: Decisions) -> None:
    findings = [x.latest for x in s.lesions.values()]
    pc = s.assessment.primary_controlled
    status = r.oligometastatic(
        len({f.skeletal_site for f in findings}), len(findings), [f.size_cm for f in findings], pc.value if pc else None
    )
    trigger = max(findings, key=lambda f: (f.occurred_at, f.recorded_at, str(f.event_id)))
    components: list[Component] = [
        (c.name, c.value, None if c.met is None else int(c.met), None) for c in status.criteria
    ]
    inputs = [
        InputUsed(
            name="lesion",
            value=f"{f.lesion_id}:{f.skeletal_site}:{f.size_cm}",
            unit="cm",
            occurred_at=f.occurred_at,
            source_event_id=f.event_id,
        )
        for f in findings
    ]
    if pc is not None:
        inputs.append(pc.used("primary_controlled"))
    d.scores["oligometastatic"] = _score(
        "oligometastatic",
        "patient",
        trigger,
        components,
        None,
        not status.missing,
        status.status,
        list(status.missing),
        ["CLASS-OLIGO"],
        oligo_text(status),
        inputs,
        also=[pc],
    )


def _effective_treatment(s: ScoringState, on: date) -> tuple[str, date] | None:
    """The latest systemic anticancer drug (not an anti-resorptive) started on or before `on`, not stopped."""
    events = sorted(
        (e.treatment for e in s.treatments.values() if e.treatment.kind == "systemic_drug"),
        key=lambda t: (t.on, t.action == "stopped"),
    )
    active: dict[str, date] = {}
    for t in events:
        if t.on > on or t.drug in r.ANTIRESORPTIVES:
            continue
        if t.action == "started":
            active[t.drug] = t.on
        else:
            active.pop(t.drug, None)
    return max(active.items(), key=lambda kv: kv[1], default=None)


def _flare(s: ScoringState, lesion: Lesion, d: Decisions) -> None:
    """IMG-FLARE: new foci on bone scan or PET < 6 months after an effective treatment started: possible flare,
    never progression; after 6 months, new foci mean progression."""
    if not lesion.new_foci:
        return
    focus = lesion.new_foci[-1]
    treatment = _effective_treatment(s, focus.occurred_at.date())
    if treatment is None:
        return
    drug, started = treatment
    flare = r.within_flare_window(started, focus.occurred_at.date())
    egfr = drug in r.EGFR_TKIS
    lesion_id = lesion.latest.lesion_id
    d.recommendations[f"flare:{lesion_id}"] = lazy_recommendation(
        rule_id="IMG-FLARE",
        trigger=lesion.latest,
        produced_by=SERVICE,
        severity="warning" if flare and egfr else "info",
        title=(
            "Nouveau foyer osseux : possible flare, pas une progression"
            if flare
            else "Nouveau foyer osseux plus de 6 mois après le début du traitement"
        ),
        text_fr=flare_text(lesion_id, focus.value, drug, started, flare, egfr),
        inputs=[
            focus.used(f"new_focus:{lesion_id}"),
            InputUsed(name="treatment_started", value=f"{drug} {started.isoformat()}"),
        ],
        key=(lesion_id, str(focus.event_id), drug, started.isoformat(), flare),
    )


def _isolated(s: ScoringState, d: Decisions) -> None:
    """IMG-ISOLATED: a single lesion seen only on PET or bone scan needs targeted imaging, then an opinion."""
    if len(s.lesions) != 1:
        return
    (lesion,) = s.lesions.values()
    if not set(lesion.modalities) <= r.METABOLIC_MODALITIES:
        return
    f = lesion.latest
    d.recommendations["isolated"] = lazy_recommendation(
        rule_id="IMG-ISOLATED",
        trigger=f,
        produced_by=SERVICE,
        severity="info",
        title="Lésion osseuse isolée en imagerie métabolique : imagerie ciblée",
        text_fr=isolated_text(f.lesion_id, ", ".join(lesion.modalities)),
        inputs=_finding_inputs(f),
        key=(f.lesion_id,),
    )


# ---- applying an event: merge, decide, publish the difference -------------------------------------------------
def apply_event(state: ScoringState, event: Message) -> tuple[ScoringState, list[Message]]:
    s = merge(state, event)
    scope = scope_of(event)
    d = decide(s, event.patient_id, scope)  # only what this event can change; the rest stays as published
    out: list[Message] = []
    for slot, lazy in d.recommendations.items():
        old = s.recommendations.get(slot)
        if old == str(lazy.event_id):
            continue
        rec = lazy.build()
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
    out += [lazy.build() for slot, lazy in d.scores.items() if s.scores.get(slot) != str(lazy.event_id)]
    known = set(s.sres)
    out += [sre for key, sre in sorted(d.sres.items()) if key not in known]
    if scope.calcium:  # LAB-CORRECTION downstream: a crisis value corrected or withdrawn takes its SRE with it
        current = sorted(key for key, sre in d.sres.items() if sre.kind == "hypercalcaemia")
        gone = [key for key in s.calcium_sres if key not in current]
        out += [_sre_withdrawal(key, event) for key in gone]
        known -= set(gone)
        s.calcium_sres = current
    published = {slot: old for slot, old in s.recommendations.items() if not scope.owns(slot) or slot in d.keep}
    published |= {slot: str(lazy.event_id) for slot, lazy in d.recommendations.items()}
    s.recommendations = dict(sorted(published.items()))
    scores = {slot: old for slot, old in s.scores.items() if not scope.owns(slot)}
    scores |= {slot: str(lazy.event_id) for slot, lazy in d.scores.items()}
    s.scores = dict(sorted(scores.items()))
    s.sres = sorted(known | set(d.sres))
    return s, caused_by(out, event)


def _sre_withdrawal(sre_id: str, event: Message) -> SkeletalEvent:
    return SkeletalEvent(
        event_id=derived_id("sre-withdrawn", sre_id, event.event_id),
        patient_id=event.patient_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        source=SERVICE,
        kind="hypercalcaemia",
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


def current_scores(state: ScoringState | None, patient_id: str) -> list[Score]:
    if state is None:
        return []
    return sorted(
        (lazy.build() for lazy in decide(state, patient_id).scores.values()), key=lambda x: (x.score, x.subject)
    )
