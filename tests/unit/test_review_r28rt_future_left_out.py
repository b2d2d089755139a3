"""Review R28-RT (of merge 62d6a37, FH-RT: services/radiotherapy_planner/as_of.py, HAZ-27-FUTURE-HIDES).

The fix reads the facts as of the decision: a fact dated beyond the tolerance (15 min) is replaced by the newest
current one of its name, or left out. That is right for a fact the rules read as "current evidence of an emergency"
(kept: RT-MSCC, life expectancy). It is not for a contraindication, a caution or a prerequisite: before the fix such a
fact applied at once (a cautious reading of a record whose producer's clock runs ahead), now it is silently ignored
until its date, and the plan says the opposite with no word of data missing or not current. The standard: "an input
dated in the future is not current; prefer insufficient data over a wrong recommendation". Each case below is one
record from a producer whose clock runs 20 minutes ahead (the reachability of HAZ-27-FUTURE-HIDES), decided at `NOW`;
every one passes on 8589dca (the fact applied at once; no view, so no correction left out and no current finding
read from behind the pruned ones): each was a regression of the merge (strict xfails), and each passes since the view
was narrowed, then reverted (2026-12-06, after review R28-RT2): they stay as regression tests for the next fix of
HAZ-27-FUTURE-HIDES. The cases:
- IR-CEMENT (Tableau 8, L2590-2618): an absolute contraindication (cement allergy, infection, severe coagulation
  disorder, diffuse pain) assessed 20 min ahead, over a current "no": cementoplasty "prérequis remplis" (recommended);
- IR-CEMENT (L2626-2627, "Plaquettes > 50 000/mm3"): platelets at 30 G/L sampled 20 min ahead, before the procedure
  date: recommended on the previous count;
- RT-MSCC (L1397-1402 with the surgeon's opinion): "not operable" 20 min ahead over a current "operable": urgent
  decompression surgery recommended ("patient jugé opérable");
- RT-PAIN / SURG-LE (L2776-2834: "une fracture pathologique relève le plus souvent de la chirurgie"): a pathological
  fracture of the femur imaged 20 min ahead: RT-PAIN recommends RT for "une métastase douloureuse non compliquée" and
  the SURG-LE item is not there at all;
- RT-SBRT-CI (L1634-1636): a relative contraindication (MRI contraindicated; canal narrowed > 25 %) 20 min ahead:
  "Aucune contre-indication retrouvée", info (before: warning, "Pesée en RCP-OOS");
- RT-FRACT-PALL: "difficile à mobiliser" 20 min ahead: 30 Gy in 10 fractions recommended (before: 8 Gy in 1);
- the facts the first fix kept for their currency check (CHECKED_SIGNS / CHECKED_NAMES) were kept only when no
  current fact of the sign or name exists: over a current "no" they are silent too. RT-MSCC: a cord compression
  imaged ahead after yesterday's "no compression" gives no item at all (8589dca: "donnée non actuelle", re-evaluate
  without delay); a new neurological deficit assessed ahead beside an epidural extension leaves the item at the
  epiduritis' prevention; RT-SBRT-CI: that deficit on an operated compression ("symptomatique", absolute) leaves SBRT
  possible; SURG-LE: an estimate revised to 1 month ahead leaves the surgery of the 24-month estimate recommended;
- corrections: an amendment dated ahead of the assessment it corrects brings the corrected version back into the
  view (`held` leaves the amendment out, so the re-fold counts the original again): cementoplasty recommended on the
  values the hospital amended; an entered-in-error dated ahead, with a new assessment of the same name dated ahead,
  makes the withdrawn record the current fact of that name;
- retention (FINDINGS_PER_LESION = 6): six findings of a lesion dated ahead push its newest current finding out of
  the table (it reports no sign: nothing else keeps it), so the view reads an older finding saying "resolved" and the
  current cord-compression emergency (RT-MSCC, critical) disappears: a wrong current value, not a missing one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.plan import PlanItem
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW, TODAY, env, femur, plan_items, request, vertebra
from tests.unit.test_local_plan_domain import lab, score

DAY = timedelta(days=1)
AHEAD = NOW + timedelta(minutes=20)  # beyond the 15 min tolerance: a producer's clock 20 min ahead


def at(s: LocalState, now: datetime) -> LocalState:
    """The facts the rules read at `now`: the state itself (the as_of.py view was reverted, 2026-12-06)."""
    return s


def _decide(events: list[Message]) -> tuple[LocalState, list[PlanItem]]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        out += o
    return s, plan_items(out)


def _items(events: list[Message], rule: str) -> list[PlanItem]:
    return [i for i in _decide(events)[1] if i.rule_id == rule]


def _assessment(when: Any = None, **fields: Any) -> ClinicalAssessment:
    """An assessment at `when` (default: yesterday), recorded at `NOW` when dated ahead."""
    when = NOW - DAY if when is None else when
    e = ClinicalAssessment.model_validate(env(when, **fields))
    return e.model_copy(update={"recorded_at": min(when, NOW)})


CLEAR: dict[str, Any] = {
    "pain": {"resistant_to_analgesics": True, "intensity": "functional"},
    "opioid_complications": False,
    "diffuse_pain": False,
    "active_infection": False,
    "cement_allergy": False,
    "severe_coagulation_disorder": False,
    "radiculopathy": False,
}


def _cement(assessment: ClinicalAssessment | None = None) -> list[Message]:
    """A cementoplasty with every prerequisite met (the control asserts it is recommended)."""
    return [
        vertebra(at=NOW - DAY, pathological_fracture=False),
        score("sins", "t8", 4, "stable"),
        assessment or _assessment(**CLEAR),
        lab("platelets", 180.0, "G/L", NOW - DAY),
        lab("prothrombin_pct", 90.0, "%", NOW - DAY),
        request("t8", "cementoplasty", planned_on=TODAY + 3 * DAY),
    ]


def test_review_r28rt_control_the_cementoplasty_timeline_is_ready() -> None:
    [cement] = _items(_cement(), "IR-CEMENT")
    assert cement.status == "recommended"


@pytest.mark.parametrize("name", ["cement_allergy", "active_infection", "severe_coagulation_disorder", "diffuse_pain"])
def test_review_r28rt_an_absolute_cement_contraindication_dated_ahead_does_not_leave_it_recommended(name: str) -> None:
    [cement] = _items([*_cement(), _assessment(AHEAD, **{name: True})], "IR-CEMENT")
    assert cement.status != "recommended"


def test_review_r28rt_low_platelets_sampled_ahead_do_not_leave_cementoplasty_recommended() -> None:
    low = NormalisedLab.model_validate(
        env(AHEAD, source="lab-normalisation", analyte="platelets", result_id="plt-ahead", value=30.0, unit="G/L")
    ).model_copy(update={"recorded_at": NOW})
    [cement] = _items([*_cement(), low], "IR-CEMENT")
    assert cement.status != "recommended"


def _opinion(operable: bool) -> dict[str, Any]:
    return {"operable": operable, "on": TODAY.isoformat(), "lesion_id": "t8"}


def test_review_r28rt_not_operable_dated_ahead_does_not_send_the_compression_to_urgent_surgery() -> None:
    events: list[Message] = [
        vertebra(at=NOW - DAY, cord_compression=True, epidural_extension=True),
        _assessment(life_expectancy_months=24.0, neurological_deficit=True, surgical_opinion=_opinion(True)),
    ]
    [control] = _items(events, "RT-MSCC")
    assert "Chirurgie de décompression" in control.text_fr
    [mscc] = _items([*events, _assessment(AHEAD, surgical_opinion=_opinion(False))], "RT-MSCC")
    assert "Chirurgie de décompression à réaliser en urgence" not in mscc.text_fr


def test_review_r28rt_a_fracture_imaged_ahead_does_not_make_the_lesion_uncomplicated() -> None:
    events: list[Message] = [
        femur(at=NOW - DAY, pathological_fracture=False),
        _assessment(life_expectancy_months=24.0, pain={"resistant_to_analgesics": True}),
        request("fem", "palliative_rt", planned_on=TODAY + 2 * DAY),
        femur(at=AHEAD, pathological_fracture=True).model_copy(update={"recorded_at": NOW}),
    ]
    _, items = _decide(events)
    assert not [i for i in items if i.rule_id == "RT-PAIN" and i.status == "recommended"]
    assert [i for i in items if i.rule_id == "SURG-LE"]


def _sbrt() -> list[Message]:
    return [
        vertebra(at=NOW - DAY, canal_narrowing_pct=10.0, tumour_cord_distance_mm=8.0),
        score("sins", "t8", 4, "stable"),
        score("oligometastatic", "patient", None, "oligometastatic"),
        _assessment(life_expectancy_months=24.0, neurological_deficit=False, mri_contraindicated=False),
        request(
            "t8",
            "sbrt",
            planned_on=TODAY + 7 * DAY,
            total_dose_gy=27.0,
            fractions=3,
            intent="ablative_oligometastatic",
        ),
    ]


def _narrowed() -> ImagingFinding:
    return vertebra(at=AHEAD, canal_narrowing_pct=40.0).model_copy(update={"recorded_at": NOW})


@pytest.mark.parametrize("ahead", ["mri_contraindicated", "canal_narrowing"])
def test_review_r28rt_a_relative_sbrt_contraindication_dated_ahead_is_not_silent(ahead: str) -> None:
    [control] = _items(_sbrt(), "RT-SBRT-CI")
    assert (control.status, control.severity) == ("recommended", "info")
    fact = _assessment(AHEAD, mri_contraindicated=True) if ahead == "mri_contraindicated" else _narrowed()
    [ci] = _items([*_sbrt(), fact], "RT-SBRT-CI")
    assert ci.severity != "info" and "Aucune contre-indication" not in ci.text_fr


def test_review_r28rt_hard_to_move_dated_ahead_is_not_ignored_by_the_palliative_scheme() -> None:
    events: list[Message] = [
        femur(at=NOW - DAY, pathological_fracture=False),
        score("mirels", "fem", 6, "low"),
        _assessment(
            life_expectancy_months=24.0, frail=False, hard_to_move=False, pain={"resistant_to_analgesics": True}
        ),
        request("fem", "palliative_rt", planned_on=TODAY + 2 * DAY),
    ]
    [control] = _items(events, "RT-FRACT-PALL")
    assert control.status == "recommended" and "30 Gy en 10 fractions" in control.title
    [pall] = _items([*events, _assessment(AHEAD, hard_to_move=True)], "RT-FRACT-PALL")
    assert pall.status != "recommended" or "8 Gy en 1 fraction" in pall.title


# ---- corrections dated ahead ----------------------------------------------------------------------------------------
def test_review_r28rt_an_amendment_dated_ahead_does_not_bring_back_the_version_it_corrects() -> None:
    """The current assessment says "no cement allergy"; its amendment (the hospital's corrected version) says
    "allergy" and is dated 20 min ahead. The state holds the amendment as the version in force; the view re-folds
    without it and so counts the corrected original again: every name of the view comes from the corrected record."""
    original = _assessment(**CLEAR)
    amended = _assessment(
        AHEAD, record_status="amended", corrects=str(original.event_id), **{**CLEAR, "cement_allergy": True}
    )
    s, items = _decide([*_cement(original), amended])
    view = at(s, NOW)
    assert not [k for k, f in view.assessed.items() if f.event_id == original.event_id]
    assert [i.status for i in items if i.rule_id == "IR-CEMENT"] != ["recommended"]


def test_review_r28rt_an_entered_in_error_dated_ahead_does_not_bring_back_the_record_it_withdraws() -> None:
    """The hospital withdraws the current assessment (entered-in-error) and enters a new one, both 20 min ahead.
    Without the new one the withdrawal applies at once (the names are unknown: insufficient data); with it, the view
    re-folds without the withdrawal and the withdrawn record is the current fact of that name."""
    original = _assessment(**CLEAR)
    error = _assessment(AHEAD, record_status="entered-in-error", corrects=str(original.event_id))
    s, _ = _decide([*_cement(original), error])
    assert not [k for k, f in at(s, NOW).assessed.items() if f.event_id == original.event_id]  # holds
    s, _ = _decide([*_cement(original), error, _assessment(AHEAD, cement_allergy=True)])
    assert not [k for k, f in at(s, NOW).assessed.items() if f.event_id == original.event_id]


# ---- retention with findings dated ahead ----------------------------------------------------------------------------
def test_review_r28rt_findings_dated_ahead_do_not_prune_the_newest_current_one() -> None:
    """A compression 20 days ago, a study 10 days ago saying "resolved" (it reports a lesion type), yesterday's study
    saying the lesion is there again ("confirmed", no sign reported): the compression is current (RT-MSCC critical).
    Six studies of the lesion dated ahead (FINDINGS_PER_LESION) keep the newest six and yesterday's is dropped
    (prune_findings keeps, beyond the newest six, only the findings that report a sign); the view then reads the
    study of 10 days ago: "resolved", and the emergency disappears until the first of the six becomes current."""

    def study(when: Any, **fields: Any) -> ImagingFinding:
        return vertebra(at=when, **fields).model_copy(update={"recorded_at": min(when, NOW)})

    events: list[Message] = [
        study(NOW - 20 * DAY, cord_compression=True, status="confirmed"),
        study(NOW - 10 * DAY, status="resolved", lesion_type="lytic"),
        study(NOW - DAY, status="confirmed"),
    ]
    control = [(i.status, i.severity) for i in _items(events, "RT-MSCC")]
    assert control == [("recommended", "critical")]
    ahead = [study(AHEAD + k * timedelta(minutes=5), status="confirmed") for k in range(6)]
    assert [(i.status, i.severity) for i in _items([*events, *ahead], "RT-MSCC")] == control


def test_review_r28rt_five_findings_dated_ahead_keep_the_emergency() -> None:
    """The control of the case above: with five (the newest six still hold yesterday's study) the emergency stays."""
    events: list[Message] = [
        vertebra(at=NOW - 20 * DAY, cord_compression=True, status="confirmed"),
        vertebra(at=NOW - 10 * DAY, status="resolved", lesion_type="lytic"),
        vertebra(at=NOW - DAY, status="confirmed"),
        *(
            vertebra(at=AHEAD + k * timedelta(minutes=5), status="confirmed").model_copy(update={"recorded_at": NOW})
            for k in range(5)
        ),
    ]
    assert [(i.status, i.severity) for i in _items(events, "RT-MSCC")] == [("recommended", "critical")]


# ---- the facts RT-MSCC and the life expectancy check the currency of, over a current value -------------------------
# as_of.CHECKED_SIGNS / CHECKED_NAMES fall back to the future fact only when no current one reports the sign or name:
# over a current "no" (or a longer estimate), the new finding dated ahead is silent, where 8589dca said "donnée non
# actuelle" (re-evaluate without delay) or "cannot decide".
def test_review_r28rt_a_compression_imaged_ahead_after_a_current_no_is_not_silent() -> None:
    """RT-MSCC (L1397-1402): yesterday's MRI says no compression; today's, dated 20 min ahead, says compression. The
    planner says nothing at all (not even "donnée non actuelle"), though as_of.py means "never silent about an
    emergency"; with no current answer (the test of FH-RT) it does say it."""
    events: list[Message] = [
        vertebra(at=NOW - DAY, cord_compression=False, epidural_extension=False),
        _assessment(neurological_deficit=False, life_expectancy_months=24.0),
        vertebra(at=AHEAD, cord_compression=True).model_copy(update={"recorded_at": NOW}),
    ]
    assert _items(events, "RT-MSCC") != []


def test_review_r28rt_a_deficit_assessed_ahead_after_a_current_no_is_not_silent_about_the_inferred_compression() -> (
    None
):
    """RT-MSCC (L1397-1402, review RK): an epidural extension with a neurological deficit is a compression to rule out
    in an emergency. The deficit, new, is assessed 20 min ahead over yesterday's "no deficit": the item stays the
    epiduritis' prevention, the deficit unmentioned (8589dca: "Épidurite et déficit neurologique : données non
    actuelles")."""
    events: list[Message] = [
        vertebra(at=NOW - DAY, epidural_extension=True),
        _assessment(neurological_deficit=False, life_expectancy_months=24.0),
        _assessment(AHEAD, neurological_deficit=True),
    ]
    [mscc] = _items(events, "RT-MSCC")
    assert "déficit" in mscc.title


def test_review_r28rt_a_deficit_assessed_ahead_does_not_leave_sbrt_possible_on_an_operated_compression() -> None:
    """RT-SBRT-CI (L1629-1631): a cord compression that is symptomatic is an absolute contraindication, operated or
    not. The deficit assessed 20 min ahead over a current "no": SBRT "possible" (8589dca: contraindicated)."""
    events: list[Message] = [
        vertebra(at=NOW - 10 * DAY, cord_compression=True),
        ClinicalAssessment.model_validate(env(NOW - 5 * DAY, neurological_deficit=False, life_expectancy_months=24.0)),
        TreatmentEvent.model_validate(
            env(
                NOW - 5 * DAY,
                treatment={
                    "kind": "surgery",
                    "procedure": "decompression",
                    "site": "spine",
                    "lesion_id": "t8",
                    "vertebral_level": "T8",
                    "on": (TODAY - 5 * DAY).isoformat(),
                },
            )
        ),
        score("sins", "t8", 4, "stable"),
        request("t8", "sbrt", planned_on=TODAY + 30 * DAY, total_dose_gy=27.0, fractions=3, intent="postoperative"),
    ]
    [control] = _items(events, "RT-SBRT-CI")
    assert control.status == "recommended"
    [ci] = _items([*events, _assessment(AHEAD, neurological_deficit=True)], "RT-SBRT-CI")
    assert ci.status != "recommended"


def test_review_r28rt_a_life_expectancy_revised_down_ahead_does_not_leave_the_surgery_band() -> None:
    """SURG-LE (L2776-2834): a femur fracture, 24 months estimated yesterday (resection-reconstruction); the estimate
    revised to 1 month (< 6 weeks: no surgery), dated 20 min ahead: SURG-LE still recommends the surgery of the
    longer estimate (8589dca: "cannot decide", the estimate not current)."""
    events: list[Message] = [
        femur(at=NOW - DAY, pathological_fracture=True),
        _assessment(life_expectancy_months=24.0),
    ]
    [control] = _items(events, "SURG-LE")
    assert control.status == "recommended"
    [surgery] = _items([*events, _assessment(AHEAD, life_expectancy_months=1.0)], "SURG-LE")
    assert surgery.status != "recommended"


# ---- what held ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "on"), [("clopidogrel", TODAY), ("apixaban", TODAY + DAY)])
def test_review_r28rt_an_antithrombotic_dated_ahead_still_blocks_the_cementoplasty(name: str, on: Any) -> None:
    """IR-CEMENT (L2629-2636): treatment events are not read as of `now` (as_of.py leaves them as they were): a dose
    recorded with a clinical time ahead still counts, so the stop rules still apply."""
    dose = TreatmentEvent.model_validate(
        env(treatment={"kind": "drug_administration", "drug": name, "on": on.isoformat(), "ongoing": True})
    ).model_copy(update={"occurred_at": AHEAD, "recorded_at": NOW})
    [cement] = _items([*_cement(), dose], "IR-CEMENT")
    assert cement.status != "recommended"
