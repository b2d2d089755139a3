"""Clinical times that cannot be true yet (issue 9.7): a result, a record or an assessment dated after it
reached us is a clock or entry error, never current data. Pure; no I/O.

The reference is the time the input reached the hospital bus or our endpoint (the Kafka record timestamp, or
the HTTP/MLLP receipt time, which is also the timestamp of the record published to the raw topic), never the
wall clock of the consumer: a replay or a `rebuild` reaches the same verdict as the first delivery.

Every hospital.* decoder is checked: lab-normalisation's parsers call `NotAfter.check()` on each time they read;
every other service's decoders are wrapped by the runtime (`shared.service.not_future`), which runs
`check_message()` over the whole decoded message (nested models, lists). `Rejected` dead-letters the event with
the reason, naming the offending field. Fields that are legitimately in the future (a planned date, a due date)
are declared in `FUTURE_ALLOWED`, the one place for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from pydantic import BaseModel

from contracts.care import BoneBiopsy, PathwayStep
from contracts.hospital import RadiotherapyCourse
from contracts.local import LocalTreatmentRequest
from shared.errors import Rejected

#: Default tolerance for clock skew between the hospital's systems and ours (CLOCK_SKEW_TOLERANCE_SECONDS).
DEFAULT_TOLERANCE = timedelta(minutes=5)


class _Timestamped(Protocol):
    @property
    def timestamp(self) -> int: ...


@dataclass(frozen=True)
class NotAfter:
    """Times later than `received_at + tolerance` are refused."""

    received_at: datetime
    tolerance: timedelta = DEFAULT_TOLERANCE
    #: the zone of calendar dates (a date counts from its first minute there): the hospital's for its events
    zone: tzinfo = UTC

    @classmethod
    def of_record(cls, record: _Timestamped, tolerance: timedelta = DEFAULT_TOLERANCE, zone: tzinfo = UTC) -> NotAfter:
        return cls(datetime.fromtimestamp(record.timestamp / 1000, UTC), tolerance, zone)

    @property
    def limit(self) -> datetime:
        return self.received_at + self.tolerance

    def check(self, when: datetime | date | None, what: str) -> None:
        """Raise `Rejected` when `when` is implausibly in the future. A date counts from its first minute."""
        if when is None:
            return
        at = when if isinstance(when, datetime) else datetime.combine(when, time.min, self.zone)
        if at.tzinfo is None:  # a naive time is not comparable: callers make times aware first
            raise Rejected(f"{what} has no time zone")
        if at > self.limit:
            minutes = self.tolerance.total_seconds() / 60
            raise Rejected(
                f"{what} is in the future ({at.astimezone(UTC):%Y-%m-%dT%H:%MZ}, received "
                f"{self.received_at.astimezone(UTC):%Y-%m-%dT%H:%MZ}, clock-skew tolerance {minutes:g} min): "
                "a future-dated result is never current data"
            )


# ---- every date of a hospital message (issue 9.7, the same pattern on every hospital.* topic) -------------------


def _always(_: Any) -> bool:
    return True


#: The only dates of hospital messages that may lie in the future, by meaning (the one place they are declared):
#: (model, field) -> when, given the model instance holding the field. Every other date and time is a fact that
#: has happened, and must not be later than its receipt.
FUTURE_ALLOWED: Mapping[tuple[type[BaseModel], str], Callable[[Any], bool]] = {
    # the planned date of the treatment or procedure asked for (RT-DRUG windows, IR-CEMENT haemostasis)
    (LocalTreatmentRequest, "planned_on"): _always,
    # a care-pathway step still to do carries its due date (QUAL-PATHWAY); done or declined is a past fact
    (PathwayStep, "on"): lambda step: step.status == "to_do",
    # a planned bone biopsy carries its planned date (MOL-BIOPSY); a reported one, the date it was done
    (BoneBiopsy, "on"): lambda biopsy: biopsy.status == "planned",
    # a course in progress carries the planned date of its last fraction (RT-REIRR, RT-DRUG); its first
    # fraction (`on`) has happened
    (RadiotherapyCourse, "end_on"): _always,
}


def _allowed(holder: BaseModel, name: str) -> bool:
    for cls in type(holder).__mro__:
        when = FUTURE_ALLOWED.get((cls, name))
        if when is not None:
            return when(holder)
    return False


def check_message(message: BaseModel, guard: NotAfter) -> None:
    """Raise `Rejected` naming the first date or time of `message` (at any depth: nested models, lists, dicts)
    that is later than its receipt allows, unless `FUTURE_ALLOWED` declares it may be in the future."""
    _walk(message, "", guard)


def _walk(value: object, path: str, guard: NotAfter) -> None:
    if isinstance(value, date):  # datetime is a date
        guard.check(value, path or "<value>")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if not _allowed(value, name):
                _walk(getattr(value, name), f"{path}.{name}" if path else name, guard)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", guard)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{path}[{key}]", guard)
