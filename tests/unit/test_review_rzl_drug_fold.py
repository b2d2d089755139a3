"""Reviewer RZL (issue 25, helper ZL): try to make a warm process (retention_drugs._WHOLE kept) store other bytes than a
cold one (every memo forgotten, the state parsed again: a rebuild), with adversarial systemic-drug histories:
amendments that move a record's day or flip its action, entered-in-error records, corrections of corrections, very
late deliveries (a record dated months before the horizon's start), duplicates, several UTC offsets (the same instant
in +01:00/+02:00/-05:00), stops whose day + 3 months falls exactly on a later cutoff, and long quiet stretches (the
horizon's start moving on with no new treatment: the fold skipped)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import TreatmentEvent
from services.scoring import retention, retention_drugs
from services.scoring.domain import ScoringState, apply_event, forget_memos
from shared.clinical.dates import add_months
from tests.unit.test_issue25_scoring_history import PATIENT, START, history
from tests.unit.test_issue25_zl_scoring_drug_fold import assert_warm_stores_what_cold_stores

OFFSETS = (UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))
DRUGS = ("osimertinib", "carboplatin", "letrozole")


def _drug_events(rng: random.Random, end: datetime) -> list[tuple[datetime, TreatmentEvent]]:
    """(delivered at, event): starts and stops of a few drugs, with adversarial corrections and deliveries."""
    out: list[tuple[datetime, TreatmentEvent]] = []
    at = START + timedelta(days=5)
    records: list[TreatmentEvent] = []

    def ev(occ: datetime, rec: datetime, tr: dict[str, Any], **extra: Any) -> TreatmentEvent:
        tz = rng.choice(OFFSETS)
        return TreatmentEvent.model_validate(
            {
                "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "patient_id": PATIENT,
                "occurred_at": occ.astimezone(tz),
                "recorded_at": rec.astimezone(rng.choice(OFFSETS)),
                "source": "h",
                "treatment": {"kind": "systemic_drug", **tr},
                **extra,
            }
        )

    while at < end:
        drug = rng.choice(DRUGS)
        action = rng.choice(("started", "started", "stopped"))
        # a day near midnight in Paris: local_day vs UTC day
        occ = at.replace(hour=rng.choice((0, 1, 22, 23)), minute=rng.randint(0, 59))
        rec = occ + timedelta(minutes=rng.randint(0, 3000))
        on = occ.date() - timedelta(days=rng.choice((0, 0, 0, 1, 3)))
        e = ev(occ, rec, {"drug": drug, "action": action, "on": on})
        delivered = rec
        if rng.random() < 0.15:  # very late: delivered months after
            delivered += timedelta(days=rng.uniform(30, 200))
        out.append((delivered, e))
        records.append(e)
        if rng.random() < 0.05:
            out.append((delivered + timedelta(hours=rng.uniform(0, 72)), e))  # delivered again
        if records and rng.random() < 0.25:  # a correction of an earlier record (maybe of a correction)
            target = rng.choice(records[-6:])
            crec = max(target.recorded_at, rec) + timedelta(days=rng.uniform(0.1, 40))
            if rng.random() < 0.5:
                tr = target.treatment.model_dump()
                tr["on"] = tr["on"] + timedelta(days=rng.choice((-40, -3, 1, 30, 92)))
                if rng.random() < 0.3:
                    tr["action"] = "stopped" if tr["action"] == "started" else "started"
                c = ev(
                    target.occurred_at,
                    crec,
                    {k: v for k, v in tr.items() if k != "kind"},
                    record_status="amended",
                    corrects=target.event_id,
                )
            else:
                c = ev(
                    target.occurred_at,
                    crec,
                    {k: v for k, v in target.treatment.model_dump().items() if k != "kind"},
                    record_status="entered-in-error",
                    corrects=target.event_id,
                )
            out.append((crec + timedelta(days=rng.choice((0, 0, 50))), c))
            records.append(c)
        if action == "stopped" and rng.random() < 0.4:  # a restart exactly at the stop + 3 months (or a day before)
            back = add_months(on, 3) - timedelta(days=rng.choice((0, 1)))
            occ2 = datetime(back.year, back.month, back.day, 10, tzinfo=UTC)
            e2 = ev(occ2, occ2 + timedelta(hours=2), {"drug": drug, "action": "started", "on": back})
            out.append((occ2 + timedelta(hours=2), e2))
            records.append(e2)
        at += timedelta(days=rng.choice((1, 2, 7, 20, 45, 91, 92)))
    return out


def _events(seed: int, years: float = 2.5) -> list[Message]:
    rng = random.Random(seed)
    base = [
        e
        for e in history(seed, years, lab_days=rng.choice((3, 40)), imaging_days=45, assessment_days=40)
        if not (isinstance(e, TreatmentEvent) and e.treatment.kind == "systemic_drug")
    ]
    end = START + timedelta(days=365.25 * years)
    timed: list[tuple[datetime, int, Message]] = [(e.recorded_at, i, e) for i, e in enumerate(base)]
    timed += [(d, 10**6 + i, e) for i, (d, e) in enumerate(_drug_events(rng, end))]
    return [e for _, _, e in sorted(timed, key=lambda x: (x[0], x[1]))]


@pytest.mark.parametrize("seed", range(11, 14))
def test_rzl_warm_stores_what_cold_stores_adversarial_drugs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "DRUGS_KEPT", 2)
    monkeypatch.setattr(retention, "SMALL", 0)  # always remember (patient given), even small states
    warm = assert_warm_stores_what_cold_stores(_events(seed))
    assert warm.drugs_cutoff is not None


@pytest.mark.parametrize("seed", [21])  # 4 seeds x 40 tables in the review: 160 s; CI keeps one, the last 10
def test_rzl_fold_drugs_equals_fold_on_every_start_after_each_table(seed: int) -> None:
    """fold_drugs, remembering across every table of the history (as the process does), against _retain_drugs,
    on each day (and near-midnight instants in several offsets) of the following 200 days."""
    forget_memos()
    s = ScoringState()
    real = retention_drugs._retain_drugs
    rng = random.Random(seed)
    tables = []
    for e in _events(seed, 2):
        before = s.treatments
        s, _ = apply_event(s, e)
        if s.treatments is not before:
            tables.append(s)
    retention_drugs.clear()
    for state in tables[-10:]:
        t, foci = state.treatments, retention_drugs.focus_days(state)
        assert state.newest_recorded is not None
        base_start = state.newest_recorded - retention.HORIZON
        for i in range(0, 200 * 4):
            start = base_start + timedelta(hours=6 * i, microseconds=rng.choice((0, 1, 999999)))
            start = start.astimezone(rng.choice(OFFSETS))
            assert retention_drugs.fold_drugs("p", t, t, foci, start) == real(t, foci, start), (seed, start)


def test_rzl_fold_drugs_start_moving_back_and_forth() -> None:
    """The horizon's start is not monotone (a state parsed again, an entered-in-error's newest_recorded?): a fold
    remembered at a later start must not serve an earlier one."""
    forget_memos()
    s = ScoringState()
    for e in _events(31, 2):
        s, _ = apply_event(s, e)
    t, foci = s.treatments, retention_drugs.focus_days(s)
    assert s.newest_recorded is not None
    real = retention_drugs._retain_drugs
    rng = random.Random(5)
    retention_drugs.clear()
    for _ in range(3000):
        start = s.newest_recorded - timedelta(days=rng.uniform(-300, 800))
        assert retention_drugs.fold_drugs("p", t, t, foci, start) == real(t, foci, start), start


_ = date  # (typing)
