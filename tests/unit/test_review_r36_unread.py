"""Review R36 of HAZ-25-SCORING-06 (services/scoring/domain.py `unread`): a lab scoring does not read (every analyte
but corrected calcium) arriving before `next_due` less a second is skipped. Each chain of inputs is applied twice,
with the skip and with the reference that decides every lab (`skip_unread=False`), the same later events fed to both
resulting states, outputs and states compared event by event (LAB-CA-CRISIS L300-306: current data only).

A lab's scope is the calcium family alone (domain.scope_of), so the two chains can differ only where the calcium
decision at `now` differs from the one the state last published. With the clock ticks applied as the runtime fires
them (before any event at or after the deadline: devstack/replay.py), they never do. When a finding, an assessment or a
treatment is decided after a calcium moment and before its tick (the live timers poll every second, and an event
written first replaces the deadline), that event decides no calcium (its scope) and writes a deadline after the moment
passed: the calcium decision stays the earlier one, and before this change any later lab brought the change.
Fixed (the reviewer's proposal): an event decided once its state's deadline passed (`state.next_due <= now`, the tick
not applied yet) decides with the scope EVERYTHING, as the tick would (domain.apply_event); the three tests below
were strict xfails before it."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from contracts.base import Message, derived_id
from contracts.clinical import Analyte, NormalisedLab, Recommendation, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring import domain
from services.scoring.domain import ScoringState, apply_event

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TICK_DELAY = timedelta(milliseconds=1)  # devstack/replay.py: a deadline fires 1 ms after it passes
UNREAD = [a for a in get_args(Analyte) if a != "corrected_calcium"]


def _env(at: datetime, recorded: datetime | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "patient_id": "p1",
        "occurred_at": at,
        "recorded_at": recorded or at,
        "source": "t",
    }


def lab(analyte: str, at: datetime, value: float | None = 1.0, *, rid: str | None = None, **kw: Any) -> NormalisedLab:
    return NormalisedLab.model_validate(
        {
            **_env(at, kw.pop("recorded", None)),
            "source": "lab-normalisation",
            "analyte": analyte,
            "result_id": rid or f"{analyte}:{uuid.uuid4().hex[:6]}",
            "value": value,
            "unit": "mmol/L",
            "status": "final",
            "missing": [] if value is not None else ["albumin drawn within 48 h of the calcium"],
            **kw,
        }
    )


def assessment(at: datetime, **fields: Any) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate({**_env(at), **fields})


def finding(at: datetime, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate({**_env(at), "modality": "ct", **fields})


def tick(due: datetime) -> ClockTick:
    fired = due + TICK_DELAY
    return ClockTick(
        event_id=derived_id("clock", "scoring", "p1", due.isoformat(), fired.isoformat()),
        patient_id="p1",
        occurred_at=due,
        recorded_at=fired,
        source="scoring",
        service="scoring",
        due_at=due,
    )


def dumps(out: list[Message]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in out]


def critical(out: list[Message]) -> list[str]:
    return [m.rule_id for m in out if isinstance(m, Recommendation) and m.severity == "critical"]


# ---- the defect: a calcium moment an event of another scope stepped over --------------------------------------------
def _stepped_over(s: ScoringState) -> tuple[ScoringState, list[Message], datetime]:
    """The deadline passes; an assessment (ECOG only) is decided 2 s after it, before its tick (the live race): it
    decides no calcium and writes the next deadline from its own time, the calcium moment already behind it."""
    assert s.next_due is not None
    at = s.next_due + timedelta(seconds=2)
    s, out = apply_event(s, assessment(at, ecog=1), now=at)  # its deadline passed: it decides everything
    return s, out, at


def test_an_unread_lab_after_a_moment_another_event_stepped_over_raises_the_crisis_as_the_reference() -> None:
    s, out = apply_event(ScoringState(), lab("corrected_calcium", T0 + timedelta(hours=6), 3.70, rid="cc:1"), now=T0)
    assert critical(out) == []  # dated ahead: left out and said (info)
    s, stepped, at = _stepped_over(s)
    assert critical(stepped) == ["LAB-CA-CRISIS"]  # before the fix: nothing, the moment stepped over
    now = at + timedelta(minutes=30)
    albumin = lab("albumin", now)
    (_, out), (_, ref_out) = apply_event(s, albumin, now=now), apply_event(s, albumin, now=now, skip_unread=False)
    assert critical(stepped + ref_out) == ["LAB-CA-CRISIS"]  # the reference chain: the emergency, now current
    assert dumps(out) == dumps(ref_out)
    assert critical(stepped + out) == ["LAB-CA-CRISIS"]


def test_an_unread_lab_after_a_crisis_window_another_event_stepped_over_ends_it_as_the_reference() -> None:
    s, out = apply_event(ScoringState(), lab("corrected_calcium", T0, 3.60, rid="cc:1"), now=T0)
    assert critical(out) == ["LAB-CA-CRISIS"]
    s, stepped, at = _stepped_over(s)
    now = at + timedelta(hours=5)
    albumin = lab("albumin", now)
    (_, out), (_, ref_out) = apply_event(s, albumin, now=now), apply_event(s, albumin, now=now, skip_unread=False)
    ended = [m.current for m in stepped + ref_out if isinstance(m, SkeletalEvent) and m.status == "active"]
    assert ended == [False]  # the reference chain: the crisis SRE no longer current (its alert a warning)
    assert dumps(out) == dumps(ref_out)
    assert [m.current for m in stepped + out if isinstance(m, SkeletalEvent) and m.status == "active"] == [False]


# ---- the property: with the ticks as the runtime fires them, both chains agree event by event ------------------------


def _random_event(rng: random.Random, now: datetime, rids: list[str]) -> Message:
    kind = rng.choices(["unread", "cc", "assessment", "finding"], weights=[6, 3, 2, 1])[0]
    if kind == "unread":
        return lab(rng.choice(UNREAD), now - rng.choice([timedelta(0), timedelta(hours=3)]))
    if kind == "cc":
        rid = rng.choice(rids) if rids and rng.random() < 0.3 else f"cc:{len(rids)}"
        rids.append(rid)
        offset = rng.choice([timedelta(0), -timedelta(hours=30), -timedelta(days=4), timedelta(hours=6)])
        at = now + offset
        value = rng.choice([2.4, 3.2, 3.6, 3.9, None])
        status = "withdrawn" if rng.random() < 0.1 else "final"
        comparator = ">" if value is not None and rng.random() < 0.1 else None
        return lab("corrected_calcium", at, value, rid=rid, recorded=now, status=status, comparator=comparator)
    if kind == "assessment":
        offset = rng.choice([timedelta(0), -timedelta(days=2), timedelta(hours=5)])
        options: list[dict[str, Any]] = [
            {"ecog": rng.randint(0, 4)},
            {"neurological_deficit": rng.random() < 0.5},
            {"life_expectancy_months": rng.choice([1.0, 2.5, 5.0, 14.0])},
            {"lesion_pain": [{"lesion_id": "T8", "intensity": rng.choice(["mild", "functional"])}]},
        ]
        return assessment(now + offset, **rng.choice(options))
    offset = rng.choice([timedelta(0), -timedelta(days=10)])
    return finding(
        now + offset,
        lesion_id="T8",
        skeletal_site="spine",
        vertebral_level="T8",
        lesion_type="lytic",
        epidural_extension=rng.random() < 0.5,
        cord_compression=rng.random() < 0.3,
        pathological_fracture=rng.random() < 0.3,
    )


GAPS = [timedelta(seconds=1), timedelta(minutes=10), timedelta(hours=5), timedelta(hours=30), timedelta(days=3)]
#: how far from a moment (`next_due` less a second) an event may come: just before it, at it, inside the second
#: before its tick, at the tick, after it
NEAR = [timedelta(milliseconds=-500), timedelta(0), timedelta(milliseconds=500), timedelta(seconds=1)]
#: how late a tick fires after its deadline (replay's 1 ms; the live timers' poll, up to a second and more)
LAGS = [TICK_DELAY, timedelta(milliseconds=1500)]


def _chains(seed: int, steps: int, late_ticks: bool) -> list[str]:
    """Apply a random chain with the skip and with the reference, each fed the same events, the ticks as each state
    asks: a lab may come between a deadline and its tick (the tick fires late: `LAGS`), any other event after it;
    with `late_ticks`, a finding or an assessment may also come first (the live race). Events come at random gaps or
    near the next moment (`NEAR`). The skip chain's state goes through its stored JSON now and then (the runtime
    loads it). The differences found."""
    domain.forget_memos()
    rng = random.Random(seed)
    skip, ref = ScoringState(), ScoringState()
    now, rids, diffs = T0, list[str](), list[str]()
    lag = rng.choice(LAGS)

    def both(event: Message, at: datetime) -> None:
        nonlocal skip, ref
        skip, out = apply_event(skip, event, now=at)
        ref, ref_out = apply_event(ref, event, now=at, skip_unread=False)
        if dumps(out) != dumps(ref_out) or skip.model_dump() != ref.model_dump():
            diffs.append(f"{type(event).__name__} {getattr(event, 'analyte', '')} at {at}")
        if rng.random() < 0.2:
            skip = ScoringState.model_validate_json(skip.model_dump_json())

    for _ in range(steps):
        due = skip.next_due
        near = due - timedelta(seconds=1) + rng.choice(NEAR) if due is not None else None
        now = near if near is not None and near > now and rng.random() < 0.4 else now + rng.choice(GAPS)
        event = _random_event(rng, now, rids)
        lab_first = isinstance(event, NormalisedLab)
        late = late_ticks and not lab_first and rng.random() < 0.5
        while not late and skip.next_due is not None and skip.next_due <= now:
            if ref.next_due != skip.next_due:
                diffs.append(f"next_due {skip.next_due} != {ref.next_due}")
            due = skip.next_due
            fired = due + lag
            if fired > now:  # not fired yet: a lab comes first; any other event after it (as devstack/replay.py)
                if lab_first:
                    break
                fired = due + TICK_DELAY
            both(tick(due), fired)
            lag = rng.choice(LAGS)
        both(event, now)
    return diffs


@pytest.mark.parametrize("seed", range(12))
def test_random_chains_with_ticks_on_time_agree_with_the_reference(seed: int) -> None:
    assert _chains(seed, 60, late_ticks=False) == []


def test_random_chains_with_late_ticks_agree_with_the_reference() -> None:
    assert [d for seed in range(12) for d in _chains(seed, 60, late_ticks=True)] == []
