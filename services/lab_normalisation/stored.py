"""Issue 25: the lab aggregate's stored JSON (what the runtime writes after every batch) without serialising it whole:
shared/runtime/parts_json.py's `StoredJson`, with the results' table written from each result's JSON entry, looked
up in C by (result_id, object) rather than one Python call per result. A delivery copies the table and changes one or
two results, so the table's own text is never the same object twice; its entries are.

An entry is kept while its result lives (weak reference) and leaves with it, so that an object's address, once freed
and reused, never finds another result's text; the same object always has the same JSON (a stored result is
replaced, never changed in place)."""

from __future__ import annotations

import functools
import threading
import weakref
from typing import cast

from pydantic import BaseModel

from shared.runtime.parts_json import StoredJson, json_key

Entry = tuple[str, int]  #: a table's key and its value's id()


class LabStoredJson(StoredJson):
    """`StoredJson` whose `maps` (the results) are joined from per-entry text (`"result_id":{...}`) by object."""

    def __init__(self, maps: tuple[str, ...], fields: tuple[str, ...] = ()) -> None:
        super().__init__(maps, fields=fields)
        self._texts: dict[Entry, str] = {}
        self._refs: dict[Entry, weakref.ref[BaseModel]] = {}
        self._entry_lock = threading.RLock()  # a callback may come in the thread holding it

    def __len__(self) -> int:
        return len(self._texts)

    def _body(self, value: dict[str, BaseModel]) -> str:
        entries = list(zip(value, map(id, value.values()), strict=True))
        texts = list(map(self._texts.get, entries))
        if None in texts:
            for i, part in enumerate(value.values()):
                if texts[i] is None:
                    texts[i] = self._entry(entries[i], part)
        return ",".join(cast(list[str], texts))

    def _entry(self, entry: Entry, part: BaseModel) -> str:
        text = f"{json_key(entry[0])}:{part.model_dump_json()}"
        with self._entry_lock:
            self._refs[entry] = weakref.ref(part, functools.partial(self._forget, entry))
            self._texts[entry] = text
        return text

    def _forget(self, entry: Entry, ref: weakref.ref[BaseModel]) -> None:
        # called while the object is freed, before its address can be reused; an entry made again for the same live
        # object replaced this weak reference (never called then)
        with self._entry_lock:
            if self._refs.get(entry) is ref:
                del self._refs[entry]
                self._texts.pop(entry, None)
