"""The radiotherapy-planner aggregate per patient and its pure transitions."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.radiotherapy_planner.rules import cord_compression_plan
from shared.recommend import caused_by, recommendation, withdrawal

SERVICE = "radiotherapy-planner"


class Compression(BaseModel):
    lesion_id: str
    level: str | None
    occurred_at: datetime
    event_id: uuid.UUID


class RadiotherapyState(BaseModel):
    compressions: dict[str, Compression] = Field(default_factory=dict)  # by lesion_id
    decompression_on: date | None = None
    decompression_event: uuid.UUID | None = None
    life_expectancy: tuple[float, datetime, uuid.UUID] | None = None
    mscc_recs: dict[str, tuple[str, uuid.UUID]] = Field(default_factory=dict)  # lesion -> (setting, id)


def _mscc(s: RadiotherapyState, c: Compression, trigger: Message) -> list[Message]:
    le = None if s.life_expectancy is None else s.life_expectancy[0]
    plan = cord_compression_plan(s.decompression_on, le)
    key = f"{plan.setting}:{plan.schemes[0]}"
    current = s.mscc_recs.get(c.lesion_id)
    if current is not None and current[0] == key:
        return []
    where = f"en {c.level}" if c.level else "rachidienne"
    inputs = [
        InputUsed(name="cord_compression", value=True, occurred_at=c.occurred_at, source_event_id=c.event_id),
        InputUsed(name="vertebral_level", value=c.level, occurred_at=c.occurred_at, source_event_id=c.event_id),
    ]
    if s.life_expectancy is not None:
        inputs.append(
            InputUsed(
                name="life_expectancy",
                value=le,
                unit="months",
                occurred_at=s.life_expectancy[1],
                source_event_id=s.life_expectancy[2],
            )
        )
    if plan.setting == "adjuvant":
        assert plan.start_between is not None and s.decompression_on is not None
        inputs.append(
            InputUsed(
                name="decompression_surgery",
                value=s.decompression_on.isoformat(),
                source_event_id=s.decompression_event,
            )
        )
        lo, hi = plan.start_between
        rec = recommendation(
            rule_id="RT-MSCC",
            trigger=trigger,
            produced_by=SERVICE,
            severity="warning",
            title=f"Compression médullaire {where} opérée : radiothérapie adjuvante",
            text_fr=(
                f"Après chirurgie de décompression, programmer une radiothérapie adjuvante entre le "
                f"{lo:%d/%m/%Y} et le {hi:%d/%m/%Y} (2 à 3 semaines après le geste, selon les suites), "
                f"par exemple {' ou '.join(plan.schemes)}."
            ),
            inputs=inputs,
            key=(c.lesion_id, plan.setting),
        )
    else:
        prognosis = (
            "Pronostic défavorable : une séance unique de 8 Gy est une option raisonnable. "
            if plan.single_fraction_favoured
            else "8 Gy en une séance reste une option si le pronostic est défavorable. "
        )
        rec = recommendation(
            rule_id="RT-MSCC",
            trigger=trigger,
            produced_by=SERVICE,
            severity="critical",
            title=f"Compression médullaire {where} : urgence thérapeutique",
            text_fr=(
                "Compression médullaire métastatique : avis neurochirurgical immédiat. En l'absence "
                "d'indication de décompression, radiothérapie exclusive en urgence, 30 Gy en 10 "
                f"fractions ou 20 Gy en 5 fractions. {prognosis}Discuter en RCP-OOS."
            ),
            inputs=inputs,
            key=(c.lesion_id, plan.setting, plan.single_fraction_favoured),
            missing=plan.missing,
        )
    out: list[Message] = []
    if current is not None:
        out.append(
            withdrawal(
                current[1], "RT-MSCC", trigger, SERVICE, "Plan de radiothérapie pour compression médullaire mis à jour."
            )
        )
    s.mscc_recs[c.lesion_id] = (key, rec.event_id)
    out.append(rec)
    return out


def apply_event(state: RadiotherapyState, event: Message) -> tuple[RadiotherapyState, list[Message]]:
    s = state.model_copy(deep=True)
    if isinstance(event, ImagingFinding):
        if event.cord_compression:
            prev = s.compressions.get(event.lesion_id)
            if prev is None or prev.occurred_at <= event.occurred_at:
                s.compressions[event.lesion_id] = Compression(
                    lesion_id=event.lesion_id,
                    level=event.vertebral_level,
                    occurred_at=event.occurred_at,
                    event_id=event.event_id,
                )
    elif isinstance(event, ClinicalAssessment):
        if event.life_expectancy_months is not None and (
            s.life_expectancy is None or event.occurred_at >= s.life_expectancy[1]
        ):
            s.life_expectancy = (event.life_expectancy_months, event.occurred_at, event.event_id)
    elif isinstance(event, TreatmentEvent):
        t = event.treatment
        if t.kind == "surgery" and t.procedure == "decompression":
            s.decompression_on, s.decompression_event = t.on, event.event_id
    out: list[Message] = []
    for c in s.compressions.values():
        out += _mscc(s, c, event)
    return s, caused_by(out, event)
