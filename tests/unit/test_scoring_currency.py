"""Second reading of scoring against the French text: what remains of a life expectancy (MIRELS-HIGH, SURG-LE), the
currency of a lesion's pain (SCORE-MIRELS, SCORE-SINS) and of the staging data (CLASS-OLIGO), the CT note (MIRELS-HIGH
only) and the doubt of an undecidable Mirels (MIRELS-8). Pure timelines with `now` passed in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import Recommendation, Score
from contracts.rules import cite
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event
from shared.clinical import life_expectancy as le
from tests.unit.test_scoring_scores import T0, TROCHANTER, active, assessment, finding, lesion_pain

DAY = 24 * 60  # minutes


def run_at(events: Sequence[Message], now: datetime) -> tuple[ScoringState, list[Message]]:
    s = ScoringState()
    out: list[Message] = []
    for e in events:
        s, o = apply_event(s, e, now=now)
        out += o
    return s, out


def mirels_recs(out: list[Message]) -> list[Recommendation]:
    return [x for x in active(out) if x.rule_id.startswith("MIRELS") or x.rule_id in ("SURG-LE", "SCORE-MIRELS")]


FULL_PAIN: dict[str, Any] = {"lesion_pain": lesion_pain("fem-R", intensity="functional")}


# ---- item 1: the thresholds apply to what remains of the estimate ------------------------------------------------
@pytest.mark.parametrize(
    ("estimate", "days_ago", "remaining"),
    [(3.5, 0, 3.5), (3.5, 85, 3.5 - 85 / le.DAYS_PER_MONTH), (12, 365.25, 0.0), (2, 100, 0.0), (6, 30.4375, 5.0)],
)
def test_MIRELS_HIGH_remaining_life_expectancy_is_the_estimate_minus_the_time_since(
    estimate: float, days_ago: float, remaining: float
) -> None:
    now = T0 + timedelta(days=days_ago)
    assert le.remaining_months(estimate, T0, now) == pytest.approx(remaining, abs=1e-9)


@pytest.mark.parametrize(
    ("days_ago", "rule_id", "severity", "left"),
    [
        (1, "MIRELS-HIGH", "critical", "~3.5 mois restants"),  # 3.47 months left: fixation first
        (20, "MIRELS-HIGH-SHORT-LE", "warning", "~2.8 mois restants"),  # <= 3 months left (L1324)
        (85, "SURG-LE", "warning", "~0.7 mois restants"),  # < 6 weeks left (L2804): no surgery
    ],
)
def test_SURG_LE_and_MIRELS_HIGH_decide_on_the_remaining_life_expectancy(
    days_ago: int, rule_id: str, severity: str, left: str
) -> None:
    """Review item 1: Mirels 12 and an estimate of 3.5 months made 85 days ago is ~0.7 month left: no surgery, never
    "fixation prophylactique première"."""
    now = T0 + timedelta(days=days_ago)
    _, out = run_at(
        [
            assessment(0, life_expectancy_months=3.5),
            assessment(days_ago * DAY, **FULL_PAIN),
            finding(days_ago * DAY, **TROCHANTER),
        ],
        now,
    )
    [rec] = mirels_recs(out)
    assert (rec.rule_id, rec.severity) == (rule_id, severity)
    assert "estimation du 01/11/2026 : 3.5 mois, soit " + left in rec.text_fr
    assert ("fixation prophylactique première, puis" in rec.text_fr) is (rule_id == "MIRELS-HIGH")
    used = {i.name: i.value for i in rec.inputs}
    assert used["life_expectancy"] == 3.5
    assert used["life_expectancy_remaining"] == pytest.approx(le.remaining_months(3.5, T0, now), abs=0.01)


# ---- item 9: "moins de 6 semaines" is exactly 6 weeks ------------------------------------------------------------
def test_SURG_LE_six_weeks_is_exactly_42_days() -> None:
    assert pytest.approx(42, abs=1e-12) == le.SIX_WEEKS_IN_MONTHS * le.DAYS_PER_MONTH
    six_weeks = le.remaining_months(3.0, T0, T0 + timedelta(days=91.3125 - 42))
    assert r.mirels_decision(9, 9, six_weeks)[0] == "MIRELS-HIGH-SHORT-LE"
    a_minute_less = le.remaining_months(3.0, T0, T0 + timedelta(days=91.3125 - 42, minutes=1))
    assert r.mirels_decision(9, 9, a_minute_less)[0] == "SURG-LE"


# ---- item 8: a lesion's pain has a validity window --------------------------------------------------------------
HUMERUS: dict[str, Any] = {
    "lesion_id": "hum",
    "skeletal_site": "humerus",
    "lesion_type": "lytic",
    "cortical_involvement_fraction": 0.8,
}  # 1 + 3 + 3 = 7: functional pain makes 10, unknown pain 8 to 10


def test_SCORE_MIRELS_outdated_lesion_pain_is_missing_to_reassess() -> None:
    """Review item 8: a lesion's pain a year old no longer scores Mirels (critical fixation); it is missing, to
    reassess, and the bounds 8-10 are a doubt for RCP-OOS (MIRELS-8)."""
    pain = {"lesion_pain": lesion_pain("hum", intensity="functional")}
    events = [assessment(0, **pain), assessment(360 * DAY, life_expectancy_months=24), finding(365 * DAY, **HUMERUS)]
    recent = [events[0], assessment(1, life_expectancy_months=24), finding(2, **HUMERUS)]
    _, out = run_at(recent, T0 + timedelta(days=20))  # the pain 20 days old: current
    assert [(x.rule_id, x.severity) for x in mirels_recs(out)] == [("MIRELS-HIGH", "critical")]
    _, out = run_at(events, T0 + timedelta(days=365, minutes=5))
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total is None and score.missing[0].startswith("pain (to reassess") and "2026-11-01" in score.missing[0]
    assert "la réévaluer" in score.text_fr
    [rec] = mirels_recs(out)
    assert (rec.rule_id, rec.severity) == ("MIRELS-8", "warning") and "entre 8 et 10/12" in rec.title


def test_SCORE_SINS_outdated_lesion_pain_is_missing_to_reassess() -> None:
    l2 = {
        "lesion_id": "L2",
        "skeletal_site": "spine",
        "vertebral_level": "L2",
        "lesion_type": "lytic",
        "alignment": "normal",
        "vertebral_collapse": "none",
        "posterolateral_involvement": "none",
    }
    events = [assessment(0, lesion_pain=lesion_pain("L2", character="mechanical")), finding(5, **l2)]
    _, out = run_at(events, T0 + timedelta(days=10))
    [score] = [x for x in out if isinstance(x, Score) and x.score == "sins"]
    assert score.total == 7 and score.complete
    _, out = run_at(events, T0 + timedelta(days=31))
    [score] = [x for x in out if isinstance(x, Score) and x.score == "sins"]
    assert score.total is None and score.missing[0].startswith("pain (to reassess")


# ---- item 7: CLASS-OLIGO uses current staging only ---------------------------------------------------------------
@pytest.mark.parametrize("when_days", [30, -120])  # dated 30 days in the future; 120 days old
def test_CLASS_OLIGO_future_dated_or_outdated_staging_is_not_used(when_days: int) -> None:
    staging = assessment(
        0, primary_controlled=True, extra_osseous_metastases={"count": 0, "sites": [], "stable": True}
    ).model_copy(update={"occurred_at": T0 + timedelta(days=when_days)})
    now = T0 + timedelta(minutes=10)
    _, out = run_at([finding(0, lesion_id="L", skeletal_site="rib", size_cm=2.0), staging], now)
    *_, oligo = [x for x in out if isinstance(x, Score) and x.score == "oligometastatic"]
    assert oligo.band == "undetermined"
    assert "primary_controlled (not current: restage)" in oligo.missing
    assert "extra_osseous (not current: restage)" in oligo.missing
    assert "non utilisée(s) : contrôle du primitif, maladie extra-osseuse" in oligo.text_fr
    # the same staging dated today decides
    current = staging.model_copy(update={"occurred_at": T0})
    _, out = run_at([finding(0, lesion_id="L", skeletal_site="rib", size_cm=2.0), current], now)
    *_, oligo = [x for x in out if isinstance(x, Score) and x.score == "oligometastatic"]
    assert oligo.band == "oligometastatic" and oligo.missing == []


# ---- item 10: the CT note only beside a decision of fixation first -----------------------------------------------
@pytest.mark.parametrize(("months", "note"), [(12, True), (2.0, False), (1.0, False), (None, False)])
def test_MIRELS_HIGH_ct_note_only_when_the_decision_is_fixation(months: float | None, note: bool) -> None:
    ct = {**TROCHANTER, "axial_cortical_osteolysis_pct": 40, "circumferential_cortical_osteolysis_pct": 60}
    known: dict[str, Any] = {"life_expectancy_months": months} if months is not None else {}
    _, out = run_at([assessment(0, **FULL_PAIN, **known), finding(5, **ct)], T0 + timedelta(minutes=10))
    texts = [x.text_fr for x in out if isinstance(x, Score | Recommendation) and "Mirels" in x.text_fr]
    assert len(texts) == 2 and all(("consolidation" in t) is note for t in texts)


def test_MIRELS_8_doubt_cites_the_rcp_passage() -> None:
    assert cite("MIRELS-8").lines == "L1330-1332, L1367"


def test_MIRELS_HIGH_a_future_dated_estimate_never_hides_the_current_one() -> None:
    """The same pattern as the planner (review item 3): a 12-month estimate dated in 2099 neither advises fixation nor
    hides today's 2-month estimate."""
    future = assessment(1, life_expectancy_months=12).model_copy(update={"occurred_at": T0 + timedelta(days=30)})
    events = [assessment(0, life_expectancy_months=2, **FULL_PAIN), future, finding(5, **TROCHANTER)]
    for order in (events, events[::-1]):
        _, out = run_at(order, T0 + timedelta(minutes=10))
        [rec] = mirels_recs(out)
        assert rec.rule_id == "MIRELS-HIGH-SHORT-LE" and "estimation du 01/11/2026 : 2 mois" in rec.text_fr
