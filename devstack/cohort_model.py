"""The cohort generator's vocabulary (devstack/cohort.py, issue 25): the hospital's time zone and time steps, the input
topics a cohort publishes on and one message to publish (`Generated`), the lab units hospitals send (a French, a
lower-case and a conventional-unit lab: LOINC code, unit, factor from the canonical unit), where lung cancer
metastasises in bone, the ATC codes of the drugs given, the care-pathway items, and the records of one patient's
generator (a lesion, a systemic line, a pending process). Development tooling: services never import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from contracts.base import Message
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
