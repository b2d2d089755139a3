"""Review RZK (HAZ-25-SYS-04): the assessment fuzz's analogue for imaging findings of two lesions: withdrawals and
amendments naming none, each correction recorded after every record held (within the README's horizon)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from contracts.base import Message
from contracts.hospital import ImagingFinding
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.retention import retain
from tests.unit.histories import World, _dump, _prologue


@pytest.mark.parametrize("seed", range(80))
def test_dense_finding_amendments_naming_none(seed: int) -> None:
    rnd = random.Random(seed)
    w = World()
    events: list[Message] = _prologue(w)
    clock = max(e.recorded_at for e in events)
    held: dict[str, list[ImagingFinding]] = {}
    for _ in range(rnd.randint(6, 22)):
        clock += timedelta(hours=rnd.randint(1, 240))
        lesion = rnd.choice("ab")
        fields: dict[str, object] = {
            "lesion_id": lesion,
            "skeletal_site": "femur_shaft" if lesion == "a" else "pelvis",
            "modality": rnd.choice(["ct", "mri", "bone_scan", "fdg_pet"]),
            "status": rnd.choice([None, "confirmed", "suspected", "resolved"]),
        }
        k = rnd.random()
        mine = held.setdefault(lesion, [])
        if k < 0.3 and mine:
            recent = sorted(mine, key=lambda a: (a.recorded_at, a.event_id.int))[-2:]
            fields.update(record_status="entered-in-error", corrects=rnd.choice(recent).event_id)
        elif k < 0.6 and mine:
            fields["record_status"] = "amended"
        occurred = clock - timedelta(days=rnd.randint(0, 60), hours=1)
        f = ImagingFinding.model_validate({**w.env(occurred), "recorded_at": clock, **fields})
        mine.append(f)
        events.append(f)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, ok = apply_event(kept, e, r.AsOf(now=now))
        full, of = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(ok) == _dump(of), e
        assert kept.next_due == full.next_due
        assert kept.lesions == full.lesions
        assert retain(kept) == kept
        at = r.AsOf(now=now + timedelta(days=1))
        pk, pf = current_plan(kept, "p1", at=at), current_plan(full, "p1", at=at)
        assert (pk and pk.model_dump(mode="json")) == (pf and pf.model_dump(mode="json"))
