"""The notification aggregate: a patient's alerts and what the clinicians' page shows beside them, the alert policy,
and the retention horizons (issue 25; retention.py applies them). The transitions are in domain.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.clinical import Alert, NormalisedLab, Recommendation, Score
from contracts.local import LocalTreatmentPlan
from contracts.plan import TreatmentPlan
from services.notification import stored

#: at most this many applied action IDs are remembered (an HTTP request waits for its own: ACTION_WAIT_SECONDS)
APPLIED_KEPT: Final = 200


#: issue 25 retention horizons, from the state's clock `as_of`. Lifecycle horizons, not clinical windows: no rule
#: reads them. A withdrawn or resolved alert stays whole this long after it ended (GET /alerts lists it): the
#: runtime's duplicate window (SEEN_TTL_SECONDS), within which a redelivered recommendation is dropped anyway.
ENDED_KEPT: Final = timedelta(days=14)


#: then only its tombstone, this long after it ended: issued again (a result corrected back, a plan item back to
#: an earlier content), it is the same alert reactivated; later, an alert raised afresh.
TOMBSTONE_KEPT: Final = timedelta(days=90)


#: applied action IDs are kept this long after they were done (the HTTP request waits seconds for its own)
APPLIED_FOR: Final = timedelta(days=1)


#: statuses after which an alert holds no more (only a decision issued again brings it back)
ENDED: Final = ("withdrawn", "resolved")


@dataclass(frozen=True)
class AlertPolicy:
    settle: timedelta = timedelta(seconds=30)
    escalation_delay: timedelta = timedelta(minutes=15)
    escalation_max_level: int = 2
    escalate_to: str = "escalation"


class Arrived(BaseModel):
    """A recommendation with the time notification received it (the broker's timestamp of the record): the
    start of its settle window and of its escalation delay."""

    model_config = ConfigDict(frozen=True)

    message: Recommendation
    at: AwareDatetime

    @property
    def patient_id(self) -> str:
        return self.message.patient_id

    def delivery_key(self) -> str:
        return self.message.delivery_key()


class Ended(NamedTuple):
    """What is kept of a withdrawn or resolved alert after ENDED_KEPT (JSON: [status, at, steps])."""

    status: Literal["withdrawn", "resolved"]
    at: datetime  # its last transition
    steps: int  # how many transitions it had: a later cycle's step IDs count them


class PatientAlerts(BaseModel):
    alerts: dict[str, Alert] = Field(default_factory=dict)  # by recommendation ID
    #: info/warning alerts still in their settle window (never shown yet): recommendation ID -> due time
    pending: dict[str, datetime] = Field(default_factory=dict)
    applied: dict[str, datetime] = Field(default_factory=dict)  # IDs of the latest actions applied -> when done
    #: the state's clock: the newest arrival, action or deadline processed (retention's horizons start here)
    as_of: datetime | None = None
    ended: dict[str, Ended] = Field(default_factory=dict)  # tombstones, by recommendation ID
    folded: dict[str, int] = Field(default_factory=dict)  # recommendation ID -> transitions no longer in history
    #: issue 22: the alert that holds each `alert_key` (a decision's identity across wordings) -> recommendation ID.
    #: A new wording of the key supersedes it: never two alerts of one key in force at once.
    keys: dict[str, str] = Field(default_factory=dict)
    #: HAZ-22-ORDER-01: recommendation ID -> broker time of the newest issue of it applied (taken or not: a repeat, a
    #: stale wording), and of the newest withdrawal of it applied (ending an alert or not): a record of it received
    #: before either is a second delivery and changes nothing (kept ENDED_KEPT, the runtime's duplicate window)
    issues: dict[str, datetime] = Field(default_factory=dict)
    withdrawals: dict[str, datetime] = Field(default_factory=dict)
    #: reviews R31-NOTIF, R31-NOTIF2: recommendation ID -> every record of it applied (a digest of its delivery key, the
    #: runtime's duplicate key: ID and `caused_by`) -> its broker time, kept ENDED_KEPT. A record heard is a second
    #: delivery and one not heard is new, whatever its time (one batch shares a millisecond; replicas' clocks differ)
    heard: dict[str, dict[str, datetime]] = Field(default_factory=dict)
    #: `heard` holds every record applied timed after this (None: from the start); a state stored before R31-NOTIF2
    #: did not keep them all: a record timed at or before it is recognised by the time rules
    #: (recommendations._second_delivery)
    heard_since: datetime | None = None
    #: review R2 (issue 22): an active critical alert that took over the escalation of an earlier wording of its key ->
    #: when that escalation started (its escalation delays count from there, not from the new wording's arrival)
    escalating: dict[str, datetime] = Field(default_factory=dict)
    # what the clinicians' page shows besides the alerts
    plan: TreatmentPlan | None = None
    local_plan: LocalTreatmentPlan | None = None
    scores: dict[str, Score] = Field(default_factory=dict)  # "score:subject" -> latest
    labs: dict[str, NormalisedLab] = Field(default_factory=dict)  # analyte -> latest

    def model_dump_json(self, **kwargs: Any) -> str:
        """The stored JSON (what the runtime writes): the frozen parts' JSON is reused (services/notification/
        stored.py); with arguments, pydantic's."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        return stored.dump(self, ("alerts", "scores", "labs"), ("plan", "local_plan"))

    @model_validator(mode="before")
    @classmethod
    def _unshown(cls, value: object) -> object:
        """A state stored before session 31 kept `unshown` (alerts withdrawn or superseded within their settle window
        -> when): a record of them received before that is a second delivery, as before a withdrawal heard."""
        if isinstance(value, dict) and "unshown" in value:
            value = dict(value)
            value["withdrawals"] = {**value.pop("unshown"), **value.get("withdrawals", {})}
        return _heard_since(value)

    @field_validator("applied", mode="before")
    @classmethod
    def _applied_list(cls, value: object) -> object:
        """A state stored before issue 25 kept a list: its IDs count as done long ago (dropped when retained)."""
        if isinstance(value, list):
            return dict.fromkeys(map(str, value), _LONG_AGO)
        return value


_LONG_AGO: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _heard_since(value: object) -> object:
    """Review R31-NOTIF2: a state stored before it kept only some records' identities (none before session 31; e04a612:
    those of the newest instant heard of each ID, as a list). Every record applied timed after its clock `as_of` (the
    newest time it heard) is heard; the identities it kept are kept, timed at that instant."""
    if not isinstance(value, dict) or "heard_since" in value:
        return value
    value = dict(value)
    times = [_time(t) for m in ("issues", "withdrawals") for t in (value.get(m) or {}).values()]
    value["heard_since"] = max((t for t in [_time(value.get("as_of")), *times] if t is not None), default=None)
    heard: dict[str, object] = {}
    for rid, records in (value.get("heard") or {}).items():
        if isinstance(records, list):
            times = [_time(m.get(rid)) for m in (value.get("issues") or {}, value.get("withdrawals") or {})]
            newest = max((t for t in times if t is not None), default=None)
            if newest is not None:
                heard[rid] = dict.fromkeys(records, newest)
        else:
            heard[rid] = records
    value["heard"] = heard
    return value


def _time(at: object) -> datetime | None:
    return datetime.fromisoformat(at) if isinstance(at, str) else at if isinstance(at, datetime) else None


Output = Alert
