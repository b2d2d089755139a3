"""The systemic-planner aggregate per patient and its pure transitions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message
from contracts.clinical import Recommendation, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.systemic_planner.rules import ANTIRESORPTIVES, ArStartDecision, antiresorptive_start
from shared.recommend import recommendation, withdrawal

SERVICE = "systemic-planner"


class Fact(BaseModel):
    """A remembered input with its provenance."""

    value: float | str | bool | None
    occurred_at: datetime
    event_id: uuid.UUID

    def used(self, name: str, unit: str | None = None) -> InputUsed:
        return InputUsed(
            name=name, value=self.value, unit=unit, occurred_at=self.occurred_at, source_event_id=self.event_id
        )


class SystemicState(BaseModel):
    sres: dict[str, Fact] = Field(default_factory=dict)  # SRE event_id -> kind
    first_bone_metastasis: Fact | None = None
    life_expectancy: Fact | None = None
    antiresorptive_since: date | None = None
    ar_start_rec: tuple[str, uuid.UUID] | None = None  # (outcome:trigger, recommendation id)


def _ar_start_recommendation(s: SystemicState, d: ArStartDecision, trigger: Message) -> Recommendation | None:
    inputs = [f.used(f"sre:{f.value}") for f in s.sres.values()]
    if s.first_bone_metastasis is not None:
        inputs.append(s.first_bone_metastasis.used("bone_metastasis_site"))
    if s.life_expectancy is not None:
        inputs.append(s.life_expectancy.used("life_expectancy", "months"))
    if d.outcome == "start" and d.trigger == "sre":
        return recommendation(
            rule_id="SYS-AR-START",
            trigger=trigger,
            produced_by=SERVICE,
            severity="warning",
            title="Débuter un traitement anti-résorptif (après événement osseux)",
            text_fr=(
                "Un événement osseux (SRE) est survenu : un anti-résorptif (acide zolédronique ou "
                "dénosumab) est indiqué quelle que soit la survie attendue, pour limiter la douleur, "
                "l'hypercalcémie et un nouvel événement. Vérifier au préalable vitamine D, fonction "
                "rénale et état bucco-dentaire, sauf urgence."
            ),
            inputs=inputs,
            key=("start", "sre"),
        )
    if d.outcome == "start":
        return recommendation(
            rule_id="SYS-AR-START",
            trigger=trigger,
            produced_by=SERVICE,
            severity="info",
            title="Débuter un traitement anti-résorptif (métastase osseuse, espérance de vie > 3 mois)",
            text_fr=(
                "Métastase osseuse connue et espérance de vie estimée supérieure à 3 mois : proposer un "
                "anti-résorptif (acide zolédronique ou dénosumab) dès maintenant, après bilan vitamine D, "
                "rénal et dentaire."
            ),
            inputs=inputs,
            key=("start", "bone_metastasis"),
        )
    if d.outcome == "insufficient_data":
        return recommendation(
            rule_id="SYS-AR-START",
            trigger=trigger,
            produced_by=SERVICE,
            severity="info",
            title="Anti-résorptif : décision impossible, données manquantes",
            text_fr=(
                "Métastase osseuse connue, mais sans estimation clinique de l'espérance de vie : "
                "l'indication d'un anti-résorptif (seuil : > 3 mois) ne peut pas être posée."
            ),
            inputs=inputs,
            key=("insufficient", "life_expectancy"),
            missing=d.missing,
        )
    return None


def _decide(s: SystemicState, trigger: Message) -> list[Message]:
    d = antiresorptive_start(
        has_sre=bool(s.sres),
        bone_metastasis=s.first_bone_metastasis is not None,
        life_expectancy_months=None if s.life_expectancy is None else float(s.life_expectancy.value or 0),
        on_antiresorptive=s.antiresorptive_since is not None,
    )
    state_key = f"{d.outcome}:{d.trigger}"
    if s.ar_start_rec is not None and s.ar_start_rec[0] == state_key:
        return []
    out: list[Message] = []
    if s.ar_start_rec is not None:
        out.append(
            withdrawal(
                s.ar_start_rec[1],
                "SYS-AR-START",
                trigger,
                SERVICE,
                "Recommandation mise à jour : la situation a changé (nouvelle donnée ou traitement débuté).",
            )
        )
        s.ar_start_rec = None
    rec = _ar_start_recommendation(s, d, trigger)
    if rec is not None:
        out.append(rec)
        s.ar_start_rec = (state_key, rec.event_id)
    return out


def apply_event(state: SystemicState, event: Message) -> tuple[SystemicState, list[Message]]:
    s = state.model_copy(deep=True)
    if isinstance(event, SkeletalEvent):
        s.sres[str(event.event_id)] = Fact(value=event.kind, occurred_at=event.occurred_at, event_id=event.event_id)
    elif isinstance(event, ImagingFinding):
        if s.first_bone_metastasis is None or event.occurred_at < s.first_bone_metastasis.occurred_at:
            s.first_bone_metastasis = Fact(
                value=event.skeletal_site, occurred_at=event.occurred_at, event_id=event.event_id
            )
    elif isinstance(event, ClinicalAssessment):
        if event.life_expectancy_months is not None and (
            s.life_expectancy is None or event.occurred_at >= s.life_expectancy.occurred_at
        ):
            s.life_expectancy = Fact(
                value=event.life_expectancy_months, occurred_at=event.occurred_at, event_id=event.event_id
            )
    elif isinstance(event, TreatmentEvent):
        t = event.treatment
        if t.kind == "systemic_drug" and t.drug in ANTIRESORPTIVES:
            s.antiresorptive_since = t.on if t.action == "started" else None
    return s, _decide(s, event)
