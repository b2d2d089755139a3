"""Pure scoring rules. No I/O."""

from __future__ import annotations

from typing import Final

from contracts.base import InputUsed
from contracts.clinical import NormalisedLab, Recommendation
from shared.recommend import recommendation

SERVICE: Final = "scoring"

#: LAB-CA-CRISIS (L313-315): corrected calcium strictly above 3.5 mmol/L is an acute hypercalcaemic crisis.
CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.5


def is_hypercalcaemic_crisis(corrected_calcium_mmol_l: float) -> bool:
    return corrected_calcium_mmol_l > CRISIS_CORRECTED_CALCIUM_MMOL_L


def _inputs(lab: NormalisedLab) -> list[InputUsed]:
    used = [
        InputUsed(
            name="corrected_calcium",
            value=lab.value,
            unit=lab.unit,
            occurred_at=lab.occurred_at,
            source_event_id=lab.event_id,
        )
    ]
    used += [
        InputUsed(name=s.analyte, value=s.value, unit=s.unit, occurred_at=s.occurred_at, source_event_id=s.event_id)
        for s in lab.derived_from
    ]
    return used


def crisis_recommendation(lab: NormalisedLab) -> Recommendation:
    """LAB-CA-CRISIS, critical: immediate notification. Also an SRE (CLASS-SRE)."""
    assert lab.value is not None
    return recommendation(
        rule_id="LAB-CA-CRISIS",
        trigger=lab,
        produced_by=SERVICE,
        severity="critical",
        title=f"Crise aiguë hypercalcémique : calcémie corrigée {lab.value:.2f} mmol/L",
        text_fr=(
            f"Calcémie corrigée à {lab.value:.2f} mmol/L (seuil de crise : > 3,5 mmol/L). "
            "Situation pouvant engager le pronostic vital : prise en charge en urgence. "
            "Cette hypercalcémie compte comme événement osseux (SRE)."
        ),
        inputs=_inputs(lab),
        key=("crisis", lab.event_id),
    )


def crisis_unconfirmed_recommendation(lab: NormalisedLab, measured: float) -> Recommendation:
    """LAB-CA-CRISIS cannot be decided (no albumin), but the measured calcium is already above the
    threshold: warn, and name what is missing rather than guess the albumin."""
    return recommendation(
        rule_id="LAB-CA-CRISIS",
        trigger=lab,
        produced_by=SERVICE,
        severity="warning",
        title=f"Calcémie totale {measured:.2f} mmol/L : calcémie corrigée non calculable",
        text_fr=(
            f"Calcémie totale mesurée à {measured:.2f} mmol/L, au-dessus du seuil de crise, sans albuminémie "
            "contemporaine : la calcémie corrigée ne peut être calculée. Doser l'albumine en urgence."
        ),
        inputs=_inputs(lab),
        key=("unconfirmed", lab.result_id),
        missing=lab.missing,
    )
