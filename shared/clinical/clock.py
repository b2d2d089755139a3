"""Clinical times that cannot be true yet (issue 9.7): a result, a record or an assessment dated after it
reached us is a clock or entry error, never current data. Pure; no I/O.

The reference is the time the input reached the hospital bus or our endpoint (the Kafka record timestamp, or
the HTTP/MLLP receipt time, which is also the timestamp of the record published to the raw topic), never the
wall clock of the consumer: a replay or a `rebuild` reaches the same verdict as the first delivery.

Every hospital.* decoder is checked: lab-normalisation's parsers call `NotAfter.check()` on each time they read;
every other service's decoders are wrapped by the runtime (`shared.runtime.decoding.not_future`), which runs
`check_message()` over the whole decoded message (nested models, lists). `Rejected` dead-letters the event with
the reason, naming the offending field. Fields that are legitimately in the future (a planned date, a due date)
are declared in `FUTURE_ALLOWED`, the one place for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import Enum
from typing import Annotated, Any, Literal, Protocol, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel

from contracts.care import BoneBiopsy, PathwayStep
from contracts.hospital import RadiotherapyCourse
from contracts.local import LocalTreatmentRequest
from shared.errors import Rejected

#: Default tolerance for clock skew between the hospital's systems and ours (CLOCK_SKEW_TOLERANCE_SECONDS).
DEFAULT_TOLERANCE = timedelta(minutes=5)
#: Default horizon of a planned date (PLANNED_DATE_HORIZON_DAYS): the 2-year review plus margin; later is a typo.
DEFAULT_HORIZON = timedelta(days=1096)


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
    #: a planned date (FUTURE_ALLOWED) may lie this far after the receipt, no further
    horizon: timedelta = DEFAULT_HORIZON

    @classmethod
    def of_record(
        cls,
        record: _Timestamped,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        zone: tzinfo = UTC,
        horizon: timedelta = DEFAULT_HORIZON,
    ) -> NotAfter:
        return cls(datetime.fromtimestamp(record.timestamp / 1000, UTC), tolerance, zone, horizon)

    #: received_at + tolerance: later times are refused
    limit: datetime = field(init=False)
    #: received_at in epoch milliseconds (a record's timestamp)
    received_ms: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", self.received_at + self.tolerance)
        object.__setattr__(self, "received_ms", round(self.received_at.timestamp() * 1000))

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

    def check_planned(self, when: object, what: str) -> None:
        """Raise `Rejected` when a planned date lies beyond the horizon after receipt (a mistyped year is never
        kept as a plan for decades)."""
        if not isinstance(when, date):
            return
        at = when if isinstance(when, datetime) else datetime.combine(when, time.min, self.zone)
        if at.tzinfo is not None and at > self.received_at + self.horizon:
            raise Rejected(
                f"{what} is planned too far ahead ({at.astimezone(UTC):%Y-%m-%d}, received "
                f"{self.received_at.astimezone(UTC):%Y-%m-%d}, horizon {self.horizon.days} days): an entry error?"
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


def _future_rule(model: type[BaseModel], name: str) -> Callable[[Any], bool] | None:
    for cls in model.__mro__:
        when = FUTURE_ALLOWED.get((cls, name))
        if when is not None:
            return when
    return None


#: per model class, its fields and the FUTURE_ALLOWED rule of each (looked up once per class: this runs on every
#: hospital input)
_FIELDS: dict[type[BaseModel], tuple[tuple[str, Callable[[Any], bool] | None], ...]] = {}

#: placeholder while a model's own fields are examined (a recursive model is then taken to hold dates)
_VISITED: tuple[tuple[str, Callable[[Any], bool] | None], ...] = (("", None),)

#: types that never hold a date: a field typed only with these is not visited, a value of one is skipped
_LEAVES = (str, int, float, UUID, Enum, type(None))


def _may_hold_date(annotation: Any) -> bool:
    """False only when the annotation certainly holds no date (scalars, literals, and containers or unions of
    them); anything else (dates, models, Any, unknown types) is visited."""
    origin = get_origin(annotation)
    if origin is Literal:
        return False
    if origin is Annotated:
        return _may_hold_date(get_args(annotation)[0])
    if origin is not None:  # unions, lists, dicts, tuples: what they may contain
        return any(_may_hold_date(arg) for arg in get_args(annotation) if arg is not Ellipsis)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a model without any date: skipped
        return bool(_fields(annotation))
    return not (isinstance(annotation, type) and issubclass(annotation, _LEAVES))


def _fields(model: type[BaseModel]) -> tuple[tuple[str, Callable[[Any], bool] | None], ...]:
    """The fields of `model` that may hold a date, each with its FUTURE_ALLOWED rule (computed once per class)."""
    fields = _FIELDS.get(model)
    if fields is None:
        _FIELDS[model] = _VISITED  # a model that contains itself: visited (conservative) while its fields are read
        fields = _FIELDS[model] = tuple(
            (name, _future_rule(model, name))
            for name, info in model.model_fields.items()
            if _may_hold_date(info.annotation)
        )
    return fields


def check_message(message: BaseModel, guard: NotAfter) -> None:
    """Raise `Rejected` naming the first date or time of `message` (at any depth: nested models, lists, dicts)
    that is later than its receipt allows; a date `FUTURE_ALLOWED` declares planned may lie ahead, within the
    guard's horizon."""
    _walk(message, "", guard)


def _walk(value: object, path: str, guard: NotAfter) -> None:
    if isinstance(value, date):  # datetime is a date
        guard.check(value, path or "<value>")
    elif isinstance(value, BaseModel):
        for name, future in _fields(type(value)):
            item = getattr(value, name)
            if isinstance(item, _LEAVES):
                continue
            where = f"{path}.{name}" if path else name
            if future is not None and future(value):  # planned: in the future, within the horizon
                guard.check_planned(item, where)
            else:
                _walk(item, where, guard)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if not isinstance(item, _LEAVES):
                _walk(item, f"{path}[{i}]", guard)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, _LEAVES):
                _walk(item, f"{path}[{key}]", guard)
