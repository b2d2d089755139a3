"""Care-pathway and bone-biopsy events from the hospital (additive, topic hospital.care-events.v1).

QUAL-PATHWAY (L1-57): what each patient should be offered, with its status. MOL-BIOPSY (L496-634): a bone biopsy
planned or reported, with what the pathology lab needs to know and the molecular results."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import Message
from contracts.hospital import Histology

#: QUAL-PATHWAY items (L1-57), in the order of the text.
PathwayItemName = Literal[
    "multidisciplinary_decision",  # L5-9 (and information sent to the GP)
    "patient_information",  # L13-19: disease and treatments explained, documents given
    "smoking_cessation",  # L26-27
    "pain_management",  # L30-31
    "palliative_supportive_care",  # L33-35
    "psychologist",  # L37-38
    "social_worker",  # L40-41
    "occupational_exposure",  # L43-45
    "oncogenetics",  # L47-49: when several relatives had cancer
    "clinical_trial",  # L51-53
]


class PathwayStep(BaseModel):
    """One care-pathway item's status, as the hospital records it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["pathway_step"] = "pathway_step"
    item: PathwayItemName
    status: Literal["done", "to_do", "declined", "not_applicable"] = Field(
        description="declined: offered and refused by the patient; not_applicable: e.g. oncogenetics without "
        "several relatives with cancer, smoking cessation for a non-smoker."
    )
    on: date


class BoneBiopsy(BaseModel):
    """A bone biopsy, planned or reported (MOL-BIOPSY)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["bone_biopsy"] = "bone_biopsy"
    biopsy_id: str = Field(min_length=1, max_length=64, description="Stable ID; the report reuses the plan's ID.")
    status: Literal["planned", "reported"]
    on: date
    context: Literal["diagnosis", "tki_resistance", "progression", "other"] | None = Field(
        default=None, description="Why: initial diagnosis, resistance to a tyrosine-kinase inhibitor, progression."
    )
    histology: Histology | None = Field(default=None, description="Reported histology of the bone metastasis.")
    decalcification: Literal["edta", "formic_acid", "strong_acid", "none"] | None = None
    molecular_results: dict[str, str] = Field(
        default_factory=dict,
        description='Marker -> result, e.g. {"EGFR": "exon 19 deletion", "ALK": "negative", "PD-L1": "50%"}; '
        '"failed" when the test could not be done.',
    )


CareEventBody = Annotated[PathwayStep | BoneBiopsy, Field(discriminator="kind")]


class CareEvent(Message):
    schema_id: ClassVar[str] = "osteocds.care-event/1"

    event: CareEventBody
