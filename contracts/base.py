"""Common envelope and value types shared by every message."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

#: Pseudonymous patient identifier as assigned by the integration bus (never a name or an MRN).
PatientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]

#: Namespace for deterministic (idempotent) IDs of derived messages.
OSTEOCDS_NS = uuid.UUID("6f1c0e3a-5d0b-4f7e-9a55-0c2f4b1d9e01")

Severity = Literal["critical", "warning", "info"]


_NS_BYTES = OSTEOCDS_NS.bytes


def derived_id(*parts: object) -> uuid.UUID:
    """A stable UUID for a message derived from the given inputs: replays give the same ID. It is
    `uuid.uuid5(OSTEOCDS_NS, "|".join(parts))` (RFC 4122 name-based, SHA-1), with the namespace's bytes computed
    once (this runs for every output of every service)."""
    name = "|".join(map(str, parts)).encode()
    return uuid.UUID(bytes=hashlib.sha1(_NS_BYTES + name).digest()[:16], version=5)


class Message(BaseModel):
    """Base of every message on a topic. `schema_id` names the contract and its version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_id: ClassVar[str]

    event_id: uuid.UUID = Field(description="Unique ID of this message; the idempotency key.")
    patient_id: PatientId = Field(description="Pseudonymous patient ID; the Kafka key.")
    occurred_at: AwareDatetime = Field(description="Clinical time of the fact (e.g. specimen collection).")
    recorded_at: AwareDatetime = Field(description="When the source system recorded the fact.")
    source: str = Field(min_length=1, max_length=128, description="Producing system or service.")

    def delivery_key(self) -> str:
        """What a consumer deduplicates on: a second delivery of the same message has no second effect."""
        return str(self.event_id)


class InputUsed(BaseModel):
    """One input a rule used, with its provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: float | int | str | bool | None
    unit: str | None = None
    occurred_at: datetime | None = None
    source_event_id: uuid.UUID | None = None
    comparator: Literal["<", "<=", ">", ">="] | None = Field(
        default=None,
        description="A censored value: the true value is below (<, <=) or above (>, >=) `value`; a bound, never an "
        "exact value.",
    )
