"""Memoisation of the plan's item families (pure): each family is keyed on the IDs of every fact it reads, so the
same facts always give the same items and an event recomputes only the families it can change."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Final

from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.items_base import Item

#: Item families kept in memory (least recently used evicted): a few per lesion of the patients seen recently.
MEMO_SIZE: Final = 8192
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


_SURGERY_KINDS: Final = frozenset({"surgery"})
_RT_KINDS: Final = frozenset({"radiotherapy", "metabolic_radiotherapy"})
_DRUG_KINDS: Final = frozenset({"systemic_drug", "drug_administration"})
#: the assessed facts each family reads (lesion pain is keyed "<name>@<lesion>")
READS: Final[dict[str, tuple[str, ...]]] = {
    "mscc": ("neurological_deficit", "life_expectancy_months"),
    "palliative": (
        "pain_resistant_to_analgesics",
        "pain_character",
        "life_expectancy_months",
        "frail",
        "hard_to_move",
    ),
    "sbrt": ("neurological_deficit", "life_expectancy_months", "mri_contraindicated"),
    "cement": (
        "pain_resistant_to_analgesics",
        "pain_intensity",
        "opioid_complications",
        "diffuse_pain",
        "active_infection",
        "severe_coagulation_disorder",
        "cement_allergy",
        "radiculopathy",
    ),
    "surgery": ("life_expectancy_months",),
}


@dataclass(frozen=True)
class Fingerprints:
    """The IDs of the patient-level facts, grouped as the item families read them (a different order only misses)."""

    assessed: dict[str, int]
    opinions: tuple[tuple[str, int], ...]
    surgeries: tuple[str, ...]
    radiotherapy: tuple[str, ...]  # RT courses and metabolic RT
    drugs: tuple[str, ...]  # drug starts, stops, administrations
    labs: tuple[tuple[str, int], ...]  # haemostasis results
    scores: dict[str, int]
    families: dict[str, tuple[int | None, ...]]  # the patient-level assessed facts each family reads
    lesion_pain: bool  # some lesion has its own pain recorded

    @classmethod
    def of(cls, s: LocalState) -> Fingerprints:
        surgeries: list[str] = []
        radiotherapy: list[str] = []
        drugs: list[str] = []
        for k, e in s.treatments.items():
            kind = e.treatment.kind
            if e.record_status != "final":  # a correction may correct an event of another kind (issue 18 review)
                surgeries.append(k)
                radiotherapy.append(k)
                drugs.append(k)
            elif kind in _SURGERY_KINDS:
                surgeries.append(k)
            elif kind in _RT_KINDS:
                radiotherapy.append(k)
            elif kind in _DRUG_KINDS:
                drugs.append(k)
        assessed = {k: f.event_id.int for k, f in s.assessed.items()}
        return cls(
            assessed=assessed,
            opinions=tuple((k, o.event_id.int) for k, o in s.opinions.items()),
            surgeries=tuple(surgeries),
            radiotherapy=tuple(radiotherapy),
            drugs=tuple(drugs),
            labs=tuple((rid, v.event_id.int) for t in s.labs.values() for rid, v in t.items()),
            scores={k: v.event_id.int for k, v in s.scores.items()},
            families={f: tuple(assessed.get(n) for n in names) for f, names in READS.items()},
            lesion_pain=any("@" in k for k in assessed),
        )

    def reads(self, family: str, lesion_id: str) -> tuple[int | None, ...]:
        base = self.families[family]
        if not self.lesion_pain:
            return base
        a = self.assessed
        return base + tuple(a.get(f"{n}@{lesion_id}") for n in READS[family] if n.startswith("pain_"))

    def score(self, key: str) -> int | None:
        return self.scores.get(key)
