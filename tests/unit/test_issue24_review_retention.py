"""Review of issue 25's bounded lab aggregate (H-review24): sequences where the bounded state must give what an
unbounded one gives - a partner withdrawn after the next closest was dropped (LAB-CA-CORR, LAB-CRCL re-pair with
the next closest), and a derived value withdrawn with its input after that input left the kept results
(LAB-CORRECTION: "every value derived from it")."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult, PatientRecord
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import Ingested, check_units
from tests.unit.test_issue25_lab_retention import UNBOUNDED, apply_with
from tests.unit.test_lab_domain import ANALYTES, CFG, T0, result

Steps = list[Sequence[LabResult | PatientRecord]]
SMALL = dataclasses.replace(CFG, per_analyte=2, stamps=20)
RECORD = PatientRecord.model_validate(
    {
        "event_id": "00000000-0000-0000-0000-0000000000ab",
        "patient_id": "p1",
        "occurred_at": T0 - timedelta(days=30),
        "recorded_at": T0 - timedelta(days=30),
        "source": "adt",
        "birth_date": "1956-04-02",
        "sex": "female",
    }
)


def run(cfg: LabConfig, steps: Steps) -> tuple[LabState, list[NormalisedLab]]:
    s, last = LabState(), list[NormalisedLab]()
    for items in steps:
        s, last = apply_with(cfg, s, *items)
    return s, last


def withdrawal(r: LabResult, hours: float) -> LabResult:
    return result(
        _analyte(r),
        None,
        r.unit or "",
        rid=r.result_id,
        at=r.occurred_at,
        recorded=r.occurred_at + timedelta(hours=hours),
        status="entered-in-error",
    )


def _analyte(r: LabResult) -> str:
    return {"2000-8": "total_calcium", "1751-7": "albumin", "14682-9": "creatinine", "29463-7": "body_weight"}[
        r.code.code
    ]


def view(out: list[NormalisedLab], rid: str) -> list[tuple[object, ...]]:
    return [(o.status, o.value, tuple(o.missing)) for o in out if o.result_id == rid]


@pytest.mark.parametrize("withdrawn", [1, 2])
def test_a_kept_calcium_re_pairs_with_the_next_closest_albumin_when_its_partner_is_withdrawn(withdrawn: int) -> None:
    """The calcium is kept (its analyte's newest); its closest albumins (1 h, 3 h, 5 h) are older than the newest
    two albumins. Withdrawing the closest (then the next) must re-pair it as an unbounded state does (LAB-CA-CORR:
    the closest albumin within 48 h), not leave it without albumin."""
    ca = result("total_calcium", 2.6, "mmol/L", rid="ca", at=T0)
    near = [result("albumin", 30 + i, "g/L", rid=f"a{i}", at=T0 + timedelta(hours=1 + 2 * i)) for i in range(3)]
    later = [result("albumin", 40, "g/L", rid=f"l{i}", at=T0 + timedelta(days=10 + i)) for i in range(2)]
    steps: Steps = [[ca], *[[a] for a in near], *[[a] for a in later]]
    steps += [[withdrawal(near[i], 100 + i)] for i in range(withdrawn)]
    bounded, out_b = run(SMALL, steps)
    _, out_u = run(UNBOUNDED, steps)
    assert "ca" in bounded.results  # a result still kept
    expected = view(out_u, "corrected:ca")
    assert expected and expected[-1][1] is not None  # re-paired with the next closest albumin
    assert view(out_b, "corrected:ca") == expected


def test_a_kept_creatinine_takes_the_next_closest_weight_when_its_weight_is_withdrawn() -> None:
    """LAB-CRCL: the weight closest to the creatinine; withdrawing it gives the next closest, as unbounded."""
    creat = result("creatinine", 90, "umol/L", rid="cr", at=T0)
    near = [result("body_weight", 60 + 5 * i, "kg", rid=f"w{i}", at=T0 + timedelta(hours=1 + i)) for i in range(2)]
    later = [result("body_weight", 80, "kg", rid=f"lw{i}", at=T0 + timedelta(days=10 + i)) for i in range(2)]
    steps: Steps = [[RECORD], [creat], *[[w] for w in near], *[[w] for w in later]]
    steps.append([withdrawal(near[0], 100)])
    bounded, out_b = run(SMALL, steps)
    _, out_u = run(UNBOUNDED, steps)
    assert "cr" in bounded.results
    expected = view(out_u, "crcl:cr")
    assert expected and expected[-1][1] is not None
    assert view(out_b, "crcl:cr") == expected


@pytest.mark.parametrize("analyte", ["total_calcium", "creatinine"])
def test_a_result_dropped_then_withdrawn_withdraws_what_was_derived_from_it(analyte: str) -> None:
    """A calcium (creatinine) derived with its albumin (weight) leaves the kept results; its withdrawal arrives
    later: the corrected calcium (clearance) derived from it is withdrawn downstream too, as unbounded."""
    unit, partner, p_unit, p_value, rid = (
        ("mmol/L", "albumin", "g/L", 30.0, "corrected:old")
        if analyte == "total_calcium"
        else ("umol/L", "body_weight", "kg", 70.0, "crcl:old")
    )
    value = 3.7 if analyte == "total_calcium" else 400.0
    old = result(analyte, value, unit, rid="old", at=T0)
    steps: Steps = [[RECORD], [old, result(partner, p_value, p_unit, rid="p", at=T0)]]
    steps += [[result(analyte, value / 2, unit, rid=f"n{i}", at=T0 + timedelta(days=1 + i))] for i in range(4)]
    steps += [[result(partner, p_value, p_unit, rid=f"np{i}", at=T0 + timedelta(days=1 + i))] for i in range(4)]
    before, _ = run(SMALL, steps)
    assert "old" not in before.results and "old" in before.dropped  # it left the kept results
    steps.append([withdrawal(old, 24 * 30)])
    _, out_b = run(SMALL, steps)
    _, out_u = run(UNBOUNDED, steps)
    assert view(out_u, rid) == [("withdrawn", None, ())]
    assert view(out_b, rid) == [("withdrawn", None, ())]


def test_no_value_for_a_dropped_result_withdraws_its_value_downstream() -> None:
    """Issue 24's dataAbsentReason: "no value" replacing a value is published as its withdrawal. When the value had
    left the kept results (issue 25), the no-value version must still withdraw it (and what was derived from it)."""
    old = result("total_calcium", 3.7, "mmol/L", rid="old", at=T0)
    steps: Steps = [[old, result("albumin", 30, "g/L", rid="p", at=T0)]]
    steps += [[result("total_calcium", 2.4, "mmol/L", rid=f"n{i}", at=T0 + timedelta(days=1 + i))] for i in range(4)]
    s, _ = run(SMALL, steps)
    assert "old" not in s.results and "old" in s.dropped
    absent = check_units(
        result(
            "total_calcium",
            None,
            "mmol/L",
            rid="old",
            at=T0,
            recorded=T0 + timedelta(days=9),
            status="entered-in-error",
        ),
        ANALYTES,
    )
    assert absent is not None
    absent.absent = "error"
    s, out = apply_ingested(s, Ingested(key="k2", patient_id="p1", labs=[absent]), SMALL)
    assert [(o.result_id, o.status, o.value) for o in out] == [
        ("old", "withdrawn", None),
        ("corrected:old", "withdrawn", None),
    ]


def test_a_resent_old_message_does_not_bring_back_a_value_withdrawn_beyond_the_retention_horizon() -> None:
    """An interface engine resends a four-month-old message (after an outage, a replay): its calcium was entered in
    error since. Beyond LAB_RETENTION_DAYS (90) before the patient's newest result nothing of that result was kept
    (no stamp), so the resent value was taken for a new result and published again as final (LAB-CORRECTION: an
    older result arriving late must not overwrite a newer one). With the default configuration, not only a small
    cap. The same for the first version of an amended result."""
    original = result("total_calcium", 3.9, "mmol/L", rid="R", at=T0)
    steps: Steps = [[original], [withdrawal(original, 2)]]
    steps.append([result("total_calcium", 2.4, "mmol/L", rid="N", at=T0 + timedelta(days=120))])
    steps.append([original])  # the same message again
    s, out = run(CFG, steps)
    assert [(o.status, o.value) for o in out if o.result_id == "R"] == [] and "R" not in s.results
    amended = result("total_calcium", 2.5, "mmol/L", rid="R", at=T0, recorded=T0 + timedelta(hours=2), status="amended")
    _, out = run(CFG, [[original], [amended], *steps[2:]])
    assert [(o.status, o.value) for o in out if o.result_id == "R"] == []


@pytest.mark.parametrize("analyte", ["total_calcium", "creatinine"])
def test_a_result_withdrawn_then_issued_again_pairs_as_before(analyte: str) -> None:
    """A calcium (creatinine) entered in error, then issued again with a value (a newer version): while it was
    withdrawn its partners were not kept with it, so the value issued again found no albumin (a far weight), where
    an unbounded state pairs the closest (found by a generated comparison of bounded and unbounded states)."""
    unit, partner, p_unit, rid = (
        ("mmol/L", "albumin", "g/L", "corrected:x")
        if analyte == "total_calcium"
        else ("umol/L", "body_weight", "kg", "crcl:x")
    )
    value, again = (2.6, 2.8) if analyte == "total_calcium" else (90.0, 120.0)
    x = result(analyte, value, unit, rid="x", at=T0)
    steps: Steps = [[RECORD], [x], [result(partner, 30 if analyte == "total_calcium" else 60, p_unit, rid="p", at=T0)]]
    steps.append([withdrawal(x, 5)])
    steps += [
        [result(partner, 40 if analyte == "total_calcium" else 80, p_unit, rid=f"l{i}", at=T0 + timedelta(days=10 + i))]
        for i in range(3)
    ]
    steps.append([result(analyte, again, unit, rid="x", at=T0, recorded=T0 + timedelta(days=20), status="amended")])
    bounded, out_b = run(SMALL, steps)
    _, out_u = run(UNBOUNDED, steps)
    assert "x" in bounded.results
    expected = view(out_u, rid)
    assert expected and expected[-1][1] is not None
    assert view(out_b, rid) == expected


DENSE_KINDS = [
    ("total_calcium", "mmol/L", (2.0, 3.8)),
    ("ionised_calcium", "mmol/L", (1.0, 1.6)),
    ("albumin", "g/L", (20.0, 45.0)),
    ("creatinine", "umol/L", (50.0, 300.0)),
    ("body_weight", "kg", (45.0, 90.0)),
]


@st.composite
def dense_histories(draw: st.DrawFn) -> list[LabResult]:
    """Draws hours to days apart (some date-only, some censored), each reported when drawn; withdrawals, amendments
    and late older versions of ANY result (not only the newest), so partners are withdrawn after others were
    dropped. (A new draw reported after the newest `cap` of its partner analyte, and older than they, pairs with what
    is kept: the documented residual of HAZ-25-LAB-R01, so not generated here.)"""
    out: list[LabResult] = []
    mine: dict[str, list[LabResult]] = {}
    at = T0
    for i in range(draw(st.integers(5, 50))):
        at += timedelta(hours=draw(st.sampled_from([1, 2, 3, 6, 12, 24, 72])))
        analyte, unit, (lo, hi) = draw(st.sampled_from(DENSE_KINDS))
        known = mine.setdefault(analyte, [])
        action = draw(st.sampled_from(["new", "new", "new", "withdraw", "amend", "late"]))
        value = round(draw(st.floats(lo, hi)), 2)
        if action in ("withdraw", "amend") and known:
            t = draw(st.sampled_from(known))
            status = "entered-in-error" if action == "withdraw" else "amended"
            v = None if action == "withdraw" else value
            out.append(result(analyte, v, unit, rid=t.result_id, at=t.occurred_at, recorded=at, status=status))
        elif action == "late" and known:
            t = draw(st.sampled_from(known))
            out.append(result(analyte, t.value, unit, rid=t.result_id, at=t.occurred_at, recorded=t.occurred_at))
        else:
            r = result(analyte, value, unit, rid=f"r{i}", at=at)
            if draw(st.integers(0, 3)) == 0:  # a date-only draw (LAB-CA-CORR pairs it only when surely within)
                r = r.model_copy(update={"occurred_at": at.replace(hour=0), "occurred_at_precision": "date"})
            if draw(st.integers(0, 4)) == 0:  # a censored value
                r = r.model_copy(update={"comparator": draw(st.sampled_from(["<", ">", "<=", ">="]))})
            known.append(r)
            out.append(r)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_histories(), st.integers(2, 4))
def test_a_kept_result_derives_what_an_unbounded_state_derives(history: list[LabResult], cap: int) -> None:
    bounded = dataclasses.replace(CFG, per_analyte=cap, stamps=10 * cap)
    a, _ = apply_with(bounded, LabState(), RECORD)
    b, _ = apply_with(UNBOUNDED, LabState(), RECORD)
    held_a: dict[str, tuple[object, ...]] = {}
    held_b: dict[str, tuple[object, ...]] = {}
    for item in history:
        a, out_a = apply_with(bounded, a, item)
        b, out_b = apply_with(UNBOUNDED, b, item)
        for out, held in ((out_a, held_a), (out_b, held_b)):
            for o in out:
                if o.result_id.partition(":")[0] in ("corrected", "crcl"):
                    held[o.result_id] = (o.status, o.value, tuple(o.missing))
        for rid, content in held_b.items():
            if rid.partition(":")[2] in a.results:
                assert held_a.get(rid) == content, (rid, held_a.get(rid), content)


def test_a_date_only_calcium_given_its_hour_by_an_amendment_pairs_as_unbounded() -> None:
    """LAB-CA-CORR with a date-only draw pairs only the albumins surely within 48 h whatever its hour; an amendment
    that gives the hour (same day) makes a closer albumin eligible. It must not have been dropped meanwhile (found
    by a generated comparison with date-only draws)."""
    day = T0.replace(hour=0)
    ca = result("total_calcium", 2.6, "mmol/L", rid="ca", at=day).model_copy(update={"occurred_at_precision": "date"})
    surely = result("albumin", 30, "g/L", rid="a-surely", at=day + timedelta(hours=16))  # 16 h + 24 h <= 48 h
    closer = result("albumin", 24, "g/L", rid="a-closer", at=day + timedelta(hours=25))  # 25 h + 24 h > 48 h
    later = [result("albumin", 40, "g/L", rid=f"l{i}", at=day + timedelta(days=10 + i)) for i in range(2)]
    hour = result(
        "total_calcium",
        2.6,
        "mmol/L",
        rid="ca",
        at=day + timedelta(hours=23),
        recorded=day + timedelta(days=20),
        status="amended",
    )
    steps: Steps = [[ca], [surely], [closer], *[[a] for a in later], [hour]]
    bounded, out_b = run(SMALL, steps)
    _, out_u = run(UNBOUNDED, steps)
    assert "ca" in bounded.results
    expected = view(out_u, "corrected:ca")
    assert expected and expected[-1][1] is not None
    assert view(out_b, "corrected:ca") == expected


@pytest.mark.parametrize("partner", ["albumin", "body_weight"])
def test_two_partners_drawn_at_the_same_time_pair_the_same_whatever_the_delivery_order(partner: str) -> None:
    """Two albumins (weights) with the same draw time and different values: the pairing took whichever the aggregate
    happened to hold first (its insertion order, which retention also changes: a re-held result goes last), so the
    same facts delivered in another order gave another corrected calcium (clearance). Found by the generated
    comparison (a weight withdrawn, dropped, then issued again). Now the most recently reported one."""
    unit, anchor, a_unit, a_value, rid = (
        ("g/L", "total_calcium", "mmol/L", 2.6, "corrected:x")
        if partner == "albumin"
        else ("kg", "creatinine", "umol/L", 120.0, "crcl:x")
    )
    low, high = (25.0, 40.0) if partner == "albumin" else (55.0, 85.0)
    first = result(partner, low, unit, rid="p1", at=T0 + timedelta(hours=2), recorded=T0 + timedelta(hours=3))
    second = result(partner, high, unit, rid="p2", at=T0 + timedelta(hours=2), recorded=T0 + timedelta(hours=4))
    x = result(anchor, a_value, a_unit, rid="x", at=T0)
    values = []
    for order in ([first, second], [second, first]):
        state, held = LabState(), list[tuple[object, ...]]()
        steps: Steps = [[RECORD], [x], *[[p] for p in order]]
        for items in steps:
            state, out = apply_with(CFG, state, *items)
            held += view(out, rid)
        values.append(held[-1])
    assert values[0] == values[1] and values[0][1] is not None
