"""The scoring aggregate per patient and its pure transitions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import NormalisedLab, SkeletalEvent
from services.scoring.rules import (
    SERVICE,
    crisis_recommendation,
    crisis_unconfirmed_recommendation,
    is_hypercalcaemic_crisis,
)
from shared.recommend import withdrawal


class CalciumValue(BaseModel):
    event_id: uuid.UUID
    value: float | None
    occurred_at: datetime
    recorded_at: datetime
    withdrawn: bool


class ScoringState(BaseModel):
    corrected_calcium: dict[str, CalciumValue] = Field(default_factory=dict)  # by derived result_id
    #: the open hypercalcaemic-crisis episode: (result_id, recommendation id)
    crisis: tuple[str, uuid.UUID] | None = None
    #: result_id -> "crisis not confirmable" warning still open
    unconfirmed: dict[str, uuid.UUID] = Field(default_factory=dict)
    sres: list[uuid.UUID] = Field(default_factory=list)


def _latest(state: ScoringState) -> tuple[str, CalciumValue] | None:
    live = [(k, v) for k, v in state.corrected_calcium.items() if not v.withdrawn and v.value is not None]
    return max(live, key=lambda kv: kv[1].occurred_at, default=None)


def apply_lab(state: ScoringState, lab: NormalisedLab) -> tuple[ScoringState, list[Message]]:
    """LAB-CA-CRISIS on the patient's newest corrected calcium. A late (older) value never opens or
    closes an episode; a corrected value that is amended below the threshold withdraws its alert."""
    if lab.analyte != "corrected_calcium":
        return state, []
    s = state.model_copy(deep=True)
    prev = s.corrected_calcium.get(lab.result_id)
    if prev is not None and prev.recorded_at > lab.recorded_at:
        return state, []
    s.corrected_calcium[lab.result_id] = CalciumValue(
        event_id=lab.event_id,
        value=lab.value,
        occurred_at=lab.occurred_at,
        recorded_at=lab.recorded_at,
        withdrawn=lab.status == "withdrawn",
    )
    out: list[Message] = []
    latest = _latest(s)
    crisis_now = lab.status != "withdrawn" and lab.value is not None and is_hypercalcaemic_crisis(lab.value)
    is_newest = latest is None or latest[1].occurred_at <= lab.occurred_at

    # an open "cannot confirm" warning for this draw is closed once it has a value or is withdrawn
    if lab.result_id in s.unconfirmed and (lab.value is not None or lab.status == "withdrawn"):
        out.append(
            withdrawal(
                s.unconfirmed.pop(lab.result_id),
                "LAB-CA-CRISIS",
                lab,
                SERVICE,
                "Albuminémie reçue : la calcémie corrigée est désormais calculée.",
            )
        )

    if s.crisis is not None and s.crisis[0] == lab.result_id and not crisis_now:
        out.append(
            withdrawal(
                s.crisis[1],
                "LAB-CA-CRISIS",
                lab,
                SERVICE,
                "Le résultat ayant déclenché l'alerte d'hypercalcémie a été corrigé ou annulé.",
            )
        )
        s.crisis = None
    elif crisis_now and is_newest and s.crisis is None:
        rec = crisis_recommendation(lab)
        s.crisis = (lab.result_id, rec.event_id)
        sre = SkeletalEvent(
            event_id=derived_id("sre", "hypercalcaemia", lab.event_id),
            patient_id=lab.patient_id,
            occurred_at=lab.occurred_at,
            recorded_at=lab.recorded_at,
            source=SERVICE,
            kind="hypercalcaemia",
            rule_id="CLASS-SRE",
            evidence=[
                InputUsed(
                    name="corrected_calcium",
                    value=lab.value,
                    unit=lab.unit,
                    occurred_at=lab.occurred_at,
                    source_event_id=lab.event_id,
                )
            ],
        )
        s.sres.append(sre.event_id)
        out += [rec, sre]
    elif not crisis_now and is_newest and lab.value is not None and s.crisis is not None:
        s.crisis = None  # a newer normal value ends the episode; the next crisis alerts again

    if lab.value is None and lab.status != "withdrawn" and is_newest:
        measured = next(
            (r.value for r in lab.derived_from if r.analyte == "total_calcium" and isinstance(r.value, float)), None
        )
        if measured is not None and is_hypercalcaemic_crisis(measured) and lab.result_id not in s.unconfirmed:
            rec = crisis_unconfirmed_recommendation(lab, measured)
            s.unconfirmed[lab.result_id] = rec.event_id
            out.append(rec)
    return s, out
