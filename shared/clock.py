"""Clinical times that cannot be true yet (issue 9.7): a result, a record or an assessment dated after it
reached us is a clock or entry error, never current data. Pure; no I/O.

The reference is the time the input reached the hospital bus or our endpoint (the Kafka record timestamp, or
the HTTP/MLLP receipt time, which is also the timestamp of the record published to the raw topic), never the
wall clock of the consumer: a replay or a `rebuild` reaches the same verdict as the first delivery.

Any service consuming a hospital.* topic should call `NotAfter.of_record(record, settings)` in its decoder
and `check()` each clinical time (occurred_at, and recorded_at, which orders corrections) before the event
reaches its aggregate; `Rejected` dead-letters the event with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

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

    @classmethod
    def of_record(cls, record: _Timestamped, tolerance: timedelta = DEFAULT_TOLERANCE) -> NotAfter:
        return cls(datetime.fromtimestamp(record.timestamp / 1000, UTC), tolerance)

    @property
    def limit(self) -> datetime:
        return self.received_at + self.tolerance

    def check(self, when: datetime | date | None, what: str) -> None:
        """Raise `Rejected` when `when` is implausibly in the future. A date counts from its first minute."""
        if when is None:
            return
        at = when if isinstance(when, datetime) else datetime.combine(when, time.min, UTC)
        if at.tzinfo is None:  # a naive time is not comparable: callers make times aware first
            raise Rejected(f"{what} has no time zone")
        if at > self.limit:
            minutes = self.tolerance.total_seconds() / 60
            raise Rejected(
                f"{what} is in the future ({at.astimezone(UTC):%Y-%m-%dT%H:%MZ}, received "
                f"{self.received_at.astimezone(UTC):%Y-%m-%dT%H:%MZ}, clock-skew tolerance {minutes:g} min): "
                "a future-dated result is never current data"
            )
