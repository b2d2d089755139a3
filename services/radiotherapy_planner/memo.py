"""Memoisation of the plan's item families (pure): each family is keyed on the IDs of every fact it reads, so the
same facts always give the same items and an event recomputes only the families it can change."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from contracts.hospital import TreatmentEvent
from services.radiotherapy_planner.facts import LabFact, LocalState, ScoreFact, SurgicalOpinionFact
from services.radiotherapy_planner.items_base import Item, clear_interned
from services.radiotherapy_planner.items_patient import clear_treated
from shared.clinical.facts import Fact

T = TypeVar("T")
#: Item families kept in memory (least recently used evicted): a few per lesion of the patients seen recently.
MEMO_SIZE: Final = 8192
_MEMO: OrderedDict[Hashable, list[Item]] = OrderedDict()


#: plans are decided in the runtime's worker thread and served on the loop (GET local-plan): a hit's move to the end
#: and another thread's eviction in between raised KeyError, and the event was dead-lettered (helper HW)
_MEMO_LOCK: Final = threading.Lock()


def _lru(table: OrderedDict[Hashable, Any], size: int, key: Hashable, build: Callable[[], T]) -> T:
    """`build()` once per key while kept in `table` (least recently used evicted past `size`), under _MEMO_LOCK."""
    with _MEMO_LOCK:
        found = table.get(key)
        if found is not None:
            table.move_to_end(key)
            return cast(T, found)
    value = build()
    with _MEMO_LOCK:
        table[key] = value
        if len(table) > size:
            table.popitem(last=False)
    return value


def memo(key: Hashable, build: Callable[[], list[Item]]) -> list[Item]:
    return _lru(_MEMO, MEMO_SIZE, key, build)


#: A lesion's whole section by a short key (domain._decide, issue 25): the union of what its families' keys read, the
#: patient-level part of it interned to an int once per decision (`patient_key`), so that an event that changes
#: nothing a lesion's families read costs one lookup for that lesion, not one per family on long keys.
SECTIONS_SIZE: Final = 4096
_SECTIONS: OrderedDict[Hashable, object] = OrderedDict()
#: the patient-level parts interned: an int is never given twice (the counter is never reset), so dropping this table
#: (when full) only makes the next decisions miss, never hit an entry made for other facts
PATIENT_KEYS_SIZE: Final = 4096
_PATIENT_KEYS: dict[Hashable, int] = {}
_PATIENT_IDS: Final = itertools.count()


def patient_key(parts: Hashable) -> int:
    """The int standing for these patient-level key parts (the same parts: the same int while it is kept)."""
    with _MEMO_LOCK:
        found = _PATIENT_KEYS.get(parts)
        if found is None:
            if len(_PATIENT_KEYS) >= PATIENT_KEYS_SIZE:
                _PATIENT_KEYS.clear()
            found = _PATIENT_KEYS[parts] = next(_PATIENT_IDS)
        return found


def section(key: Hashable, build: Callable[[], T]) -> T:
    """`memo` for a lesion's section (domain._decide): built once per key while kept (least recently used evicted)."""
    return _lru(_SECTIONS, SECTIONS_SIZE, key, build)


def clear() -> None:
    """Forget every memoised family and section, table fingerprint and what a treatments table gives (a new service
    instance starts cold)."""
    with _MEMO_LOCK:
        _MEMO.clear()
        _SECTIONS.clear()
        _PATIENT_KEYS.clear()
    with _TABLES_LOCK:
        _TABLES.clear()
    clear_treated()
    clear_interned()


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
        "life_expectancy_months",  # shown with its event and date (HAZ-25-RT-08, review R28-RT2)
    ),
    "surgery": ("life_expectancy_months",),
}
#: the assessed facts a lesion may have its own of (keyed "<name>@<lesion>"): those of READS named "pain_*"
LESION_READS: Final = tuple(sorted({n for names in READS.values() for n in names if n.startswith("pain_")}))


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
    def of(cls, s: LocalState, shared: bool = True) -> Fingerprints:
        """`shared=False`: not kept by table (a view's tables, as_of.py, live for one decision)."""
        by = _by_table if shared else _made
        surgeries, radiotherapy, drugs = by(s.treatments, _treatments)
        assessed, families, lesion_pain = by(s.assessed, _assessed)
        return cls(
            assessed=assessed,
            opinions=by(s.opinions, _opinions),
            surgeries=surgeries,
            radiotherapy=radiotherapy,
            drugs=drugs,
            labs=by(s.labs, _labs),
            scores=by(s.scores, _scores),
            families=families,
            lesion_pain=lesion_pain,
        )

    def reads(self, family: str, lesion_id: str) -> tuple[int | None, ...]:
        base = self.families[family]
        if not self.lesion_pain:
            return base
        a = self.assessed
        return base + tuple(a.get(f"{n}@{lesion_id}") for n in READS[family] if n.startswith("pain_"))

    def lesion_reads(self, lesion_id: str) -> tuple[int | None, ...]:
        """The IDs of the lesion's own facts any family reads (`reads` of every family: READS and these)."""
        if not self.lesion_pain:
            return ()
        a = self.assessed
        return tuple(a.get(f"{n}@{lesion_id}") for n in LESION_READS)

    def score(self, key: str) -> int | None:
        return self.scores.get(key)


# ---- the fingerprint of each table, once per table (issue 25) ----------------------------------------------------
#: A state's table is never changed once the event that made it is applied (fold.merge copies the table an event
#: changes and changes only the copy; retention makes new tables), and most tables of a new state are the previous
#: state's objects: their fingerprints are kept by table, the table held (its ID is not reused while it is here).
TABLES_SIZE: Final = 4096
_TABLES: dict[tuple[Callable[..., object], int], tuple[object, int, object]] = {}
_TABLES_LOCK: Final = threading.Lock()  # plans are decided in the runtime's worker thread and served on the loop


def _made(table: Mapping[str, Any], make: Callable[[Mapping[str, Any]], T]) -> T:
    return make(table)


def uncached(key: Hashable, build: Callable[[], list[Item]]) -> list[Item]:
    """`memo` bypassed: the views of a decision with facts dated in the future (as_of.py, HAZ-27-FUTURE-HIDES) keep
    the facts' event IDs, which the keys read, so they never share an entry with the state's decision."""
    return build()


def _by_table(table: Mapping[str, Any], make: Callable[[Mapping[str, Any]], T]) -> T:
    key = (make, id(table))
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is table and hit[1] == len(table):
        return cast(T, hit[2])
    value = make(table)
    with _TABLES_LOCK:
        if len(_TABLES) >= TABLES_SIZE:
            _TABLES.clear()
        _TABLES[key] = (table, len(table), value)
    return value


def _treatments(table: Mapping[str, TreatmentEvent]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    surgeries: list[str] = []
    radiotherapy: list[str] = []
    drugs: list[str] = []
    for k, e in table.items():
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
    return tuple(surgeries), tuple(radiotherapy), tuple(drugs)


def _assessed(
    table: Mapping[str, Fact[bool | float | str]],
) -> tuple[dict[str, int], dict[str, tuple[int | None, ...]], bool]:
    assessed = {k: f.event_id.int for k, f in table.items()}
    families = {f: tuple(assessed.get(n) for n in names) for f, names in READS.items()}
    return assessed, families, any("@" in k for k in assessed)


def _opinions(table: Mapping[str, SurgicalOpinionFact]) -> tuple[tuple[str, int], ...]:
    return tuple((k, o.event_id.int) for k, o in table.items())


def _labs(table: Mapping[str, dict[str, LabFact]]) -> tuple[tuple[str, int], ...]:
    return tuple((rid, v.event_id.int) for t in table.values() for rid, v in t.items())


def _scores(table: Mapping[str, ScoreFact]) -> dict[str, int]:
    return {k: v.event_id.int for k, v in table.items()}
