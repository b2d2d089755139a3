"""Irradiation history of a segment (issue 18.1-2): every radiotherapy course a lesion or vertebral level has had,
whether recorded by the hospital (treatment events) or declared on a request, counted once. Pure, no I/O.

Any new course on a segment that has had one is a re-irradiation (RT-REIRR, L2076-2095), whatever the request
calls itself; the interval counts from the newest course; the cord dose is summed as EQD2 over all of them."""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final, Literal

#: Sahgal's thresholds (L2082-2094) were derived with alpha/beta = 2 Gy for the spinal cord.
CORD_ALPHA_BETA_GY: Final = 2.0


def eqd2(total_gy: float, fractions: int, alpha_beta_gy: float = CORD_ALPHA_BETA_GY) -> float:
    """Equivalent dose in 2-Gy fractions (linear-quadratic model) of `total_gy` given in `fractions`."""
    if fractions < 1 or alpha_beta_gy <= 0:
        raise ValueError("fractions >= 1 and alpha/beta > 0 are required")
    per_fraction = total_gy / fractions
    return total_gy * (per_fraction + alpha_beta_gy) / (2.0 + alpha_beta_gy)


# ---- which segment a course concerns (issue 18 review: "T5-T7", "D6", "t6 ", "rachis dorsal T4-T8") ----------------
#: The spine, top to bottom; a level's index orders it (C7 then T1: adjacent).
SPINE: Final = (
    *(f"C{i}" for i in range(1, 8)),
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    *(f"S{i}" for i in range(1, 6)),
    "Co",
)
_INDEX: Final = {lvl: i for i, lvl in enumerate(SPINE)}
_LEVEL = re.compile(r"\b([ctdls])\s*(\d{1,2})\b")
_RANGE = re.compile(r"\b([ctdls])\s*(\d{1,2})\s*(?:-|–|a|à|au|to)\s*([ctdls])?\s*(\d{1,2})\b")
_SPINE_WORDS: Final = ("spine", "rachis", "vertebr", "dorsal", "lombaire", "cervical", "thoracique", "sacr", "coccy")
#: A course this close to the lesion's level (vertebrae) is "à proximité" (L2060-2061): its cord dose counts.
ADJACENT_LEVELS: Final = 1


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.strip().lower())
    out = "".join(ch for ch in folded if not unicodedata.combining(ch))
    # every way a range is written: dashes, arrows, "jusqu'à", ":" and ".." (issue 18 second review)
    return re.sub(r"[\u2010-\u2015\u2212]|->|→|\.\.|:|\bjusqu'?\s*(?:a|en|au)\b", "-", out)


def _index(region: str, number: str) -> int | None:
    return _INDEX.get(("T" if region == "d" else region.upper()) + str(int(number)))  # D6 (dorsal) is T6


@functools.lru_cache(maxsize=1024)
def spinal_levels(text: str | None, fill: bool = False) -> frozenset[str]:
    """The vertebral levels a free-text level or site names: "T5-T7", "D6", "t6 ", "C7-T1", "rachis dorsal T4 à
    T8", "T4—T8". Empty when it names none. `fill`: every level between the highest and the lowest named counts
    (a range however it is written: for what a course may have irradiated, never for what it treated)."""
    if not text:
        return frozenset()
    t = _fold(text)
    found: set[int] = set()
    for m in _RANGE.finditer(t):
        a, b = _index(m.group(1), m.group(2)), _index(m.group(3) or m.group(1), m.group(4))
        if a is not None and b is not None:
            found |= set(range(min(a, b), max(a, b) + 1))
    for m in _LEVEL.finditer(t):
        i = _index(m.group(1), m.group(2))
        if i is not None:
            found.add(i)
    if fill and found:
        found = set(range(min(found), max(found) + 1))
    return frozenset(SPINE[i] for i in found)


@functools.lru_cache(maxsize=1024)
def is_spinal(text: str | None) -> bool:
    return bool(text) and any(w in _fold(text or "") for w in _SPINE_WORDS)


Relation = Literal["same", "adjacent", "unknown", "other"]


def relation(
    course_lesion_id: str | None,
    course_level: str | None,
    course_site: str | None,
    lesion_id: str,
    lesion_level: str | None,
    lesion_site: str | None,
) -> Relation:
    """How a radiotherapy course relates to a lesion's segment: the same lesion or level (a range containing it
    counts), an adjacent level ("à proximité", L2060-2061), a spinal course whose level is not said (to check), or
    another segment. A non-spinal lesion: the same lesion, or the same site named."""
    if course_lesion_id is not None and course_lesion_id == lesion_id:
        return "same"
    if lesion_level is not None and lesion_level in _INDEX:
        levels = spinal_levels(course_level, fill=True) | spinal_levels(course_site, fill=True)
        if levels:
            if lesion_level in levels:
                return "same"
            near = min(abs(_INDEX[x] - _INDEX[lesion_level]) for x in levels)
            return "adjacent" if near <= ADJACENT_LEVELS else "other"
        return "unknown" if is_spinal(course_site) or course_level else "other"
    if lesion_site == "sacrum":  # a sacral lesion without a level: any sacral level of a course is its segment
        levels = spinal_levels(course_level, fill=True) | spinal_levels(course_site, fill=True)
        if any(x.startswith("S") for x in levels):
            return "same"
    if lesion_site and course_site and _in_region(lesion_site, course_site):
        return "same"
    return "other"


#: Free-text sites of a course that cover a lesion's skeletal site (issue 18 second review: "bassin" covers the
#: sacrum, "hanche droite" the femoral neck).
_REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "sacrum": ("sacr", "bassin", "pelvi", "lombo-sacr", "lombosacr"),
    "pelvis": ("bassin", "pelvi", "iliaque", "ilium", "ischi", "pubi", "cotyl", "acetabul"),
    "acetabulum": ("cotyl", "acetabul", "bassin", "pelvi", "hanche", "hip"),
    "femur_neck": ("femur", "femoral", "hanche", "hip"),
    "femur_trochanteric": ("femur", "femoral", "trochant", "hanche", "hip"),
    "femur_shaft": ("femur", "femoral", "cuisse", "thigh"),
    "humerus": ("humer", "epaule", "shoulder", "bras", "arm"),
    "radius_ulna": ("radius", "ulna", "cubitus", "avant-bras", "forearm"),
    "tibia_fibula": ("tibia", "fibula", "perone", "jambe", "leg"),
    "rib": ("cote", "costal", "rib"),
    "sternum": ("sternum", "sternal"),
    "scapula": ("scapul", "omoplate", "epaule", "shoulder"),
    "clavicle": ("clavic",),
    "skull": ("crane", "cranial", "skull", "calvari"),
}


def _in_region(lesion_site: str, course_site: str) -> bool:
    text = _fold(course_site).replace("_", " ")
    if text.replace(" ", "_") == lesion_site:
        return True
    return any(word in text for word in _REGIONS.get(lesion_site, ()))


def treats(
    course_lesion_id: str | None,
    course_level: str | None,
    course_site: str | None,
    lesion_id: str,
    lesion_level: str | None,
) -> bool:
    """Whether a course or a surgery treated this lesion (RT-MSCC "irradiée", a decompression): only the same lesion
    or a level it names (a range containing it); never an adjacent or unnamed level (a lesion is not assumed
    treated)."""
    if course_lesion_id is not None and course_lesion_id == lesion_id:
        return True
    return lesion_level is not None and lesion_level in (spinal_levels(course_level) | spinal_levels(course_site))


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
    relation: Relation = "same"  # to the segment: "adjacent" and "unknown" are named in the advice
    doses_disagree: bool = False  # the same course sent twice with different cord doses: the higher EQD2 kept

    @property
    def last_day(self) -> date | None:
        """The last fraction when known (a single fraction: its day); None when the end is not known."""
        if self.end_on is not None:
            return self.end_on
        return self.on if self.fractions == 1 else None

    def last_day_bounds(self) -> tuple[date, date] | None:
        """The earliest and latest the last fraction can be: without `end_on`, at most 2 days per further fraction
        after the first (weekends included), so an interval is never overestimated (issue 18 review)."""
        if self.end_on is not None:
            return self.end_on, self.end_on
        if self.on is None:
            return None
        if self.fractions is None:
            return self.on, self.on + timedelta(days=2 * 50)
        return self.on, self.on + timedelta(days=2 * (self.fractions - 1))

    def eqd2(self, alpha_beta_gy: float = CORD_ALPHA_BETA_GY) -> float | None:
        if self.cord_dmax_gy is None or self.fractions is None:
            return None
        return eqd2(self.cord_dmax_gy, self.fractions, alpha_beta_gy)


def newest_last_day_bounds(courses: Iterable[Course]) -> tuple[date, date] | None:
    """The earliest and latest the newest course's last fraction can be (None when there is no course, or a course
    has no date: an undated course is never assumed old)."""
    bounds = [c.last_day_bounds() for c in courses]
    if not bounds or any(b is None for b in bounds):
        return None
    return max(b[0] for b in bounds if b is not None), max(b[1] for b in bounds if b is not None)


@dataclass(frozen=True)
class SegmentHistory:
    """The earlier courses of one segment, oldest first, and the recorded ones a request did not declare."""

    courses: tuple[Course, ...]
    undeclared: tuple[Course, ...]

    @property
    def irradiated(self) -> bool:
        return bool(self.courses)


def _merge(a: Course, b: Course) -> Course:
    """The same course seen twice (recorded and declared, or recorded by two systems): one course, keeping the cord
    dose and fractions of the higher EQD2 (the cumulative dose is never underestimated; a 18 Gy single fraction is
    not 18 Gy in 10 fractions), completed by what the other adds, and the disagreement said."""
    ea, eb = a.eqd2(), b.eqd2()
    if ea is None and eb is None:
        dose_from = a if a.cord_dmax_gy is not None else b
    elif ea is None:
        dose_from = b
    elif eb is None:
        dose_from = a
    else:
        dose_from = a if ea >= eb else b
    disagree = ea is not None and eb is not None and (a.cord_dmax_gy, a.fractions) != (b.cord_dmax_gy, b.fractions)
    return replace(
        a,
        cord_dmax_gy=dose_from.cord_dmax_gy,
        fractions=dose_from.fractions if dose_from.fractions is not None else a.fractions or b.fractions,
        end_on=max(d for d in (a.end_on, b.end_on) if d is not None) if (a.end_on or b.end_on) else None,
        total_dose_gy=dose_from.total_dose_gy or a.total_dose_gy or b.total_dose_gy,
        source="both"
        if {a.source, b.source} == {"recorded", "declared"} or "both" in (a.source, b.source)
        else a.source,
        relation=a.relation if a.relation == "same" else b.relation,
        doses_disagree=a.doses_disagree or b.doses_disagree or disagree,
    )


def segment_history(recorded: Iterable[Course], declared: Iterable[Course], before: date) -> SegmentHistory:
    """The union of the recorded courses (those started before `before`) and the declared ones, deduplicated: two
    courses starting the same day on the same segment are one course."""
    rec = sorted((c for c in recorded if c.on is not None and c.on < before), key=lambda c: (c.on, str(c.event_id)))
    dec = [c for c in declared if c.on is None or c.on < before]
    by_day: dict[date | None, Course] = {}
    for c in rec:  # the same course recorded twice (two systems): one course, the higher EQD2 kept
        by_day[c.on] = c if c.on not in by_day else _merge(by_day[c.on], c)
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
