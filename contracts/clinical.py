"""Internal events produced by the OsteoCDS services."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import InputUsed, Message, Severity
from contracts.hospital import Comparator, TimePrecision
from contracts.lifecycle import AlertStatus, AlertTransition, OverrideReasonCode
from contracts.rules import Citation

Analyte = Literal[
    "total_calcium",
    "ionised_calcium",
    "albumin",
    "creatinine",
    "vitamin_d_25oh",
    "ctx_serum",
    "ntx_urine",
    "platelets",
    "prothrombin_pct",
    "alkaline_phosphatase",
    "body_weight",
    # derived values
    "corrected_calcium",
    "creatinine_clearance",
]


CAUSED_BY = (
    "Delivery key of the event whose processing published this message (its event_id, followed by its own "
    "caused_by if it has one). The same decision issued again after its withdrawal (a result corrected, then "
    "corrected back) keeps its event_id but has another cause, so consumers take it as a new issue, not as a "
    "duplicate delivery."
)


class Issued(Message):
    """A decision a service issues and may withdraw, then issue again (recommendations, SREs)."""

    caused_by: str | None = Field(default=None, max_length=1024, description=CAUSED_BY)

    def delivery_key(self) -> str:
        return f"{self.event_id}:{self.caused_by or ''}"


class SourceRef(BaseModel):
    """Provenance of a value: which source result it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    analyte: str
    value: float | str
    unit: str | None
    occurred_at: datetime
    comparator: Comparator | None = Field(
        default=None, description="The source was censored: its true value is below (<, <=) or above (>, >=) `value`."
    )


class NormalisedLab(Message):
    """A lab value in canonical units, or a value derived from others (with provenance).

    `status` "withdrawn" retracts an earlier value with the same `result_id`.
    `value` is None when a derived value cannot be computed; `missing` then says why.
    """

    schema_id: ClassVar[str] = "osteocds.normalised-lab/1"

    analyte: Analyte
    result_id: str
    value: float | None
    unit: str
    status: Literal["final", "amended", "withdrawn"] = "final"
    original_value: float | None = None
    original_unit: str | None = None
    loinc: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    derived_from: list[SourceRef] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    fasting: bool | None = None
    interpretation: str | None = Field(
        default=None,
        description="LAB-VITD class (deficiency, insufficiency, recommended, above_recommended, "
        "possible_intoxication) or LAB-CTX (interpretable, not_interpretable).",
    )
    notes: list[str] = Field(
        default_factory=list, description="French notes for clinicians, e.g. why not interpretable."
    )
    comparator: Comparator | None = Field(
        default=None,
        description="Censored value: the true value is below (<, <=) or above (>, >=) `value`. A threshold rule "
        "may only decide where the bound settles it (e.g. '> 3.6' is above 3.5); never use it as exact. A derived "
        "value from a censored input carries the bound it implies.",
    )
    occurred_at_precision: TimePrecision = Field(
        default="time", description="'date': only the collection date is known (occurred_at is that day's 00:00)."
    )


class SkeletalEvent(Issued):
    """A skeletal-related event (CLASS-SRE) detected by scoring."""

    schema_id: ClassVar[str] = "osteocds.skeletal-event/1"

    kind: Literal[
        "pathological_fracture",
        "cord_compression",
        "radiotherapy_for_pain",
        "orthopaedic_surgery",
        "hypercalcaemia",
    ]
    rule_id: str
    evidence: list[InputUsed]
    status: Literal["active", "withdrawn"] = Field(
        default="active",
        description="withdrawn: the SREs in `supersedes` no longer hold (e.g. the calcium result behind a "
        "hypercalcaemia was corrected or entered in error).",
    )
    supersedes: list[uuid.UUID] = Field(default_factory=list)
    lesion_id: str | None = Field(default=None, description="The lesion concerned (fracture, cord compression).")
    current: bool | None = Field(
        default=None,
        description="Whether the event is still under way when issued, so that an emergency is decided from "
        "current data only. hypercalcaemia: its crisis value is the patient's newest corrected calcium and was "
        "drawn within the recency window; a crisis value older than a newer normal one is historical (false). "
        "cord_compression / pathological_fracture: not resolved, not yet treated on that lesion (decompression, "
        "RT for compression, fixation) and seen within the recency window. None: not assessed (other kinds). "
        "When it changes, the earlier version is withdrawn (status withdrawn, supersedes) and the new one issued.",
    )
    evidence_at: datetime | None = Field(
        default=None,
        description="Clinical time of the newest evidence that the event is under way (hypercalcaemia: the "
        "newest crisis value of the episode).",
    )
    current_until: datetime | None = Field(
        default=None,
        description="When `current` is true: the time after which, with no newer evidence, the event is no longer "
        "current by age alone (evidence_at + the recency window). Consumers compare it with their clock.",
    )


class ScoreComponent(BaseModel):
    """One item of a score. `points` is None when the item is missing (the score is then incomplete)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: str | float | bool | None
    points: int | None
    source_event_id: uuid.UUID | None = None


class Score(Message):
    """A score or classification (Mirels, SINS, oligometastatic status)."""

    schema_id: ClassVar[str] = "osteocds.score/1"

    score: Literal["mirels", "sins", "oligometastatic"]
    subject: str = Field(description="What is scored: a lesion ID, or 'patient'.")
    total: int | None = Field(description="None unless every component is known: a partial score is never a total.")
    complete: bool
    band: str | None
    components: list[ScoreComponent]
    missing: list[str] = Field(default_factory=list)
    rule_ids: list[str]
    ruleset_version: str
    text_fr: str
    citation: Citation
    inputs: list[InputUsed] = Field(default_factory=list)
    status: Literal["current", "withdrawn"] = Field(
        default="current",
        description="'withdrawn': scoring no longer decides this score (its only finding entered in error, the "
        "lesion resolved; the reason in `missing`); consumers hold it as absent (HAZ-22-ORDER-03).",
    )
    supersedes: list[uuid.UUID] = Field(
        default_factory=list, description="The version of this score (same `score` and `subject`) this one replaces."
    )


class Recommendation(Issued):
    """A rule's decision for one patient. `event_id` is derived from the rule and its inputs, so
    replays produce the same ID and the notification service shows it once."""

    schema_id: ClassVar[str] = "osteocds.recommendation/1"

    rule_id: str
    ruleset_version: str
    severity: Severity
    title: str = Field(description="Short French headline for a card.")
    text_fr: str = Field(description="Clinician-facing explanation in French.")
    citation: Citation
    inputs: list[InputUsed]
    missing: list[str] = Field(default_factory=list, description="Data needed but absent; never guessed.")
    produced_by: str
    status: Literal["active", "withdrawn"] = "active"
    supersedes: list[uuid.UUID] = Field(default_factory=list)
    alert_key: str | None = Field(
        default=None,
        max_length=256,
        description="The decision's identity, stable across wordings (issue 22): its producer and subject, e.g. "
        "`radiotherapy-planner:t8:mscc` (a plan item's key: one rule family, one lesion, segment or drug) or "
        "`scoring:mirels:femur-R`. A new wording is a new `event_id` with the same `alert_key`: it supersedes the "
        "earlier version, so a patient never has two alerts of one key in force at once.",
    )


class Alert(Message):
    """A recommendation as shown to clinicians by the notification service."""

    schema_id: ClassVar[str] = "osteocds.alert/1"

    recommendation_id: uuid.UUID
    alert_key: str | None = Field(
        default=None,
        max_length=256,
        description="The recommendation's `alert_key`: at most one alert of a key holds (active, acknowledged or "
        "overridden) at a time; a new wording supersedes the earlier alert of its key.",
    )
    rule_id: str
    ruleset_version: str
    severity: Severity
    title: str
    text_fr: str
    citation: Citation
    inputs: list[InputUsed]
    missing: list[str] = Field(default_factory=list)
    produced_by: str
    status: AlertStatus = Field(
        default="active",
        description="active → acknowledged, or overridden (coded reason) → resolved; withdrawn when the decision "
        "no longer holds before anyone acted on it.",
    )
    acknowledged_by: str | None = Field(default=None, description="Token subject of who acknowledged it.")
    acknowledged_at: datetime | None = None
    overridden_by: str | None = Field(default=None, description="Token subject of who overrode it.")
    overridden_at: datetime | None = None
    override_reason: OverrideReasonCode | None = None
    override_comment: str | None = Field(default=None, max_length=1000)
    raised_at: datetime | None = Field(
        default=None, description="When notification received the decision (start of settle and escalation delays)."
    )
    escalation_level: int = Field(default=0, ge=0, description="0, then 1, 2... each time it is escalated.")
    escalated_to: str | None = Field(default=None, description="Role or channel it was escalated to.")
    history: list[AlertTransition] = Field(default_factory=list, description="Every transition, with who and when.")


class DeadLetter(BaseModel):
    """A message a service could not process, with the reason and the original bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_id: ClassVar[str] = "osteocds.dead-letter/1"

    service: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str | None
    headers: dict[str, str] = Field(default_factory=dict)
    error_type: str
    reason: str
    failed_at: datetime
    #: Size and SHA-256 of the original value; `value_b64` holds only its first bytes when `value_truncated`
    #: (a dead letter must fit the producer's request limit; the original stays at topic/partition/offset
    #: for the source topic's retention).
    value_size: int | None = None
    value_sha256: str | None = None
    value_truncated: bool = False
    key_truncated: bool = False
