"""Helper DT-SYS, HAZ-27-FUTURE-HIDES: the systemic planner's "decide twice" checked against its three decisions on
random histories (seeded), after R28-RT2's differential harness for the radiotherapy planner.

Each history: one to three lesions imaged (statuses and modalities at random), life expectancies and responses,
clearances, vitamin D (some above 150 ng/mL: a critical item), calcium, a zoledronic acid infusion, the oligometastatic
status, a dental assessment; then one to three records dated ahead (recorded at `now`, dated now + 20 min .. 3 days):
copies of the patient's own findings and response assessments (same lesions), half contradicting (another status,
another modality, another response), some amendments or entered-in-error records dated ahead of a current or future
finding. For every history:

- before the records dated ahead, the plan is A's byte for byte (`plan_once`), and so are its deadlines;
- after, every item is A's, or B's where B and C decide the same, or B's critical item A lacks, marked "à vérifier",
  or B's item A lacks, suspended when it drafts an order, else kept with its text, marked (session 31), left out
  only when it is no alert and contradicts A's reading marked (a course under way against none, review R31-MERGE),
  or, where A reads the record ahead with no alert and B gives one, B's item suspended or marked, A's marked items
  contradicting it left out when no alert (R31-MERGE) (and nothing only C gives); `next_due` is never later than
  A's nor at or before `now`, and no later than the instant each record dated ahead becomes current;
- a memo-warm decision equals a cold one (items and `next_due`)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import as_of, as_of_merge
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import NOTIFY_STATUSES, SystemicState, apply_event, build_plan, plan_once
from tests.unit.test_systemic_rules import T0, oligo

NOW = T0 + timedelta(days=40)
TOL = r.Recency().future_tolerance
SEEDS = 320
STATUSES = (None, None, "confirmed", "suspected", "resolved")
MODALITIES = ("ct", "mri", "bone_scan", "fdg_pet")
RESPONSES = ("complete", "good", "stable", "progression")


def _env(rnd: random.Random, at: datetime, recorded: datetime | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.UUID(int=rnd.getrandbits(128), version=4),
        "patient_id": "p-dt-sys",
        "source": "t",
        "occurred_at": at,
        "recorded_at": recorded or at,
    }


def _past(rnd: random.Random) -> list[Message]:
    def when() -> datetime:
        return NOW - timedelta(minutes=rnd.randint(30, 60 * 24 * 35))

    evs: list[Message] = []
    for lesion in range(rnd.randint(1, 3)):
        for _ in range(rnd.randint(1, 3)):
            body = {"lesion_id": f"L{lesion}", "skeletal_site": "femur_shaft", "modality": rnd.choice(MODALITIES)}
            status = rnd.choice(STATUSES)
            if status is not None:
                body["status"] = status
            evs.append(ImagingFinding.model_validate({**_env(rnd, when()), **body}))
    for _ in range(rnd.randint(1, 3)):
        body2: dict[str, Any] = {}
        if rnd.random() < 0.7:
            body2["life_expectancy_months"] = rnd.choice([2.0, 12.0, 24.0])
        if rnd.random() < 0.6:
            body2["oncological_response"] = rnd.choice(RESPONSES)
        if body2:
            evs.append(ClinicalAssessment.model_validate({**_env(rnd, when()), **body2}))
    labs = [
        ("creatinine_clearance", "mL/min", [25.0, 45.0, 75.0]),
        ("vitamin_d_25oh", "ng/mL", [15.0, 35.0, 160.0]),
        ("corrected_calcium", "mmol/L", [2.4, 2.8, 3.7]),
    ]
    for analyte, unit, values in labs:
        if rnd.random() < 0.8:
            t = when()
            doc: dict[str, Any] = {**_env(rnd, t), "source": "lab-normalisation", "analyte": analyte}
            doc |= {"result_id": f"{analyte}-{rnd.getrandbits(32)}", "value": rnd.choice(values), "unit": unit}
            if analyte == "creatinine_clearance":
                weight = {"event_id": uuid.UUID(int=rnd.getrandbits(128), version=4), "analyte": "body_weight"}
                doc["derived_from"] = [{**weight, "value": 70.0, "unit": "kg", "occurred_at": t}]
            evs.append(NormalisedLab.model_validate(doc))
    if rnd.random() < 0.5:
        on = (NOW - timedelta(days=rnd.randint(5, 35))).date().isoformat()
        infusion = {"kind": "drug_administration", "drug": "zoledronic_acid", "on": on}
        evs.append(TreatmentEvent.model_validate({**_env(rnd, when()), "treatment": infusion}))
    if rnd.random() < 0.6:
        band = rnd.choice(["oligometastatic", "multi_metastatic"])
        evs.append(oligo(0, band).model_copy(update={**_env(rnd, when()), "source": "scoring"}))
    if rnd.random() < 0.8:
        dental = {"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": "2026-11-28"}
        evs.append(TreatmentEvent.model_validate({**_env(rnd, when()), "treatment": dental}))
    return sorted(evs, key=lambda e: e.recorded_at)


def _ahead(rnd: random.Random, past: list[Message]) -> list[Message]:
    """One to three records dated ahead: copies (half contradicting), corrections of a current or future finding."""
    pool = [e for e in past if isinstance(e, ImagingFinding) or getattr(e, "oncological_response", None)]
    out: list[Message] = []
    for _ in range(rnd.randint(1, 3)):
        dt = timedelta(minutes=rnd.randint(20, 60 * 24 * 3))
        base = rnd.choice(pool)
        update: dict[str, Any] = {**_env(rnd, NOW + dt, NOW)}
        if isinstance(base, ImagingFinding) and rnd.random() < 0.5:
            update |= {"status": rnd.choice(STATUSES), "modality": rnd.choice(MODALITIES)}
        elif isinstance(base, ClinicalAssessment) and rnd.random() < 0.5:
            update |= {"oncological_response": rnd.choice(RESPONSES)}
        copy = base.model_copy(update=update)
        targets = [e for e in [*past, *out] if isinstance(e, ImagingFinding) and e.record_status == "final"]
        if isinstance(base, ImagingFinding) and rnd.random() < 0.3 and targets:
            target = rnd.choice(targets)
            kind = rnd.choice(["amended", "entered-in-error"])
            fields = {"record_status": kind, "corrects": target.event_id, "lesion_id": target.lesion_id}
            copy = copy.model_copy(update=fields)
        out.append(copy)
    return out


def _run(events: list[Message], now: datetime) -> SystemicState:
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=now))
    return s


def _decision(x: PlanItem | None) -> Any:
    return as_of_merge._decision(x)


def _check(s: SystemicState, counts: Counter[str]) -> None:
    at = r.AsOf(now=NOW, memo=False)
    out = {x.key: x for x in build_plan(s, at)}
    at_a = r.AsOf(now=NOW, memo=False)
    a = {x.key: x for x in plan_once(s, at_a)}
    due, due_a = at.next_due(), at_a.next_due()
    assert due is None or due > NOW
    assert due_a is None or (due is not None and due <= due_a)  # never later than A's
    views = as_of.views(s, r.AsOf(now=NOW))
    if views is None:  # a fold no longer held is dated ahead: A
        assert out == a
        counts["A (no view)"] += len(a)
        return
    for f in views.future:  # a tick no later than each record dated ahead becomes current
        assert due is not None and due <= f.occurred_at - TOL
    b = {x.key: x for x in plan_once(views.current, r.AsOf(now=NOW, memo=False))}
    c = {x.key: x for x in plan_once(views.redated, r.AsOf(now=NOW, memo=False))}
    future_ids = {f.event_id for f in views.future}

    def alert(x: PlanItem | None) -> bool:
        """Notified (domain.NOTIFY_STATUSES; SYS-ONCO's info item is not)."""
        return x is not None and x.status in NOTIFY_STATUSES and not (x.rule_id == "SYS-ONCO" and x.severity == "info")

    def a_read_ahead(key: str) -> bool:
        """A's item published as resting on the record ahead (A decides as C, B otherwise, no emergency of B's, no
        other order of B's, no alert of B's where A has none): the plan then shows A's reading, marked "les données
        actuelles [...] autre décision"."""
        x_a, x_b, x_c = a.get(key), b.get(key), c.get(key)
        if x_a is None or _decision(x_b) == _decision(x_c) or _decision(x_a) != _decision(x_c):
            return False
        if x_b is not None and x_b.severity == "critical" and x_a.severity != "critical":
            return False
        if alert(x_b) and not alert(x_a):
            return False
        return not (x_a.orders and x_b is not None and x_b.orders and x_b.orders != x_a.orders)

    def under_way(x: PlanItem) -> bool | None:
        """What the item states of a course under way (SYS-REVIEW-2Y: one; SYS-AR-START: one only when "done")."""
        return True if x.rule_id == "SYS-REVIEW-2Y" else (x.status == "done") if x.rule_id == "SYS-AR-START" else None

    def b_raised(key: str) -> bool:
        """B's alert published where A reads the record ahead (A decides as C) with none (R31-MERGE)."""
        x_a, x_b, x_c = a.get(key), b.get(key), c.get(key)
        if x_a is None or x_b is None or _decision(x_b) == _decision(x_c) or _decision(x_a) != _decision(x_c):
            return False
        if x_b.severity == "critical" and x_a.severity != "critical":
            return False
        return alert(x_b) and not alert(x_a) and not (x_a.orders and x_b.orders and x_b.orders != x_a.orders)

    def treats(x: PlanItem | None) -> bool:
        """Drafts an anti-resorptive order (SYS-AR-START L1263-1265: zoledronic acid or denosumab)."""
        return x is not None and any(o.drug in ("zoledronic_acid", "denosumab") for o in x.orders)

    # an anti-resorptive order current data draft, published on some key (review R31-MERGE2: beside it B's raised
    # start is its recommendation marked, not suspended "avant toute prescription")
    treated = any(treats(x) and treats(b.get(k)) for k, x in out.items())
    marked_course = {under_way(a[k]) for k in a if a_read_ahead(k)} - {None}
    raised_course = {under_way(b[k]) for k in b if b_raised(k)} - {None}
    for key in {*a, *b, *c}:
        x, x_a, x_b, x_c = out.get(key), a.get(key), b.get(key), c.get(key)
        agree = _decision(x_b) == _decision(x_c)
        if x is None:
            if x_a is not None and not (agree and x_b is None):
                # A's item marked left out only when no alert and contradicting B's alert raised (R31-MERGE)
                assert a_read_ahead(key) and not alert(x_a) and not x_a.orders, key
                assert under_way(x_a) is not None and (not under_way(x_a)) in raised_course, key
                counts["A's reading marked, contradicting B's alert: left out"] += 1
            if x_a is None and x_b is not None and not agree:
                # B's item A lacks left out only when no alert and contradicting A's reading marked (R31-MERGE)
                assert x_b.severity != "critical" and x_b.status != "recommended" and not x_b.orders
                assert not alert(x_b) and under_way(x_b) is not None and (not under_way(x_b)) in marked_course
                counts["B item A lacks, contradicting A's reading marked: left out"] += 1
            counts["absent (A or B == C)"] += 1
        elif agree and x == x_b:
            counts["B == C: B" + (" (same as A)" if x == x_a else " (differs from A)")] += 1
        elif x == x_a:
            assert not agree
            counts["B != C: A"] += 1
        elif x_a is not None and not agree and _decision(x_a) == _decision(x_c) and x.key == x_a.key:
            # A read the record dated ahead as holding now (A decides as C): said so, to verify (review R29-SYS);
            # suspended (no order) when it drafts an order current data would not draft
            shown = {i.source_event_id for i in x.inputs if i.name == "future_dated_record"}
            assert shown == {f.event_id for f in views.future} and "daté dans le futur" in x.text_fr
            if x_b is not None and x_a.orders and x_b.orders and x_b.orders != x_a.orders:
                # current data draft another order: B's, said to be contradicted (review R29B)
                assert x.text_fr.startswith(x_b.text_fr) and x.orders == x_b.orders and x.status == x_b.status
                counts["A as C, B's other order marked"] += 1
            elif x_b is not None and alert(x_b) and not alert(x_a):
                # current data raise an alert A's reading does not (R31-MERGE): B's, suspended when it drafts, else
                # its status and text, marked; an alert either way
                assert alert(x) and x.title.endswith(x_b.title)
                if (x_b.status == "recommended" or x_b.orders) and not (
                    treated and x_b.rule_id == "SYS-AR-START" and not x_b.orders
                ):
                    assert (x.status, x.severity, x.orders) == ("cannot_decide", "warning", [])
                    counts["A as C with no alert, B's alert suspended"] += 1
                else:
                    assert (x.status, x.severity) == (x_b.status, x_b.severity) and x.text_fr.startswith(x_b.text_fr)
                    assert x.orders == x_b.orders
                    if x_b.status == "recommended":
                        counts["A as C with no alert, B's start marked beside B's order"] += 1
                    else:
                        counts["A as C with no alert, B's alert marked"] += 1
            elif x.status == x_a.status:
                assert x.text_fr.startswith(x_a.text_fr) and x.orders == x_a.orders
                counts["A as C, marked"] += 1
            else:
                assert (x.status, x.severity, x.orders) == ("cannot_decide", "warning", [])
                assert x_a.orders and (x_b is None or not x_b.orders)
                counts["A as C, suspended"] += 1
        elif (
            x_a is None
            and not agree
            and x_b is not None
            and x_b.severity != "critical"
            and (x_b.status == "recommended" or x_b.orders)
        ):
            # B's recommendation (or order) A lacks: suspended, to verify (the lead), no order, the future records shown
            assert (x.status, x.severity, x.orders) == ("cannot_decide", "warning", [])
            assert "daté dans le futur" in x.text_fr and x.key == x_b.key
            assert {i.source_event_id for i in x.inputs if i.name == "future_dated_record"} == future_ids
            counts["B recommended A lacks, suspended"] += 1
        elif x_a is None and not agree and x_b is not None and x_b.severity != "critical":
            # B's other item A lacks (session 31, reviews R30-SYS, R30-MERGE): kept as current data give it, its
            # status and text, marked, the future records shown; beside A's reading marked only when it is an alert or
            # does not contradict it (R31-MERGE)
            assert alert(x_b) or under_way(x_b) is None or (not under_way(x_b)) not in marked_course
            assert x.model_dump(exclude={"text_fr", "inputs"}) == x_b.model_dump(exclude={"text_fr", "inputs"})
            assert x.text_fr.startswith(x_b.text_fr) and "daté dans le futur" in x.text_fr
            assert [i for i in x.inputs if i.name != "future_dated_record"] == x_b.inputs
            assert {i.source_event_id for i in x.inputs if i.name == "future_dated_record"} == future_ids
            counts["B item A lacks, kept marked"] += 1
        else:  # an emergency of current data only, marked to verify
            assert x_b is not None and x_b.severity == "critical" and (x_a is None or x_a.severity != "critical")
            assert x.text_fr.startswith(x_b.text_fr) and "À vérifier" in x.text_fr
            assert [i for i in x.inputs if i.name != "future_dated_record"] == x_b.inputs
            assert {i.source_event_id for i in x.inputs if i.name == "future_dated_record"} == future_ids
            counts["B emergency, to verify"] += 1
        assert x is None or x_a is not None or x_b is not None  # nothing only C gives


def _warm_equals_cold(s: SystemicState) -> None:
    cold = r.AsOf(now=NOW, memo=False)
    plan = [x.model_dump_json() for x in build_plan(s, cold)]
    for _ in range(2):
        warm = r.AsOf(now=NOW)
        assert [x.model_dump_json() for x in build_plan(s, warm)] == plan
        assert warm.next_due() == cold.next_due()


def test_dt_sys_differential_over_random_histories_with_records_dated_ahead() -> None:
    counts: Counter[str] = Counter()
    viewed = 0
    m.clear()
    try:
        for seed in range(SEEDS):
            rnd = random.Random(seed)
            past = _past(rnd)
            before = _run(past, NOW)
            if not as_of.involves_future(before, r.AsOf(now=NOW)):  # no record dated ahead: A, byte for byte
                at, at_a = r.AsOf(now=NOW, memo=False), r.AsOf(now=NOW, memo=False)
                plan = [x.model_dump_json() for x in build_plan(before, at)]
                assert plan == [x.model_dump_json() for x in plan_once(before, at_a)], seed
                assert at.next_due() == at_a.next_due(), seed
                counts["histories without a future fact"] += 1
            s = _run([*past, *_ahead(rnd, past)], NOW)
            viewed += as_of.involves_future(s, r.AsOf(now=NOW))
            _check(s, counts)
            _warm_equals_cold(s)
    finally:
        m.clear()
    print(f"\nDT-SYS differential: {SEEDS} histories, {viewed} with a future fact of the two folds; units: {counts}")
    assert counts["histories without a future fact"] == SEEDS and viewed >= SEEDS * 9 // 10
