"""Hospital-facing input events, as published by the integration bus (JSON, one per message)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.base import Message

Sex = Literal["female", "male", "other", "unknown"]
Histology = Literal["adenocarcinoma", "squamous_cell", "large_cell", "nsclc_nos", "small_cell", "other"]
ResultStatus = Literal["final", "amended", "corrected", "entered-in-error"]
#: A censored result: the true value is below (<, <=) or above (>, >=) `value`, never equal to it.
Comparator = Literal["<", "<=", ">", ">="]
#: "date": the source gave a collection date without a time of day; `occurred_at` is then that day's first
#: minute in the hospital's time zone, never a guessed time, and rules that need the hour must not use it.
TimePrecision = Literal["time", "date"]


class PatientRecord(Message):
    """Patient registered or updated. Absent fields are unknown, never defaulted."""

    schema_id: ClassVar[str] = "osteocds.patient-record/1"

    birth_date: date | None = None
    sex: Sex | None = None
    weight_kg: float | None = Field(default=None, gt=0, le=400)
    weight_measured_at: date | None = None
    histology: Histology | None = None
    molecular_profile: dict[str, str] = Field(
        default_factory=dict, description='Marker -> status, e.g. {"EGFR": "L858R", "ALK": "negative"}.'
    )


class Coding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str = Field(description='"http://loinc.org" or a local code system URI.')
    code: str = Field(min_length=1, max_length=64)
    display: str | None = Field(default=None, max_length=256)


class LabResult(Message):
    """One laboratory result. `occurred_at` is the specimen collection time."""

    schema_id: ClassVar[str] = "osteocds.lab-result/1"

    result_id: str = Field(
        min_length=1,
        max_length=128,
        description="The lab system's stable ID for this result; amendments reuse it.",
    )
    code: Coding
    value: float | None = Field(default=None, description="Numeric result; absent when withdrawn.")
    unit: str | None = Field(default=None, max_length=32)
    status: ResultStatus = "final"
    fasting: bool | None = Field(default=None, description="Specimen drawn fasting (serum CTX).")
    comparator: Comparator | None = Field(
        default=None, description="Censored result (e.g. '<' 5): the value is a bound, never an exact value."
    )
    occurred_at_precision: TimePrecision = Field(
        default="time", description="'date' when only the collection date is known (occurred_at is its 00:00)."
    )

    @model_validator(mode="after")
    def _value_unless_withdrawn(self) -> LabResult:
        if self.status != "entered-in-error" and self.value is None:
            raise ValueError("value is required unless status is entered-in-error")
        return self


SkeletalSite = Literal[
    "humerus",
    "radius_ulna",
    "other_upper_limb",
    "femur_trochanteric",
    "femur_neck",
    "femur_shaft",
    "tibia_fibula",
    "other_lower_limb",
    "spine",
    "sacrum",
    "pelvis",
    "acetabulum",
    "rib",
    "sternum",
    "scapula",
    "clavicle",
    "skull",
]
LesionType = Literal["lytic", "mixed", "blastic"]
#: suspected: seen but not confirmed as a metastasis (e.g. a focus on PET or bone scan only); confirmed: a bone
#: metastasis; resolved: no longer seen. Absent: not stated (scoring then judges from the modalities).
LesionStatus = Literal["suspected", "confirmed", "resolved"]
VertebralLevel = Annotated[str, Field(pattern=r"^(C[1-7]|T([1-9]|1[0-2])|L[1-5]|S[1-5]|Co)$")]


class ImagingFinding(Message):
    """Description of one bone lesion on one imaging study."""

    schema_id: ClassVar[str] = "osteocds.imaging-finding/1"

    lesion_id: str = Field(min_length=1, max_length=64, description="Stable ID of the lesion across studies.")
    skeletal_site: SkeletalSite
    vertebral_level: VertebralLevel | None = Field(default=None, description="Required when site is spine.")
    lesion_type: LesionType | None = None
    cortical_involvement_fraction: float | None = Field(default=None, ge=0, le=1)
    axial_cortical_osteolysis_pct: float | None = Field(default=None, ge=0, le=100)
    circumferential_cortical_osteolysis_pct: float | None = Field(default=None, ge=0, le=100)
    vertebral_collapse: Literal["none", "lt_50", "gt_50", "none_body_involved_gt_50"] | None = None
    alignment: Literal["normal", "de_novo_deformity", "subluxation_translation"] | None = None
    posterolateral_involvement: Literal["none", "unilateral", "bilateral"] | None = None
    epidural_extension: bool | None = None
    cord_compression: bool | None = None
    pathological_fracture: bool | None = None
    size_cm: float | None = Field(default=None, gt=0, le=50)
    modality: Literal["xray", "ct", "mri", "bone_scan", "fdg_pet", "naf_pet"]
    new_focus: bool = False
    status: LesionStatus | None = Field(
        default=None,
        description="suspected / confirmed / resolved. Absent: not stated; a lesion seen only on PET or bone scan "
        "is then taken as suspected (IMG-ISOLATED), one seen on X-ray, CT or MRI as confirmed. A suspected lesion "
        "starts nothing (no SRE, not counted as a metastasis); a resolved one is no longer counted.",
    )
    # Local-treatment inputs (RT-SBRT-CI, RT-SBRT-FX, IR-CEMENT); absent = unknown, never defaulted.
    canal_narrowing_pct: float | None = Field(
        default=None, ge=0, le=100, description="Spinal canal diameter narrowing, % (RT-SBRT-CI: relative if > 25 %)."
    )
    tumour_cord_distance_mm: float | None = Field(
        default=None, ge=0, le=200, description="Tumour to spinal cord distance, mm (RT-SBRT-CI: relative if < 5 mm)."
    )
    vertebral_body_involvement_fraction: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of the vertebral body involved (RT-SBRT-FX: risk if > 0.2)."
    )
    posterior_wall_involvement: Literal["none", "limited", "extensive_or_retropulsed"] | None = Field(
        default=None, description="Vertebral posterior wall (IR-CEMENT relative contraindication when extensive)."
    )
    joint_opening: bool | None = Field(default=None, description="Lesion opens into a joint (IR-CEMENT relative CI).")
    record_status: Literal["final", "amended", "entered-in-error"] = Field(
        default="final",
        description="A correction of an earlier finding: 'amended' replaces the finding named in `corrects` (or the "
        "lesion's latest), 'entered-in-error' withdraws the finding named in `corrects`. What was decided from "
        "a corrected finding is withdrawn downstream (recommendations, SREs, plan items).",
    )
    corrects: uuid.UUID | None = Field(default=None, description="event_id of the finding this one corrects.")

    @model_validator(mode="after")
    def _spine_needs_level(self) -> ImagingFinding:
        if self.skeletal_site == "spine" and self.vertebral_level is None:
            raise ValueError("vertebral_level is required for a spinal lesion")
        if self.record_status == "entered-in-error" and self.corrects is None:
            raise ValueError("corrects is required when record_status is entered-in-error")
        return self


class Pain(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    character: Literal["none", "mechanical", "non_mechanical", "neuropathic"] | None = None
    intensity: Literal["none", "mild", "moderate", "functional"] | None = None
    nrs: int | None = Field(default=None, ge=0, le=10, description="Numeric rating scale 0-10.")
    resistant_to_analgesics: bool | None = None


class LesionPain(Pain):
    """The pain of one lesion (SCORE-MIRELS and SCORE-SINS score the pain of the lesion they score)."""

    lesion_id: str = Field(min_length=1, max_length=64, description="ImagingFinding.lesion_id of the painful lesion.")


class ExtraOsseousMetastases(BaseModel):
    """Metastases outside the skeleton (CLASS-OLIGO counts sites and metastases over the whole disease)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=0, le=1000, description="Number of extra-osseous metastases (0: none).")
    sites: list[str] = Field(
        default_factory=list,
        max_length=50,
        description='Organs involved, e.g. ["adrenal", "brain"]; empty when count is 0.',
    )
    stable: bool | None = Field(default=None, description="Extra-osseous disease stable (CLASS-OLIGO, L1472-1474).")
    largest_size_cm: float | None = Field(default=None, gt=0, le=50, description="Size of the largest one.")

    @model_validator(mode="after")
    def _sites_match_count(self) -> ExtraOsseousMetastases:
        if (self.count == 0) != (not self.sites):
            raise ValueError("sites must be listed when count > 0, and empty when count is 0")
        if len(set(self.sites)) > self.count:
            raise ValueError("more distinct sites than metastases")
        return self


class SurgicalOpinion(BaseModel):
    """A surgeon's opinion on operability (RT-MSCC: operable or not; SURG-LE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    operable: bool
    on: date
    lesion_id: str | None = Field(default=None, max_length=64, description="The lesion it concerns; None = patient.")


class ClinicalAssessment(Message):
    schema_id: ClassVar[str] = "osteocds.clinical-assessment/1"

    ecog: int | None = Field(default=None, ge=0, le=4)
    pain: Pain | None = Field(
        default=None,
        description="The patient's overall pain. Mirels and SINS never take it for a lesion's pain: use lesion_pain.",
    )
    lesion_pain: list[LesionPain] = Field(
        default_factory=list, max_length=100, description="Pain per lesion, keyed by lesion_id (Mirels, SINS)."
    )
    extra_osseous_metastases: ExtraOsseousMetastases | None = Field(
        default=None, description="Absent: not assessed (CLASS-OLIGO then undetermined unless a criterion fails)."
    )
    neurological_deficit: bool | None = Field(
        default=None,
        description="With epidural extension of a spinal lesion, a neurological deficit means cord compression.",
    )
    life_expectancy_months: float | None = Field(
        default=None, ge=0, le=240, description="The clinician's estimate (SCORE-OBSOLETE: no Tokuhashi/Rades)."
    )
    primary_controlled: bool | None = None
    oncological_response: Literal["complete", "good", "partial", "stable", "progression"] | None = Field(
        default=None, description="Latest oncological response (SYS-SCHEDULE: spacing after a good response)."
    )
    # Local-treatment inputs (RT-FRACT-PALL, RT-MSCC, RT-SBRT-CI, IR-CEMENT); absent = unknown.
    surgical_opinion: SurgicalOpinion | None = None
    frail: bool | None = Field(default=None, description="Elderly or frail patient, altered general state.")
    hard_to_move: bool | None = Field(default=None, description="Patient difficult to mobilise (8 Gy single fraction).")
    mri_contraindicated: bool | None = None
    opioid_complications: bool | None = Field(
        default=None, description="Complication or poor tolerance of opioids (IR-CEMENT indication)."
    )
    diffuse_pain: bool | None = Field(default=None, description="Diffuse, non-localised pain (IR-CEMENT CI).")
    radiculopathy: bool | None = None
    active_infection: bool | None = Field(default=None, description="General infection or at the puncture site.")
    cement_allergy: bool | None = None
    severe_coagulation_disorder: bool | None = None
    record_status: Literal["final", "amended", "entered-in-error"] = Field(
        default="final",
        description="A correction of an earlier assessment: 'amended' replaces the assessment named in `corrects` "
        "(or the patient's latest), 'entered-in-error' withdraws the assessment named in `corrects`. What was "
        "decided from a corrected assessment is withdrawn downstream (recommendations, SREs, plan items).",
    )
    corrects: uuid.UUID | None = Field(default=None, description="event_id of the assessment this one corrects.")

    @model_validator(mode="after")
    def _error_names_its_target(self) -> ClinicalAssessment:
        if self.record_status == "entered-in-error" and self.corrects is None:
            raise ValueError("corrects is required when record_status is entered-in-error")
        return self


#: A WHO ATC code of a substance (7 characters, e.g. L01FF02).
AtcCode = Annotated[str, Field(pattern=r"^[A-V][0-9]{2}[A-Z]{2}[0-9]{2}$")]


class SystemicDrug(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["systemic_drug"] = "systemic_drug"
    drug: str = Field(
        min_length=1,
        max_length=64,
        description="INN (e.g. 'osimertinib'), French name or brand name: read through the shared drug vocabulary.",
    )
    atc_code: AtcCode | None = Field(default=None, description="WHO ATC code, e.g. 'L01EB04' (identifies the drug).")
    action: Literal["started", "stopped"]
    on: date


class RadiotherapyCourse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["radiotherapy"] = "radiotherapy"
    site: str = Field(min_length=1, max_length=64)
    vertebral_level: str | None = None
    total_dose_gy: float = Field(gt=0, le=100)
    fractions: int = Field(ge=1, le=50)
    on: date
    cord_dmax_gy: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Physical spinal cord point dose (Dmax) of the course, in its fractions.",
    )
    intent: Literal["pain", "preventive", "cord_compression", "postoperative", "ablative"] | None = None
    lesion_id: str | None = Field(default=None, max_length=64)
    end_on: date | None = Field(default=None, description="Last fraction (RT-REIRR interval, RT-DRUG 'after').")
    technique: Literal["conventional", "sbrt"] | None = None


class MetabolicRadiotherapy(BaseModel):
    """Internal (metabolic) radiotherapy, e.g. radium-223 (RT-SBRT-CI: absolute contraindication)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["metabolic_radiotherapy"] = "metabolic_radiotherapy"
    agent: str = Field(min_length=1, max_length=64)
    on: date


class DrugAdministration(BaseModel):
    """One administration (or the last dose) of a drug with its date: RT-DRUG windows and IR-CEMENT haemostasis
    need the date of the last dose, not only 'started'."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["drug_administration"] = "drug_administration"
    drug: str = Field(
        min_length=1,
        max_length=64,
        description="INN (e.g. 'clopidogrel'), French name or brand name: read through the shared drug vocabulary.",
    )
    atc_code: AtcCode | None = Field(default=None, description="WHO ATC code, e.g. 'B01AC04' (identifies the drug).")
    on: date = Field(description="Date of this dose (for a daily drug: the last dose taken).")
    at: AwareDatetime | None = Field(
        default=None,
        description="Time of this dose, when known (IR-CEMENT: the 48-hour stop of a direct oral anticoagulant is "
        "counted from it; without it the count is conservative, whole days after the day of the dose).",
    )
    daily_dose_mg: float | None = Field(default=None, gt=0, le=10000, description="e.g. aspirin mg/day.")
    ongoing: bool | None = Field(default=None, description="The patient is still taking it (daily drugs).")


class Surgery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["surgery"] = "surgery"
    site: str = Field(min_length=1, max_length=64)
    procedure: Literal["prophylactic_fixation", "fracture_fixation", "decompression", "resection", "other"]
    on: date
    lesion_id: str | None = Field(default=None, max_length=64, description="The lesion operated on (RT-MSCC).")
    vertebral_level: VertebralLevel | None = Field(default=None, description="The level operated on (spine).")


class DentalCare(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["dental"] = "dental"
    action: Literal["assessment", "extraction", "jaw_bone_exposure"]
    orthopantomogram: bool | None = None
    cleared_for_antiresorptive: bool | None = Field(default=None, description="The dentist agrees to start.")
    exposure_weeks: float | None = Field(
        default=None, ge=0, description="jaw_bone_exposure: weeks the jaw bone has stayed exposed despite care."
    )
    craniofacial_irradiation: bool | None = Field(default=None, description="History of cranio-facial radiotherapy.")
    on: date


Treatment = Annotated[
    SystemicDrug | RadiotherapyCourse | Surgery | DentalCare | MetabolicRadiotherapy | DrugAdministration,
    Field(discriminator="kind"),
]


class TreatmentEvent(Message):
    schema_id: ClassVar[str] = "osteocds.treatment-event/1"

    treatment: Treatment
    record_status: Literal["final", "amended", "entered-in-error"] = Field(
        default="final",
        description="A correction of an earlier treatment event (a mistyped course, a surgery or a dose that did not "
        "happen): 'amended' replaces the event named in `corrects`, 'entered-in-error' withdraws it. What was "
        "decided from it is re-decided (recommendations, plan items).",
    )
    corrects: uuid.UUID | None = Field(default=None, description="event_id of the treatment event this one corrects.")

    @model_validator(mode="after")
    def _correction_names_its_target(self) -> TreatmentEvent:
        # unlike a finding, a treatment correction never guesses which event it corrects (issue 18.7)
        if self.record_status != "final" and self.corrects is None:
            raise ValueError("corrects is required when record_status is amended or entered-in-error")
        return self
