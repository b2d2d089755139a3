"""What a service declares it consumes (shared/runtime/service.py `Service.subscriber`, `patient_aggregate`): a
topic's decoder and its handler, or the pure transition of the per-patient aggregate, and what a plain handler is
given besides its message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from contracts.base import Message
from contracts.topics import Topic
from shared.runtime import decoding
from shared.runtime.aggregate import Apply
from shared.runtime.state import StateStore
from shared.settings import Settings


class Context(NamedTuple):
    """What a handler may use besides its message (immutable; built once per message)."""

    store: StateStore
    settings: Settings
    record: ConsumerRecord


HandlerFn = Callable[[Any, Context], Awaitable[Sequence[Message]]]


def _delivery_key(message: Any) -> str:
    return message.delivery_key() if isinstance(message, Message) else str(message.event_id)


@dataclass
class Subscription:
    topic: Topic
    decode: decoding.Decoder
    #: a plain async handler, or
    handler: HandlerFn | None = None
    #: a pure transition of the per-patient aggregate `model`: (state, event) -> (state, outputs)
    aggregate: tuple[type[BaseModel], Apply] | None = None
    idempotency_key: Callable[[Any], str] = field(default=lambda m: _delivery_key(m))
