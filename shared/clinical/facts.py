"""A fact with its provenance, merged by clinical time: the newest wins, ties broken by recorded time then
event ID, so merges commute and a late event never hides a newer one. Pure."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from contracts.base import InputUsed, Message

T = TypeVar("T")


class Fact(BaseModel, Generic[T]):
    value: T
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID

    @classmethod
    def of(cls, event: Message, value: T, occurred_at: datetime | None = None) -> Fact[T]:
        return cls(
            value=value,
            occurred_at=occurred_at or event.occurred_at,
            recorded_at=event.recorded_at,
            event_id=event.event_id,
        )

    def order(self) -> tuple[datetime, datetime, str]:
        return self.occurred_at, self.recorded_at, str(self.event_id)

    def newer_than(self, other: Fact[Any] | None) -> bool:
        return other is None or self.order() > other.order()

    def used(self, name: str, unit: str | None = None) -> InputUsed:
        value = self.value if isinstance(self.value, str | int | float | bool) else str(self.value)
        return InputUsed(name=name, value=value, unit=unit, occurred_at=self.occurred_at, source_event_id=self.event_id)


F = TypeVar("F", bound=Fact[Any])


def newest(current: F | None, candidate: F) -> F:
    return candidate if candidate.newer_than(current) else current  # type: ignore[return-value]


def earliest(current: F | None, candidate: F) -> F:
    return candidate if current is None or candidate.order() < current.order() else current
