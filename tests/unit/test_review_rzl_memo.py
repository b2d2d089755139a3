"""Reviewer RZL (issue 25, helper ZL): Mirels looked up in its memo before it is scored (volatile from 9 on), the
lesions' index by table object, the policy's hash made once, the drug fold's memory evicted: warm against cold."""

from __future__ import annotations

import dataclasses
import gc
import random
from datetime import timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring import rules as r
from services.scoring.common import Context
from services.scoring.domain import ScoringState, apply_event, decide, forget_memos
from services.scoring.sre import _index
from tests.unit.test_issue25_scoring_content_memo import drive_parsed_again
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_issue25_scoring_history import START, _Gen
from tests.unit.test_review_rs_scoring_memo import assert_interleaved_decide_as_cold
from tests.unit.test_review_rzl_drug_fold import _drug_events

BONES = ("femur_trochanteric", "femur_neck", "humerus", "tibia_fibula")


def _mirels_history(seed: int, n: int = 90) -> list[Message]:
    """Long-bone lesions near a Mirels of 9 (lytic, large), pains that come and go stale (30 days), life expectancy
    estimates near 3 months and 6 weeks, and drug starts and stops."""
    g = _Gen(random.Random(seed), late_days=15)
    rng = g.rng
    at = START
    lesions = [f"lb{i}" for i in range(3)]
    sites = {x: rng.choice(BONES) for x in lesions}
    for _ in range(n):
        at += timedelta(days=rng.choice((0.3, 2, 12, 29, 31, 45)))
        k = rng.random()
        if k < 0.35:
            lid = rng.choice(lesions)
            g.emit(
                ImagingFinding.model_validate(
                    {
                        **g.env(at, timedelta(hours=rng.randint(1, 30))),
                        "lesion_id": lid,
                        "skeletal_site": sites[lid],
                        "modality": rng.choice(("ct", "mri", "fdg_pet")),
                        "lesion_type": rng.choice(("lytic", "lytic", "mixed")),
                        "size_cm": 3.0,
                        "cortical_involvement_fraction": rng.choice((0.8, 0.8, 0.5, None)),
                        "pathological_fracture": rng.choice((None, False, True)),
                        "new_focus": rng.random() < 0.2,
                        "axial_cortical_osteolysis_pct": rng.choice((None, 40)),
                        "circumferential_cortical_osteolysis_pct": rng.choice((None, 60)),
                    }
                )
            )
        else:
            fields: dict[str, Any] = {**g.env(at, timedelta(hours=rng.randint(1, 30)))}
            if rng.random() < 0.7:
                fields["lesion_pain"] = [
                    {"lesion_id": rng.choice(lesions), "intensity": rng.choice(("mild", "moderate", "functional"))}
                ]
            if rng.random() < 0.3:
                fields["pain"] = {"intensity": rng.choice(("mild", "functional"))}
            if rng.random() < 0.5:
                fields["life_expectancy_months"] = rng.choice((1.4, 2, 3.1, 4, 12))
            g.emit(ClinicalAssessment.model_validate(fields))
    out = [e for _, _, e in sorted(g.out, key=lambda x: (x[0], x[1]))]
    drugs = _drug_events(rng, at)
    merged = [(e.recorded_at, i, e) for i, e in enumerate(out)] + [(d, 10**6 + i, e) for i, (d, e) in enumerate(drugs)]
    return [e for _, _, e in sorted(merged, key=lambda x: (x[0], x[1]))]


@pytest.mark.parametrize("seed", range(3))
def test_rzl_mirels_history_warm_decides_what_cold_does(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.scoring import retention

    monkeypatch.setattr(retention, "DRUGS_KEPT", 2)
    events = _mirels_history(seed)
    cold = drive(events, cold=True)
    forget_memos()
    assert drive(events, cold=False) == cold
    assert drive_parsed_again(events, 3) == cold


@pytest.mark.parametrize("seed", range(2))
def test_rzl_mirels_memo_against_fresh_at_jumping_reference_times(seed: int) -> None:
    """The same state decided at reference times that jump back and forth across the pain's 30 days and the life
    expectancy's 91 days (and a microsecond either side), with the default and another policy: memoised decisions
    equal fresh ones (memo=False) every time."""
    forget_memos()
    rng = random.Random(seed)
    s = ScoringState()
    states = []
    for e in _mirels_history(seed, 60):
        s, _ = apply_event(s, e, now=e.recorded_at)
        states.append(s)
    other = r.Policy(lesion_pain_valid=timedelta(days=7), life_expectancy_valid=timedelta(days=20))
    for s in states[-15:]:
        assert s.newest_recorded is not None
        for _ in range(40):
            now = s.newest_recorded + timedelta(days=rng.choice((-31, -30, -7, 0, 6, 7, 29, 30, 31, 60, 91, 92)))
            now += timedelta(microseconds=rng.choice((-1, 0, 1)))
            policy = rng.choice((r.DEFAULT_POLICY, r.Policy(), other))
            warm = decide(s, "p-issue25", now=now, policy=policy)
            fresh = decide(s, "p-issue25", now=now, policy=policy, memo=False)
            assert _dump(warm) == _dump(fresh), (now, policy)


def _dump(d: Any) -> Any:
    def lazy(v: Any) -> Any:
        return str(v.event_id), v.build().model_dump_json()

    recs = {k: lazy(v) for k, v in d.recommendations.items()}
    scores = {k: lazy(v) for k, v in d.scores.items()}
    return recs, scores, {k: v.model_dump_json() for k, v in d.sres.items()}, sorted(d.keep), sorted(d.fixations)


def test_rzl_policy_hash_is_the_fields_hash_and_equal_policies_share_memo() -> None:
    p = r.Policy()
    q = dataclasses.replace(p, lesion_pain_valid=timedelta(days=7))
    for x in (p, q, r.DEFAULT_POLICY):
        assert hash(x) == hash(tuple(getattr(x, f.name) for f in dataclasses.fields(x)))
    assert p == r.DEFAULT_POLICY and hash(p) == hash(r.DEFAULT_POLICY)
    assert q != p
    import copy
    import pickle

    for x in (copy.copy(q), copy.deepcopy(q), pickle.loads(pickle.dumps(q))):
        assert x == q and hash(x) == hash(q)
    assert "_hash" not in {f.name for f in dataclasses.fields(q)} and "_hash" not in repr(q)


def test_rzl_lesions_index_not_served_to_another_table_after_gc() -> None:
    """The index remembered by the lesions table's object: a table freed and another allocated (perhaps at the same
    id) with other lesions gets its own index."""
    forget_memos()
    events = _mirels_history(3, 40)
    s = ScoringState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at)
    c = Context(s, "p-issue25", None)
    first = _index(c)
    names = set(first.by_id)
    for _ in range(3):  # each gc.collect() walks the worker's whole heap (46 s in CI with 15)
        other = {k: v for k, v in s.lesions.items() if k != sorted(s.lesions)[0]}
        t = s.model_copy(update={"lesions": other})
        gc.collect()
        idx = _index(Context(t, "p-issue25", None))
        assert set(idx.by_id) == {v.latest.lesion_id for v in other.values()}
        del t, other, idx
        gc.collect()
    assert set(_index(Context(s, "p-issue25", None)).by_id) == names


def test_rzl_drug_fold_memory_evicted_between_two_patients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two patients (same content, other IDs) interleaved, the drug fold's memory one entry, retention's clean tables
    one: each decides and stores what a cold process does."""
    from services.scoring import retention, retention_drugs

    monkeypatch.setattr(retention, "DRUGS_KEPT", 2)
    monkeypatch.setattr(retention, "SMALL", 0)
    monkeypatch.setattr(retention_drugs, "WHOLE_SIZE", 1)
    monkeypatch.setattr(retention, "CLEAN_SIZE", 1)
    a = _mirels_history(5, 70)
    b = [e.model_copy(update={"patient_id": "p-rzl-other"}) for e in a]
    assert_interleaved_decide_as_cold(a, b)
