"""A deterministic cohort of lung-cancer patients with bone metastases, as the hospital bus would publish it (issue 25;
reused by the rule-change impact replay of issue 21). Development tooling: services never import it.

    from devstack.cohort import Cohort, patient_history
    for topic, key, message in Cohort(seed=1, patients=1000, years=2, end=ANCHOR).events(): ...

Every message is a real contract message (contracts/hospital.py, care.py, local.py) for a hospital input topic
(contracts/topics.py): lab results (calcium, albumin, creatinine, 25-OH vitamin D, in the units a French or a
conventional-unit lab sends, every 1-4 weeks, with an occasional crisis calcium), patient records (birth date, sex,
weight, histology, molecular profile), imaging findings every 2-4 months (spine and long-bone lesions that grow,
collapse, fracture, sometimes compress the cord; new foci), clinical assessments (ECOG, pain, per-lesion pain,
life expectancy, staging, response), treatment events (systemic lines started and stopped, chemotherapy and
immunotherapy doses before a radiotherapy, zoledronic acid or denosumab with their schedules, radiotherapy courses
with dose, fractions, segment and cord dose, occasional surgery, dental checks and care), care-pathway steps and
bone biopsies, local-treatment requests, and corrections or withdrawals of a small fraction of earlier results.

Determinism: patient `i` draws from its own `random.Random(f"{seed}:{i}")` (no global state, no wall clock): the
same (seed, patients, years, end) gives the same messages, byte for byte, and patient `i` is the same whatever the
cohort's size. `end` is the only time reference (default `ANCHOR`, a fixed date; pass `datetime.now(UTC)` to publish
a cohort live). Dates: every time of every message (occurred_at, recorded_at, the dates inside) is at or before
`end`, and `occurred_at <= recorded_at`; a message is published at its `recorded_at` (`Generated.timestamp_ms`),
and each patient's messages, like the cohort's, come in publication order. A correction is recorded after what it
corrects and names it (`corrects`, or the lab's `result_id`).

Modules: this one is the entry point (`Cohort`, `patient_history`); the vocabulary, lab units and skeletal sites are in
devstack/cohort_model.py, one patient's state, clock and treatments in devstack/cohort_care.py, and what is observed
and the stream in devstack/cohort_patient.py (`_Patient`).

Streaming: a patient's history is generated lazily (a small heap of pending processes and one of messages not yet
due), and `Cohort.events()` merges the patients by publication time, so 10k patients x 2 years never needs the
whole cohort in memory. `Cohort.patient(i)` is one patient's stream alone (a replay per patient gives the same
decisions: every service's state is per patient).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from devstack.cohort_model import Generated
from devstack.cohort_patient import _Patient

#: the default `end`: a fixed date, so a cohort is the same whenever it is generated
ANCHOR: Final = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def _span(seed: int, index: int, years: float, end: datetime) -> tuple[datetime, datetime]:
    """When patient `index` is followed: from a start in the first quarter of the period (earlier patients of a
    cohort are followed longer); seven in ten are followed to `end`, the others stop (death, transfer) earlier."""
    r = random.Random(f"{seed}:{index}:span")
    length = timedelta(days=365.25 * years)
    start = end - length + length * r.uniform(0, 0.25)
    if r.random() < 0.3:
        stop = start + max(timedelta(days=60), timedelta(days=r.expovariate(1 / 365)))
        return start, min(stop, end)
    return start, end


@dataclass(frozen=True)
class Cohort:
    """`patients` patients followed over `years` years up to `end`, deterministic from `seed`."""

    seed: int
    patients: int
    years: float
    end: datetime = ANCHOR

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")

    def patient_id(self, index: int) -> str:
        return f"cohort-{self.seed}-{index}"

    def patient(self, index: int) -> Iterator[Generated]:
        """Patient `index`'s messages, in publication order (the same in any cohort of this seed, years and end)."""
        start, stop = _span(self.seed, index, self.years, self.end)
        return _Patient(self.seed, index, start, stop, self.end, 1.0).messages()

    def events(self) -> Iterator[Generated]:
        """Every patient's messages merged by publication time (ties: the lower patient index first)."""
        merged = heapq.merge(*(_keyed(i, self.patient(i)) for i in range(self.patients)), key=lambda item: item[0])
        for _, g in merged:
            yield g


def _keyed(index: int, stream: Iterator[Generated]) -> Iterator[tuple[tuple[datetime, int], Generated]]:
    for g in stream:
        yield (g.message.recorded_at, index), g


#: patient_history's longest default span (years): the patient is 75-85 at `end`, young at the start
LONGEST_HISTORY_YEARS: Final = 60.0


def patient_history(
    seed: int, events: int, end: datetime = ANCHOR, years: float | None = None, density: float | None = None
) -> list[Generated]:
    """One patient's first `events` messages (fewer if the span ends first), in publication order, every one before
    `end`, followed from `years` before `end`. At the cohort's rates (`density` 1) a patient sends about 110
    messages a year, so 10 000 messages are ~90 years: by default the span is events / 110 years up to
    LONGEST_HISTORY_YEARS, and a longer stream is made denser (every process more frequent: for 20 000 messages,
    labs every 2-7 days, imaging every 2-4 weeks: an intensively followed patient), so that the windows the
    retention policies keep (measured in days) hold more than a realistic patient's, never less.
    `patient_history(s, 10**6, years=5, density=1)` is a realistic 5-year patient whole."""
    rate = 110.0
    span = years if years is not None else max(0.25, min(LONGEST_HISTORY_YEARS, 1.1 * events / rate))
    dense = density if density is not None else max(1.0, 1.15 * events / (rate * span))
    start = end - timedelta(days=365.25 * span)
    out: list[Generated] = []
    for g in _Patient(seed, 0, start, end, end, dense).messages():
        out.append(g)
        if len(out) == events:
            break
    return out
