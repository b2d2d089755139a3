"""Issue 25: a stored aggregate's JSON assembled from the JSON of parts that never change once made (frozen records,
facts replaced but never changed in place), so a state is not serialised again whole after every batch. The one
mechanism of the services' stored JSON: `StoredJson` (scoring, notification, lab-normalisation, the radiotherapy
planner; services/systemic_planner/stored.py subclasses it to write its other fields one by one), whose maps are
joined from each entry's `"key":json` text kept by the record's object (`Entries`, RT-FLAT2, session 34), and
`PartsJson` for single parts.

An entry is kept by object and leaves with its object (weak reference), so the memory follows the states the process
holds; the same object always has the same JSON."""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections import OrderedDict
from typing import Any

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


class Entries:
    """A map entry's JSON text (`"key":<the record's JSON>`) by the record's object, made once (issue 25, RT-FLAT2): a
    table an event changes is joined again from its entries' texts with no formatting per entry. The same object
    always has the same JSON (frozen records, facts replaced, never changed in place); the key is checked (an object
    held under another key is written with that key, the record's JSON reused). An entry leaves with its object (weak
    reference)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[BaseModel], str, str]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def body(self, value: dict[str, BaseModel]) -> str:
        """The JSON body (no braces) of `value`, as pydantic writes a dict of models."""
        get = self._by_id.get
        texts: list[str] = []
        append = texts.append
        for k, v in value.items():
            hit = get(id(v))
            if hit is not None and (hit[1] is k or hit[1] == k) and hit[0]() is v:
                append(hit[2])
            else:
                append(self._make(k, v, hit))
        return ",".join(texts)

    def _make(self, k: str, v: BaseModel, hit: tuple[weakref.ref[BaseModel], str, str] | None) -> str:
        key = json_key(k)
        if hit is not None and hit[0]() is v:  # the same record under another key: its JSON reused, the entry kept
            return f"{key}:{hit[2][len(json_key(hit[1])) + 1 :]}"
        text = f"{key}:{v.model_dump_json()}"
        oid = id(v)
        self._by_id[oid] = (weakref.ref(v, functools.partial(self._forget, oid)), k, text)
        return text

    def _forget(self, oid: int, _: object) -> None:
        hit = self._by_id.get(oid)
        if hit is not None and hit[0]() is None:
            self._by_id.pop(oid, None)


class Bodies:
    """JSON texts kept by a container's object (a dict or list never changed in place once in a state), held strongly
    (its id() is not reused while it is here) and checked against its length (a container filled after it was dumped
    is written again); bounded, least recently used out. Thread-safe: states are dumped in the runtime's worker thread
    and served on the loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[int, tuple[Any, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def get(self, value: Any) -> str | None:
        key = id(value)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] is value and hit[1] == len(value):
                self._items.move_to_end(key)
                return hit[2]
        return None

    def put(self, value: Any, text: str) -> None:
        key = id(value)
        with self._lock:
            self._items.pop(key, None)  # the same id, another container or a longer one: in again at the end
            self._items[key] = (value, len(value), text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class StoredJson:
    """A state's JSON assembled from its parts' JSON: `maps` are fields holding a dict of models never changed in place
    once made (frozen records; facts or folds replaced, never mutated), each joined from its entries' texts
    (`Entries`); `ones` fields holding one such model or None (`PartsJson`); `fields` fields holding a dict of plain
    values never changed in place once in a state (a transition that changes one copies it); every other field is
    written by pydantic. The body of each map and field is kept by the dict's object too (a transition copies only the
    tables it changes), held strongly and bounded (`bodies`, least recently used out), checked against the dict's
    length (a dict filled after it was first dumped is written again), the fields' bodies in a cache of their own.
    `keep_maps=False` keeps only the fields' bodies: for a service whose maps are a new object in every state (nothing
    to find again, and the bodies would hold dead states' records alive)."""

    def __init__(
        self,
        maps: tuple[str, ...],
        ones: tuple[str, ...] = (),
        bodies: int = 4096,
        fields: tuple[str, ...] = (),
        small: int = 0,
        keep_maps: bool = True,
    ) -> None:
        self.small = small
        self.maps = maps
        self.ones = ones
        self.fields = fields
        self.exclude = frozenset((*maps, *ones, *fields))
        self._exclude = set(self.exclude)  # what pydantic takes, made once
        self._open = {name: f'"{name}":' for name in (*maps, *ones, *fields)}
        self.parts = PartsJson()
        self.entries = Entries()
        self.keep_maps = keep_maps
        self.bodies_size = bodies
        #: the maps' bodies, and the fields' apart: one empty dict in a map and in a field is `` there and `{}` here
        #: (review R35-STORED)
        self._bodies = Bodies(bodies)
        self._field_bodies = Bodies(bodies)

    def _body(self, value: dict[str, BaseModel]) -> str:
        if not self.keep_maps:
            return self.entries.body(value)
        body = self._bodies.get(value)
        if body is None:
            body = self.entries.body(value)
            self._bodies.put(value, body)
        return body

    def _field(self, state: BaseModel, name: str) -> str:
        value = getattr(state, name)
        body = self._field_bodies.get(value)
        if body is None:
            text = BaseModel.model_dump_json(state, include={name})
            body = text[len(json_key(name)) + 2 : -1]  # {"name":<body>}
            self._field_bodies.put(value, body)
        return body

    def _rest(self, state: BaseModel) -> str:
        """The JSON object of the fields that are not kept as parts (a service may write it faster)."""
        return BaseModel.model_dump_json(state, exclude=self._exclude)

    def dump(self, state: BaseModel) -> str:
        if self.small and sum(len(getattr(state, name)) for name in self.maps) < self.small:
            # below `small` records (of small parts), pydantic at once is cheaper than making, keeping and joining
            # every part's JSON; the same state always takes the same path, so it always gives the same bytes
            return BaseModel.model_dump_json(state)
        rest = self._rest(state)
        out = [rest[:-1]]
        sep = "," if len(rest) > 2 else ""
        opened = self._open
        for name in self.maps:  # a body is not copied into a formatted piece: it is copied once, by the join
            out += (sep, opened[name], "{", self._body(getattr(state, name)), "}")
            sep = ","
        for name in self.ones:
            one: BaseModel | None = getattr(state, name)
            out += (sep, opened[name], "null" if one is None else self.parts(one))
            sep = ","
        for name in self.fields:
            out += (sep, opened[name], self._field(state, name))
            sep = ","
        out.append("}")
        return "".join(out)
