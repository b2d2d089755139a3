"""Decoders of consumed records: plain JSON (pydantic), and the future-date check every hospital.* input gets
(issue 9.7). A decoder turns a record into a message or raises; the runtime (shared/runtime/service.py) dead-letters it
with the reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel, ValidationError

from contracts.topics import Topic
from shared.clinical.clock import NotAfter, check_message
from shared.settings import Settings

Decoder = Callable[[ConsumerRecord], BaseModel]


def json_decoder(model: type[BaseModel]) -> Decoder:
    """`model.model_validate_json(record.value)`, through the model's pydantic-core validator directly (the same
    validation, without the wrapper's keyword handling: this runs for every record)."""
    validate = model.__pydantic_validator__.validate_json

    def decode(record: ConsumerRecord) -> BaseModel:
        return validate(record.value)  # type: ignore[no-any-return]

    decode.light = True  # type: ignore[attr-defined]
    return decode


def light(decode: Decoder) -> bool:
    """A plain JSON decoder (a few µs per record), possibly checked for future dates."""
    return bool(getattr(decode, "light", False))


#: topics whose inputs come from the hospital: none may carry a clinical time later than its receipt (issue 9.7)
HOSPITAL_PREFIX = "hospital."


def not_future(decode: Decoder, settings: Settings) -> Decoder:
    """`decode`, then every date and time of the decoded message checked against the record's timestamp plus the
    clock-skew tolerance (shared/clinical/clock.py `check_message`, exemptions in `FUTURE_ALLOWED`): a future-dated
    input is rejected (dead-lettered with the field and the reason), in live processing and in a rebuild alike."""
    tolerance = timedelta(seconds=settings.clock_skew_tolerance_seconds)
    horizon = timedelta(days=settings.planned_date_horizon_days)
    zone = ZoneInfo(settings.hospital_timezone)

    # the guard of the last record's timestamp (records of one millisecond share it)
    last: list[NotAfter] = [NotAfter(datetime.fromtimestamp(0, UTC), tolerance, zone, horizon)]

    def checked(record: ConsumerRecord) -> BaseModel:
        message = decode(record)
        guard = last[0]
        if guard.received_ms != record.timestamp:
            guard = last[0] = NotAfter.of_record(record, tolerance, zone, horizon)
        check_message(message, guard)
        return message

    checked.checks_dates = True  # type: ignore[attr-defined]
    checked.light = light(decode)  # type: ignore[attr-defined]
    return checked


def checks_own_dates(decode: Decoder) -> Decoder:
    """Marks a hospital.* decoder that checks every clinical time itself (lab-normalisation's parsers call
    `NotAfter.check` on each time they read, and dead-letter one bad result of a batch, not the whole batch)."""
    decode.checks_dates = True  # type: ignore[attr-defined]
    return decode


def hospital_decoder(topic: Topic, decode: Decoder | None, settings: Settings) -> Decoder:
    """The decoder of a subscription: every hospital.* input is checked for future dates (issue 9.7); a custom
    decoder on a hospital.* topic must be `not_future(...)` or `checks_own_dates(...)`."""
    if not topic.name.startswith(HOSPITAL_PREFIX):
        return decode or json_decoder(topic.value)
    if decode is None:
        return not_future(json_decoder(topic.value), settings)
    if not getattr(decode, "checks_dates", False):
        raise ValueError(f"{topic.name}: a hospital decoder must check future dates (not_future or checks_own_dates)")
    return decode


def validation_reason(err: ValidationError) -> str:
    # Locations and messages only: the offending input values are not echoed.
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in err.errors(include_input=False, include_url=False)
    ]
    return "invalid message: " + "; ".join(parts)
