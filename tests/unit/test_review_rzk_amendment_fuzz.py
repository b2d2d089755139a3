"""Review RZK (HAZ-25-SYS-04): dense random runs of assessments with withdrawals and amendments naming none, each
correction recorded after every record held (within the README's horizon); withdrawals may name any record still
among the newest two by recording. Outputs, next_due and life expectancies as with the whole history; retain
idempotent."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.retention import retain
from tests.unit.histories import World, _dump, _prologue


@pytest.mark.parametrize("seed", range(120))
def test_dense_amendments_naming_none(seed: int) -> None:
    rnd = random.Random(seed)
    w = World()
    events: list[Message] = _prologue(w)
    clock = max(e.recorded_at for e in events)
    held: list[ClinicalAssessment] = []
    for _ in range(rnd.randint(6, 22)):
        clock += timedelta(hours=rnd.randint(1, 240))
        k = rnd.random()
        occurred = clock - timedelta(days=rnd.randint(0, 60), hours=1)
        fields: dict[str, object] = {}
        if rnd.random() < 0.6:
            fields["life_expectancy_months"] = float(rnd.choice([1, 2, 4, 5, 8, 12]))
        else:
            fields["ecog"] = rnd.randint(0, 4)
        if k < 0.3 and held:
            recent = sorted(held, key=lambda a: (a.recorded_at, a.event_id.int))[-2:]
            fields = {"record_status": "entered-in-error", "corrects": rnd.choice(recent).event_id}
        elif k < 0.6 and held:
            fields["record_status"] = "amended"
        a = ClinicalAssessment.model_validate({**w.env(occurred), "recorded_at": clock, **fields})
        held.append(a)
        events.append(a)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, ok = apply_event(kept, e, r.AsOf(now=now))
        full, of = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(ok) == _dump(of), e
        assert kept.next_due == full.next_due
        assert kept.life_expectancies == full.life_expectancies
        assert retain(kept) == kept
        for later in (timedelta(days=1), timedelta(days=95)):
            at = r.AsOf(now=now + later)
            pk, pf = current_plan(kept, "p1", at=at), current_plan(full, "p1", at=at)
            assert (pk and pk.model_dump(mode="json")) == (pf and pf.model_dump(mode="json"))
