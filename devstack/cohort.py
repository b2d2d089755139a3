"""A deterministic cohort of lung-cancer patients with bone metastases, as the hospital bus would publish it (issue 25;
reused by the rule-change impact replay of issue 21). Development tooling: services never import it.

    from devstack.cohort import Cohort, patient_history
    for topic, key, message in Cohort(seed=1, patients=1000, years=2, end=ANCHOR).events(): ...

Every message is a real contract message (contracts/hospital.py, care.py, local.py) for a hospital input topic
(contracts/topics.py): lab results (calcium, albumin, creatinine, 25-OH vitamin D, in the units a French or a
conventional-unit lab sends, every 1-4 weeks, with an occasional crisis calcium), patient records (birth date, sex,
weight, histology, molecular profile), imaging findings every 2-4 months (spine and long-bone lesions that grow,
collapse, fracture, sometimes compress the cord; new foci), clinical assessments (ECOG, pain, per-lesion pain,
life expectancy, staging, response), treatment events (systemic lines started and stopped, chemotherapy and
immunotherapy doses before a radiotherapy, zoledronic acid or denosumab with their schedules, radiotherapy courses
with dose, fractions, segment and cord dose, occasional surgery, dental checks and care), care-pathway steps and
bone biopsies, local-treatment requests, and corrections or withdrawals of a small fraction of earlier results.

Determinism: patient `i` draws from its own `random.Random(f"{seed}:{i}")` (no global state, no wall clock): the
same (seed, patients, years, end) gives the same messages, byte for byte, and patient `i` is the same whatever the
cohort's size. `end` is the only time reference (default `ANCHOR`, a fixed date; pass `datetime.now(UTC)` to publish
a cohort live). Dates: every time of every message (occurred_at, recorded_at, the dates inside) is at or before
`end`, and `occurred_at <= recorded_at`; a message is published at its `recorded_at` (`Generated.timestamp_ms`),
and each patient's messages, like the cohort's, come in publication order. A correction is recorded after what it
corrects and names it (`corrects`, or the lab's `result_id`).

Streaming: a patient's history is generated lazily (a small heap of pending processes and one of messages not yet
due), and `Cohort.events()` merges the patients by publication time, so 10k patients x 2 years never needs the
whole cohort in memory. `Cohort.patient(i)` is one patient's stream alone (a replay per patient gives the same
decisions: every service's state is per patient).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from contracts.base import Message
from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.hospital import (
    ClinicalAssessment,
    Coding,
    DentalCare,
    DrugAdministration,
    ExtraOsseousMetastases,
    ImagingFinding,
    LabResult,
    LesionPain,
    Pain,
    PatientRecord,
    RadiotherapyCourse,
    Surgery,
    SystemicDrug,
    TreatmentEvent,
)
from contracts.local import LocalTreatmentRequest
from contracts.topics import (
    CARE_EVENTS,
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LAB_RESULTS,
    LOCAL_TREATMENT_REQUESTS,
    PATIENT_RECORDS,
    TREATMENT_EVENTS,
    Topic,
)

#: the default `end`: a fixed date, so a cohort is the same whenever it is generated
ANCHOR: Final = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
HOSPITAL_TZ: Final = ZoneInfo("Europe/Paris")
LOINC: Final = "http://loinc.org"
DAY: Final = timedelta(days=1)
HOUR: Final = timedelta(hours=1)

#: the hospital input topics a cohort publishes on
INPUT_TOPICS: Final[tuple[Topic, ...]] = (
    PATIENT_RECORDS,
    LAB_RESULTS,
    IMAGING_FINDINGS,
    CLINICAL_ASSESSMENTS,
    TREATMENT_EVENTS,
    CARE_EVENTS,
    LOCAL_TREATMENT_REQUESTS,
)
_TOPIC_OF: Final[dict[type[Message], str]] = {t.value: t.name for t in INPUT_TOPICS}  # type: ignore[misc]


class Generated(NamedTuple):
    """One message to publish: its topic, its key (the patient) and the message. Published at `recorded_at`."""

    topic: str
    key: str
    message: Message

    @property
    def published_at(self) -> datetime:
        return self.message.recorded_at

    @property
    def timestamp_ms(self) -> int:
        """The Kafka record timestamp: the publication time, in epoch milliseconds."""
        return round(self.message.recorded_at.timestamp() * 1000)

    def value(self) -> bytes:
        return self.message.model_dump_json().encode()


# ---- the lab units hospitals send (LOINC code, unit, factor from the canonical unit) -----------------------------
@dataclass(frozen=True)
class _Unit:
    code: str
    display: str
    unit: str
    factor: float  #: value in this unit = canonical value x factor
    digits: int


#: a French lab (SI units, as they spell them) and a conventional-unit lab
_LABS: Final[dict[str, dict[str, _Unit]]] = {
    "si": {
        "calcium": _Unit("2000-8", "Calcium [Moles/volume] in Serum or Plasma", "mmol/L", 1.0, 2),
        "albumin": _Unit("1751-7", "Albumine", "g/L", 1.0, 1),
        "creatinine": _Unit("14682-9", "Créatinine", "µmol/L", 1.0, 0),
        "vitamin_d": _Unit("62292-8", "25-OH vitamine D2+D3", "nmol/L", 2.496, 0),
    },
    "si_lower": {  # the same lab writing units in lower case ("mmol/l"): read through UCUM's case fold
        "calcium": _Unit("2000-8", "Calcium", "mmol/l", 1.0, 2),
        "albumin": _Unit("1751-7", "Albumine", "g/l", 1.0, 1),
        "creatinine": _Unit("14682-9", "Creatinine", "umol/l", 1.0, 0),
        "vitamin_d": _Unit("1989-3", "25-OH vitamine D", "ng/ml", 1.0, 1),
    },
    "conventional": {
        "calcium": _Unit("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 4.008, 1),
        "albumin": _Unit("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 0.1, 1),
        "creatinine": _Unit("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 1 / 88.42, 2),
        "vitamin_d": _Unit("1989-3", "25-Hydroxyvitamin D3+D2", "ng/mL", 1.0, 1),
    },
}

_SPINE_LEVELS: Final = [f"C{i}" for i in range(3, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
#: where lung cancer metastasises in bone, roughly by frequency (spine first)
_SITES: Final = [
    ("spine", 40),
    ("pelvis", 14),
    ("rib", 12),
    ("femur_shaft", 5),
    ("femur_trochanteric", 4),
    ("femur_neck", 3),
    ("humerus", 5),
    ("sacrum", 4),
    ("acetabulum", 3),
    ("scapula", 3),
    ("sternum", 3),
    ("skull", 2),
    ("tibia_fibula", 2),
]
#: lesions reported per study at most (radiologists describe the main ones; a new focus waits for a resolved one)
MAX_LESIONS: Final = 10
_LONG_BONES: Final = {"femur_shaft", "femur_trochanteric", "femur_neck", "humerus", "tibia_fibula"}
_ATC: Final = {
    "carboplatin": "L01XA02",
    "cisplatin": "L01XA01",
    "pemetrexed": "L01BA04",
    "pembrolizumab": "L01FF02",
    "docetaxel": "L01CD02",
    "osimertinib": "L01EB04",
    "zoledronic_acid": "M05BA08",
    "denosumab": "M05BX04",
    "cholecalciferol": "A11CC05",
}
_PATHWAY: Final = (
    "multidisciplinary_decision",
    "patient_information",
    "smoking_cessation",
    "pain_management",
    "palliative_supportive_care",
    "psychologist",
    "social_worker",
)


@dataclass
class _Lesion:
    lesion_id: str
    site: str
    level: str | None
    kind: str
    size: float
    cortical: float
    collapse: str = "none"
    epidural: bool = False
    compression: bool = False
    fracture: bool = False
    resolved: bool = False
    irradiated: bool = False
    painful: bool = False


@dataclass
class _Course:
    """A systemic line: its drugs and when it started."""

    drugs: list[str]
    started: datetime
    progression: datetime


@dataclass(order=True)
class _Pending:
    at: datetime
    seq: int
    step: Callable[[datetime], None] = field(compare=False)


class _Patient:
    """One patient's history, generated lazily in publication order."""

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

    # ---- the stream ---------------------------------------------------------------------------------------------
    def messages(self) -> Iterator[Generated]:
        self.schedule(self.start, self.onboard)
        while self._todo:
            step = heapq.heappop(self._todo)
            # everything emitted from now on is recorded at or after `step.at`: what is recorded before is final
            while self._out and self._out[0][0] < step.at:
                yield heapq.heappop(self._out)[2]
            step.step(step.at)
        while self._out:
            yield heapq.heappop(self._out)[2]

    # ---- processes ----------------------------------------------------------------------------------------------
    def onboard(self, at: datetime) -> None:
        r = self.rng
        profile = {"EGFR": "L858R" if self.egfr else "negative", "ALK": "negative"}
        if self.histology == "adenocarcinoma":
            profile["PD-L1"] = r.choice(["<1%", "1-49%", "50%"])
        self.emit(
            PatientRecord(
                **self.env(at, at + 2 * HOUR, "dpi-bus"),
                birth_date=self.birth,
                sex=self.sex,
                weight_kg=round(self.weight, 1),
                weight_measured_at=self.day(at),
                histology=self.histology,
                molecular_profile=profile,
            )
        )
        for item in _PATHWAY[: r.randint(2, len(_PATHWAY))]:
            status = r.choices(["done", "declined", "not_applicable"], [8, 1, 1])[0]
            when = at + r.uniform(0, 3) * DAY
            self.emit(
                CareEvent(
                    **self.env(when, when + HOUR, "dpi-bus"),
                    event=PathwayStep(item=item, status=status, on=self.day(when)),
                )
            )
        if r.random() < 0.3:  # a bone biopsy at diagnosis, reported a week later
            when = at + r.uniform(1, 4) * DAY
            reported = when + r.uniform(5, 10) * DAY
            self.emit(
                CareEvent(
                    **self.env(reported, reported + HOUR, "pathology-bus"),
                    event=BoneBiopsy(
                        biopsy_id=f"bx-{self.id}-1",
                        status="reported",
                        on=self.day(when),
                        context="diagnosis",
                        histology=self.histology,
                        decalcification="edta",
                        molecular_results=profile,
                    ),
                )
            )
        for _ in range(r.choices([1, 2, 3, 4, 6], [3, 3, 2, 1, 1])[0]):
            self.new_lesion()
        self.schedule(at + 0.5 * DAY, self.imaging)
        self.schedule(at + 1 * DAY, self.assessment)
        self.schedule(at, self.labs)
        self.schedule(at + r.uniform(3, 10) * DAY, self.dental)
        self.schedule(at + r.uniform(5, 15) * DAY, self.systemic)
        self.schedule(at + self.every(30, 90), self.weight_update)

    def new_lesion(self, at_study: bool = False) -> _Lesion:
        r = self.rng
        site = r.choices([s for s, _ in _SITES], [w for _, w in _SITES])[0]
        level = r.choice(_SPINE_LEVELS) if site == "spine" else None
        lesion = _Lesion(
            lesion_id=f"{site}-{level or len(self.lesions) + 1}-{len(self.lesions) + 1}",
            site=site,
            level=level,
            kind=r.choices(["lytic", "mixed", "blastic"], [6, 3, 1])[0],
            size=round(r.uniform(0.8, 3.5), 1),
            cortical=r.uniform(0.05, 0.4),
            painful=r.random() < 0.4,
        )
        self.lesions[lesion.lesion_id] = lesion
        return lesion

    def labs(self, at: datetime) -> None:
        """One draw: calcium, albumin and creatinine; 25-OH vitamin D about every 3 months."""
        r = self.rng
        self.draws += 1
        when = at.replace(hour=7, minute=r.randrange(0, 60, 5)) if at.hour < 7 else at
        units = _LABS[self.lab]
        self.albumin = min(46.0, max(22.0, self.albumin + r.gauss(-0.15, 1.2)))
        self.creatinine = min(400.0, max(40.0, self.creatinine * math.exp(r.gauss(0.003, 0.06))))
        corrected = r.gauss(2.45 if self.hypercalcaemic else 2.35, 0.09)
        if r.random() < (0.02 if self.hypercalcaemic else 0.002):
            corrected = r.uniform(3.55, 3.95)  # LAB-CA-CRISIS (> 3.5 mmol/L corrected)
        elif self.hypercalcaemic and r.random() < 0.1:
            corrected = r.uniform(2.65, 3.3)
        total = corrected - 0.02 * (40 - self.albumin)
        values = {"calcium": total, "albumin": self.albumin, "creatinine": self.creatinine}
        if self.draws % max(1, round(6 * self.density)) == 1:
            self.vitamin_d = min(80.0, max(4.0, self.vitamin_d + r.gauss(2 if self.antiresorptive else 0, 4)))
            values["vitamin_d"] = self.vitamin_d
        recorded = when + r.uniform(1, 8) * HOUR
        for analyte, canonical in values.items():
            u = units[analyte]
            result = LabResult(
                **self.env(when, recorded + r.uniform(0, 5) * timedelta(minutes=1), "lab-bus"),
                result_id=f"LAB-{self.id}-{self.draws}-{analyte}",
                code=Coding(system=LOINC, code=u.code, display=u.display),
                value=round(canonical * u.factor, u.digits),
                unit=u.unit,
            )
            self.emit(result)
            if r.random() < 0.015:
                self.correct_lab(result, canonical * u.factor, u.digits)
        self.schedule(at + self.every(7, 28), self.labs)

    def correct_lab(self, result: LabResult, value: float, digits: int) -> None:
        """A corrected value (or, one time in three, a withdrawal) of a result, a few hours to days later."""
        r = self.rng
        later = result.recorded_at + r.uniform(2, 96) * HOUR
        if r.random() < 1 / 3:
            changes: dict[str, Any] = {"status": "entered-in-error", "value": None}
        else:
            changes = {"status": "corrected", "value": round(value * r.uniform(0.9, 1.1), digits)}
        env = self.env(result.occurred_at, later, "lab-bus")
        fields = result.model_dump(exclude={"event_id", "occurred_at", "recorded_at", "source", "patient_id"})
        self.emit(LabResult(**env, **(fields | changes)))

    def weight_update(self, at: datetime) -> None:
        self.weight = max(35.0, self.weight + self.rng.gauss(-0.4, 1.2))
        self.emit(
            PatientRecord(
                **self.env(at, at + HOUR, "dpi-bus"), weight_kg=round(self.weight, 1), weight_measured_at=self.day(at)
            )
        )
        self.schedule(at + self.every(30, 90), self.weight_update)

    def imaging(self, at: datetime) -> None:
        """One study: every lesion still seen, each evolving; sometimes a new focus, a fracture, a compression."""
        r = self.rng
        modality = r.choices(["ct", "mri", "bone_scan", "fdg_pet"], [5, 2, 1, 2])[0]
        reported = at + r.uniform(4, 48) * HOUR
        progressing = self.course is not None and at >= self.course.progression
        active = sum(not x.resolved for x in self.lesions.values())
        if (r.random() < (0.3 if progressing else 0.08) and active < MAX_LESIONS) or not active:
            self.new_lesion()
        urgent: list[_Lesion] = []
        for lesion in list(self.lesions.values()):
            if lesion.resolved:
                continue
            grow = r.gauss(0.15 if progressing else -0.02, 0.12)
            lesion.size = round(min(12.0, max(0.3, lesion.size * (1 + grow))), 1)
            lesion.cortical = min(0.95, max(0.0, lesion.cortical + grow / 3))
            lesion.painful = lesion.painful or r.random() < 0.08
            if lesion.site == "spine":
                if grow > 0.1 and r.random() < 0.2:
                    lesion.collapse = "lt_50" if lesion.collapse == "none" else "gt_50"
                lesion.epidural = lesion.epidural or (grow > 0.05 and r.random() < 0.15)
                if lesion.epidural and not lesion.compression and r.random() < 0.08:
                    lesion.compression = True
                    urgent.append(lesion)
            elif lesion.site in _LONG_BONES and not lesion.fracture and lesion.cortical > 0.5 and r.random() < 0.1:
                lesion.fracture = True
                urgent.append(lesion)
            if lesion.size < 0.5 and r.random() < 0.3:
                lesion.resolved = True
            finding = self.finding(lesion, modality, at, reported + r.uniform(0, 10) * timedelta(minutes=1))
            if r.random() < 0.01:  # an amended report (or, one time in three, a finding entered in error)
                later = finding.recorded_at + r.uniform(1, 72) * HOUR
                error = r.random() < 1 / 3
                self.emit(
                    finding.model_copy(
                        update={
                            **self.env(finding.occurred_at, later, "ris-bus"),
                            "record_status": "entered-in-error" if error else "amended",
                            "corrects": finding.event_id,
                            "size_cm": finding.size_cm if error else round(lesion.size * r.uniform(0.9, 1.1), 1),
                        }
                    )
                )
        for lesion in urgent:
            self.emergency(lesion, reported)
        self.schedule(at + self.every(60, 120), self.imaging)

    def finding(self, lesion: _Lesion, modality: str, at: datetime, recorded: datetime) -> ImagingFinding:
        r = self.rng
        spine = lesion.site == "spine"
        long_bone = lesion.site in _LONG_BONES
        finding = ImagingFinding(
            **self.env(at, recorded, "ris-bus"),
            lesion_id=lesion.lesion_id,
            skeletal_site=lesion.site,
            vertebral_level=lesion.level,
            lesion_type=lesion.kind,
            cortical_involvement_fraction=round(lesion.cortical, 2) if long_bone else None,
            axial_cortical_osteolysis_pct=round(lesion.cortical * 100, 0) if long_bone else None,
            circumferential_cortical_osteolysis_pct=round(lesion.cortical * 70, 0) if long_bone else None,
            vertebral_collapse=lesion.collapse if spine else None,
            alignment=("de_novo_deformity" if lesion.collapse == "gt_50" else "normal") if spine else None,
            posterolateral_involvement=(
                r.choice(["none", "unilateral", "bilateral"])
                if spine and lesion.size > 2
                else "none"
                if spine
                else None
            ),
            epidural_extension=lesion.epidural if spine else None,
            cord_compression=lesion.compression if spine else None,
            pathological_fracture=lesion.fracture,
            size_cm=lesion.size,
            modality=modality,
            new_focus=len(self.lesions) > 1 and lesion.size < 1.0 and not lesion.irradiated,
            status="resolved" if lesion.resolved else "confirmed" if modality in ("ct", "mri") else None,
            canal_narrowing_pct=round(min(90.0, lesion.size * 8), 0) if spine and lesion.epidural else None,
            tumour_cord_distance_mm=(0.0 if lesion.compression else round(r.uniform(2, 12), 1)) if spine else None,
            vertebral_body_involvement_fraction=round(min(1.0, lesion.size / 5), 2) if spine else None,
        )
        self.emit(finding)
        return finding

    def emergency(self, lesion: _Lesion, at: datetime) -> None:
        """A cord compression or a pathological fracture: an assessment, radiotherapy within days, sometimes
        surgery first."""
        r = self.rng
        self.assessment(at + HOUR, neurological_deficit=lesion.compression, reschedule=False)
        if r.random() < (0.3 if lesion.compression else 0.6):
            when = at + r.uniform(1, 3) * DAY
            procedure = "decompression" if lesion.compression else "fracture_fixation"
            self.schedule(when, lambda t: self.surgery(t, lesion, procedure))
        self.schedule(at + r.uniform(1, 4) * DAY, lambda t: self.radiotherapy(t, lesion, "cord_compression"))

    def assessment(self, at: datetime, neurological_deficit: bool = False, reschedule: bool = True) -> None:
        r = self.rng
        progressing = self.course is not None and at >= self.course.progression
        seen = [x for x in self.lesions.values() if not x.resolved]
        ecog = min(4, max(0, round(r.gauss(1.6 if progressing else 1.0, 0.7))))
        lesion_pain = [
            LesionPain(
                lesion_id=x.lesion_id,
                character=r.choice(["mechanical", "non_mechanical"]),
                intensity=r.choice(["mild", "moderate", "functional"]),
                nrs=r.randint(2, 8),
            )
            for x in seen
            if x.painful and not x.irradiated
        ][:10]
        count = r.choice([0, 0, 1, 2, 3]) if not progressing else r.randint(1, 6)
        sites = sorted(set(r.sample(["adrenal", "brain", "liver", "lung", "lymph_nodes"], min(count, 3))))
        message = ClinicalAssessment(
            **self.env(at, at + r.uniform(0.5, 6) * HOUR, "dpi-bus"),
            ecog=ecog,
            pain=Pain(
                character="mechanical" if lesion_pain else "none",
                intensity="moderate" if lesion_pain else "none",
                nrs=max((p.nrs or 0 for p in lesion_pain), default=0),
            ),
            lesion_pain=lesion_pain,
            extra_osseous_metastases=ExtraOsseousMetastases(count=count, sites=sites, stable=not progressing),
            neurological_deficit=neurological_deficit,
            life_expectancy_months=round(r.uniform(2, 9) if progressing else r.uniform(6, 30), 0),
            primary_controlled=not progressing and r.random() < 0.6,
            oncological_response="progression" if progressing else r.choice(["partial", "stable", "good"]),
            frail=ecog >= 3,
            hard_to_move=ecog >= 3 and r.random() < 0.5,
        )
        self.emit(message)
        if r.random() < 0.01:  # an assessment amended (e.g. the ECOG mistyped)
            later = message.recorded_at + r.uniform(1, 48) * HOUR
            self.emit(
                message.model_copy(
                    update={
                        **self.env(message.occurred_at, later, "dpi-bus"),
                        "record_status": "amended",
                        "corrects": message.event_id,
                        "ecog": min(4, ecog + 1),
                    }
                )
            )
        if reschedule:
            self.schedule(at + self.every(28, 56), self.assessment)
        for lesion in seen:  # a painful, unirradiated lesion: palliative radiotherapy (RT-FRACT-PALL)
            if lesion.painful and not lesion.irradiated and r.random() < 0.3:
                self.schedule(
                    at + r.uniform(3, 14) * DAY, functools.partial(self.radiotherapy, lesion=lesion, intent="pain")
                )
                break

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


def _span(seed: int, index: int, years: float, end: datetime) -> tuple[datetime, datetime]:
    """When patient `index` is followed: from a start in the first quarter of the period (earlier patients of a
    cohort are followed longer); seven in ten are followed to `end`, the others stop (death, transfer) earlier."""
    r = random.Random(f"{seed}:{index}:span")
    length = timedelta(days=365.25 * years)
    start = end - length + length * r.uniform(0, 0.25)
    if r.random() < 0.3:
        stop = start + max(timedelta(days=60), timedelta(days=r.expovariate(1 / 365)))
        return start, min(stop, end)
    return start, end


@dataclass(frozen=True)
class Cohort:
    """`patients` patients followed over `years` years up to `end`, deterministic from `seed`."""

    seed: int
    patients: int
    years: float
    end: datetime = ANCHOR

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")

    def patient_id(self, index: int) -> str:
        return f"cohort-{self.seed}-{index}"

    def patient(self, index: int) -> Iterator[Generated]:
        """Patient `index`'s messages, in publication order (the same in any cohort of this seed, years and end)."""
        start, stop = _span(self.seed, index, self.years, self.end)
        return _Patient(self.seed, index, start, stop, self.end, 1.0).messages()

    def events(self) -> Iterator[Generated]:
        """Every patient's messages merged by publication time (ties: the lower patient index first)."""
        merged = heapq.merge(*(_keyed(i, self.patient(i)) for i in range(self.patients)), key=lambda item: item[0])
        for _, g in merged:
            yield g


def _keyed(index: int, stream: Iterator[Generated]) -> Iterator[tuple[tuple[datetime, int], Generated]]:
    for g in stream:
        yield (g.message.recorded_at, index), g


#: patient_history's longest default span (years): the patient is 75-85 at `end`, young at the start
LONGEST_HISTORY_YEARS: Final = 60.0


def patient_history(
    seed: int, events: int, end: datetime = ANCHOR, years: float | None = None, density: float | None = None
) -> list[Generated]:
    """One patient's first `events` messages (fewer if the span ends first), in publication order, every one before
    `end`, followed from `years` before `end`. At the cohort's rates (`density` 1) a patient sends about 110
    messages a year, so 10 000 messages are ~90 years: by default the span is events / 110 years up to
    LONGEST_HISTORY_YEARS, and a longer stream is made denser (every process more frequent: for 20 000 messages,
    labs every 2-7 days, imaging every 2-4 weeks: an intensively followed patient), so that the windows the
    retention policies keep (measured in days) hold more than a realistic patient's, never less.
    `patient_history(s, 10**6, years=5, density=1)` is a realistic 5-year patient whole."""
    rate = 110.0
    span = years if years is not None else max(0.25, min(LONGEST_HISTORY_YEARS, 1.1 * events / rate))
    dense = density if density is not None else max(1.0, 1.15 * events / (rate * span))
    start = end - timedelta(days=365.25 * span)
    out: list[Generated] = []
    for g in _Patient(seed, 0, start, end, end, dense).messages():
        out.append(g)
        if len(out) == events:
            break
    return out
