"""Local-treatment contracts: a clinician's request for a decision on one lesion, and the local-treatment plan
(radiotherapy, SBRT, re-irradiation, cementoplasty, surgery) the radiotherapy planner publishes per patient."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Message
from contracts.plan import PlanItem

LocalModality = Literal["palliative_rt", "sbrt", "reirradiation", "cementoplasty", "surgery"]


class PriorCourse(BaseModel):
    """An earlier radiotherapy course on the segment to re-irradiate, with the cord dose it gave (RT-REIRR)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on: date = Field(description="First fraction.")
    end_on: date | None = Field(default=None, description="Last fraction; the interval counts from it when given.")
    total_dose_gy: float | None = Field(default=None, gt=0, le=100)
    fractions: int = Field(ge=1, le=50, description="Fractions of the course (the cord Dmax was given in them).")
    cord_dmax_gy: float | None = Field(
        default=None, ge=0, le=100, description="Physical spinal cord point dose (Dmax) of the course, Gy."
    )


class LocalTreatmentRequest(Message):
    """A clinician asks for a local-treatment decision on one lesion. A later request with the same `request_id`
    replaces it; `status: cancelled` withdraws it (and what was decided from it)."""

    schema_id: ClassVar[str] = "osteocds.local-treatment-request/1"

    request_id: str = Field(min_length=1, max_length=64, description="Stable ID of the request across updates.")
    lesion_id: str = Field(min_length=1, max_length=64, description="The lesion (ImagingFinding.lesion_id).")
    modality: LocalModality
    intent: (
        Literal[
            "pain", "fracture_risk", "cord_compression", "postoperative", "ablative_oligometastatic", "stabilisation"
        ]
        | None
    ) = None
    total_dose_gy: float | None = Field(default=None, gt=0, le=100, description="Proposed scheme: total dose.")
    fractions: int | None = Field(default=None, ge=1, le=50, description="Proposed scheme: number of fractions.")
    planned_cord_dmax_gy: float | None = Field(
        default=None, ge=0, le=100, description="Planned physical spinal cord Dmax of the new course (SBRT, re-RT)."
    )
    adjacent_vertebrae: int | None = Field(
        default=None,
        ge=1,
        le=33,
        description="Adjacent pathological vertebrae in the target volume (RT-SBRT-IND: at most 3; RT-FRACT-PALL: "
        "more than 3 is a complicated case).",
    )
    previous_courses: list[PriorCourse] = Field(
        default_factory=list, description="Earlier courses on this segment (re-irradiation), with their cord dose."
    )
    cord_dose_excludes_conventional: bool | None = Field(
        default=None,
        description="RT-SBRT-IND case 1 (L1617-1618): the cord dose already received on this previously irradiated "
        "segment rules out a conventional course (the radiation oncologist's judgement).",
    )
    other_techniques_excluded: bool | None = Field(
        default=None,
        description="IR-CEMENT (L2576-2578): surgery AND radiotherapy judged ineffective or not indicated for this "
        "lesion (inoperable alone is not enough while radiotherapy remains possible).",
    )
    planned_on: date | None = Field(default=None, description="Planned date of the treatment or procedure.")
    urgent: bool = Field(default=False, description="Clinical emergency (RT-DRUG: shortened windows).")
    status: Literal["active", "cancelled"] = "active"

    @model_validator(mode="after")
    def _scheme_whole(self) -> LocalTreatmentRequest:
        if (self.total_dose_gy is None) != (self.fractions is None):
            raise ValueError("a proposed scheme needs both total_dose_gy and fractions")
        return self


class LesionSection(BaseModel):
    """The local-treatment decisions for one lesion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lesion_id: str
    skeletal_site: str | None = None
    vertebral_level: str | None = None
    items: list[PlanItem]


class LocalTreatmentPlan(Message):
    """The patient's current local-treatment plan, one section per lesion plus patient-level items (drug–RT
    windows). `version` increases each time a decision changes."""

    schema_id: ClassVar[str] = "osteocds.local-treatment-plan/1"

    version: int = Field(ge=1)
    ruleset_version: str
    sections: list[LesionSection]
    patient_items: list[PlanItem] = Field(default_factory=list)
