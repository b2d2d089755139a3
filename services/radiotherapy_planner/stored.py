"""The stored JSON of the local-treatment planner's aggregate, written without serialising again the records that did
not change (issue 25: per-event cost flat in the history's length).

The runtime stores a patient's state as `model_dump_json()` after every batch. Most of it is records kept as received
(imaging findings, assessments, treatment events, requests) and facts made from them: their JSON is kept by object
and the state's JSON assembled from it. Safe because none is changed once made (the records are frozen models; a fact
is replaced, never changed in place), so an object's JSON never changes; an entry leaves with its object (weak
reference), so the memory follows the states the process holds. The document is
pydantic's own (fields in another order): tests/unit/test_issue25_local_history.py checks it loads back equal.
RT-FLAT2 (session 34): a changed table is joined from each entry's cached `"key":json` text;
tests/unit/test_s34_rt_flat2.py checks the bytes are those written before, at every event of long histories.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from typing import Final

from pydantic import BaseModel

from shared.runtime.parts_json import json_key


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


ENTRIES: Final = Entries()
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
_EXCLUDE: Final = set(MAPS)
_OPEN: Final = {name: f'"{name}":{{' for name in MAPS}
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
    body = ENTRIES.body(value)
    with _LOCK:
        _BODIES[id(value)] = (value, len(value), body)
        if len(_BODIES) > BODIES_SIZE:
            _BODIES.popitem(last=False)
    return body


def dump(state: BaseModel) -> str:
    """`state`'s JSON: the MAPS fields from the records' JSON, every other field by pydantic (written afresh every
    time: review R34-RTFLAT2 broke a reuse of an unchanged state's text, which a container changed in place with the
    same length would have left stale)."""
    rest = BaseModel.model_dump_json(state, exclude=_EXCLUDE)
    out = [rest[:-1]]
    sep = "," if len(rest) > 2 else ""
    for name in MAPS:  # the body not copied into a formatted piece: it is copied once, by the join
        out += (sep, _OPEN[name], _body(getattr(state, name)), "}")
        sep = ","
    out.append("}")
    return "".join(out)
