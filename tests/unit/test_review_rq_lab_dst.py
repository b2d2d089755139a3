"""Review RQ (issue 25, HAZ-25-LAB-04): an HL7 time without an offset is the hospital's local time (hl7v2.py
`_hl7_time`). Held with one shared named zone (Europe/Paris), two such times compared by wall clock: the 48 h window
of LAB-CA-CORR (RULES.md "no more than 48 h apart", after the formula of guideline L316) was off by an hour across a
DST change live, while a state read again from its JSON (fixed offsets) compared by instant. A calcium and an albumin
across the last Sunday of March / October, at the window's edge, are decided by their true elapsed time, the same live
and after a reload."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from contracts.clinical import NormalisedLab
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import Ingested, from_hl7
from services.lab_normalisation.rules import CA_ALBUMIN_WINDOW
from tests.unit.test_ingest import ANALYTES, GUARD, MSH, PID, hl7

PARIS = ZoneInfo("Europe/Paris")
CFG = LabConfig(ca_albumin_window=CA_ALBUMIN_WINDOW, hospital_tz=PARIS)


def _message(n: int, drawn: datetime, obx: str) -> Ingested:
    obr = f"OBR|1|P{n}|F{n}|CHEM|||{drawn.strftime('%Y%m%d%H%M')}"  # no offset: the hospital's local time
    return from_hl7(hl7(MSH.replace("|C1|", f"|C{n}|"), PID, obr, obx), ANALYTES, PARIS, GUARD)


def _corrected(out: list[NormalisedLab]) -> list[float | None]:
    return [o.value for o in out if o.analyte == "corrected_calcium"]


def _decide(calcium_at: datetime, albumin_at: datetime, reload: bool) -> tuple[list[float | None], str]:
    ca = _message(1, calcium_at, "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F")
    alb = _message(2, albumin_at, "OBX|1|NM|1751-7^Alb^LN||30|g/L|||||F")
    s, _ = apply_ingested(LabState(), ca, CFG)
    if reload:  # the runtime's state read again from its stored JSON between the two events
        s = LabState.model_validate_json(s.model_dump_json())
    s, out = apply_ingested(s, alb, CFG)
    return _corrected(out), s.model_dump_json()


# (calcium's local draw, albumin's local draw): 30 minutes either side of 48 h of true elapsed time, and exactly 48 h
EDGES = [
    # spring (2026-03-29, 02:00 -> 03:00): wall clock 1 h longer than elapsed
    (datetime(2026, 3, 28, 10, 0), datetime(2026, 3, 30, 10, 30)),  # elapsed 47h30: pairs (wall clock 48h30)
    (datetime(2026, 3, 28, 10, 0), datetime(2026, 3, 30, 11, 0)),  # elapsed 48h exactly: pairs (wall clock 49 h)
    (datetime(2026, 3, 28, 10, 0), datetime(2026, 3, 30, 11, 30)),  # elapsed 48h30: does not pair
    # autumn (2026-10-25, 03:00 -> 02:00): wall clock 1 h shorter than elapsed
    (datetime(2026, 10, 24, 10, 0), datetime(2026, 10, 26, 9, 30)),  # elapsed 48h30: does not (wall clock 47h30)
    (datetime(2026, 10, 24, 10, 0), datetime(2026, 10, 26, 9, 0)),  # elapsed 48h exactly: pairs
    (datetime(2026, 10, 24, 10, 0), datetime(2026, 10, 26, 8, 30)),  # elapsed 47h30: pairs
]


@pytest.mark.parametrize(("calcium_local", "albumin_local"), EDGES)
@pytest.mark.parametrize("albumin_first", [False, True])
def test_pairing_across_a_dst_change_is_by_elapsed_time_live_and_after_a_reload(
    calcium_local: datetime, albumin_local: datetime, albumin_first: bool
) -> None:
    if albumin_first:  # the albumin drawn first: the same window from the other side
        calcium_local, albumin_local = albumin_local, calcium_local
    live, live_json = _decide(calcium_local, albumin_local, reload=False)
    rebuilt, rebuilt_json = _decide(calcium_local, albumin_local, reload=True)
    assert live == rebuilt and live_json == rebuilt_json
    # the true elapsed time (two zone objects: by instant), not the wall clock's
    elapsed = abs(albumin_local.replace(tzinfo=PARIS).timestamp() - calcium_local.replace(tzinfo=PARIS).timestamp())
    paired = [v for v in live if v is not None]
    assert bool(paired) == (elapsed <= CA_ALBUMIN_WINDOW.total_seconds())


def test_a_local_time_keeps_its_wall_clock_offset_and_json() -> None:
    for local in (datetime(2026, 3, 28, 10, 0), datetime(2026, 7, 1, 10, 0), datetime(2026, 10, 25, 2, 30)):
        got = _message(1, local, "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F").labs[0].result.occurred_at
        named = local.replace(tzinfo=PARIS)  # the zone's offset at that instant (fold 0 for an hour seen twice)
        # (== is never true for a time of the hour seen twice against another zone, PEP 495: instants compared)
        assert got.timestamp() == named.timestamp() and got.isoformat() == named.isoformat()
        assert got.tzinfo is not None and got.tzinfo.utcoffset(None) == named.utcoffset()  # a fixed offset


def test_a_date_only_draw_is_that_days_first_minute_with_its_offset_fixed() -> None:
    for day in ("20260329", "20261025"):  # the two days of a DST change: midnight before it
        obr = f"OBR|1|P1|F1|CHEM|||{day}"
        lab = from_hl7(hl7(MSH, PID, obr, "OBX|1|NM|2000-8^Ca^LN||2.4|mmol/L|||||F"), ANALYTES, PARIS, GUARD).labs[0]
        named = datetime.strptime(day, "%Y%m%d").replace(tzinfo=PARIS)
        got = lab.result.occurred_at
        assert got.isoformat() == named.isoformat() and got.tzinfo is not None
        assert got.tzinfo.utcoffset(None) == named.utcoffset()
