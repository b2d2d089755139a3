"""The stored JSON of the local-treatment planner's aggregate, written without serialising again the records that did
not change (issue 25: per-event cost flat in the history's length).

The runtime stores a patient's state as `model_dump_json()` after every batch. Most of it is records kept as received
(imaging findings, assessments, treatment events, requests) and facts made from them: their JSON is kept by object
and the state's JSON assembled from it, by shared/runtime/parts_json.py's `StoredJson` (`STORED`). Safe because none
is changed once made (the records are frozen models; a fact is replaced, never changed in place), so an object's JSON
never changes; an entry leaves with its object (weak reference), so the memory follows the states the process holds.
The document is pydantic's own (fields in another order): tests/unit/test_issue25_local_history.py checks it loads
back equal. RT-FLAT2 (session 34): a changed table is joined from each entry's cached `"key":json` text
(parts_json.py `Entries`, shared since session 35); tests/unit/test_s34_rt_flat2.py checks the bytes are those
written before, at every event of long histories.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel

from shared.runtime.parts_json import StoredJson

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
#: the JSON body of each map is kept by object too: an event copies only the table it changes (fold.merge), so most
#: tables of a new state are the previous state's objects. Held strongly (an object's ID is not reused while it is
#: there), bounded.
BODIES_SIZE: Final = 2048  # ~9 tables a patient: the last couple of hundred patients seen
STORED: Final = StoredJson(MAPS, bodies=BODIES_SIZE)


def dump(state: BaseModel) -> str:
    """`state`'s JSON: the MAPS fields from the records' JSON, every other field by pydantic (written afresh every
    time: review R34-RTFLAT2 broke a reuse of an unchanged state's text, which a container changed in place with the
    same length would have left stale)."""
    return STORED.dump(state)
