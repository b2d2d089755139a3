"""The bone-targeted treatment plan per patient (systemic-treatment planner), versioned."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import InputUsed, Message, Severity
from contracts.rules import Citation

ItemStatus = Literal["recommended", "to_do", "done", "waived", "cannot_decide", "not_indicated", "warning", "info"]


class MedicationOrder(BaseModel):
    """A structured order an EHR can pre-fill (also offered as a FHIR MedicationRequest, draft/proposal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drug: str = Field(description="INN, e.g. 'zoledronic_acid'.")
    atc: str | None = Field(default=None, description="WHO ATC code.")
    dose: float
    unit: str = Field(description="UCUM unit, e.g. 'mg' or '[iU]'.")
    route: Literal["intravenous", "subcutaneous", "oral"]
    interval: str = Field(description="ISO 8601 duration between doses, e.g. P4W, P3M, P1W, PT8H.")
    count: int | None = Field(default=None, description="Number of doses, when fixed.")
    duration: str | None = Field(default=None, description="ISO 8601 duration of the course, e.g. P2Y.")
    instructions_fr: str
    rule_ids: list[str]
    waived_prerequisites: list[str] = Field(
        default_factory=list,
        description="SYS-AR-PREREQ checks not met but waived because of a current emergency (e.g. a current "
        "hypercalcaemic crisis); empty when every prerequisite is met. Also stated in `instructions_fr`.",
    )


class Check(BaseModel):
    """One line of a checklist (SYS-AR-PREREQ)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    status: Literal["done", "to_do", "pending", "waived", "cannot_decide", "declined"]
    detail_fr: str


class PlanItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="Stable identity of the item within the plan, e.g. 'zoledronic-acid-dose'.")
    rule_id: str
    status: ItemStatus
    severity: Severity
    title: str
    text_fr: str
    inputs: list[InputUsed] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Data needed to decide; never defaulted.")
    what_would_change_fr: str | None = Field(default=None, description="What would change this item.")
    citation: Citation
    orders: list[MedicationOrder] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)


class TreatmentPlan(Message):
    """The patient's current bone-targeted treatment plan. `version` increases each time it changes."""

    schema_id: ClassVar[str] = "osteocds.treatment-plan/1"

    version: int = Field(ge=1)
    ruleset_version: str
    items: list[PlanItem]
