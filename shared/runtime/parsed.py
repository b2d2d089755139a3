"""Issue 25: the aggregates this process parsed or wrote last, kept between batches so that a patient's state is not
parsed again from Redis for every batch.

Redis stays the only record: a transaction still reads each patient's state bytes, and the cached model is used only
when those bytes are exactly the bytes it was parsed from or dumped to (a byte comparison, far cheaper than parsing).
Whatever else wrote the key (another instance after a rebalance, a rebuild, an operator) changes the bytes, and the
state is parsed again. The cache is bounded (least recently used first out) and holds a model only with the bytes it
round-trips to, so a hit gives exactly what parsing would (tests/test_parsed_states.py)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from pydantic import BaseModel

S = TypeVar("S", bound=BaseModel)


class ParsedStates(Generic[S]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[bytes, S]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def parse(self, key: str, raw: bytes, model: type[S]) -> S:
        """The state these bytes hold: the cached model when the bytes are the ones it came with, else parsed."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] == raw:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        state = model.model_validate_json(raw)
        self.remember(key, raw, state)
        return state

    def remember(self, key: str, raw: bytes, state: S) -> None:
        """`state` is what `raw` holds (parsed from it, or dumped to it and written)."""
        if self.capacity <= 0:
            return
        self._entries[key] = (raw, state)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
