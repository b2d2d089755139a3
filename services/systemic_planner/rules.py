"""Pure systemic-treatment rules. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ANTIRESORPTIVES: Final = frozenset({"zoledronic_acid", "denosumab", "pamidronate", "ibandronate"})
#: SYS-AR-START: life expectancy threshold (months), strictly above.
AR_START_MIN_LIFE_EXPECTANCY_MONTHS: Final = 3.0


@dataclass(frozen=True)
class ArStartDecision:
    """SYS-AR-START outcome. `trigger` names why ("sre" or "bone_metastasis")."""

    outcome: Literal["start", "not_indicated", "insufficient_data", "already_treated", "no_trigger"]
    trigger: Literal["sre", "bone_metastasis"] | None
    missing: tuple[str, ...] = ()


def antiresorptive_start(
    *, has_sre: bool, bone_metastasis: bool, life_expectancy_months: float | None, on_antiresorptive: bool
) -> ArStartDecision:
    """SYS-AR-START (L1068-1084): after any SRE start whatever the survival; otherwise start at the
    discovery of a bone metastasis when life expectancy is > 3 months."""
    if on_antiresorptive:
        return ArStartDecision("already_treated", None)
    if has_sre:
        return ArStartDecision("start", "sre")
    if not bone_metastasis:
        return ArStartDecision("no_trigger", None)
    if life_expectancy_months is None:
        return ArStartDecision("insufficient_data", "bone_metastasis", ("life expectancy estimate",))
    if life_expectancy_months > AR_START_MIN_LIFE_EXPECTANCY_MONTHS:
        return ArStartDecision("start", "bone_metastasis")
    return ArStartDecision("not_indicated", "bone_metastasis")
