"""Helper DT-RT (HAZ-27-FUTURE-HIDES, "decide twice"): the radiotherapy planner's merge of the three decisions,
differentially, on seeded random histories (adapted from review R28-RT2's harness, branch r28rt2).

Each history: past records of a spinal lesion (and sometimes a femur): findings, assessments with a surgeon's opinion
and lesion pain, RT courses, decompressions, platelet counts, a request; then one to three records dated ahead
(recorded at NOW, dated NOW + 20 min .. NOW + 3 days, same names and lesions as existing ones: copies re-confirming,
copies contradicting one value, some with new signs), then up to two corrections (amended / entered-in-error) of
current or future records, some dated ahead. Decided at the clock NOW, event by event (apply_event).
- every published item is A's (the state's single decision), or B's where B and C decide the same, or B's marked
  "à vérifier" (the future-dated facts as inputs) where B is an emergency A lacks; an item only C gives never is;
- with no fact dated in the future the whole output (every message, byte for byte) is the single decision's, and the
  plan is decided once (no view made);
- next_due is never later than the single decision's, never at or before NOW;
- memo-warm decisions equal cold ones."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from services.radiotherapy_planner import as_of, domain, memo
from services.radiotherapy_planner.facts import LocalState, lesions
from services.radiotherapy_planner.items_base import Item
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.irradiation import CORD_ALPHA_BETA_GY
from tests.unit.test_issue18_local import NOW, TODAY

DAY = timedelta(days=1)
SEEDS = range(320)
NO_FUTURE_SEEDS = range(1000, 1120)


def _env(rnd: random.Random, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "patient_id": "pt-dt-rt",
        "occurred_at": at.isoformat(),
        "recorded_at": min(at, NOW).isoformat(),
        "source": "test",
        **fields,
    }


def _some(rnd: random.Random, choices: tuple[tuple[str, tuple[Any, ...]], ...]) -> dict[str, Any]:
    return {k: v for k, vs in choices if (v := rnd.choice(vs)) is not None}


def _finding(rnd: random.Random) -> dict[str, Any]:
    return _some(
        rnd,
        (
            ("epidural_extension", (None, True, False)),
            ("cord_compression", (None, None, True, False)),
            ("pathological_fracture", (None, True, False)),
            ("canal_narrowing_pct", (None, 10.0, 40.0)),
            ("tumour_cord_distance_mm", (None, 2.0, 8.0)),
            ("status", ("confirmed", "confirmed", None, "resolved", "suspected")),
        ),
    )


def _assessment(rnd: random.Random) -> dict[str, Any]:
    f = _some(
        rnd,
        (
            ("neurological_deficit", (None, True, False)),
            ("life_expectancy_months", (None, 1.0, 2.0, 5.0, 24.0)),
            ("frail", (None, True, False)),
            ("hard_to_move", (None, True, False)),
            ("mri_contraindicated", (None, True, False)),
            ("cement_allergy", (None, None, True, False)),
            ("active_infection", (None, None, True, False)),
        ),
    )
    if rnd.random() < 0.35:
        on = TODAY - rnd.randint(0, 20) * DAY
        f["surgical_opinion"] = {"operable": rnd.random() < 0.5, "on": on.isoformat(), "lesion_id": "t8"}
    if rnd.random() < 0.3:
        f["pain"] = {"resistant_to_analgesics": rnd.random() < 0.6, "intensity": "functional"}
    if rnd.random() < 0.2:
        f["lesion_pain"] = [{"lesion_id": "t8", "resistant_to_analgesics": rnd.random() < 0.5}]
    return f


def _event(rnd: random.Random, kind: str, at: datetime, f: dict[str, Any]) -> Message:
    if kind == "finding":
        site = (
            {"lesion_id": "t8", "skeletal_site": "spine", "vertebral_level": "T8"}
            if f.get("_where", "t8") == "t8"
            else {"lesion_id": "fem", "skeletal_site": "femur_shaft"}
        )
        signs = {k: v for k, v in f.items() if k != "_where"}
        return ImagingFinding.model_validate(_env(rnd, at, **site, modality="mri", **signs))
    if kind == "assessment":
        return ClinicalAssessment.model_validate(_env(rnd, at, **f))
    if kind == "lab":
        rid = f"plt-{rnd.getrandbits(32)}"
        return NormalisedLab.model_validate(
            _env(rnd, at, source="lab-normalisation", analyte="platelets", result_id=rid, unit="G/L", **f)
        )
    if kind == "treatment":
        return TreatmentEvent.model_validate(_env(rnd, at, treatment=f))
    return LocalTreatmentRequest.model_validate(_env(rnd, at, request_id=f"req-{f['lesion_id']}", **f))


Row = tuple[str, datetime, dict[str, Any]]


def _past(rnd: random.Random) -> list[Row]:
    rows: list[Row] = []
    femur = rnd.random() < 0.3
    for m in sorted(rnd.sample(range(10, 60 * 24 * 6), rnd.randint(3, 8)), reverse=True):
        t = NOW - timedelta(minutes=10 * m)
        on = min(t.date(), TODAY)
        kind = rnd.choice(("finding", "finding", "assessment", "assessment", "course", "surgery", "lab"))
        if kind == "finding":
            rows.append(("finding", t, {**_finding(rnd), "_where": "fem" if femur and rnd.random() < 0.4 else "t8"}))
        elif kind == "assessment" and (f := _assessment(rnd)):
            rows.append(("assessment", t, f))
        elif kind == "course":
            course = {"kind": "radiotherapy", "site": "spine", "vertebral_level": "T8", "total_dose_gy": 30.0}
            rows.append(("treatment", t, {**course, "fractions": 10, "on": on.isoformat(), "cord_dmax_gy": 30.0}))
        elif kind == "surgery":
            surgery = {"kind": "surgery", "procedure": "decompression", "site": "spine", "vertebral_level": "T8"}
            rows.append(("treatment", t, {**surgery, "on": on.isoformat()}))
        elif kind == "lab":
            rows.append(("lab", t, {"value": rnd.choice((30.0, 180.0))}))
    if not any(k == "finding" for k, _, _ in rows):
        rows.insert(0, ("finding", NOW - 50 * DAY, {**_finding(rnd), "_where": "t8"}))
    if rnd.random() < 0.6:
        modality = rnd.choice(("sbrt", "palliative_rt", "cementoplasty", "surgery"))
        planned = (TODAY + rnd.randint(0, 5) * DAY).isoformat()
        rows.append(("request", NOW - DAY, {"modality": modality, "lesion_id": "t8", "planned_on": planned}))
    return rows


def _ahead(rnd: random.Random) -> datetime:
    """NOW + 20 min .. NOW + 3 days (beyond the 15 min tolerance)."""
    return NOW + rnd.choice(
        (timedelta(minutes=20), timedelta(minutes=rnd.randint(21, 120)), timedelta(hours=rnd.randint(2, 72)))
    )


def _copy(row: Row) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in row[2].items()}


def history(seed: int, future: bool = True) -> list[Message]:
    """Past records; with `future`, one to three dated ahead (half contradicting a value), then up to two
    corrections (some dated ahead)."""
    rnd = random.Random(seed)
    rows = _past(rnd)
    pool = [r for r in rows if r[0] in ("finding", "assessment", "lab")]
    for _ in range(rnd.randint(1, 3) if future else rnd.randint(0, 2)):
        row = rnd.choice(pool)
        kind, f = row[0], _copy(row)
        values = [k for k in f if not k.startswith("_")]
        if values and rnd.random() < 0.5:  # contradicting one value (else re-confirming)
            name = rnd.choice(values)
            if isinstance(f[name], bool):
                f[name] = not f[name]
            elif name == "surgical_opinion":
                f[name]["operable"] = not f[name]["operable"]
            elif name == "status":
                f[name] = rnd.choice(("resolved", "confirmed"))
            elif name in ("pain", "lesion_pain"):
                f.pop(name)
            elif name == "value":
                f[name] = 210.0 - f[name]
            else:
                f[name] = rnd.choice((2.0, 5.0, 24.0, 40.0, 10.0))
        if rnd.random() < 0.3 and kind != "lab":
            f.update(_finding(rnd) if kind == "finding" else _assessment(rnd))
        # with no future fact: at most the tolerance ahead (current: the single decision)
        rows.append((kind, _ahead(rnd) if future else NOW + rnd.choice((timedelta(0), as_of.FUTURE_TOLERANCE)), f))
    events = [_event(rnd, *r) for r in rows]
    targets = [e for e in events if isinstance(e, ImagingFinding | ClinicalAssessment)]
    for _ in range(rnd.randint(0, 2) if future else rnd.randint(0, 1)):
        t = rnd.choice(targets)
        after = t.occurred_at + timedelta(minutes=1)
        choices = [after if future else min(after, NOW + as_of.FUTURE_TOLERANCE), NOW - timedelta(hours=1)]
        when = rnd.choice([*choices, *([_ahead(rnd)] if future else [])])
        update: dict[str, Any] = {
            "event_id": uuid.UUID(int=rnd.getrandbits(128), version=4),
            "occurred_at": when,
            "recorded_at": min(when, NOW),
            "corrects": t.event_id,
            "record_status": rnd.choice(("amended", "entered-in-error")),
        }
        for name in ("cord_compression", "epidural_extension", "neurological_deficit", "cement_allergy"):
            v = getattr(t, name, None)
            if update["record_status"] == "amended" and v is not None and rnd.random() < 0.6:
                update[name] = not v
        events.append(t.model_copy(update=update))
    return events


def _run(events: list[Message], now: datetime = NOW) -> tuple[LocalState, list[Message]]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = domain.apply_event(s, e, now=now)
        out += o
    return s, out


def _items(sections: list[domain.Section]) -> dict[str, Item]:
    return {i.key: i for sec in sections for i in sec.items}


def _three(s: LocalState, now: datetime) -> tuple[dict[str, Item], dict[str, Item], dict[str, Item], list[Any]]:
    """A, B, C decided apart (B and C outside the memo, as build_plan decides them)."""
    by = lesions(s)
    a = domain._decide(s, CORD_ALPHA_BETA_GY, now, domain.COMPRESSION_CURRENT, HOSPITAL_TZ, by, None)
    (vb, lb), vc = as_of.view_b(s, by, now), as_of.view_c(s, by, now)
    b = domain._decide(vb, CORD_ALPHA_BETA_GY, now, domain.COMPRESSION_CURRENT, HOSPITAL_TZ, lb, None, cached=False)
    c = (
        a
        if vc is None
        else domain._decide(
            vc[0], CORD_ALPHA_BETA_GY, now, domain.COMPRESSION_CURRENT, HOSPITAL_TZ, vc[1], None, cached=False
        )
    )
    return _items(a), _items(b), _items(c), as_of.ahead(s, by, now)


def _same(x: Item | None, y: Item | None) -> bool:
    if x is None or y is None:
        return x is y
    return x.content == y.content and x.inputs == y.inputs


def _classify(s: LocalState, now: datetime) -> Counter[str]:
    """Each unit of the merged plan checked against A, B, C; counts by where it came from."""
    a, b, c, facts = _three(s, now)
    merged = _items(domain.build_plan(s, now=now))
    counts: Counter[str] = Counter()
    ids = {f.event_id for f in facts}
    for key in sorted(set(a) | set(b) | set(c)):
        m, ia, ib, ic = merged.get(key), a.get(key), b.get(key), c.get(key)
        agree = (ib is None and ic is None) or (ib is not None and ic is not None and ib.content == ic.content)
        if agree:
            assert _same(m, ib), key
            counts["agreement" if not _same(ib, ia) else "agreement (= A)"] += 1
        elif ib is not None and ib.severity == "critical" and (ia is None or ia.severity != "critical"):
            assert m is not None and m.text_fr.startswith(ib.text_fr) and "À vérifier" in m.text_fr, key
            assert "daté du futur" in m.text_fr, key
            assert (m.status, m.severity, m.title) == (ib.status, ib.severity, ib.title), key
            assert ids & {x.source_event_id for x in m.inputs}, key  # the future-dated facts shown
            counts["escalation"] += 1
        elif (
            ia is not None
            and ic is not None
            and ia.content == ic.content
            and ia.status == "recommended"
            and ia.severity != "critical"
            and (ib is None or ib.status != ia.status)
        ):  # A recommends on a record dated ahead what current data do not: suspended (review R29B)
            assert m is not None and (m.status, m.severity) == ("cannot_decide", "warning"), key
            assert m.title == f"À vérifier : {ia.title}" and "daté du futur" in m.text_fr, key
            assert ids & {x.source_event_id for x in m.inputs}, key
            counts["A as C, suspended"] += 1
        elif ia is not None and ic is not None and ia.content == ic.content:  # A decides as C: marked (R29-SYS rule)
            assert m is not None and m.text_fr.startswith(ia.text_fr) and "daté du futur" in m.text_fr, key
            assert (m.status, m.severity, m.title) == (ia.status, ia.severity, ia.title), key
            assert ids & {x.source_event_id for x in m.inputs}, key
            counts["A as C, marked"] += 1
        else:
            assert _same(m, ia), key
            counts["A"] += 1
        if ic is not None and ia is None and ib is None:
            assert m is None, key  # never a unit only C gives
    return counts


@pytest.mark.parametrize("chunk", range(4))
def test_dt_rt_every_unit_is_a_s_or_b_s_where_b_equals_c_or_b_s_emergency_marked(chunk: int) -> None:
    total: Counter[str] = Counter()
    n = len(SEEDS) // 4
    with_future = 0
    for seed in SEEDS[chunk * n : (chunk + 1) * n]:
        s, out = _run(history(seed))
        facts = as_of.ahead(s, lesions(s), NOW)
        with_future += bool(facts)
        total += _classify(s, NOW)
        # what was published last is the merged plan
        plans = [o for o in out if isinstance(o, LocalTreatmentPlan)]
        if plans:
            published = {i.key: (i.status, i.severity, i.text_fr) for sec in plans[-1].sections for i in sec.items}
            memo.clear()
            now_plan = _items(domain.build_plan(s, now=NOW))
            assert published == {k: (i.status, i.severity, i.text_fr) for k, i in now_plan.items()}, seed
        # next_due: never later than the single decision's, never at or before NOW
        by = lesions(s)
        single = domain._next_due(s, NOW, domain.COMPRESSION_CURRENT, by, HOSPITAL_TZ, None)
        due = domain.next_due(s, NOW)
        assert due is None or due > NOW, seed
        assert single is None or (due is not None and due <= single), seed
    print(chunk, with_future, dict(total))
    assert with_future >= n * 0.9
    assert total["A"] > 0 and total["escalation"] > 0 and total["agreement"] > 0


def test_dt_rt_with_no_fact_dated_in_the_future_the_output_is_the_single_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Histories with records dated up to the tolerance ahead (not future) and corrections: every message and the
    state are byte-equal to those of the single decision (the views switched off), and no view is made."""
    full = {seed: _run(history(seed, future=False)) for seed in NO_FUTURE_SEEDS}
    made: list[str] = []

    def never(name: str) -> Any:
        def f(*args: Any, **kwargs: Any) -> Any:
            made.append(name)
            raise AssertionError(name)

        return f

    monkeypatch.setattr(as_of, "ahead", lambda *args: [])  # the single decision (A) only
    for name in ("view_b", "view_c", "merge"):
        monkeypatch.setattr(as_of, name, never(name))
    for seed, (s, out) in full.items():
        assert not [f for f in s.findings.values() if as_of.is_future(f.occurred_at, NOW)], seed
        single_s, single_out = _run(history(seed, future=False))
        assert [m.model_dump_json() for m in out] == [m.model_dump_json() for m in single_out], seed
        assert s.model_dump_json() == single_s.model_dump_json(), seed
    assert made == []


@pytest.mark.parametrize("later", [timedelta(0), timedelta(minutes=30), timedelta(hours=30)])
def test_dt_rt_warm_equals_cold_with_facts_dated_in_the_future(later: timedelta) -> None:
    for seed in range(0, 80):
        s, _ = _run(history(seed))  # the memo as the history left it
        at = NOW + later
        warm = [x.model().model_dump(mode="json") for x in domain.build_plan(s, now=at)]
        memo.clear()
        cold = [x.model().model_dump(mode="json") for x in domain.build_plan(s, now=at)]
        assert warm == cold, seed
