"""The clock: a synthetic per-patient event a service publishes to itself when a deadline it scheduled passes
(shared/runtime/timers.py), so reviews and overdue checks fire on time, not only when another event arrives."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Message


class ClockTick(Message):
    """A deadline of this patient has passed. `occurred_at` is the deadline; `recorded_at` when it fired.
    The event ID is derived from (service, patient, deadline), so a tick fired twice is processed once."""

    schema_id: ClassVar[str] = "osteocds.clock-tick/1"

    service: str = Field(min_length=1, max_length=64, description="The service that scheduled the deadline.")
    due_at: AwareDatetime = Field(description="The deadline that passed.")
