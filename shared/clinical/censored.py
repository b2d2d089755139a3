"""Censored lab values as intervals (issue 12: "never use a censored value as if it were exact in a threshold rule").

A result reported "> 3.6" is the interval (3.6, +inf); "<= 40" is (-inf, 40]; an exact value is [v, v]. A threshold
rule decides only when the whole interval lies on one side of its threshold; otherwise the answer is "straddles" and
the rule says that the data are insufficient, naming the reported value with its comparator. Pure, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from contracts.hospital import Comparator

#: how a guideline threshold is stated: "> t" (strictly above) or ">= t" (at or above)
Strictness = Literal[">", ">="]
Side = Literal["above", "below", "straddles"]


@dataclass(frozen=True)
class Interval:
    """The values a result may have. `lo_open`/`hi_open`: the bound itself is excluded. Infinite bounds are open."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    @property
    def exact(self) -> bool:
        return self.lo == self.hi and not self.lo_open and not self.hi_open

    def scaled(self, factor: float) -> Interval:
        """A unit conversion: both bounds scaled (a negative factor swaps them)."""
        a, b = self.lo * factor, self.hi * factor
        if factor >= 0:
            return Interval(a, b, self.lo_open, self.hi_open)
        return Interval(b, a, self.hi_open, self.lo_open)

    def plus(self, other: Interval) -> Interval:
        """The sum of two independent quantities (interval arithmetic)."""
        return Interval(
            self.lo + other.lo, self.hi + other.hi, self.lo_open or other.lo_open, self.hi_open or other.hi_open
        )

    def shifted(self, offset: float) -> Interval:
        return Interval(self.lo + offset, self.hi + offset, self.lo_open, self.hi_open)


def interval(value: float, comparator: Comparator | None) -> Interval:
    """The interval of a reported value: exact, or bounded on one side by its comparator."""
    if comparator is None:
        return Interval(value, value)
    if comparator in ("<", "<="):
        return Interval(-math.inf, value, True, comparator == "<")
    return Interval(value, math.inf, comparator == ">", True)


def above(iv: Interval, threshold: float, strictness: Strictness) -> bool:
    """Every value of the interval meets "> threshold" (or ">= threshold")."""
    if strictness == ">":
        return iv.lo > threshold or (iv.lo == threshold and iv.lo_open)
    return iv.lo >= threshold


def below(iv: Interval, threshold: float, strictness: Strictness) -> bool:
    """No value of the interval meets "> threshold" (or ">= threshold")."""
    if strictness == ">":
        return iv.hi <= threshold
    return iv.hi < threshold or (iv.hi == threshold and iv.hi_open)


def side(iv: Interval, threshold: float, strictness: Strictness) -> Side:
    """Where the interval lies against a threshold stated "> t" or ">= t": wholly meeting it ("above"), wholly not
    ("below"), or both possible ("straddles": insufficient data, never decided)."""
    if above(iv, threshold, strictness):
        return "above"
    if below(iv, threshold, strictness):
        return "below"
    return "straddles"


def side_of(value: float, comparator: Comparator | None, threshold: float, strictness: Strictness) -> Side:
    return side(interval(value, comparator), threshold, strictness)


def rises(new: Interval, old: Interval) -> bool | None:
    """Whether a value rose from `old` to `new`: True when every possible new value is above every possible old one,
    False when none is, None when the intervals overlap (a trend is never read from a bound)."""
    if new.lo > old.hi or (new.lo == old.hi and (new.lo_open or old.hi_open)):
        return True
    if new.hi <= old.lo:
        return False
    return None


def band(iv: Interval, bands: list[tuple[float, Strictness]]) -> int | None:
    """The index of the band an interval lies wholly in, the bands cut at ascending thresholds (band 0 below the
    first cut, band i between cut i-1 and cut i, band len(cuts) above the last); None when it spans two bands."""
    lo_band = hi_band = 0
    for i, (threshold, strictness) in enumerate(bands):
        if above(iv, threshold, strictness):
            lo_band, hi_band = i + 1, max(hi_band, i + 1)
        elif not below(iv, threshold, strictness):
            hi_band = max(hi_band, i + 1)
    return lo_band if lo_band == hi_band else None


def shown(value: float, comparator: Comparator | None, unit: str | None = None, fmt: str = "g") -> str:
    """A reported value as the laboratory gave it: "> 3.6 mmol/L", "< 40 µmol/L", "2.4 mmol/L"."""
    text = f"{value:{fmt}}"
    if comparator is not None:
        text = f"{comparator} {text}"
    return f"{text} {unit}" if unit else text
