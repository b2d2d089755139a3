"""The stored JSON of notification's aggregate, written without serialising again the parts that did not change
(issue 25: per-event cost flat in the history's length).

The runtime stores a patient's state as `model_dump_json()` after every batch. Most of notification's state is
frozen messages that rarely change (each alert that still holds, the newest plans, scores and labs): their JSON
is kept by object, and the state's JSON is assembled from it. Safe because those messages are frozen pydantic
models (contracts: `frozen=True`), so an object's JSON never changes; an entry leaves with its object (weak
reference), so the memory follows the states the process holds. The result is the same JSON document as
pydantic's (fields in another order): tests/unit/test_issue25_notification_stored.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pydantic import BaseModel

from shared.runtime.parts_json import PartsJson, json_key

PARTS: Final = PartsJson()


def dump(state: BaseModel, maps: Iterable[str], ones: Iterable[str]) -> str:
    """`state`'s JSON: the fields in `maps` (dict of frozen models) and `ones` (a frozen model or None) from the
    parts' JSON, every other field by pydantic."""
    maps, ones = tuple(maps), tuple(ones)
    rest = state.model_dump_json(exclude={*maps, *ones})
    out = [rest[:-1]]
    sep = "," if len(rest) > 2 else ""
    for name in maps:
        value: dict[str, BaseModel] = getattr(state, name)
        body = ",".join(f"{json_key(k)}:{PARTS(v)}" for k, v in value.items())
        out.append(f'{sep}"{name}":{{{body}}}')
        sep = ","
    for name in ones:
        one: BaseModel | None = getattr(state, name)
        out.append(f'{sep}"{name}":{"null" if one is None else PARTS(one)}')
        sep = ","
    out.append("}")
    return "".join(out)
