"""Memoisation of the plan's item families (pure): each family is keyed on the IDs of every fact it reads, so the
same facts always give the same items and an event recomputes only the families it can change."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.items_base import Item

#: Item families kept (least recently used evicted): a few per lesion of the patients seen recently.
MEMO_SIZE: Final = 50_000
_MEMO: OrderedDict[Hashable, list[Item]] = OrderedDict()


def memo(key: Hashable, build: Callable[[], list[Item]]) -> list[Item]:
    found = _MEMO.get(key)
    if found is not None:
        _MEMO.move_to_end(key)
        return found
    items = build()
    _MEMO[key] = items
    if len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return items


def clear() -> None:
    """Forget every memoised family (a new service instance starts cold)."""
    _MEMO.clear()


_LOCAL_KINDS: Final = frozenset({"surgery", "radiotherapy", "metabolic_radiotherapy"})
_DRUG_KINDS: Final = frozenset({"systemic_drug", "drug_administration"})


@dataclass(frozen=True)
class Fingerprints:
    """The IDs of the patient-level facts, grouped as the item families read them (a different order only misses)."""

    assessed: tuple[Hashable, ...]  # assessments and surgical opinions
    local: tuple[str, ...]  # surgeries, RT courses, metabolic RT
    drugs: tuple[str, ...]  # drug starts, stops, administrations
    labs: tuple[Hashable, ...]  # haemostasis results
    oligo: uuid.UUID | None
    scores: dict[str, uuid.UUID]

    @classmethod
    def of(cls, s: LocalState) -> Fingerprints:
        local: list[str] = []
        drugs: list[str] = []
        for k, e in s.treatments.items():
            kind = e.treatment.kind
            if kind in _LOCAL_KINDS:
                local.append(k)
            elif kind in _DRUG_KINDS:
                drugs.append(k)
        scores = {k: v.event_id for k, v in s.scores.items()}
        return cls(
            assessed=(
                *((k, f.event_id) for k, f in s.assessed.items()),
                *((k, o.event_id) for k, o in s.opinions.items()),
            ),
            local=tuple(local),
            drugs=tuple(drugs),
            labs=tuple((rid, v.event_id) for t in s.labs.values() for rid, v in t.items()),
            oligo=scores.get("oligometastatic"),
            scores=scores,
        )

    def score(self, key: str) -> uuid.UUID | None:
        return self.scores.get(key)
