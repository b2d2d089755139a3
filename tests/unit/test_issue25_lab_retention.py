"""Issue 25: lab-normalisation's aggregate is bounded (services/lab_normalisation/retention.py `_prune`): the newest
results per analyte are kept whole, the versions of the others within LAB_RETENTION_DAYS as stamps, and no output
changes while amendments target kept results; a late older version of a dropped result still changes nothing
(LAB-CORRECTION)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult, PatientRecord
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import Ingested, check_units
from services.lab_normalisation.state import PARTNERS
from shared.errors import Rejected
from tests.unit.histories import lab_record
from tests.unit.test_lab_domain import ANALYTES, CFG, T0, result

UNBOUNDED = dataclasses.replace(CFG, per_analyte=10**9, stamps=10**9)


def apply_with(
    cfg: LabConfig, state: LabState, *items: LabResult | PatientRecord
) -> tuple[LabState, list[NormalisedLab]]:
    labs = [x for x in (check_units(i, ANALYTES) for i in items if isinstance(i, LabResult)) if x is not None]
    batch = Ingested(key="k", patient_id="p1", labs=labs, patients=[i for i in items if isinstance(i, PatientRecord)])
    return apply_ingested(state, batch, cfg)


def comparable(out: list[NormalisedLab]) -> list[str]:
    return [o.model_dump_json() for o in out]


def test_a_flood_of_one_analyte_keeps_the_state_bounded_and_the_newest_whole() -> None:
    s = LabState()
    for i in range(3_000):
        s, _ = apply_with(
            CFG, s, result("total_calcium", 2.3 + (i % 5) / 10, "mmol/L", rid=f"ca{i}", at=T0 + timedelta(minutes=i))
        )
    assert len(s.results) == CFG.per_analyte
    assert {r.result_id for r in s.results.values()} == {f"ca{i}" for i in range(3_000 - CFG.per_analyte, 3_000)}
    assert len(s.dropped) == CFG.stamps
    assert len(s.model_dump_json()) < 64_000  # stamps included; without them 3,000 results were ~1 MB


def test_a_late_older_version_of_a_dropped_result_changes_nothing_and_an_amendment_is_published() -> None:
    s, _ = apply_with(CFG, LabState(), result("total_calcium", 2.4, "mmol/L", rid="old", at=T0))
    s, out = apply_with(
        CFG,
        s,
        result(
            "total_calcium",
            None,
            "mmol/L",
            rid="old",
            at=T0,
            recorded=T0 + timedelta(hours=2),
            status="entered-in-error",
        ),
    )
    assert [o.status for o in out if o.analyte == "total_calcium"] == ["withdrawn"]
    for i in range(CFG.per_analyte + 5):  # "old" leaves the kept results
        s, _ = apply_with(CFG, s, result("total_calcium", 2.3, "mmol/L", rid=f"n{i}", at=T0 + timedelta(hours=1 + i)))
    assert "old" not in s.results and "old" in s.dropped
    # the first version arrives again, late: the withdrawal stands
    s, out = apply_with(CFG, s, result("total_calcium", 2.4, "mmol/L", rid="old", at=T0, recorded=T0))
    assert out == []
    # a newer version is a fact: published
    s, out = apply_with(
        CFG,
        s,
        result("total_calcium", 2.5, "mmol/L", rid="old", at=T0, recorded=T0 + timedelta(hours=3), status="amended"),
    )
    assert [(o.analyte, o.value) for o in out if o.analyte == "total_calcium"] == [("total_calcium", 2.5)]


KINDS = [
    ("total_calcium", "mmol/L", (2.0, 3.8)),
    ("albumin", "g/L", (20.0, 45.0)),
    ("creatinine", "umol/L", (50.0, 300.0)),
    ("body_weight", "kg", (45.0, 90.0)),
]


@st.composite
def histories(draw: st.DrawFn) -> list[LabResult]:
    """Results every few hours to weeks, some amended (only the newest few per analyte: an amendment of a result no
    longer kept whole is a documented difference), some re-sent late in an older version."""
    n = draw(st.integers(min_value=1, max_value=120))
    out: list[LabResult] = []
    at = T0 - timedelta(days=400)
    per_kind: dict[str, list[LabResult]] = {}
    for i in range(n):
        at += timedelta(hours=draw(st.integers(min_value=1, max_value=24 * 30)))
        analyte, unit, (lo, hi) = draw(st.sampled_from(KINDS))
        value = round(draw(st.floats(min_value=lo, max_value=hi)), 2)
        action = draw(st.sampled_from(["new", "new", "new", "amend", "late"]))
        mine = per_kind.setdefault(analyte, [])
        if action == "amend" and mine:
            target = draw(st.sampled_from(mine[-4:]))
            status = draw(st.sampled_from(["amended", "entered-in-error"]))
            out.append(
                result(analyte, value, unit, rid=target.result_id, at=target.occurred_at, recorded=at, status=status)
            )
        elif action == "late" and mine:
            target = draw(st.sampled_from(mine))
            out.append(
                result(
                    analyte,
                    target.value,
                    unit,
                    rid=target.result_id,
                    at=target.occurred_at,
                    recorded=target.occurred_at,
                )
            )
        else:
            r = result(analyte, value, unit, rid=f"r{i}", at=at)
            mine.append(r)
            out.append(r)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(min_value=4, max_value=8))
def test_retention_changes_no_output(history: list[LabResult], cap: int) -> None:
    bounded = dataclasses.replace(CFG, per_analyte=cap, stamps=10 * cap)
    a, b = LabState(), LabState()
    record = lab_record()
    a, _ = apply_with(bounded, a, record)
    b, _ = apply_with(UNBOUNDED, b, record)
    view_a: dict[str, tuple[object, ...]] = {}  # what a consumer holds: derived result_id -> its newest content
    view_b: dict[str, tuple[object, ...]] = {}
    for item in history:
        a, out_a = apply_with(bounded, a, item)
        b, out_b = apply_with(UNBOUNDED, b, item)
        # the results themselves: exactly the same outputs
        assert comparable([o for o in out_a if not o.derived_from and o.rule_ids[0] != "LAB-CA-CORR"]) == comparable(
            [o for o in out_b if not o.derived_from and o.rule_ids[0] != "LAB-CA-CORR"]
        )
        for out, view in ((out_a, view_a), (out_b, view_b)):
            for o in out:
                if o.result_id.partition(":")[0] in ("corrected", "crcl"):
                    view[o.result_id] = (o.status, o.value, tuple(o.missing), tuple(x.event_id for x in o.derived_from))
        # derived values: what a consumer holds is the same for every result still kept whole; the one documented
        # difference (README "Retention: lab-normalisation") is a value derived again from a result no longer kept
        # whole (a new albumin pairing a calcium beyond the newest kept within 48 h, a new weight re-deriving the
        # clearance of an older creatinine), which is not published again
        for rid, content in view_b.items():
            if rid.partition(":")[2] in a.results:
                assert view_a.get(rid) == content, (rid, view_a.get(rid), content)
        # the newest `cap` per analyte, and the partners of the kept calciums and creatinines (HAZ-25-LAB-R01: the
        # `PARTNERS` closest of each, in two lists for a calcium: surely within the window, and within it + 2 days)
        assert all(
            sum(1 for r in a.results.values() if r.analyte == k) <= (1 + 2 * PARTNERS) * cap for k, _, _ in KINDS
        )
        assert set(a.results) <= set(b.results)


# Minimal examples of `test_retention_changes_no_output --hypothesis-seed=3` (helper HJ, 2026-12-05), fixed by helper
# HL: the evicted stamps' watermark (`LabState.evicted`, HAZ-25-LAB-02) and the closest partner dropped per kept
# calcium or creatinine (`LabState.nearest_dropped`, HAZ-25-LAB-R01).
_RECORD = lab_record()


def _side_by_side(
    history: list[LabResult], cap: int
) -> list[tuple[LabState, list[NormalisedLab], LabState, list[NormalisedLab]]]:
    bounded = dataclasses.replace(CFG, per_analyte=cap, stamps=10 * cap)
    a, _ = apply_with(bounded, LabState(), _RECORD)
    b, _ = apply_with(UNBOUNDED, LabState(), _RECORD)
    steps = []
    for item in history:
        a, out_a = apply_with(bounded, a, item)
        b, out_b = apply_with(UNBOUNDED, b, item)
        steps.append((a, out_a, b, out_b))
    return steps


_CA = ("total_calcium", 2.0, "mmol/L")
_T = T0 - timedelta(days=400)


def test_seed3_a_late_version_after_its_stamp_was_evicted_changes_nothing() -> None:
    history = [result(*_CA, rid=f"r{i}", at=_T + timedelta(hours=i)) for i in range(50)]
    late = result(*_CA, rid="r0", at=_T, recorded=_T)  # r0's stamp is the oldest of 46 (cap 40)
    steps = _side_by_side(history, cap=4)
    for _a, out_a, _b, out_b in steps:
        assert comparable([o for o in out_a if not o.derived_from]) == comparable(
            [o for o in out_b if not o.derived_from]
        )
    # the unbounded state ignores it as older; the bounded one cannot tell it from a new result: never published,
    # the message dead-lettered with the reason (review RL: never silently, tests/unit/test_review_rl_lab_retention.py)
    assert apply_with(UNBOUNDED, steps[-1][2], late)[1] == []
    with pytest.raises(Rejected, match="cannot be placed"):
        apply_with(dataclasses.replace(CFG, per_analyte=4, stamps=40), steps[-1][0], late)


def test_seed3_a_withdrawn_weight_leaves_the_same_partners_as_unbounded() -> None:
    kinds = {"w": ("body_weight", 45.0, "kg"), "c": ("creatinine", 50.0, "umol/L")}
    history = [result(*kinds[k], rid=f"r{i}", at=_T + timedelta(hours=i)) for i, k in enumerate("wwcwww")]
    history.append(
        result(
            *kinds["w"],
            rid="r1",
            at=_T + timedelta(hours=1),
            recorded=_T + timedelta(hours=9),
            status="entered-in-error",
        )
    )
    history.append(result(*kinds["w"], rid="r26", at=_T + timedelta(days=91)))  # the old weights leave the horizon
    for a, _, b, _ in _side_by_side(history, cap=4):
        assert set(a.results) <= set(b.results)


def test_seed3_two_calciums_keep_their_partner_albumins_within_the_bound() -> None:
    """HAZ-25-LAB-R01: each kept calcium keeps its `PARTNERS` closest albumins: two calciums keep 5 albumins besides
    the newest cap (the property's bound was `2 * cap`, from when one partner was kept)."""
    history = [
        result(*(_CA if i in (2, 4) else ("albumin", 20.0, "g/L")), rid=f"r{i}", at=_T + timedelta(hours=i))
        for i in range(11)
    ]
    for a, _, _, _ in _side_by_side(history, cap=4):
        assert sum(1 for r in a.results.values() if r.analyte == "albumin") <= (1 + 2 * PARTNERS) * 4
    assert {r.result_id for r in a.results.values()} == {f"r{i}" for i in range(11)}  # r2, r4 reach every albumin


def test_a_newer_version_of_a_result_whose_stamp_was_evicted_is_published_as_unbounded() -> None:
    """HAZ-25-LAB-02: the evicted stamps' watermark refuses only versions no newer than it: an amendment (recorded
    later) of such a result is published as the unbounded state publishes it, and a withdrawal withdraws its
    corrected calcium too (LAB-CORRECTION: "every value derived from it")."""
    history = [result("albumin", 30.0, "g/L", rid="alb", at=_T + timedelta(minutes=30))]
    history += [result(*_CA, rid=f"r{i}", at=_T + timedelta(hours=i)) for i in range(50)]
    late = _T + timedelta(days=5)
    for version in (
        result("total_calcium", 2.9, "mmol/L", rid="r0", at=_T, recorded=late, status="amended"),
        result("total_calcium", None, "mmol/L", rid="r0", at=_T, recorded=late, status="entered-in-error"),
    ):
        steps = _side_by_side([*history, version], cap=4)
        _, out_a, _, out_b = steps[-1]
        assert "r0" not in steps[-2][0].results and steps[-2][0].evicted is not None  # evicted, not held
        assert comparable([o for o in out_a if not o.derived_from]) == comparable(
            [o for o in out_b if not o.derived_from]
        )
        assert [o.status for o in out_a if o.result_id == "r0"] == [
            version.status.replace("entered-in-error", "withdrawn")
        ]
        assert [o.status for o in out_a if o.result_id == "corrected:r0"] == [
            o.status for o in out_b if o.result_id == "corrected:r0"
        ]
    assert [o.status for o in out_b if o.result_id == "corrected:r0"] == ["withdrawn"]


def test_a_weight_closer_than_every_one_kept_withdrawn_gives_insufficient_data_never_a_farther_weight() -> None:
    """HAZ-25-LAB-R01 residual (LAB-CRCL L1153-1156, "do not guess"): a weight dropped while three closer ones were in
    force is the one an unbounded state pairs once those three are withdrawn; the bounded state no longer holds it,
    so the clearance says the weight is missing (insufficient data), never one from a farther weight kept."""
    weights = [result("body_weight", 50.0 + 5 * i, "kg", rid=f"w{i}", at=_T + timedelta(hours=i)) for i in range(1, 7)]
    history = [result("creatinine", 90.0, "umol/L", rid="c", at=_T), *weights]
    history += [
        result(
            "body_weight",
            None,
            "kg",
            rid=w.result_id,
            at=w.occurred_at,
            recorded=_T + timedelta(days=1, hours=i),
            status="entered-in-error",
        )
        for i, w in enumerate(weights[:3])
    ]
    steps = _side_by_side(history, cap=2)
    assert "w4" not in steps[-1][0].results  # dropped while w1-w3 were closer and in force
    for a, _, b, _ in steps:
        assert set(a.results) <= set(b.results)
    bounded = [o for _, out_a, _, _ in steps for o in out_a if o.result_id == "crcl:c"]
    unbounded = [o for _, _, _, out_b in steps for o in out_b if o.result_id == "crcl:c"]
    assert unbounded[-1].value is not None and {x.event_id for x in unbounded[-1].derived_from} >= {weights[3].event_id}
    assert bounded[-1].value is None and bounded[-1].missing == ["weight"]
    # until then, the same clearances
    assert [(o.value, o.missing) for o in bounded[:-1]] == [(o.value, o.missing) for o in unbounded[:-1]]
