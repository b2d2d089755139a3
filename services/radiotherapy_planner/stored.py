"""The stored JSON of the local-treatment planner's aggregate, written without serialising again the records that did
not change (issue 25: per-event cost flat in the history's length).

The runtime stores a patient's state as `model_dump_json()` after every batch. Most of it is records kept as received
(imaging findings, assessments, treatment events, requests) and facts made from them: their JSON is kept by object
and the state's JSON assembled from it. Safe because none is changed once made (the records are frozen models; a fact
is replaced, never changed in place), so an object's JSON never changes; an entry leaves with its object (weak
reference), so the memory follows the states the process holds. The document is
pydantic's own (fields in another order): tests/unit/test_issue25_local_history.py checks it loads back equal.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from pydantic import BaseModel

from shared.runtime.parts_json import PartsJson, json_key

PARTS: Final = PartsJson()
#: the state's fields that map keys to records never changed once made (frozen records as received; the facts made
#: from them, replaced, never changed in place)
MAPS: Final = (
    "findings",
    "assessments",
    "treatments",
    "requests",
    "assessed",
    "assessed_base",
    "opinions",
    "opinions_base",
    "scores",
)
#: the JSON body of each map by object: an event copies only the table it changes (fold.merge), so most tables of
#: a new state are the previous state's objects. Held strongly (an object's ID is not reused while it is here).
BODIES_SIZE: Final = 2048  # ~9 tables a patient: the last couple of hundred patients seen
_BODIES: OrderedDict[int, tuple[dict[str, BaseModel], int, str]] = OrderedDict()


_LOCK: Final = threading.Lock()  # states are dumped in the runtime's worker thread and served on the loop


def _body(value: dict[str, BaseModel]) -> str:
    with _LOCK:
        hit = _BODIES.get(id(value))
        if hit is not None and hit[0] is value and hit[1] == len(value):
            _BODIES.move_to_end(id(value))
            return hit[2]
    body = ",".join(f"{json_key(k)}:{PARTS(v)}" for k, v in value.items())
    with _LOCK:
        _BODIES[id(value)] = (value, len(value), body)
        if len(_BODIES) > BODIES_SIZE:
            _BODIES.popitem(last=False)
    return body


def dump(state: BaseModel) -> str:
    """`state`'s JSON: the MAPS fields from the records' JSON, every other field by pydantic."""
    rest = BaseModel.model_dump_json(state, exclude=set(MAPS))
    out = [rest[:-1]]
    sep = "," if len(rest) > 2 else ""
    for name in MAPS:
        out.append(f'{sep}"{name}":{{{_body(getattr(state, name))}}}')
        sep = ","
    out.append("}")
    return "".join(out)
