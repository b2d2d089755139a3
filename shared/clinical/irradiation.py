"""Irradiation history of a segment (issue 18.1-2): every radiotherapy course a lesion or vertebral level has had,
whether recorded by the hospital (treatment events) or declared on a request, counted once. Pure, no I/O.

Any new course on a segment that has had one is a re-irradiation (RT-REIRR, L2076-2095), whatever the request
calls itself; the interval counts from the newest course; the cord dose is summed as EQD2 over all of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Final, Literal

#: Sahgal's thresholds (L2082-2094) were derived with alpha/beta = 2 Gy for the spinal cord.
CORD_ALPHA_BETA_GY: Final = 2.0


def eqd2(total_gy: float, fractions: int, alpha_beta_gy: float = CORD_ALPHA_BETA_GY) -> float:
    """Equivalent dose in 2-Gy fractions (linear-quadratic model) of `total_gy` given in `fractions`."""
    if fractions < 1 or alpha_beta_gy <= 0:
        raise ValueError("fractions >= 1 and alpha/beta > 0 are required")
    per_fraction = total_gy / fractions
    return total_gy * (per_fraction + alpha_beta_gy) / (2.0 + alpha_beta_gy)


@dataclass(frozen=True)
class Course:
    """One course: its cord point dose (physical Dmax, Gy) in its fractions, and its dates."""

    cord_dmax_gy: float | None
    fractions: int | None
    on: date | None
    end_on: date | None = None
    total_dose_gy: float | None = None
    source: Literal["recorded", "declared", "both", "planned"] = "planned"
    event_id: uuid.UUID | None = None

    @property
    def last_day(self) -> date | None:
        return self.end_on or self.on


@dataclass(frozen=True)
class SegmentHistory:
    """The earlier courses of one segment, oldest first, and the recorded ones a request did not declare."""

    courses: tuple[Course, ...]
    undeclared: tuple[Course, ...]

    @property
    def irradiated(self) -> bool:
        return bool(self.courses)

    @property
    def last_day(self) -> date | None:
        """The last fraction of the newest course (None when a course has no date: never assumed)."""
        days = [c.last_day for c in self.courses]
        return None if not days or any(d is None for d in days) else max(d for d in days if d is not None)


def _merge(recorded: Course, declared: Course) -> Course:
    """The same course seen twice: the recorded one, completed by what the request adds; two cord doses that
    disagree keep the higher (the cumulative dose is never underestimated)."""
    dmax = (
        max(recorded.cord_dmax_gy, declared.cord_dmax_gy)
        if recorded.cord_dmax_gy is not None and declared.cord_dmax_gy is not None
        else recorded.cord_dmax_gy
        if recorded.cord_dmax_gy is not None
        else declared.cord_dmax_gy
    )
    return replace(
        recorded,
        cord_dmax_gy=dmax,
        fractions=recorded.fractions or declared.fractions,
        end_on=recorded.end_on or declared.end_on,
        total_dose_gy=recorded.total_dose_gy or declared.total_dose_gy,
        source="both",
    )


def segment_history(recorded: Iterable[Course], declared: Iterable[Course], before: date) -> SegmentHistory:
    """The union of the recorded courses (those started before `before`) and the declared ones, deduplicated: two
    courses starting the same day on the same segment are one course."""
    rec = sorted((c for c in recorded if c.on is not None and c.on < before), key=lambda c: (c.on, str(c.event_id)))
    dec = [c for c in declared if c.on is None or c.on < before]
    by_day: dict[date | None, Course] = {}
    for c in rec:  # the same course recorded twice (two systems): one course
        by_day.setdefault(c.on, c)
    declared_days = set()
    extra: list[Course] = []
    for c in dec:
        declared_days.add(c.on)
        if c.on in by_day:
            by_day[c.on] = _merge(by_day[c.on], c)
        else:
            extra.append(c)
    courses = sorted([*by_day.values(), *extra], key=lambda c: (c.on or date.min, c.source))
    undeclared = tuple(c for c in rec if dec and c.on not in declared_days)
    return SegmentHistory(tuple(courses), undeclared)
