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

import functools
from collections.abc import Iterable
from typing import Final

from pydantic import BaseModel

from shared.runtime.parts_json import StoredJson

#: the tables and parts notification's state is written from (services/notification/domain.py)
STORED: Final = StoredJson(("alerts", "scores", "labs"), ("plan", "local_plan"))
PARTS: Final = STORED.parts


@functools.cache
def _stored(maps: tuple[str, ...], ones: tuple[str, ...]) -> StoredJson:
    return STORED if (maps, ones) == (STORED.maps, STORED.ones) else StoredJson(maps, ones)


def dump(state: BaseModel, maps: Iterable[str], ones: Iterable[str]) -> str:
    """`state`'s JSON: the fields in `maps` (dict of frozen models) and `ones` (a frozen model or None) from the
    parts' JSON, every other field by pydantic. A transition copies a table it changes (never changes one in
    place), so each table's body is kept by the table's object too (issue 25: an event rewrites only its table)."""
    return _stored(tuple(maps), tuple(ones)).dump(state)
