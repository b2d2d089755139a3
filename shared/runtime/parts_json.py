"""Issue 25: a stored aggregate's JSON assembled from the JSON of parts that never change once made (frozen records,
facts replaced but never changed in place), so a state is not serialised again whole after every batch. Used by
services/notification/stored.py and services/radiotherapy_planner/stored.py.

An entry is kept by object and leaves with its object (weak reference), so the memory follows the states the process
holds; the same object always has the same JSON."""

from __future__ import annotations

import functools
import json
import weakref

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
