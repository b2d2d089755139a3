"""One batch applied to the per-patient aggregates, without I/O: each patient's events in order through the
service's pure transition, the state bounded by MAX_STATE_BYTES, the outputs encoded and checked, the outbox
that carries them until the broker acknowledges them (shared/runtime/service.py runs this inside the Redis
transaction of shared/runtime/state.StateStore.transact_many)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter

from contracts.base import Message
from shared.errors import Rejected
from shared.runtime import limits
from shared.runtime.kafka import Outgoing
from shared.settings import Settings

#: a patient's outbox: the outputs of its latest state, until the broker has acknowledged them
OUTBOX = TypeAdapter(list[Outgoing])

Apply = Callable[[Any, Any], tuple[Any, Sequence[Message]]]


class Event(Protocol):
    """A decoded event of the batch: its message, and the transition of the aggregate it goes to."""

    @property
    def message(self) -> Any: ...

    @property
    def apply(self) -> Apply: ...


E = TypeVar("E", bound=Event)
#: an event, its encoded outputs, or the error that rejected it
Result = tuple[E, Sequence[Outgoing], BaseException | None]


@dataclass
class Applied(Generic[E]):
    """What one aggregate transaction gives the loop: each event's outputs (or its error), the outputs of an
    earlier attempt to send again, and the outboxes to clear once everything is acknowledged."""

    results: list[Result[E]] = field(default_factory=list)
    resend: list[Outgoing] = field(default_factory=list)
    outboxes: dict[str, str] = field(default_factory=dict)  # patient -> token of the outbox this batch sends
    #: issue 25: per patient, the seconds its events took to apply and how many (limits.FairBacklog's time budget)
    seconds: dict[str, tuple[float, int]] = field(default_factory=dict)


def apply_one(d: E, state: BaseModel, settings: Settings) -> tuple[BaseModel, Result[E]]:
    """One event's pure transition and its outputs' limit: the new state and the event's result, or, when the pure
    code raises, the state as it was and the error (the event is dead-lettered)."""
    try:
        new, outputs = d.apply(state, d.message)
        encoded = [Outgoing.of(o) for o in outputs]
        limits.check_outputs(encoded, settings)
    except Exception as exc:  # pure code: the event is dead-lettered, state left as it was
        return state, (d, [], exc)
    return new, (d, encoded, None)


def size_refusal(too_large: str) -> Rejected:
    """The refusal of an event whose state would pass MAX_STATE_BYTES (`limits.state_too_large`'s reason)."""
    return Rejected(too_large.replace("would reach", "would pass the limit at"))


def letter_of(exc: BaseException) -> tuple[str, str]:
    """The dead letter's error type and reason for an event the pure code refused (`Rejected`) or failed on."""
    if isinstance(exc, Rejected):
        return "Rejected", str(exc)
    return type(exc).__name__, f"handler error: {exc}"


def apply_events(
    start: BaseModel, items: Sequence[E], settings: Settings
) -> tuple[BaseModel, bytes, list[Outgoing], list[Result[E]]]:
    """One patient's events in order. If the state would pass MAX_STATE_BYTES, only the longest prefix of the
    events that keeps it within the limit applies (found by bisection over the intermediate states); the later
    events are rejected with the reason (bounded state per patient)."""
    after = [start]  # the state after 0, 1, ... events
    results: list[Result[E]] = []
    for d in items:
        state, result = apply_one(d, after[-1], settings)
        after.append(state)
        results.append(result)
    final = after[-1]
    dumped = final.model_dump_json().encode()
    if (too_large := limits.state_too_large(dumped, settings)) is not None:
        lo, hi = 0, len(items)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if limits.state_too_large(after[mid].model_dump_json().encode(), settings) is None:
                lo = mid
            else:
                hi = mid - 1
        final = after[lo]
        dumped = final.model_dump_json().encode()
        refused = size_refusal(too_large)
        results = results[:lo] + [(d, [], exc or refused) for d, _, exc in results[lo:]]
    produced = [o for _, outs, exc in results if exc is None for o in outs]
    return final, dumped, produced, results


def apply_batch(
    groups: dict[str, list[E]],
    model: type[BaseModel],
    states: dict[str, BaseModel | None],
    pending: dict[str, bytes | None],
    token: str,
    settings: Settings,
    due: Callable[[BaseModel], datetime | None] | None,
) -> tuple[dict[str, tuple[BaseModel, bytes]], dict[str, bytes], Applied[E], dict[str, datetime | None]]:
    """Every patient of the batch: the new states (encoded), the outboxes to write (token, then the outputs of an
    earlier attempt still pending and this batch's), what the loop sends, and each patient's next deadline."""
    new: dict[str, tuple[BaseModel, bytes]] = {}
    outboxes: dict[str, bytes] = {}
    dues: dict[str, datetime | None] = {}
    applied: Applied[E] = Applied()
    for patient_id, items in groups.items():
        t0 = time.perf_counter()
        current, dumped, produced, results = apply_events(states[patient_id] or model(), items, settings)
        applied.seconds[patient_id] = (time.perf_counter() - t0, len(items))
        applied.results += results
        new[patient_id] = (current, dumped)
        if due is not None:
            dues[patient_id] = due(current)
        box, older = pending[patient_id], []
        if box is not None:  # an earlier attempt's outputs: sent again, before this batch's
            old_token, _, payload = box.partition(b"\n")
            older = OUTBOX.validate_json(payload)
            applied.resend += older
            applied.outboxes[patient_id] = old_token.decode()
        if produced:
            outboxes[patient_id] = token.encode() + b"\n" + OUTBOX.dump_json(older + produced)
            applied.outboxes[patient_id] = token
    return new, outboxes, applied, dues
