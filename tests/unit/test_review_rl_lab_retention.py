"""Review RL of lab-normalisation's bounded state (HAZ-25-LAB-02, HAZ-25-LAB-R01): the evicted stamps' watermark
(`LabState.evicted`) and the closest partner dropped (`LabState.nearest_dropped`), attacked with hand-built and
generated adversarial histories. Every difference between the bounded and the unbounded aggregate must be on the safe
side (the project's clinical safety rules): a result the bounded state cannot place is dead-lettered with the reason
(never ignored silently), and a derived value differs only by being "insufficient data" (LAB-CA-CORR L316, LAB-CRCL
L1153-1156: "when any of them is missing, say so. Do not guess"), never another value or a withdrawn result back
(LAB-CORRECTION)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.clinical import NormalisedLab
from contracts.hospital import LabResult
from services.lab_normalisation.domain import LabConfig, LabState, apply_ingested
from services.lab_normalisation.ingest import Ingested, check_units
from services.notification import vocabulary
from shared.errors import Rejected
from shared.runtime.aggregate import apply_events
from shared.settings import Settings
from tests.unit.test_issue25_lab_retention import _RECORD, UNBOUNDED, apply_with
from tests.unit.test_lab_domain import ANALYTES, CFG, T0, result

#: a tiny aggregate: 2 results per analyte, 4 stamps, so that stamps are evicted within 90 days
TINY = dataclasses.replace(CFG, per_analyte=2, stamps=4)
_T = T0 - timedelta(days=30)


@dataclasses.dataclass
class _Event:
    """An event as the runtime's aggregate loop sees it (shared/runtime/aggregate.py)."""

    message: Ingested
    apply: Callable[[Any, Any], tuple[Any, Any]]


def _batch(*items: LabResult) -> Ingested:
    labs = [x for x in (check_units(i, ANALYTES) for i in items) if x is not None]
    return Ingested(key=str(items[0].event_id), patient_id="p1", labs=labs)


def _calciums(cfg: LabConfig, n: int = 10) -> LabState:
    s, _ = apply_with(cfg, LabState(), _RECORD)
    for i in range(n):
        s, _ = apply_with(cfg, s, result("total_calcium", 2.3, "mmol/L", rid=f"c{i}", at=_T + timedelta(days=i)))
    return s


def _outside_calcium(recorded: datetime) -> LabResult:
    """A new calcium (another result ID than every one seen) drawn on day 1, between the evicted stamps' draws."""
    return result("total_calcium", 3.7, "mmol/L", rid="outside", at=_T + timedelta(days=1, hours=6), recorded=recorded)


def test_a_new_result_the_watermark_cannot_place_is_dead_lettered_with_the_reason_never_ignored_silently() -> None:
    """HAZ-25-LAB-02 residual: a NEW calcium of 3.7 mmol/L drawn before the evicted stamps' newest draw and recorded
    before their newest version, delivered late, is taken for a late older version. The unbounded state publishes it;
    before this review the bounded one returned nothing and left no trace (no dead letter, no metric). Now the
    runtime dead-letters its message with the reason, and the state is left as it was."""
    bounded = _calciums(TINY)
    assert bounded.evicted is not None and "outside" not in bounded.dropped  # c0-c3's stamps evicted
    new = _outside_calcium(recorded=_T + timedelta(days=1, hours=8))
    assert new.recorded_at <= bounded.evicted[1] and new.occurred_at <= bounded.evicted[0]
    _, out_b = apply_with(UNBOUNDED, _calciums(UNBOUNDED), new)
    assert [o.value for o in out_b if o.result_id == "outside"] == [3.7]  # the unbounded state publishes it

    before = bounded.model_dump_json()
    final, _, produced, results = apply_events(
        bounded, [_Event(_batch(new), lambda s, b: apply_ingested(s, b, TINY))], Settings()
    )
    ((_, outputs, error),) = results
    assert isinstance(error, Rejected) and outputs == [] and produced == []
    assert "cannot be placed" in str(error) and "total_calcium" in str(error) and "LAB-CORRECTION" in str(error)
    assert final.model_dump_json() == before  # nothing applied, nothing half-applied


def test_a_new_result_in_a_message_with_an_unplaced_one_is_applied_and_says_the_other_was_not_placed() -> None:
    """A message (a cumulative report) holding an unplaced result and a new one: a new value is never held back for an
    old one (nothing else is lost): the new albumin is applied and published as the unbounded state publishes it,
    with a French note saying another result of the message could not be placed (shown to clinicians with the
    result, its analyte named in French on the page (notification's prose)); the unplaced result is not applied."""
    other = result("albumin", 35.0, "g/L", rid="alb-now", at=_T + timedelta(days=9, hours=1))
    message = _batch(_outside_calcium(_T + timedelta(days=1, hours=8)), other)
    s, out = apply_ingested(_calciums(TINY), message, TINY)
    _, out_b = apply_ingested(_calciums(UNBOUNDED), message, UNBOUNDED)
    (mine,) = [o for o in out if o.result_id == "alb-now"]
    (theirs,) = [o for o in out_b if o.result_id == "alb-now"]
    assert mine.model_copy(update={"notes": theirs.notes}) == theirs
    (note,) = set(mine.notes) - set(theirs.notes)
    assert "n'a pas pu être placé" in note and "(calcémie totale)" in vocabulary.prose(note)
    assert "outside" not in s.results and not [o for o in out if o.result_id == "outside"]
    assert [o.value for o in out_b if o.result_id == "outside"] == [3.7]


def test_the_same_result_sent_again_with_its_current_recorded_time_is_published_as_unbounded() -> None:
    """The dead letter's advice holds: a result recorded after the evicted stamps' newest version is never taken for
    one of them, and is published exactly as the unbounded state publishes it."""
    new = _outside_calcium(recorded=_T + timedelta(days=11))
    _, out_a = apply_with(TINY, _calciums(TINY), new)
    _, out_b = apply_with(UNBOUNDED, _calciums(UNBOUNDED), new)
    primary = [o.model_dump_json() for o in out_a if o.result_id == "outside"]
    assert primary == [o.model_dump_json() for o in out_b if o.result_id == "outside"] and len(primary) == 1


def test_a_late_older_version_of_an_evicted_result_is_never_published_again() -> None:
    """LAB-CORRECTION: c0 was withdrawn (its newest version), dropped, its stamp evicted; its first version resent late
    with a crisis value is never published (dead-lettered: the bounded state cannot tell it from a new result)."""
    s = _calciums(TINY, 1)
    withdrawn = result(
        "total_calcium", None, "mmol/L", rid="c0", at=_T, recorded=_T + timedelta(hours=4), status="entered-in-error"
    )
    s, _ = apply_with(TINY, s, withdrawn)
    for i in range(1, 10):
        s, _ = apply_with(TINY, s, result("total_calcium", 2.3, "mmol/L", rid=f"c{i}", at=_T + timedelta(days=i)))
    assert "c0" not in s.results and "c0" in s.revised  # the revised stamp still holds it: changes nothing
    resent = result("total_calcium", 3.9, "mmol/L", rid="c0", at=_T, recorded=_T)
    assert apply_with(TINY, s, resent)[1] == []
    # a final c0 evicted from the stamps (no `revised`): refused, visibly
    s = _calciums(TINY)
    assert "c0" not in s.dropped and s.evicted is not None
    with pytest.raises(Rejected):
        apply_with(TINY, s, result("total_calcium", 3.9, "mmol/L", rid="c0", at=_T, recorded=_T))


# ---- generated adversarial histories: bounded (tiny caps, stamps evicted) against unbounded -------------------------

#: analyte, units it may be sent in (LAB-UNITS: converted, never guessed), value range in the first unit
_KINDS = [
    ("total_calcium", ("mmol/L", "mg/dL"), (1.8, 3.9)),
    ("albumin", ("g/L", "g/dL"), (18.0, 48.0)),
    ("ionised_calcium", ("mmol/L",), (0.9, 1.8)),
    ("creatinine", ("umol/L", "mg/dL"), (40.0, 400.0)),
    ("body_weight", ("kg",), (40.0, 110.0)),
]
_PER_UNIT = {"mg/dL": {"total_calcium": 4.008, "creatinine": 1 / 88.42}, "g/dL": {"albumin": 0.1}}


@st.composite
def adversarial(draw: st.DrawFn) -> list[LabResult]:
    """Floods of one analyte (so stamps are evicted within 90 days), withdrawals of partners, amendments moving a
    draw by hours or days, censored values, date-only draws and other units, late older versions of any result (its
    first version, with its first draw time), new results delivered late (drawn up to 40 days before)."""
    out: list[LabResult] = []
    firsts: dict[str, LabResult] = {}  # each result's first version
    kinds: dict[str, str] = {}  # its analyte
    at = T0 - timedelta(days=60)
    for i in range(draw(st.integers(5, 30))):
        at += timedelta(minutes=draw(st.sampled_from([10, 60, 180, 720, 1440, 4320])))
        analyte, units, (lo, hi) = draw(st.sampled_from(_KINDS))
        unit = draw(st.sampled_from(units))
        value = round(draw(st.floats(lo, hi)) * _PER_UNIT.get(unit, {}).get(analyte, 1.0), 2)
        action = draw(st.sampled_from(["new", "new", "flood", "withdraw", "amend", "move", "late", "backlog"]))
        known = [r for rid, r in firsts.items() if kinds[rid] == analyte]
        if action in ("withdraw", "amend", "move") and known:
            t = draw(st.sampled_from(known))
            drawn = t.occurred_at
            if action == "move":  # an amendment giving the draw another time (hours, or more than a day)
                drawn += timedelta(hours=draw(st.sampled_from([-60, -30, -3, 3, 30, 60])))
            # a moved draw sent as a final version too (a resent FHIR Observation with its draw corrected)
            status = "entered-in-error" if action == "withdraw" else draw(st.sampled_from(["amended", "final"]))
            v = None if action == "withdraw" else value
            out.append(result(analyte, v, unit, rid=t.result_id, at=drawn, recorded=at, status=status))
        elif action == "backlog":  # a NEW result reported when drawn, delivered late (an interface backlog)
            drawn = at - timedelta(hours=draw(st.integers(1, 24 * 40)))
            r = result(analyte, value, unit, rid=f"r{i}.b", at=drawn)
            firsts[r.result_id], kinds[r.result_id] = r, analyte
            out.append(r)
        elif action == "late" and firsts:
            t = draw(st.sampled_from(sorted(firsts.values(), key=lambda r: r.result_id)))
            out.append(t.model_copy(update={"event_id": uuid.UUID(int=len(out) + 1)}))  # resent: a new event
        else:
            n = draw(st.integers(5, 12)) if action == "flood" else 1
            for k in range(n):
                r = result(analyte, value, unit, rid=f"r{i}.{k}", at=at + timedelta(minutes=5 * k))
                if draw(st.integers(0, 4)) == 0:
                    r = r.model_copy(update={"comparator": draw(st.sampled_from(["<", ">", "<=", ">="]))})
                if draw(st.integers(0, 5)) == 0:  # a date-only draw (LAB-CA-CORR pairs it only when surely within)
                    day = r.occurred_at.replace(hour=0, minute=0)
                    r = r.model_copy(update={"occurred_at": day, "occurred_at_precision": "date"})
                firsts[r.result_id], kinds[r.result_id] = r, analyte
                out.append(r)
            at += timedelta(minutes=5 * n)
    return out


def _insufficient(o: NormalisedLab) -> bool:
    return o.value is None and o.status != "withdrawn" and bool(o.missing)


def _content(o: NormalisedLab) -> tuple[object, ...]:
    if o.status == "withdrawn":  # a withdrawal is one fact, whatever it names as its sources
        return ("withdrawn",)
    # the ionised calcium is reported beside the corrected value (LAB-CA-CORR), not part of it: compared apart (with
    # the same sources otherwise, "amended" rather than "final" can only come from an amended ionised calcium)
    used = tuple(x.event_id for x in o.derived_from if x.analyte != "ionised_calcium")
    return "in force", o.value, o.comparator, tuple(o.missing), used


def _beside(o: NormalisedLab) -> set[object]:
    return {x.event_id for x in o.derived_from if x.analyte == "ionised_calcium"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(adversarial(), st.sampled_from([(2, 3), (2, 6), (3, 4)]))
def test_every_difference_from_the_unbounded_state_is_on_the_safe_side(
    history: list[LabResult], caps: tuple[int, int]
) -> None:
    """Per delivery: the results published are the unbounded state's, or none when the bounded state cannot place a
    result (dead-lettered with the reason: a late older version, which the unbounded state ignores too, or a new
    result delivered late, visible in the dead letter: compared no further, the states then differ);
    every derived value published, and every one a consumer holds for a result still kept, is the unbounded state's
    or "insufficient data" (missing named), never another value, never a value where it says missing; every missing
    text reaches clinicians in French (notification's vocabulary)."""
    bounded = dataclasses.replace(CFG, per_analyte=caps[0], stamps=caps[1])
    a, _ = apply_with(bounded, LabState(), _RECORD)
    b, _ = apply_with(UNBOUNDED, LabState(), _RECORD)
    held_a: dict[str, tuple[object, ...]] = {}
    held_b: dict[str, tuple[object, ...]] = {}
    insufficient_a: dict[str, bool] = {}
    for item in history:
        b, out_b = apply_with(UNBOUNDED, b, item)
        primary_b = [o.model_dump_json() for o in out_b if o.result_id.partition(":")[0] not in ("corrected", "crcl")]
        try:
            a, out_a = apply_with(bounded, a, item)
        except Rejected as exc:  # the runtime: dead-lettered, state unchanged, nothing published
            assert "cannot be placed" in str(exc)
            if primary_b:  # a new result delivered late: in the dead letter, visible; the states differ from here
                return
            out_a = []  # a late older version: the unbounded state ignores it too
        derived_a = [o for o in out_a if o.result_id.partition(":")[0] in ("corrected", "crcl")]
        assert [o.model_dump_json() for o in out_a if o not in derived_a] == (primary_b if out_a else [])
        for o in derived_a:
            for text in o.missing:
                assert "non traduit" not in vocabulary.missing(text), text
            twin = [x for x in out_b if x.result_id == o.result_id]
            if o.status == "withdrawn":  # a withdrawal only where the unbounded state withdraws (or holds nothing)
                assert (
                    not twin
                    or twin[-1].status == "withdrawn"
                    or held_b.get(o.result_id, ("withdrawn",))[0] == ("withdrawn")
                ), (o.result_id, twin)
            elif not _insufficient(o):  # a value: exactly the unbounded state's, published with it
                assert twin and _content(twin[-1]) == _content(o), (o.result_id, _content(o), twin)
                # the ionised calcium beside it: the unbounded state's, or none (not kept: never another one)
                assert _beside(o) <= _beside(twin[-1]), (o.result_id, o.derived_from, twin[-1].derived_from)
        for out, held in ((out_a, held_a), (out_b, held_b)):
            for o in out:
                if o.result_id.partition(":")[0] in ("corrected", "crcl"):
                    held[o.result_id] = _content(o)
        for o in out_a:
            insufficient_a[o.result_id] = _insufficient(o)
        for rid, content in held_b.items():
            if rid.partition(":")[2] in a.results and held_a.get(rid) != content:
                # the one allowed difference: the bounded consumer holds "insufficient data" (HAZ-25-LAB-R01)
                assert insufficient_a.get(rid), (rid, held_a.get(rid), content)
        assert set(a.results) <= set(b.results)


# ---- HAZ-25-LAB-R01: a calcium or creatinine not held when its partners were dropped --------------------------------


def _last(history: list[LabResult], cfg: LabConfig, rid: str) -> tuple[NormalisedLab, LabState]:
    s, _ = apply_with(cfg, LabState(), _RECORD)
    published: list[NormalisedLab] = []
    for item in history:
        s, out = apply_with(cfg, s, item)
        published += [o for o in out if o.result_id == rid]
    return published[-1], s


def _ca(rid: str, minutes: int, value: float | None = 2.6, **kw: Any) -> LabResult:
    return result("total_calcium", value, "mmol/L", rid=rid, at=_T + timedelta(minutes=minutes), **kw)


def _alb(rid: str, minutes: int, value: float = 30.0) -> LabResult:
    return result("albumin", value, "g/L", rid=rid, at=_T + timedelta(minutes=minutes))


@pytest.mark.parametrize("how", ["amended after being dropped", "reported late", "draw moved by an amendment"])
def test_a_calcium_not_held_when_its_closest_albumin_was_dropped_never_pairs_a_farther_one(how: str) -> None:
    """LAB-CA-CORR L316 pairs the closest albumin within 48 h. Albumin a1 (30 min from the calcium) is dropped while
    the calcium is not held (withdrawn and dropped, not yet reported, or drawn elsewhere): before this review the
    calcium then paired a2 (45 min, 16 g/L): another corrected calcium (2.6 + 24/40 = 3.2) than the unbounded
    state's (a1, 40 g/L: 2.6). Now: albumin missing (insufficient data), never a farther albumin."""
    small = dataclasses.replace(CFG, per_analyte=2, stamps=8)
    albumins = [_alb("a1", 30, 40.0), _alb("a2", 45, 16.0)]
    later = [_ca("k1", 70), _alb("a3", 85), _alb("a4", 100), _ca("k2", 115), _ca("k3", 3000), _alb("a5", 3010)]
    later += [_alb("a6", 3020)]
    if how == "amended after being dropped":
        withdrawn = _ca("c", 0, None, recorded=_T + timedelta(minutes=60), status="entered-in-error")
        history = [_ca("c", 0), *albumins, withdrawn]
        history += [*later, _ca("c", 0, recorded=_T + timedelta(days=3), status="amended")]
    elif how == "reported late":
        history = [*albumins, *later, _ca("c", 0, recorded=_T + timedelta(days=3))]
    else:
        history = [_ca("c", 130), *albumins, *later]  # drawn 130 min on (a4, a3, a2 its closest), then moved to 0
        history += [_ca("c", 0, recorded=_T + timedelta(days=3), status="amended")]
    mine, _ = _last(history, small, "corrected:c")
    theirs, _ = _last(history, UNBOUNDED, "corrected:c")
    _, before = _last(history[:-1], small, "a6")
    assert "a1" not in before.results and "a2" in before.results  # the closest dropped, a farther one held
    assert theirs.value is not None and {x.event_id for x in theirs.derived_from} == {
        history[0 if how == "reported late" else 1].event_id,
        history[-1].event_id,
    }
    assert mine.value is None and mine.missing == ["albumin drawn within 48 h of the calcium"]
    assert vocabulary.missing(mine.missing[0]) == "albuminémie prélevée à moins de 48 h de la calcémie"


def test_a_creatinine_reported_late_never_takes_a_farther_weight_than_one_dropped() -> None:
    """LAB-CRCL L1153-1156: the closest weight. A creatinine reported after its closest weight was dropped: the
    clearance says the weight is missing, never computed from a weight farther away (before: from w2, 10 days on)."""
    small = dataclasses.replace(CFG, per_analyte=2, stamps=8)
    w = [result("body_weight", 50.0 + 10 * i, "kg", rid=f"w{i}", at=_T + timedelta(days=2 + 4 * i)) for i in range(4)]
    late = result("creatinine", 90.0, "umol/L", rid="c", at=_T, recorded=_T + timedelta(days=20))
    mine, s = _last([*w, late], small, "crcl:c")
    theirs, _ = _last([*w, late], UNBOUNDED, "crcl:c")
    assert "w0" not in s.results and theirs.value is not None
    assert mine.value is None and mine.missing == ["weight"] and vocabulary.missing("weight") != "weight"


def test_a_calcium_in_order_still_pairs_its_closest_albumin_after_albumins_were_dropped() -> None:
    """No false "missing": a new calcium whose closest albumin is held pairs it as the unbounded state does, although
    older albumins were dropped (`LabState.partner_dropped` set)."""
    small = dataclasses.replace(CFG, per_analyte=2, stamps=8)
    history = [_alb(f"a{i}", 60 * i, 30.0 + i) for i in range(6)] + [_ca("c", 60 * 5 + 20)]
    mine, s = _last(history, small, "corrected:c")
    theirs, _ = _last(history, UNBOUNDED, "corrected:c")
    assert "albumin" in s.partner_dropped and mine.value is not None
    assert _content(mine) == _content(theirs)


@pytest.mark.parametrize("n", [9, 20])
def test_a_late_first_version_drawn_later_than_its_replacement_is_never_published_again(n: int) -> None:
    """LAB-CORRECTION ("an older result arriving late must not overwrite a newer one"): r0 was first reported at
    3.8 mmol/L drawn on day 10, then replaced (a final version, recorded later) by 2.4 mmol/L with its draw corrected
    to day 0; dropped, its stamp evicted (draw day 0). Its first version resent late (drawn day 10, after every
    evicted draw) was not recognised by the watermark and was published again: the replaced 3.8 back in force. Now a
    stamp holds the latest draw of any version (`LabState.moved`): kept as the newest (n=9: recognised, changes
    nothing) or evicted into the watermark (n=20: dead-lettered, the bounded state cannot tell it from a new result),
    never published."""
    first = result("total_calcium", 3.8, "mmol/L", rid="r0", at=_T + timedelta(days=10))
    second = result(
        "total_calcium", 2.4, "mmol/L", rid="r0", at=_T, recorded=_T + timedelta(days=10, hours=1), status="final"
    )
    others = [result("total_calcium", 2.3, "mmol/L", rid=f"c{i}", at=_T + timedelta(days=i, hours=3)) for i in range(n)]
    history = [first, second, *others]
    s, _ = apply_with(TINY, LabState(), _RECORD)
    u, _ = apply_with(UNBOUNDED, LabState(), _RECORD)
    for item in history:
        s, _ = apply_with(TINY, s, item)
        u, _ = apply_with(UNBOUNDED, u, item)
    assert "r0" not in s.results and "r0" not in s.revised and ("r0" in s.dropped) == (n == 9)
    late = first.model_copy(update={"event_id": uuid.UUID(int=7)})
    assert apply_with(UNBOUNDED, u, late)[1] == []  # the unbounded state ignores it as older
    try:
        _, out = apply_with(TINY, s, late)
    except Rejected as exc:
        assert "cannot be placed" in str(exc)
        out = []
    assert [o.value for o in out if o.result_id == "r0"] == []
