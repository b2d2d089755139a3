"""HAZ-27-FUTURE-HIDES in scoring: "decide twice" (services/scoring/as_of.py), differential and seeded.

Over generated histories (tests/unit/test_issue25_scoring_history.history) cut at a random point, 1 to 3 future-dated
records are injected (recorded at `now`, dated `now` + 20 min .. 3 days, of the lesions and items the state holds:
re-confirmations, contradictions of a compression, an epidural extension, a fracture, a status, a deficit, a life
expectancy, a pain; decompressions, fixations, radiotherapies; amendments and entered-in-errors dated ahead). Then,
at `now`, every unit decided (a recommendation or score by slot, an SRE by kind and subject) is A's (today's
decision), or B's where B (the current one holds) and C (the future one holds now) agree, or B's marked "à vérifier"
where B has an emergency A lacks, or A's marked "à vérifier" where A has an emergency B lacks (it rests on a
future-dated record: review R29-SC); never one only C gives. With no future-dated record, the whole output is A's, byte
for byte (the transition's messages and the stored state). Memo-warm equals cold; the deadline is never later than
A's clock gives and never at or before `now`."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from contracts.hospital import ClinicalAssessment, TreatmentEvent
from services.scoring import as_of, domain
from services.scoring import rules as r
from services.scoring.clock import next_due
from services.scoring.common import Decisions
from services.scoring.domain import EVERYTHING, ScoringState, apply_event, decide, decide_now, forget_memos
from tests.unit.test_issue25_scoring_history import PATIENT, history

TOLERANCE = r.DEFAULT_POLICY.future_tolerance
HISTORIES = 320
COUNTS: Counter[str] = Counter()


def _past(seed: int) -> tuple[random.Random, list[Message], datetime]:
    rng = random.Random(seed)
    events = history(seed, 0.35, lab_days=10, imaging_days=20, assessment_days=12, crises_per_year=3)
    cut = rng.randint(max(1, len(events) // 3), len(events))
    past = events[:cut]
    return rng, past, max(e.recorded_at for e in past) + timedelta(minutes=rng.randint(1, 600))


def _state(events: list[Message]) -> ScoringState:
    """Each event decided at the clock of its delivery (never before a record already held: no record is ahead)."""
    s, clock = ScoringState(), None
    for e in events:
        clock = e.recorded_at if clock is None else max(clock, e.recorded_at)
        s, _ = apply_event(s, e, now=clock)
    return s


def _record(rng: random.Random, now: datetime) -> dict[str, Any]:
    ahead = timedelta(seconds=rng.randint(20 * 60, 3 * 86400))
    return {"event_id": uuid.UUID(int=rng.getrandbits(128)), "occurred_at": now + ahead, "recorded_at": now}


def _future(rng: random.Random, s: ScoringState, now: datetime) -> list[Message]:
    """1 to 3 future-dated records about what the state holds."""
    out: list[Message] = []
    findings = [f for f in s.findings.values() if f.record_status == "final"]
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        base = rng.choice(findings) if findings else None
        if kind < 0.45 and base is not None:
            f = base
            latest = s.lesions[f.lesion_id].latest if f.lesion_id in s.lesions else f
            update = _record(rng, now) | {"record_status": "final", "corrects": None}
            roll = rng.random()
            if roll < 0.3:
                pass  # the newest finding re-confirmed
            elif roll < 0.5:
                update["cord_compression"] = rng.choice((True, False))
            elif roll < 0.65:
                update["epidural_extension"] = rng.choice((True, False))
            elif roll < 0.75:
                update["pathological_fracture"] = rng.choice((True, False))
            elif roll < 0.85:
                update["status"] = rng.choice(("resolved", "confirmed", "suspected"))
            elif roll < 0.93:  # an amendment dated ahead, naming its record or not
                update |= {"record_status": "amended", "corrects": rng.choice((f.event_id, None))}
                update["cord_compression"] = rng.choice((True, False, None))
            else:  # an entered-in-error dated ahead
                update |= {"record_status": "entered-in-error", "corrects": f.event_id}
            out.append(latest.model_copy(update=update))
        elif kind < 0.8:
            fields: dict[str, Any] = {}
            a = s.assessment
            for name, fact, other in (
                ("neurological_deficit", a.neurological_deficit, lambda v: not v),
                ("life_expectancy_months", a.life_expectancy_months, lambda v: max(0.5, v + rng.choice((-5, 5)))),
                ("ecog", a.ecog, lambda v: (v + 1) % 5),
                ("primary_controlled", a.primary_controlled, lambda v: not v),
            ):
                if rng.random() < 0.5:
                    same = fact is not None and rng.random() < 0.5
                    value = fact.value if same and fact is not None else None
                    if value is None:
                        value = other(fact.value) if fact is not None else {"ecog": 2}.get(name, True)
                    if name == "life_expectancy_months" and isinstance(value, bool):
                        value = 4.0
                    fields[name] = value
            fields = fields or {"neurological_deficit": rng.choice((True, False))}
            out.append(ClinicalAssessment(patient_id=PATIENT, source="t", **_record(rng, now), **fields))
        else:
            lesion = rng.choice([x.latest for x in s.lesions.values()]) if s.lesions else None
            site = lesion.lesion_id if lesion is not None else "T8"
            treatment = rng.choice(
                (
                    {"kind": "surgery", "procedure": "decompression", "site": site},
                    {"kind": "surgery", "procedure": "fracture_fixation", "site": site},
                    {"kind": "surgery", "procedure": "prophylactic_fixation", "site": site},
                    {"kind": "radiotherapy", "intent": "pain", "site": site, "total_dose_gy": 8, "fractions": 1},
                    {
                        "kind": "radiotherapy",
                        "intent": "cord_compression",
                        "site": site,
                        "total_dose_gy": 8,
                        "fractions": 1,
                    },
                )
            )
            record = _record(rng, now)
            treatment["on"] = record["occurred_at"].date().isoformat()
            out.append(
                TreatmentEvent.model_validate({**record, "patient_id": PATIENT, "source": "t", "treatment": treatment})
            )
    return out


def _dump(m: Any) -> str:
    return str(m.model_dump_json())


def _units(d: Decisions) -> dict[str, str]:
    """Every unit's message, by slot (SREs by as_of's unit key)."""
    out = {f"rec:{k}": _dump(v.build()) for k, v in d.recommendations.items()}
    out |= {f"keep:{k}": "kept" for k in d.keep}
    out |= {f"score:{k}": _dump(v.build()) for k, v in d.scores.items()}
    out |= {f"sre:{as_of._sre_key(x, PATIENT)}": _dump(x) for x in d.sres.values() if not _marked(x)}
    return out


def _marked(x: SkeletalEvent) -> bool:
    return any(i.name == "future_dated_record_to_verify" for i in x.evidence)


def _unmarked(x: SkeletalEvent) -> dict[str, Any]:
    plain = [i for i in x.evidence if i.name != "future_dated_record_to_verify"]
    return x.model_copy(update={"evidence": plain}).model_dump(exclude={"event_id"})


def _marked_units(d: Decisions, b: Decisions, a: Decisions) -> dict[str, str]:
    """The marked SREs, by the unit of B's (or A's) SRE they are (with the future-dated records added)."""
    keys = {str(_unmarked(x)): f"sre:{as_of._sre_key(x, PATIENT)}" for y in (a, b) for x in y.sres.values()}
    return {keys[str(_unmarked(x))]: _dump(x) for x in d.sres.values() if _marked(x)}


def _emergency(message: str | None) -> bool:
    return message is not None and ('"severity":"critical"' in message or '"current":true' in message)


def _decision(message: str | None) -> tuple[object, ...] | None:
    if message is None or message == "kept":
        return (message,)
    x = json.loads(message)
    return (x.get("rule_id"), x.get("severity"), x.get("band"), x.get("current"), x.get("status"))


def _check(s: ScoringState, now: datetime) -> None:
    limit = as_of.limit_of(now, r.DEFAULT_POLICY)
    decided_a = decide(s, PATIENT, EVERYTHING, now=now, memo=False)
    a = _units(decided_a)
    decided_b = decide(as_of.current_view(s, limit), PATIENT, EVERYTHING, now=now, memo=False)
    b = _units(decided_b)
    c = _units(decide(as_of.redated_view(s, limit), PATIENT, EVERYTHING, now=now, memo=False))
    seen = as_of.Merged()
    cold = decide_now(s, PATIENT, EVERYTHING, now=now, memo=False, seen=seen)
    merged = _units(cold) | _marked_units(cold, decided_b, decided_a)
    warm = decide_now(s, PATIENT, EVERYTHING, now=now, memo=True)
    full = _units(warm) | _marked_units(warm, decided_b, decided_a)
    assert full == merged  # memo-warm (A's families remembered) equals cold
    again = decide_now(s, PATIENT, EVERYTHING, now=now, memo=True)
    assert _units(again) | _marked_units(again, decided_b, decided_a) == merged  # again, every memo filled
    COUNTS["A"] += seen.a
    COUNTS["agreement"] += seen.agreed
    COUNTS["escalation"] += seen.escalated
    COUNTS["A's emergency B lacks, marked"] += seen.a_marked
    for key in {*a, *b, *c} | set(merged):
        m = merged.get(key)
        if key.startswith("sre:") and m is not None and "future_dated_record_to_verify" in m:
            # marked: B's emergency A lacks, or A's emergency B lacks (B and C disagreeing), the records added
            x = SkeletalEvent.model_validate_json(m)
            unmarked = x.model_copy(
                update={"evidence": [i for i in x.evidence if i.name != "future_dated_record_to_verify"]}
            )
            escalation = _emergency(b.get(key)) and not _emergency(a.get(key))
            assert escalation or (_emergency(a.get(key)) and not _emergency(b.get(key))), key
            assert escalation or _decision(b.get(key)) != _decision(c.get(key)), key
            source = b[key] if escalation else a[key]
            assert unmarked.model_dump(exclude={"event_id"}) == SkeletalEvent.model_validate_json(source).model_dump(
                exclude={"event_id"}
            )
            COUNTS["marked SREs"] += 1
            continue
        if m is not None and "À vérifier" in m and key.startswith("rec:"):
            escalation = _emergency(b.get(key)) and not _emergency(a.get(key))
            assert escalation or (_emergency(a.get(key)) and not _emergency(b.get(key))), key
            assert escalation or _decision(b.get(key)) != _decision(c.get(key)), key
            COUNTS["marked recommendations"] += 1
            continue
        if m == a.get(key):
            continue  # A's (or B's, the same)
        # B's, where B and C agree: presence, and the unit's decision (rule and severity, band, currency)
        assert m == b.get(key), key
        assert _decision(b.get(key)) == _decision(c.get(key)), key
        COUNTS["units B, not A"] += 1
    # never a unit only C gives
    for key in c:
        if key not in a and key not in b:
            assert key not in merged, key


@pytest.mark.parametrize("chunk", range(8))
def test_dt_sc_every_unit_is_a_s_or_agreed_or_an_escalation(chunk: int) -> None:
    for seed in range(chunk, HISTORIES, 8):
        rng, past, now = _past(seed)
        forget_memos()
        s = _state(past)
        due_a: datetime | None = None
        for e in _future(rng, s, now):
            s, _ = apply_event(s, e, now=now)
            due_a = next_due(s, now)
        assert s.next_due is not None and s.next_due > now  # never at or before now (a future record is ahead)
        assert due_a is None or s.next_due <= due_a  # never later than A's clock gives
        _check(s, now)


@pytest.mark.parametrize("chunk", range(4))
def test_dt_sc_with_no_future_fact_the_output_is_a_s_byte_for_byte(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for seed in range(1000 + chunk, 1000 + 48, 4):
        _, past, _ = _past(seed)
        forget_memos()
        s, out = ScoringState(), list[str]()
        clocks = [max(x.recorded_at for x in past[: i + 1]) for i in range(len(past))]
        for e, clock in zip(past, clocks, strict=True):
            assert not as_of.has_future(s, as_of.limit_of(clock, r.DEFAULT_POLICY))
            s, o = apply_event(s, e, now=clock)
            out += [_dump(x) for x in o]
            out.append(s.model_dump_json())
        with monkeypatch.context() as m:
            m.setattr(
                domain,
                "decide_now",
                lambda s, p, scope=EVERYTHING, **k: decide(s, p, scope, **{x: v for x, v in k.items() if x != "seen"}),
            )
            forget_memos()
            t, before = ScoringState(), list[str]()
            for e, clock in zip(past, clocks, strict=True):
                t, o = apply_event(t, e, now=clock)
                before += [_dump(x) for x in o]
                before.append(t.model_dump_json())
        assert out == before


def test_dt_sc_counts() -> None:
    """The differential's numbers (run after it; printed for the report)."""
    print(dict(COUNTS))
