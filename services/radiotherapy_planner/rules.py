"""Pure local-treatment rules. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

#: RT-MSCC: adjuvant radiotherapy 2 to 3 weeks after decompressive surgery (L1399-1400).
ADJUVANT_RT_AFTER_SURGERY: Final = (timedelta(weeks=2), timedelta(weeks=3))
#: RT-MSCC / Tableau 5: schemes for exclusive urgent RT; 8 Gy x 1 is an option for a poor prognosis.
MSCC_SCHEMES: Final = ("30 Gy en 10 fractions", "20 Gy en 5 fractions")
MSCC_POOR_PROGNOSIS_SCHEME: Final = "8 Gy en 1 fraction"
#: Below this clinician-estimated life expectancy (months) the single fraction is put forward.
POOR_PROGNOSIS_MONTHS: Final = 3.0


@dataclass(frozen=True)
class MsccPlan:
    setting: Literal["adjuvant", "exclusive_urgent"]
    schemes: tuple[str, ...]
    start_between: tuple[date, date] | None
    single_fraction_favoured: bool
    missing: tuple[str, ...]


def cord_compression_plan(operated_on: date | None, life_expectancy_months: float | None) -> MsccPlan:
    """RT-MSCC: operated -> adjuvant RT 2-3 weeks after surgery; otherwise urgent exclusive RT
    (30 Gy/10 or 20 Gy/5; 8 Gy/1 for a poor prognosis)."""
    if operated_on is not None:
        lo, hi = ADJUVANT_RT_AFTER_SURGERY
        return MsccPlan("adjuvant", MSCC_SCHEMES, (operated_on + lo, operated_on + hi), False, ())
    if life_expectancy_months is None:
        return MsccPlan(
            "exclusive_urgent",
            (*MSCC_SCHEMES, MSCC_POOR_PROGNOSIS_SCHEME),
            None,
            False,
            ("life expectancy estimate (to weigh the 8 Gy single fraction)",),
        )
    poor = life_expectancy_months < POOR_PROGNOSIS_MONTHS
    schemes = (MSCC_POOR_PROGNOSIS_SCHEME, *MSCC_SCHEMES) if poor else (*MSCC_SCHEMES, MSCC_POOR_PROGNOSIS_SCHEME)
    return MsccPlan("exclusive_urgent", schemes, None, poor, ())
