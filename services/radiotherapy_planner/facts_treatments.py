"""The treatments, drug uses and haemostasis results as the local-treatment rules read them (pure): the effective
treatment events (corrected and entered-in-error ones left out, shared clinical context) by kind, whether one
treated a lesion, each drug's last dose (RT-DRUG, IR-CEMENT), the newest haemostasis result (IR-CEMENT)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from contracts.hospital import (
    DrugAdministration,
    MetabolicRadiotherapy,
    RadiotherapyCourse,
    Surgery,
    SystemicDrug,
    TreatmentEvent,
)
from services.radiotherapy_planner.facts import LabFact, Lesion, LocalState
from shared.clinical.dates import HOSPITAL_TZ, local_day
from shared.clinical.drugs import DrugIdentity, identify
from shared.clinical.irradiation import spinal_levels, treats
from shared.clinical.treatments import effective_treatments

#: A drug whose last dose is older than this before the reference date no longer matters for RT or haemostasis.
DRUG_RELEVANCE: Final = timedelta(days=120)


def matches(lesion: Lesion, t: Surgery | RadiotherapyCourse) -> bool:
    """A surgery or course treated this lesion when it names it, or names its vertebral level (a range containing it
    counts: "T7-T9" treats T8); never an adjacent or unnamed level (shared/clinical/irradiation.treats)."""
    return treats(t.lesion_id, t.vertebral_level, t.site, lesion.lesion_id, lesion.level)


def level_of(t: Surgery | RadiotherapyCourse) -> str | None:
    """The vertebral level a surgery or RT course names, as sent: its `vertebral_level`, else a `site` naming one."""
    return t.vertebral_level or (t.site if spinal_levels(t.site) else None)


def treatments(s: LocalState) -> list[TreatmentEvent]:
    """The treatment events that count: corrected and entered-in-error ones left out (shared clinical context)."""
    return effective_treatments(s.treatments.values())


K = TypeVar("K", Surgery, RadiotherapyCourse, MetabolicRadiotherapy)


def _of_kind(s: LocalState, kind: type[K], effective: list[TreatmentEvent] | None) -> list[tuple[TreatmentEvent, K]]:
    return of_kind(treatments(s) if effective is None else effective, kind)


def of_kind(rows: list[TreatmentEvent], kind: type[K]) -> list[tuple[TreatmentEvent, K]]:
    """The effective events of one kind, by date (then event ID)."""
    out = [(e, t) for e in rows if isinstance(t := e.treatment, kind)]
    return sorted(out, key=lambda x: (x[1].on, str(x[0].event_id)))


def surgeries(s: LocalState, effective: list[TreatmentEvent] | None = None) -> list[tuple[TreatmentEvent, Surgery]]:
    return _of_kind(s, Surgery, effective)


def rt_courses(
    s: LocalState, effective: list[TreatmentEvent] | None = None
) -> list[tuple[TreatmentEvent, RadiotherapyCourse]]:
    return _of_kind(s, RadiotherapyCourse, effective)


def metabolic_rt(
    s: LocalState, effective: list[TreatmentEvent] | None = None
) -> list[tuple[TreatmentEvent, MetabolicRadiotherapy]]:
    return _of_kind(s, MetabolicRadiotherapy, effective)


@dataclass(frozen=True)
class DrugUse:
    drug: str  # the vocabulary's key: the INN when known, else the normalised name as sent
    last_dose: date | None
    ongoing: bool
    daily_dose_mg: float | None
    source: uuid.UUID
    identity: DrugIdentity | None = None
    last_dose_at: datetime | None = None  # the time of the last dose, when the hospital sent it

    @property
    def who(self) -> DrugIdentity:
        return self.identity or identify(self.drug)


def drug_uses(s: LocalState, reference: date, effective: list[TreatmentEvent] | None = None) -> list[DrugUse]:
    """Each drug's last dose (administrations, stop dates) and whether it is still taken, from the treatment events
    dated up to `reference`; drugs last given more than DRUG_RELEVANCE before it are left out. Drugs are grouped by
    identity (shared/clinical/drugs.py): "Plavix" and "clopidogrel" are one drug."""
    return drug_uses_of(treatments(s) if effective is None else effective, reference)


def drug_uses_of(effective: list[TreatmentEvent], reference: date) -> list[DrugUse]:
    """`drug_uses` from the effective treatment events."""
    events: list[tuple[date, int, TreatmentEvent]] = []
    for e in effective:
        t = e.treatment
        if isinstance(t, SystemicDrug | DrugAdministration) and t.on <= reference:
            events.append((t.on, 0 if isinstance(t, SystemicDrug) and t.action == "started" else 1, e))
    events.sort(key=lambda x: (x[0], x[1], str(x[2].event_id)))
    state: dict[str, dict[str, object]] = {}
    for _, _, e in events:
        t = e.treatment
        assert isinstance(t, SystemicDrug | DrugAdministration)
        who = identify(t.drug, t.atc_code)
        d = state.setdefault(who.key, {"last": None, "ongoing": False, "dose": None, "src": e.event_id, "at": None})
        d["src"], d["who"] = e.event_id, who
        if isinstance(t, SystemicDrug):
            if t.action == "started":
                d["ongoing"] = True
            else:
                d["ongoing"], d["last"], d["at"] = False, t.on, None
        else:
            # two doses the same day: the later one counts, a dose without its time counting as the day's last (the
            # 48-hour DOAC window is never measured from the earlier dose; issue 18 review)
            same_day = d["last"] == t.on
            prev_at = d["at"]
            assert prev_at is None or isinstance(prev_at, datetime)
            later = None if (same_day and prev_at is None) or t.at is None else max(t.at, prev_at or t.at)
            d["last"], d["at"] = t.on, later if same_day else t.at
            if t.ongoing is not None:
                d["ongoing"] = t.ongoing
            if t.daily_dose_mg is not None:
                d["dose"] = t.daily_dose_mg
    out = []
    for drug, d in sorted(state.items()):
        last = d["last"]
        assert last is None or isinstance(last, date)
        ongoing = bool(d["ongoing"])
        if not ongoing and last is not None and last < reference - DRUG_RELEVANCE:
            continue
        dose = d["dose"]
        src = d["src"]
        ident, at = d["who"], d["at"]
        assert isinstance(src, uuid.UUID) and (dose is None or isinstance(dose, float))
        assert isinstance(ident, DrugIdentity) and (at is None or isinstance(at, datetime))
        out.append(DrugUse(drug, last, ongoing, dose, src, ident, at))
    return out


def latest_lab(
    s: LocalState, analyte: str, on_or_before: date | None = None, tz: ZoneInfo = HOSPITAL_TZ
) -> LabFact | None:
    live = [
        v
        for v in s.labs.get(analyte, {}).values()
        if not v.withdrawn
        and v.value is not None
        and (on_or_before is None or local_day(v.occurred_at, tz) <= on_or_before)
    ]
    return max(live, key=lambda v: (v.occurred_at, v.recorded_at, str(v.event_id)), default=None)
