"""The patient context every plan item reads (pure): the facts of one LocalState at a decision time, and what a
treatments table gives the items, computed once per table (issue 25)."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from contracts.hospital import MetabolicRadiotherapy, RadiotherapyCourse, Surgery, TreatmentEvent
from services.radiotherapy_planner.facts import Lesion, LocalState, SurgicalOpinionFact
from services.radiotherapy_planner.facts_treatments import DrugUse, drug_uses_of, of_kind
from services.radiotherapy_planner.items_base import Inp, inp
from shared.clinical.dates import HOSPITAL_TZ, local_day
from shared.clinical.facts import Fact
from shared.clinical.irradiation import SegmentHistory
from shared.clinical.life_expectancy import Remaining
from shared.clinical.treatments import effective_treatments


@dataclass(frozen=True)
class Patient:
    """Patient-level facts the items read."""

    s: LocalState
    alpha_beta: float = 2.0  # cord alpha/beta for RT-REIRR (settings)
    le_current: bool = True  # the life-expectancy estimate is recent enough to decide on (domain.LE_VALID)
    tz: ZoneInfo = HOSPITAL_TZ  # calendar days are the hospital's local days
    now: datetime | None = None  # the decision time: what is left of the life-expectancy estimate is counted to it

    @functools.cached_property
    def today(self) -> date:
        """The hospital-local day of the decision time (no bound without one: tests of the pure rules); once per
        plan (every family's key reads it)."""
        return date.max if self.now is None else self.day(self.now)

    def day(self, at: datetime) -> date:
        """The hospital-local calendar day of a time (a result drawn at 00:30 in Paris is of that day, not the
        previous UTC day)."""
        return local_day(at, self.tz)

    # computed once per treatments table (every lesion's items read them; most events do not change the table)
    @functools.cached_property
    def _treated(self) -> Treated:
        return treated(self.s)

    @property
    def treatment_events(self) -> list[TreatmentEvent]:
        """The effective treatment events (corrections applied)."""
        return self._treated.events

    @property
    def surgeries(self) -> list[tuple[TreatmentEvent, Surgery]]:
        return self._treated.surgeries

    @property
    def rt_courses(self) -> list[tuple[TreatmentEvent, RadiotherapyCourse]]:
        return self._treated.rt_courses

    @property
    def metabolic(self) -> list[tuple[TreatmentEvent, MetabolicRadiotherapy]]:
        return self._treated.metabolic

    @property
    def segments(self) -> dict[tuple[str, str | None, str, int, date], SegmentHistory]:
        """items_reirr.segment's histories by lesion (ID, level, site), request and date: the SBRT and
        re-irradiation families of one request read the same one (issue 25), kept with the treatments table (they
        read only its RT courses)."""
        return self._treated.segments

    def drug_uses(self, reference: date) -> list[DrugUse]:
        return self._treated.drug_uses(reference)

    def fact(self, name: str) -> Fact[bool | float | str] | None:
        return self.s.assessed.get(name)

    def value(self, name: str) -> Any:
        f = self.s.assessed.get(name)
        return None if f is None else f.value

    def used(self, name: str, unit: str | None = None) -> list[Inp]:
        f = self.s.assessed.get(name)
        return [] if f is None else [f.used(name, unit)]

    def pain(self, lesion_id: str, name: str) -> Fact[bool | float | str] | None:
        """The lesion's own pain when recorded, else the patient's overall pain."""
        return self.s.assessed.get(f"{name}@{lesion_id}") or self.s.assessed.get(name)

    def pain_value(self, lesion_id: str, name: str) -> Any:
        f = self.pain(lesion_id, name)
        return None if f is None else f.value

    def pain_used(self, lesion_id: str, name: str) -> list[Inp]:
        f = self.pain(lesion_id, name)
        return [] if f is None else [f.used(name)]

    @functools.cached_property
    def remaining(self) -> Remaining | None:
        """What is left of the clinician's estimate now (shared clinical context), unless the estimate is too old
        (or dated in the future) to decide on."""
        f = self.fact("life_expectancy_months")
        if f is None or not self.le_current:
            return None
        return Remaining.at(float(f.value), f.occurred_at, self.now or f.occurred_at)

    @property
    def life_expectancy(self) -> float | None:
        """What is left of the estimate (months): every threshold (6 weeks, 3 months, 1 year) applies to it, never
        to the estimate as entered (issue 18.4)."""
        r = self.remaining
        return None if r is None else r.remaining

    def le_used(self) -> list[Inp]:
        """The estimate and what is left of it, as inputs (rounded as the memo key rounds it: domain.le_key)."""
        f, r = self.fact("life_expectancy_months"), self.remaining
        if f is None or r is None:
            return []
        return [
            f.used("life_expectancy_months", "months"),
            inp(
                name="life_expectancy_remaining",
                value=round(r.remaining, 1),
                unit="months",
                occurred_at=f.occurred_at,
                source_event_id=f.event_id,
            ),
        ]

    @property
    def le_missing(self) -> str:
        return (
            "life expectancy estimate"
            if self.le_current
            else "life expectancy estimate (the last one is older than 3 months: estimate again)"
        )

    def opinion(self, lesion_id: str) -> SurgicalOpinionFact | None:
        return self.s.opinions.get(lesion_id) or self.s.opinions.get("*")


class Treated:
    """What a state's treatments table gives the items (issue 25): the effective events, each kind's, the drug uses
    per reference date and the segments' histories, computed once per table, not once per plan. A table is never
    changed once the event that made it is applied (fold.merge copies the one an event changes; retention makes new
    tables), so what is derived from it holds for every plan that reads it. Each value is made on first use; two
    threads (the worker deciding, GET local-plan on the loop) may both make one: the same value, either kept."""

    __slots__ = ("__dict__", "_drug_uses", "segments", "size", "table")

    def __init__(self, table: dict[str, TreatmentEvent]) -> None:
        self.table = table  # held: its ID is not reused while it is here
        self.size = len(table)
        self._drug_uses: dict[date, list[DrugUse]] = {}
        self.segments: dict[tuple[str, str | None, str, int, date], SegmentHistory] = {}

    @functools.cached_property
    def events(self) -> list[TreatmentEvent]:
        return effective_treatments(self.table.values())

    @functools.cached_property
    def surgeries(self) -> list[tuple[TreatmentEvent, Surgery]]:
        return of_kind(self.events, Surgery)

    @functools.cached_property
    def rt_courses(self) -> list[tuple[TreatmentEvent, RadiotherapyCourse]]:
        return of_kind(self.events, RadiotherapyCourse)

    @functools.cached_property
    def metabolic(self) -> list[tuple[TreatmentEvent, MetabolicRadiotherapy]]:
        return of_kind(self.events, MetabolicRadiotherapy)

    def drug_uses(self, reference: date) -> list[DrugUse]:
        found = self._drug_uses.get(reference)
        if found is None:
            found = self._drug_uses[reference] = drug_uses_of(self.events, reference)
        return found


#: tables kept (least recently used out): a few per patient of those seen recently
TREATED_SIZE: Final = 2048
_TREATED: OrderedDict[int, Treated] = OrderedDict()
_TREATED_LOCK: Final = threading.Lock()


def treated(s: LocalState) -> Treated:
    table = s.treatments
    with _TREATED_LOCK:
        hit = _TREATED.get(id(table))
        if hit is not None and hit.table is table and hit.size == len(table):
            _TREATED.move_to_end(id(table))
            return hit
        made = _TREATED[id(table)] = Treated(table)
        if len(_TREATED) > TREATED_SIZE:
            _TREATED.popitem(last=False)
        return made


def clear_treated() -> None:
    with _TREATED_LOCK:
        _TREATED.clear()


def where(lesion: Lesion) -> str:
    return f"{lesion.level} ({lesion.lesion_id})" if lesion.level else lesion.lesion_id
