"""Shared vocabulary of the local-treatment rules. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

#: Clinician-estimated life expectancy (months) below which the prognosis is called poor (8 Gy single fraction
#: option, RT-MSCC / RT-FRACT-PALL). The text says "mauvais pronostic" / "courte espérance de vie" without a
#: number; 3 months is the SBRT contraindication threshold of the same chapter (L1631), used here for coherence.
POOR_PROGNOSIS_MONTHS: Final = 3.0
#: Days per month when a life expectancy in months is compared with a duration in weeks (SURG-LE: 6 weeks).
DAYS_PER_MONTH: Final = 365.25 / 12

LONG_BONES: Final = frozenset(
    {"humerus", "radius_ulna", "femur_trochanteric", "femur_neck", "femur_shaft", "tibia_fibula"}
)
SPINE_SITES: Final = frozenset({"spine"})

Scheme = tuple[float, int]  # (total dose Gy, fractions)


def scheme_fr(s: Scheme) -> str:
    total, fx = s
    return f"{total:g} Gy en {fx} fraction{'s' if fx > 1 else ''}"


Verdict = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class Finding:
    """One reason in a decision: what it says, and the input that triggered it (name and value)."""

    text_fr: str
    input_name: str | None = None
    input_value: float | int | str | bool | None = None


@dataclass(frozen=True)
class Criterion:
    """A checked criterion: its value, its limit, and pass / fail / unknown (input missing)."""

    name: str
    text_fr: str
    value: float | str | None
    limit: str
    verdict: Verdict


@dataclass
class Missing:
    items: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        if what not in self.items:
            self.items.append(what)
