"""RT-REIRR: spinal re-irradiation, the four Sahgal 2019 criteria quoted by the text (L2078-2094). Pure, no I/O.

The cord EQD2 of each course is computed from its PHYSICAL point dose (Dmax) and its fraction count with the
linear-quadratic model: EQD2 = D * (d + a/b) / (2 + a/b), d = D / n. The Sahgal thresholds were derived with
a/b = 2 Gy for the spinal cord; the a/b = 0.87 of the conventional-RT paragraph (L1508) is another convention,
so 2 Gy is the default here (configurable) and the value used is shown next to every EQD2. The outcome is never
"safe": there is no consensus (L2099-2102), it is advice for the tumour board (RCP-OOS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from services.radiotherapy_planner.rules.common import Criterion, Verdict
from shared.clinical.dates import add_months
from shared.clinical.irradiation import CORD_ALPHA_BETA_GY, Course, newest_last_day_bounds

CUMULATIVE_EQD2_LIMIT_GY: Final = 70.0  # < 70 Gy
NEW_COURSE_EQD2_LIMIT_GY: Final = 25.0  # < 25 Gy
RATIO_LIMIT: Final = 0.5  # <= 0.5
MIN_INTERVAL_MONTHS: Final = 5  # >= 5 months


@dataclass(frozen=True)
class CourseEqd2:
    course: Course
    eqd2_gy: float | None


@dataclass(frozen=True)
class ReirradiationAssessment:
    alpha_beta_gy: float
    previous: tuple[CourseEqd2, ...]
    new: CourseEqd2
    cumulative_eqd2_gy: float | None
    criteria: tuple[Criterion, ...]
    missing: tuple[str, ...]

    @property
    def all_met(self) -> bool:
        return all(c.verdict == "pass" for c in self.criteria)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if c.verdict == "fail"]


def _verdict(value: float | None, ok: bool) -> Verdict:
    return "unknown" if value is None else "pass" if ok else "fail"


def criteria(
    cumulative_eqd2_gy: float | None,
    new_eqd2_gy: float | None,
    last_course_end: date | tuple[date, date] | None,
    planned_on: date | None,
) -> tuple[Criterion, ...]:
    """The four criteria, each with its value and pass / fail / unknown. `last_course_end` may be bounds (earliest,
    latest) when the last fraction's date is not known: the interval passes only if it holds from the latest."""
    ratio = (
        None
        if cumulative_eqd2_gy is None or new_eqd2_gy is None or cumulative_eqd2_gy <= 0
        else new_eqd2_gy / cumulative_eqd2_gy
    )
    lo, hi = last_course_end if isinstance(last_course_end, tuple) else (last_course_end, last_course_end)
    interval_ok: bool | None = None
    interval_value: str | None = None
    if lo is not None and hi is not None and planned_on is not None:
        if add_months(hi, MIN_INTERVAL_MONTHS) <= planned_on:
            interval_ok = True
        elif add_months(lo, MIN_INTERVAL_MONTHS) > planned_on:
            interval_ok = False
        interval_value = (
            f"{(planned_on - lo).days} jours"
            if lo == hi
            else f"{(planned_on - hi).days} à {(planned_on - lo).days} jours (dernière séance non datée)"
        )
    return (
        Criterion(
            "cumulative_cord_eqd2",
            "EQD2 max cumulée à la moelle",
            None if cumulative_eqd2_gy is None else round(cumulative_eqd2_gy, 2),
            "< 70 Gy",
            _verdict(
                cumulative_eqd2_gy, cumulative_eqd2_gy is not None and cumulative_eqd2_gy < CUMULATIVE_EQD2_LIMIT_GY
            ),
        ),
        Criterion(
            "new_course_cord_eqd2",
            "EQD2 max à la moelle du nouveau traitement stéréotaxique",
            None if new_eqd2_gy is None else round(new_eqd2_gy, 2),
            "< 25 Gy",
            _verdict(new_eqd2_gy, new_eqd2_gy is not None and new_eqd2_gy < NEW_COURSE_EQD2_LIMIT_GY),
        ),
        Criterion(
            "eqd2_ratio",
            "rapport EQD2 du nouveau traitement / EQD2 cumulée",
            None if ratio is None else round(ratio, 3),
            "≤ 0,5",
            _verdict(ratio, ratio is not None and ratio <= RATIO_LIMIT),
        ),
        Criterion(
            "interval",
            "intervalle depuis la dernière irradiation",
            interval_value,
            "≥ 5 mois",
            "unknown" if interval_ok is None else "pass" if interval_ok else "fail",
        ),
    )


def assess(previous: list[Course], new: Course, alpha_beta_gy: float = CORD_ALPHA_BETA_GY) -> ReirradiationAssessment:
    missing: list[str] = []
    prev = []
    for i, c in enumerate(previous, 1):
        prev.append(CourseEqd2(c, c.eqd2(alpha_beta_gy)))
        if prev[-1].eqd2_gy is None:
            missing.append(f"cord Dmax (physical, Gy) and fractions of earlier course {i}")
    if not previous:
        missing.append("earlier course(s) on this segment with their cord dose")
    new_e = CourseEqd2(new, new.eqd2(alpha_beta_gy))
    if new_e.eqd2_gy is None:
        missing.append("planned cord Dmax and fractions of the new course")
    if new.on is None:
        missing.append("planned date of the new course")
    known = [p.eqd2_gy for p in prev if p.eqd2_gy is not None]
    cumulative = (
        sum(known) + new_e.eqd2_gy if previous and len(known) == len(prev) and new_e.eqd2_gy is not None else None
    )
    # the interval counts from the newest course's last fraction (issue 18.2); an undated course is never assumed old,
    # and without the date of its last fraction a course is assumed to end as late as it could (issue 18 review)
    last_end = newest_last_day_bounds(previous)
    if previous and last_end is None:
        missing.append("dates of the earlier courses")
    for c in previous:
        if c.on is not None and c.last_day is None:
            missing.append(f"date of the last fraction of the course of {c.on.isoformat()}")
    return ReirradiationAssessment(
        alpha_beta_gy,
        tuple(prev),
        new_e,
        cumulative,
        criteria(cumulative, new_e.eqd2_gy, last_end, new.on),
        tuple(missing),
    )
