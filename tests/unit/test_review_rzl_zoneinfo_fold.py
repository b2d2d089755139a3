"""Reviewer RZL (issue 25, helper ZL): the drug fold's memory (retention_drugs.fold_drugs) compares the horizon's start
with the records' clinical times as instants (fold-aware), while the fold it stands for (`_retain_drugs`, the same
code as e300bda's retention._retain_drugs) compares them as datetimes: two times with the same ZoneInfo tzinfo compare
by wall clock, fold ignored. In the repeated hour of the autumn DST change the two disagree, and the skipped fold keeps
records the fold drops. In-process ZoneInfo times only (the runtime's are parsed from JSON: fixed offsets), the class
of HAZ-25-SCORING-04's residual."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from contracts.hospital import TreatmentEvent
from services.scoring import retention_drugs

PARIS = ZoneInfo("Europe/Paris")


def _drug(action: str, on: date, occurred: datetime) -> TreatmentEvent:
    return TreatmentEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p-rzl",
            "occurred_at": occurred,
            "recorded_at": occurred,
            "source": "h",
            "treatment": {"kind": "systemic_drug", "drug": "letrozole", "action": action, "on": on},
        }
    )


@pytest.mark.xfail(
    strict=True,
    reason="HAZ-25-SCORING-05 residual: in-process ZoneInfo times in the repeated DST hour (never from the runtime)",
)
def test_rzl_skipped_fold_keeps_what_the_fold_drops_in_the_repeated_hour() -> None:
    # both records late, their clinical times in the repeated hour (CET, fold=1): 02:35 and 02:40 = 01:35/01:40 UTC
    t = {
        str(e.event_id): e
        for e in (
            _drug("started", date(2026, 1, 5), datetime(2026, 10, 25, 2, 35, fold=1, tzinfo=PARIS)),
            _drug("stopped", date(2026, 2, 1), datetime(2026, 10, 25, 2, 40, fold=1, tzinfo=PARIS)),
        )
    }
    assert all(e.occurred_at.tzinfo is PARIS for e in t.values())
    s0 = datetime(2026, 10, 25, 2, 20, tzinfo=PARIS)  # CEST, 00:20 UTC (start = anchor - 90 days: fold 0)
    s1 = datetime(2026, 10, 25, 2, 50, tzinfo=PARIS)  # CEST, 00:50 UTC: before both records as instants
    retention_drugs.clear()
    assert retention_drugs._retain_drugs(t, set(), s0) is t  # kept whole at s0 (wall clock: 02:35 >= 02:20)
    expected = retention_drugs._retain_drugs(t, set(), s1)  # wall clock: 02:35 < 02:50: the ended run is dropped
    assert len(expected) == 0
    assert retention_drugs.fold_drugs("p-rzl", t, t, set(), s0) is t
    assert retention_drugs.fold_drugs("p-rzl", t, t, set(), s1) == expected  # fails: the memo serves `t` whole
    retention_drugs.clear()
