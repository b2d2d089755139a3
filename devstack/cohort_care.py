"""One cohort patient's timeline and care (devstack/cohort.py, issue 25): the generator's state drawn from the patient's
own `random.Random`, its clock (processes scheduled by time), the message envelope (recorded at or after it
occurred, at or before `end`), and what is done to the patient: dental checks, zoledronic acid or denosumab with
their schedules (SYS-SCHEDULE), systemic lines started and stopped at progression, the last anticancer doses before a
local treatment (RT-DRUG windows), radiotherapy courses (RT-FRACT-PALL schemes) with their local-treatment requests,
and surgery. What is observed (labs, imaging, assessments) and the stream: devstack/cohort_patient.py.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.hospital import (
    DentalCare,
    DrugAdministration,
    RadiotherapyCourse,
    Surgery,
    SystemicDrug,
    TreatmentEvent,
)
from contracts.local import LocalTreatmentRequest
from devstack.cohort_model import _ATC, _LABS, _TOPIC_OF, DAY, HOSPITAL_TZ, HOUR, Generated, _Course, _Lesion, _Pending


class _Care:
    """One patient's generator state, clock and envelope, and the treatments given (devstack/cohort_patient.py's
    `_Patient` adds what is observed)."""

    def __init__(self, seed: int, index: int, start: datetime, stop: datetime, end: datetime, density: float) -> None:
        self.rng = random.Random(f"{seed}:{index}")
        self.id = f"cohort-{seed}-{index}"
        self.start, self.stop, self.end = start, min(stop, end), end
        #: >1 makes every process more frequent (patient_history's long streams in a plausible span of years)
        self.density = density
        r = self.rng
        self.lab = r.choices(list(_LABS), weights=[6, 1, 3])[0]
        self.sex = r.choice(["male", "male", "female"])
        age = r.uniform(45, 82)
        if (end - start).days > 365.25 * 25:  # a very long history (patient_history): old at `end`, not at start
            age = r.uniform(75, 85) - (end - start).days / 365.25
        self.birth = (start - timedelta(days=365.25 * age)).date()
        self.weight = r.uniform(50, 95)
        self.histology = r.choices(["adenocarcinoma", "squamous_cell", "large_cell", "nsclc_nos"], [6, 2.5, 0.5, 1])[0]
        self.egfr = self.histology == "adenocarcinoma" and r.random() < 0.15
        self.hypercalcaemic = r.random() < 0.1  #: prone to high calcium (and to the rare crisis)
        self.albumin = r.uniform(32, 44)
        self.creatinine = r.uniform(55, 110)
        self.vitamin_d = r.uniform(8, 40)
        self.lesions: dict[str, _Lesion] = {}
        self.line = 0
        self.course: _Course | None = None
        self.antiresorptive: str | None = None
        self.ar_doses = 0
        self.cleared = False
        self.draws = 0
        self._seq = itertools.count()
        self._todo: list[_Pending] = []  # processes, by the time they run
        self._out: list[tuple[datetime, int, Generated]] = []  # messages not yet published, by recorded_at

    # ---- helpers --------------------------------------------------------------------------------------------
    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def every(self, low_days: float, high_days: float) -> timedelta:
        return timedelta(days=self.rng.uniform(low_days, high_days) / self.density)

    def schedule(self, at: datetime, step: Callable[[datetime], None]) -> None:
        if at < self.stop:
            heapq.heappush(self._todo, _Pending(at, next(self._seq), step))

    def env(self, occurred: datetime, recorded: datetime, source: str) -> dict[str, Any]:
        """The envelope: recorded at or after it occurred, at or before `end` (a message that would occur after
        `end` is dropped by `emit`)."""
        recorded = max(recorded, occurred)
        if occurred <= self.end:
            recorded = min(recorded, self.end)
        return {
            "event_id": self.uid(),
            "patient_id": self.id,
            "occurred_at": occurred.astimezone(HOSPITAL_TZ),
            "recorded_at": recorded.astimezone(HOSPITAL_TZ),
            "source": source,
        }

    def emit(self, message: Message) -> Message:
        if message.recorded_at > self.end:  # it would have happened after `end`: not in this history
            return message
        g = Generated(_TOPIC_OF[type(message)], self.id, message)
        heapq.heappush(self._out, (message.recorded_at, next(self._seq), g))
        return message

    def day(self, at: datetime) -> date:
        """The calendar date of `at`: the hospital's, but the UTC date in the hour or two after local midnight
        (lab-normalisation counts a date such as weight_measured_at from its first minute in UTC, not in the
        hospital's zone, and would refuse the local date then as a future date)."""
        return min(at.astimezone(HOSPITAL_TZ).date(), at.astimezone(UTC).date())

    def treatment(self, at: datetime, treatment: Any, delay: timedelta = HOUR) -> TreatmentEvent:
        m = TreatmentEvent(**self.env(at, at + delay, "pharmacy-bus"), treatment=treatment)
        self.emit(m)
        return m

    # ---- care processes ------------------------------------------------------------------------------------------
    def dental(self, at: datetime) -> None:
        """A dental check (with an orthopantomogram the first time) before and during an antiresorptive."""
        r = self.rng
        first = not self.cleared
        action = "extraction" if not first and r.random() < 0.05 else "assessment"
        self.treatment(
            at,
            DentalCare(
                action=action,
                orthopantomogram=first or None,
                cleared_for_antiresorptive=True if action == "assessment" else None,
                on=self.day(at),
            ),
            delay=r.uniform(2, 24) * HOUR,
        )
        if first:
            self.cleared = True
            if r.random() < 0.85:
                self.schedule(at + r.uniform(7, 30) * DAY, self.start_antiresorptive)
        self.schedule(at + self.every(300, 400), self.dental)

    def start_antiresorptive(self, at: datetime) -> None:
        """Zoledronic acid (every 4 weeks, then every 12 after a year) or denosumab (every 4 weeks) (SYS-SCHEDULE)."""
        self.antiresorptive = self.rng.choices(["zoledronic_acid", "denosumab"], [6, 4])[0]
        drug = self.antiresorptive
        self.treatment(at, SystemicDrug(drug=drug, atc_code=_ATC[drug], action="started", on=self.day(at)))
        self.treatment(
            at,
            SystemicDrug(drug="cholecalciferol", atc_code=_ATC["cholecalciferol"], action="started", on=self.day(at)),
        )
        self.dose_antiresorptive(at)

    def dose_antiresorptive(self, at: datetime) -> None:
        assert self.antiresorptive is not None
        drug = self.antiresorptive
        self.ar_doses += 1
        dose = 4.0 if drug == "zoledronic_acid" else 120.0
        m = self.treatment(
            at, DrugAdministration(drug=drug, atc_code=_ATC[drug], on=self.day(at), daily_dose_mg=dose), delay=2 * HOUR
        )
        if self.rng.random() < 0.01:  # a dose recorded by mistake, withdrawn
            later = m.recorded_at + self.rng.uniform(2, 72) * HOUR
            env = self.env(m.occurred_at, later, "pharmacy-bus")
            self.emit(
                TreatmentEvent(**env, treatment=m.treatment, record_status="entered-in-error", corrects=m.event_id)
            )
        weeks = 12 if drug == "zoledronic_acid" and self.ar_doses > 12 else 4
        self.schedule(
            at + timedelta(weeks=weeks) / self.density + self.rng.uniform(-2, 3) * DAY, self.dose_antiresorptive
        )

    def systemic(self, at: datetime) -> None:
        """A systemic line: started now, stopped at its progression, then the next line."""
        r = self.rng
        if self.course is not None:
            for drug in self.course.drugs:
                self.treatment(at, SystemicDrug(drug=drug, atc_code=_ATC[drug], action="stopped", on=self.day(at)))
        self.line += 1
        if self.egfr and self.line == 1:
            drugs = ["osimertinib"]
        elif self.line <= (2 if self.egfr else 1):
            drugs = ["carboplatin", "pemetrexed"] + ([] if self.egfr else ["pembrolizumab"])
        else:
            drugs = ["docetaxel"]
        months = r.expovariate(1 / (14 if drugs == ["osimertinib"] else 8 if self.line == 1 else 4))
        self.course = _Course(drugs, at, at + timedelta(days=30 * max(2.0, months)) / self.density)
        for drug in drugs:
            self.treatment(at, SystemicDrug(drug=drug, atc_code=_ATC[drug], action="started", on=self.day(at)))
        # the next line begins a few weeks after progression is seen
        self.schedule(self.course.progression + r.uniform(14, 45) * DAY / self.density, self.systemic)

    def last_doses(self, at: datetime) -> None:
        """The last dose of each current anticancer drug before a local treatment (RT-DRUG windows)."""
        if self.course is None:
            return
        for drug in self.course.drugs:
            taken = at - self.rng.uniform(1, 20) * DAY
            if taken < self.course.started:
                continue
            daily = drug == "osimertinib"
            self.treatment(
                taken,
                DrugAdministration(drug=drug, atc_code=_ATC[drug], on=self.day(taken), ongoing=True if daily else None),
                delay=at - taken,
            )

    def radiotherapy(self, at: datetime, lesion: _Lesion, intent: str) -> None:
        """A course on one lesion (RT-FRACT-PALL schemes), sometimes requested now through a local-treatment
        request; its first fraction a few days later (half a day for a cord compression), recorded after its last."""
        r = self.rng
        if lesion.irradiated and intent == "pain":
            return
        total, fractions = r.choice([(8.0, 1), (20.0, 5), (30.0, 10)] if intent == "pain" else [(20.0, 5), (30.0, 10)])
        start = at + (r.uniform(2, 6) if intent == "pain" else 0.5) * DAY
        end_on = start + (fractions - 1) * DAY * 1.4
        if end_on + 2 * DAY > self.end:
            return
        spine = lesion.site == "spine"
        if r.random() < 0.4:
            self.emit(
                LocalTreatmentRequest(
                    **self.env(at, at + HOUR, "rt-bus"),
                    request_id=f"req-{lesion.lesion_id}-{self.day(at).isoformat()}",
                    lesion_id=lesion.lesion_id,
                    modality="palliative_rt",
                    intent="cord_compression" if intent == "cord_compression" else "pain",
                    total_dose_gy=total,
                    fractions=fractions,
                    planned_on=self.day(start),
                    urgent=intent == "cord_compression",
                )
            )
        self.last_doses(start)
        lesion.irradiated = True
        lesion.painful = False
        self.treatment(
            start,
            RadiotherapyCourse(
                site=lesion.site,
                vertebral_level=lesion.level,
                total_dose_gy=total,
                fractions=fractions,
                on=self.day(start),
                end_on=self.day(end_on),
                cord_dmax_gy=round(total * r.uniform(0.85, 1.02), 1) if spine else None,
                intent=intent,
                lesion_id=lesion.lesion_id,
                technique="conventional",
            ),
            delay=end_on - start + r.uniform(4, 30) * HOUR,
        )

    def surgery(self, at: datetime, lesion: _Lesion, procedure: str) -> None:
        self.last_doses(at)
        self.treatment(
            at,
            Surgery(
                site=lesion.site,
                procedure=procedure,
                on=self.day(at),
                lesion_id=lesion.lesion_id,
                vertebral_level=lesion.level,
            ),
            delay=self.rng.uniform(6, 48) * HOUR,
        )
