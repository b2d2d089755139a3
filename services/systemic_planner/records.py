"""What the systemic planner keeps of each imaging finding and clinical assessment, corrections included, so that
what it reads can be folded again from the effective records only (shared/clinical/corrections.py, issue 11). Pure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self, TypeVar

from pydantic import BaseModel

from contracts.hospital import ClinicalAssessment, ImagingFinding
from shared.clinical.facts import Fact

T = TypeVar("T")


class _Record(BaseModel):
    event_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime
    record_status: str = "final"
    corrects: uuid.UUID | None = None

    @classmethod
    def of(cls, e: ImagingFinding | ClinicalAssessment) -> Self:
        return cls.model_validate(e.model_dump(include=set(cls.model_fields)))

    def fact(self, value: T) -> Fact[T]:
        return Fact[T](value=value, occurred_at=self.occurred_at, recorded_at=self.recorded_at, event_id=self.event_id)


class FindingRecord(_Record):
    lesion_id: str
    skeletal_site: str
    modality: str
    status: str | None = None


class AssessmentRecord(_Record):
    life_expectancy_months: float | None = None
    oncological_response: str | None = None
