"""Review R29-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice"): with no lesion status, sighting or response
dated in the future, the planner publishes what 982e00c (main before the change) publishes, byte for byte.

The helper's differential test compares `build_plan` with `plan_once` of the same branch (the same code when no fact
of the two folds is dated ahead). Here the reference is 982e00c's own `domain.py` (read with `git show`, loaded as a
module beside today's: domain.py is the only module the change edits), and the comparison is of everything
`apply_event` returns event after event (the states, `next_due`, the plans and notices) and of ticks at each
`next_due`, over random histories that hold facts of the OTHER kinds dated ahead (labs, life expectancies, SREs,
drug records: read as of `now` by A already), and facts of the two folds dated exactly at `now + tolerance` (current,
the edge) or in the past."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ImagingFinding
from services.systemic_planner import as_of
from services.systemic_planner import domain as new
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from tests.unit import test_dt_sys_differential as dt
from tests.unit.test_review_r32_fixes_ahead import today_imports

BASE = "982e00c"
TOL = r.Recency().future_tolerance
US = timedelta(microseconds=1)
SEEDS = 120


def _old() -> ModuleType:
    root = Path(__file__).resolve().parents[2]
    try:
        src = subprocess.run(
            ["git", "show", f"{BASE}:services/systemic_planner/domain.py"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"{BASE} not in this clone")
    spec = importlib.util.spec_from_loader("services.systemic_planner._domain_r29sys_base", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    exec(compile(today_imports(src), f"{BASE}:domain.py", "exec"), mod.__dict__)
    return mod


def _tick(rnd: random.Random, at: datetime) -> ClockTick:
    return ClockTick.model_validate(
        {**dt._env(rnd, at), "patient_id": "p-dt-sys", "source": "clock", "service": "systemic-planner", "due_at": at}
    )


def _others_ahead(rnd: random.Random, past: list[Message]) -> list[Message]:
    """Records dated ahead of kinds A already reads as of `now`, and fold records dated at the edge or before."""
    out: list[Message] = []
    for e in past:
        if rnd.random() < 0.25:
            dt_ = rnd.choice([timedelta(minutes=rnd.randint(20, 4000)), TOL, TOL - US, -timedelta(hours=3)])
            if (isinstance(e, ImagingFinding) or getattr(e, "oncological_response", None)) and dt_ > TOL:
                dt_ = TOL  # a fold record: at the edge at most (current)
            out.append(e.model_copy(update={**dt._env(rnd, dt.NOW + dt_, dt.NOW)}))
    if rnd.random() < 0.5:
        sre = {"kind": rnd.choice(["hypercalcaemia", "pathological_fracture"]), "rule_id": "CLASS-SRE", "evidence": []}
        when = dt.NOW + timedelta(hours=rnd.randint(1, 72))
        out.append(SkeletalEvent.model_validate({**dt._env(rnd, when, dt.NOW), **sre}))
    return out


def _replay(mod: ModuleType, events: list[Message], ticks: list[datetime]) -> list[str]:
    m.clear()
    s = mod.SystemicState()
    trace: list[str] = []
    for e in events:
        s, out = mod.apply_event(s, e, r.AsOf(now=dt.NOW))
        trace += [s.model_dump_json(), *(x.model_dump_json() for x in out)]
    for t in ticks:
        s, out = mod.apply_event(s, _tick(random.Random(t.microsecond), t), r.AsOf(now=t))
        trace += [s.model_dump_json(), *(x.model_dump_json() for x in out)]
    return trace


def test_review_r29sys_with_no_fold_record_dated_ahead_every_output_is_982e00c_s() -> None:
    old = _old()
    compared = 0
    for seed in range(SEEDS):
        rnd = random.Random(10_000 + seed)
        past = dt._past(rnd)
        events = [*past, *_others_ahead(rnd, past)]
        s = dt._run(events, dt.NOW)
        assert not as_of.involves_future(s, r.AsOf(now=dt.NOW)), seed
        # ticks at the next deadlines (the same for both if the states are)
        ticks = []
        t = s.next_due
        for _ in range(3):
            if t is None:
                break
            ticks.append(t)
            t = t + timedelta(days=rnd.randint(1, 40))
        try:
            assert _replay(new, events, ticks) == _replay(old, events, ticks), seed
        finally:
            m.clear()
        compared += 1
    assert compared == SEEDS
