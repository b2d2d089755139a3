"""Issue 25: a stored aggregate's JSON assembled from the JSON of parts that never change once made (frozen records,
facts replaced but never changed in place), so a state is not serialised again whole after every batch. Used by
services/notification/stored.py, services/radiotherapy_planner/stored.py and, through `StoredJson`, scoring.

An entry is kept by object and leaves with its object (weak reference), so the memory follows the states the process
holds; the same object always has the same JSON."""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections import OrderedDict

from pydantic import BaseModel


class PartsJson:
    """JSON text by object, for frozen models (the same object always has the same JSON)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[BaseModel], str]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __call__(self, part: BaseModel) -> str:
        key = id(part)
        hit = self._by_id.get(key)
        if hit is not None and hit[0]() is part:
            return hit[1]
        text = part.model_dump_json()
        self._by_id[key] = (weakref.ref(part, functools.partial(self._forget, key)), text)
        return text

    def _forget(self, key: int, _: object) -> None:
        hit = self._by_id.get(key)
        if hit is not None and hit[0]() is None:
            self._by_id.pop(key, None)


@functools.lru_cache(maxsize=1 << 16)
def json_key(k: str) -> str:
    """A dict key as a JSON string, as pydantic writes it: as is when nothing needs escaping (IDs, analytes)."""
    if k.isprintable() and '"' not in k and "\\" not in k:
        return f'"{k}"'
    return json.dumps(k, ensure_ascii=False)


class StoredJson:
    """A state's JSON assembled from its parts' JSON (services/scoring/state.py): `maps` are fields holding a dict of
    models never changed in place once made (frozen records; facts or folds replaced, never mutated), `ones` fields
    holding one such model or None, `fields` fields holding a dict of plain values never changed in place once in a
    state (a transition that changes one copies it); every other field is written by pydantic. The body of each map
    and field is kept by the dict's object too (a transition copies only the tables it changes), held strongly and
    bounded (least recently used out), checked against the dict's length (a dict filled after it was first dumped is
    written again)."""

    def __init__(
        self,
        maps: tuple[str, ...],
        ones: tuple[str, ...] = (),
        bodies: int = 4096,
        fields: tuple[str, ...] = (),
        small: int = 0,
    ) -> None:
        self.small = small
        self.maps = maps
        self.ones = ones
        self.fields = fields
        self.exclude = frozenset((*maps, *ones, *fields))
        self.parts = PartsJson()
        self.bodies_size = bodies
        self._bodies: OrderedDict[int, tuple[dict[str, BaseModel], int, str]] = OrderedDict()
        self._lock = threading.Lock()  # states are dumped in the runtime's worker thread and served on the loop

    def _body(self, value: dict[str, BaseModel]) -> str:
        key = id(value)
        with self._lock:
            hit = self._bodies.get(key)
            if hit is not None and hit[0] is value and hit[1] == len(value):
                self._bodies.move_to_end(key)
                return hit[2]
        parts = self.parts
        body = ",".join(f"{json_key(k)}:{parts(v)}" for k, v in value.items())
        with self._lock:
            self._bodies[key] = (value, len(value), body)
            self._bodies.move_to_end(key)
            while len(self._bodies) > self.bodies_size:
                self._bodies.popitem(last=False)
        return body

    def _field(self, state: BaseModel, name: str) -> str:
        value = getattr(state, name)
        key = id(value)
        with self._lock:
            hit = self._bodies.get(key)
            if hit is not None and hit[0] is value and hit[1] == len(value):
                self._bodies.move_to_end(key)
                return hit[2]
        text = BaseModel.model_dump_json(state, include={name})
        body = text[len(json_key(name)) + 2 : -1]  # {"name":<body>}
        with self._lock:
            self._bodies[key] = (value, len(value), body)
            while len(self._bodies) > self.bodies_size:
                self._bodies.popitem(last=False)
        return body

    def _rest(self, state: BaseModel) -> str:
        """The JSON object of the fields that are not kept as parts (a service may write it faster)."""
        return BaseModel.model_dump_json(state, exclude=set(self.exclude))

    def dump(self, state: BaseModel) -> str:
        if self.small and sum(len(getattr(state, name)) for name in self.maps) < self.small:
            # below `small` records (of small parts), pydantic at once is cheaper than making, keeping and joining
            # every part's JSON; the same state always takes the same path, so it always gives the same bytes
            return BaseModel.model_dump_json(state)
        rest = self._rest(state)
        out = [rest[:-1]]
        sep = "," if len(rest) > 2 else ""
        for name in self.maps:
            out.append(f'{sep}"{name}":{{{self._body(getattr(state, name))}}}')
            sep = ","
        for name in self.ones:
            one: BaseModel | None = getattr(state, name)
            out.append(f'{sep}"{name}":{"null" if one is None else self.parts(one)}')
            sep = ","
        for name in self.fields:
            out.append(f'{sep}"{name}":{self._field(state, name)}')
            sep = ","
        out.append("}")
        return "".join(out)
