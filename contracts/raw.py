"""Raw hospital payloads accepted as sent by the integration bus (parsed by lab-normalisation)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class FhirR4Payload(BaseModel):
    """A FHIR R4 `Observation`, `Patient` or `Bundle` of them, as JSON. Validated in full by the
    `fhir.resources` models in lab-normalisation; this contract only names what is accepted."""

    model_config = ConfigDict(extra="allow", frozen=True)
    schema_id: ClassVar[str] = "fhir-r4/json"

    resourceType: Literal["Observation", "Patient", "Bundle"] = Field(
        description="Observation (lab result or body weight), Patient (birth date, sex), or a Bundle of them"
    )


class Hl7v2Payload(RootModel[str]):
    """An HL7 v2.5 ORU^R01 message in ER7 (pipe) encoding, segments separated by CR; the Kafka value is
    the message text itself (UTF-8 or ISO-8859-1), optionally MLLP-framed."""

    model_config = ConfigDict(frozen=True)
    schema_id: ClassVar[str] = "hl7v2.5/oru-r01"
