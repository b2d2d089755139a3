"""Issue 22: lab-normalisation's outputs depend on the results received, never on their delivery order. The generated
histories of tests/unit/test_issue25_lab_retention.py (calcium, albumin, creatinine, weight; amendments, withdrawals,
late re-sends of older versions) are delivered again in another order (each up to order_independence.WINDOW late, some
a second time): what a consumer holds at the end is the same, result by result (the newest version of each measured
and derived value: status, value, unit, what is missing, and the results it was derived from).

Nothing here depends on order by design: a version is newer by its recorded time (LAB-CORRECTION), a late older
version changes nothing, and a derived value pairs its partners by clinical time, ties by the most recently reported
(LAB-CA-CORR, LAB-CRCL), whatever the delivery order."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult, PatientRecord
from services.lab_normalisation.domain import LabState
from tests.unit.histories import lab_record
from tests.unit.order_independence import WINDOW
from tests.unit.test_issue25_lab_retention import apply_with, histories
from tests.unit.test_lab_domain import CFG


def held(items: list[LabResult | PatientRecord]) -> dict[str, tuple[Any, ...]]:
    """What a consumer of osteocds.labs.normalised.v1 holds after the outputs: each result's last version (a derived
    value's sources by what they say: a result re-sent unchanged under another event ID is the same source).
    Retention's one documented difference (README "Retention: lab-normalisation": a value derived again from a
    result no longer kept whole is not published again) is left out: derived values of results no longer kept."""
    s, view = LabState(), {}
    for item in items:
        s, out = apply_with(CFG, s, item)
        for o in out:
            assert isinstance(o, NormalisedLab)
            sources = tuple(sorted((x.analyte, x.value, x.unit, x.occurred_at.isoformat()) for x in o.derived_from))
            view[o.result_id] = (o.status, o.value, o.unit, tuple(o.missing), o.occurred_at, sources)
    # a value withdrawn is none in force, as one never published (a derived value never derived in another order)
    return {
        rid: v
        for rid, v in view.items()
        if v[0] != "withdrawn" and (":" not in rid or rid.partition(":")[2] in s.results)
    }


def reorder(items: list[LabResult], seed: int, duplicates: int) -> list[LabResult]:
    """Each result up to WINDOW after its recorded time, some delivered twice (order_independence.shuffled, for
    hospital results: their versions carry their own recorded times)."""
    rnd = random.Random(seed)
    span = WINDOW.total_seconds()
    keyed = [(x.recorded_at + timedelta(seconds=rnd.uniform(0, span)), i, x) for i, x in enumerate(items)]
    keyed += [
        (at + timedelta(seconds=rnd.uniform(0, span)), len(items) + k, x)
        for k, (at, _, x) in enumerate(rnd.choices(keyed, k=duplicates if items else 0))
    ]
    return [x for _, _, x in sorted(keyed, key=lambda k: (k[0], k[1]))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 2**32), st.integers(0, 8))
def test_any_order_and_any_redelivery_give_the_same_results(history: list[LabResult], seed: int, dup: int) -> None:
    base = held([lab_record(), *history])
    assert held([lab_record(), *reorder(history, seed, dup)]) == base
