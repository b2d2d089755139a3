"""Issue 18, scoring reads the one clinical context (shared/clinical/): life expectancy, drug identity (IMG-FLARE's
"effective cancer treatment", L357-418) and treatment corrections (item 7: an entered-in-error or amended treatment
event is re-decided). Pure timelines through apply_event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import Recommendation, SkeletalEvent
from contracts.hospital import TreatmentEvent
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event
from shared.clinical import life_expectancy as le
from tests.unit.test_scoring_scores import T0, active, env, finding, run

FOCUS = finding(100, lesion_id="rib", skeletal_site="rib", modality="bone_scan", new_focus=True)


def drug(minutes: int, name: str, action: str = "started", on: str = "2026-09-01", **extra: Any) -> TreatmentEvent:
    body = {"kind": "systemic_drug", "drug": name, "action": action, "on": on, **extra}
    return TreatmentEvent.model_validate({**env(minutes), "treatment": body})


def correction(of: TreatmentEvent, status: str, minutes: int, **treatment: Any) -> TreatmentEvent:
    """A correction of `of` recorded `minutes` after T0 (entered-in-error: the same payload; amended: changed)."""
    body = {**of.treatment.model_dump(mode="json"), **treatment}
    return TreatmentEvent.model_validate(
        {**env(minutes), "treatment": body, "record_status": status, "corrects": of.event_id}
    )


def flares(out: Sequence[Message]) -> list[Recommendation]:
    return [x for x in active(list(out)) if x.rule_id == "IMG-FLARE"]


def published(s: ScoringState) -> tuple[list[str], list[str]]:
    """What scoring holds as published: recommendation slots and the current SRE IDs."""
    return sorted(s.recommendations), sorted(s.sres)


# ---- task 1: no service-local life-expectancy arithmetic ------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["remaining_life_expectancy", "when_remaining_reaches", "DAYS_PER_MONTH", "SIX_WEEKS_IN_MONTHS"]
)
def test_scoring_does_not_redefine_the_shared_life_expectancy_facts(name: str) -> None:
    assert not hasattr(r, name), f"services/scoring/rules.py still defines {name}: use shared.clinical"


@pytest.mark.parametrize(("estimate", "days"), [(3.5, 1), (3.5, 20), (3.5, 85), (3.0, 91.3125 - 42), (12, 400)])
def test_MIRELS_decision_follows_the_shared_remaining_estimate(estimate: float, days: float) -> None:
    """MIRELS-HIGH (L1324) and SURG-LE (L2804-2806) on what remains, as the shared context counts it."""
    remaining = le.remaining_months(estimate, T0, T0 + timedelta(days=days))
    _, decision = r.mirels_decision(9, 9, remaining)
    expected = (
        "no_surgery"
        if le.surgery_excluded(remaining)
        else "fixation"
        if remaining > le.THREE_MONTHS
        else "short_survival"
    )
    assert decision == expected


# ---- task 2: IMG-FLARE reads drugs through the shared vocabulary ----------------------------------------------
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("osimertinib", {}),
        ("Tagrisso", {}),
        ("TAGRISSO 80 mg", {}),
        ("Osimertinib", {}),
        ("produit hospitalier", {"atc_code": "L01EB04"}),  # the ATC code alone names it
    ],
)
def test_IMG_FLARE_a_brand_name_or_an_atc_code_opens_the_window_as_the_inn_does(
    name: str, extra: dict[str, Any]
) -> None:
    _, out = run([drug(0, name, **extra), FOCUS])
    [rec] = flares(out)
    # an EGFR TKI started 2 months before the focus: possible flare, warning (never progression, never "unknown")
    assert rec.severity == "warning" and rec.title == "Nouveau foyer osseux : possible flare, pas une progression"
    assert [i.value for i in rec.inputs if i.name == "anticancer_treatment_started"] == ["osimertinib 2026-09-01"]
    assert rec.missing == []


def test_IMG_FLARE_a_stop_under_another_name_stops_the_same_drug() -> None:
    """Started as "Tagrisso" in 2025, stopped as "osimertinib" in 2026-06, carboplatin since 2026-09-01: the flare
    reading rests on carboplatin, and a new focus is never read against the stopped drug."""
    _, out = run(
        [
            drug(0, "Tagrisso", on="2025-01-10"),
            drug(1, "osimertinib", "stopped", on="2026-06-01"),
            drug(2, "Carboplatine", on="2026-09-01"),
            FOCUS,
        ]
    )
    [rec] = flares(out)
    assert [i.value for i in rec.inputs if i.name == "anticancer_treatment_started"] == ["carboplatin 2026-09-01"]
    assert rec.severity == "info"  # not an EGFR TKI


def test_IMG_FLARE_an_unlisted_drug_placed_by_its_atc_code_is_not_unknown() -> None:
    """An anti-PD-1 the vocabulary does not list, sent with its ATC code (L01FF): an immunotherapy, so an effective
    cancer treatment whose start opens the window; never "drug of unknown class"."""
    _, out = run([drug(0, "nouvel anti-PD1", atc_code="L01FF99"), FOCUS])
    [rec] = flares(out)
    assert rec.title == "Nouveau foyer osseux : possible flare, pas une progression" and rec.missing == []


# ---- task 3: corrections of treatment events ------------------------------------------------------------------
def _orders(events: list[Message]) -> list[list[Message]]:
    """The correction's own order and the out-of-order one (correction first), and a redelivered original."""
    original, fix = events[0], events[1]
    rest = events[2:]
    return [
        [original, fix, *rest],
        [fix, original, *rest],
        [fix, *rest, original],
        [original, *rest, fix, original],  # the original delivered again after its correction
    ]


START = drug(0, "osimertinib")


@pytest.mark.parametrize("order", range(4))
def test_IMG_FLARE_a_drug_start_entered_in_error_reads_no_flare(order: int) -> None:
    events: list[Message] = [START, correction(START, "entered-in-error", 50), FOCUS]
    sequence = _orders(events)[order]
    s, out = run(sequence)
    assert flares(out) == []
    baseline, _ = run([FOCUS])
    assert published(s) == published(baseline)


def test_IMG_FLARE_a_correction_withdraws_the_flare_already_published() -> None:
    s, out = run([START, FOCUS])
    [rec] = flares(out)
    s, out = run([correction(START, "entered-in-error", 200)], s)
    withdrawn = [x for x in out if isinstance(x, Recommendation) and x.status == "withdrawn"]
    assert [w.supersedes for w in withdrawn] == [[rec.event_id]] and flares(out) == []
    assert "flare:rib" not in s.recommendations


@pytest.mark.parametrize("order", range(4))
def test_IMG_FLARE_an_amended_start_date_replaces_the_original(order: int) -> None:
    """Osimertinib recorded as started 2026-09-01, amended to 2025-01-10: the focus is more than 6 months after the
    start: progression, not a possible flare."""
    events: list[Message] = [START, correction(START, "amended", 50, on="2025-01-10"), FOCUS]
    _, out = run(_orders(events)[order])
    [rec] = flares(out)
    assert rec.title == "Nouveau foyer osseux plus de 6 mois après le début du traitement anticancéreux"
    assert [i.value for i in rec.inputs if i.name == "anticancer_treatment_started"] == ["osimertinib 2025-01-10"]


RT_PAIN = TreatmentEvent.model_validate(
    {
        **env(0),
        "treatment": {
            "kind": "radiotherapy",
            "site": "T8",
            "total_dose_gy": 8,
            "fractions": 1,
            "on": "2026-10-02",
            "intent": "pain",
        },
    }
)


@pytest.mark.parametrize("order", range(4))
def test_CLASS_SRE_a_radiotherapy_entered_in_error_is_no_skeletal_event(order: int) -> None:
    """Before, the entered-in-error record (which carries the course again) counted as a second RT for pain."""
    events: list[Message] = [RT_PAIN, correction(RT_PAIN, "entered-in-error", 50), FOCUS]
    s, out = run(_orders(events)[order])
    current = {x.event_id for x in out if isinstance(x, SkeletalEvent) and x.status != "withdrawn"}
    gone = {i for x in out if isinstance(x, SkeletalEvent) and x.status == "withdrawn" for i in x.supersedes}
    assert current - gone == set() and s.sres == [] and s.lesion_sres == {}


def test_CLASS_SRE_a_correction_withdraws_the_published_skeletal_event() -> None:
    s, out = run([RT_PAIN])
    [sre] = [x for x in out if isinstance(x, SkeletalEvent)]
    s, out = run([correction(RT_PAIN, "entered-in-error", 50)], s)
    [withdrawal] = [x for x in out if isinstance(x, SkeletalEvent)]
    assert withdrawal.status == "withdrawn" and withdrawal.supersedes == [sre.event_id] and s.sres == []


def test_a_correction_of_an_unknown_event_changes_nothing() -> None:
    stray = TreatmentEvent.model_validate(
        {
            **env(50),
            "treatment": START.treatment.model_dump(mode="json"),
            "record_status": "entered-in-error",
            "corrects": uuid.uuid4(),
        }
    )
    s, out = run([START, stray, FOCUS])
    assert len(flares(out)) == 1 and "flare:rib" in s.recommendations


def test_the_same_events_give_the_same_state_in_any_order() -> None:
    fix = correction(START, "amended", 50, drug="Carboplatine")
    a, _ = run([START, fix, FOCUS])
    b, _ = run([FOCUS, fix, START])
    assert published(a) == published(b) and a.treatments.keys() == b.treatments.keys()
    assert apply_event(a, FOCUS)[1] == []  # redelivered: nothing new
