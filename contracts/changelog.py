"""A service's changelog record (issue 22): one patient's stored aggregate as the service last wrote it, on the
service's compacted changelog topic (contracts/topics.py `changelog_topic`), keyed by patient. Compaction keeps the
newest record per patient; a record without a value (a tombstone) removes the patient. shared/runtime/changelog.py
writes and restores them; nothing else reads them."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import PatientId

#: the key of the record saying the changelog holds every patient (written after a replay seeded it); not a patient ID
COMPLETE_KEY = "#complete"


class StateChange(BaseModel):
    """The patient's aggregate after a batch whose outputs the broker has acknowledged."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_id: ClassVar[str] = "osteocds.state-change/1"

    service: str = Field(min_length=1, max_length=64)
    patient_id: PatientId
    state: str = Field(description="The aggregate's JSON, byte for byte as the service stores it in Redis.")
    due_at: AwareDatetime | None = Field(default=None, description="The patient's next deadline (timers).")
    applied: dict[str, int] = Field(
        default_factory=dict,
        description="'topic:partition' -> the highest offset of this patient's records the state already holds, for "
        "the records not yet committed: redelivered after a restore, they are skipped, not applied twice.",
    )
    changed_at: AwareDatetime = Field(description="When the service wrote it (a state idle past its TTL expires).")
