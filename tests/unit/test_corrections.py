"""Corrected and entered-in-error imaging findings (issue 11): one pure rule (shared/clinical/corrections.py) used by
scoring, the systemic planner and the radiotherapy planner. What a corrected finding caused is withdrawn through each
service's usual withdrawal path (LAB-CORRECTION's principle); an amendment replaces what it corrects; a corrected
finding never counts again, whatever the order the records arrive in."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import Recommendation, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.radiotherapy_planner.domain import apply_event as rt_apply
from services.radiotherapy_planner.facts import LocalState, lesions
from services.scoring.domain import ScoringState, current_scores
from services.scoring.domain import apply_event as scoring_apply
from services.systemic_planner import rules as sr
from services.systemic_planner.disease import bone_metastasis
from services.systemic_planner.domain import SystemicState
from services.systemic_planner.domain import apply_event as systemic_apply
from shared.clinical.corrections import effective_findings

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def finding(minutes: int = 0, recorded: int | None = None, **fields: Any) -> ImagingFinding:
    at = T0 + timedelta(minutes=minutes)
    rec = T0 + timedelta(minutes=recorded if recorded is not None else minutes)
    doc = {
        "event_id": uuid.uuid4(),
        "patient_id": "p1",
        "occurred_at": at,
        "recorded_at": rec,
        "source": "t",
        "lesion_id": "fem-R",
        "skeletal_site": "femur_trochanteric",
        "lesion_type": "lytic",
        "cortical_involvement_fraction": 0.7,
        "modality": "xray",
    }
    return ImagingFinding.model_validate(doc | fields)


def correction(of: ImagingFinding, status: str, recorded: int, named: bool = True, **fields: Any) -> ImagingFinding:
    """A correction of `of`: the same study (same clinical time), recorded later."""
    doc = of.model_dump() | {"event_id": uuid.uuid4(), "record_status": status}
    doc |= {"recorded_at": T0 + timedelta(minutes=recorded), "corrects": of.event_id if named else None}
    return ImagingFinding.model_validate(doc | fields)


def ids(fs: list[ImagingFinding]) -> list[uuid.UUID]:
    return [f.event_id for f in fs]


# ---- the shared rule -------------------------------------------------------------------------------------------


def test_entered_in_error_withdraws_the_finding_it_names_and_never_counts_itself() -> None:
    first, other = finding(0), finding(10, lesion_id="hum-L", skeletal_site="humerus")
    error = correction(first, "entered-in-error", 20)
    assert ids(effective_findings([first, other, error])) == [other.event_id]


def test_an_amendment_replaces_the_finding_it_names_or_its_lesions_newest_earlier_one() -> None:
    older, newer = finding(0), finding(60)
    named = correction(older, "amended", 90)
    assert ids(effective_findings([older, newer, named])) == [named.event_id, newer.event_id]
    implicit = correction(newer, "amended", 90, named=False)  # names none: the newest recorded before it
    assert ids(effective_findings([older, newer, implicit])) == [older.event_id, implicit.event_id]
    # a finding of another lesion is never the implicit target
    alone = finding(0, lesion_id="hum-L", skeletal_site="humerus")
    assert ids(effective_findings([alone, correction(finding(0), "amended", 5, named=False)]))[0] == alone.event_id


def test_the_answer_does_not_depend_on_the_order_of_arrival_and_nothing_is_resurrected() -> None:
    first = finding(0)
    amended = correction(first, "amended", 30, cortical_involvement_fraction=0.2)
    withdrawn = correction(amended, "entered-in-error", 40)  # withdrawing the amendment does not restore `first`
    later = finding(120)
    expected = [later.event_id]
    for order in itertools.permutations([first, amended, withdrawn, later]):
        assert ids(effective_findings(order)) == expected


# ---- scoring: SRE and Mirels recommendation withdrawn, amendment re-scores ---------------------------------------


def run_scoring(events: list[Message], state: ScoringState | None = None) -> tuple[ScoringState, list[Message]]:
    s, out = state or ScoringState(), []
    for e in events:
        s, o = scoring_apply(s, e, now=NOW)
        out += o
    return s, out


def pain() -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "occurred_at": T0,
            "recorded_at": T0,
            "source": "t",
            "life_expectancy_months": 12,
            "lesion_pain": [{"lesion_id": "fem-R", "intensity": "functional"}],
        }
    )


def active(out: list[Message], rule_id: str) -> list[Recommendation]:
    gone = {i for o in out if isinstance(o, Recommendation) and o.status == "withdrawn" for i in o.supersedes}
    return [
        o
        for o in out
        if isinstance(o, Recommendation) and o.status == "active" and o.rule_id == rule_id and o.event_id not in gone
    ]


def test_scoring_entered_in_error_withdraws_the_sre_and_the_mirels_recommendation() -> None:
    fractured = finding(0, pathological_fracture=True)
    s, out = run_scoring([pain(), fractured])
    [sre] = [o for o in out if isinstance(o, SkeletalEvent) and o.kind == "pathological_fracture"]
    [high] = active(out, "MIRELS-HIGH")
    s, out2 = run_scoring([correction(fractured, "entered-in-error", 30)], s)
    withdrawn = [o for o in out2 if isinstance(o, SkeletalEvent) and o.status == "withdrawn"]
    assert [w.supersedes for w in withdrawn] == [[sre.event_id]]
    assert [o.supersedes for o in out2 if isinstance(o, Recommendation) and o.status == "withdrawn"] == [
        [high.event_id]
    ]
    assert s.lesions == {} and not [x for x in current_scores(s, "p1", now=NOW) if x.score == "mirels"]
    # the original delivered again afterwards (a late copy) is not resurrected
    s, out3 = run_scoring([fractured], s)
    assert s.lesions == {} and not [o for o in out3 if isinstance(o, SkeletalEvent) and o.status != "withdrawn"]


def test_scoring_an_amended_finding_replaces_the_one_it_corrects() -> None:
    first = finding(0)  # lytic, 0.7 of the cortex, trochanteric, functional pain: 12
    s, out = run_scoring([pain(), first])
    [high] = active(out, "MIRELS-HIGH")
    amended = correction(first, "amended", 30, lesion_type="blastic", cortical_involvement_fraction=0.2)
    s, out2 = run_scoring([amended], s)
    assert high.event_id in {i for o in out2 if isinstance(o, Recommendation) for i in o.supersedes}
    [mirels] = [x for x in current_scores(s, "p1", now=NOW) if x.score == "mirels"]
    assert mirels.total == 8 and {c.source_event_id for c in mirels.components if c.name != "pain"} == {
        amended.event_id
    }
    # order independence: the amendment first, then the original it corrects, gives the same lesion
    s2, _ = run_scoring([pain(), amended, first])
    assert s2.lesions == s.lesions


# ---- systemic planner: a withdrawn finding starts nothing (SYS-AR-START) -----------------------------------------


def test_systemic_entered_in_error_finding_is_no_longer_a_bone_metastasis() -> None:
    at = sr.AsOf(now=NOW)
    first = finding(0)
    s, _ = systemic_apply(SystemicState(), first, at)
    assert bone_metastasis(s, at) is not None
    s, _ = systemic_apply(s, correction(first, "entered-in-error", 30), at)
    assert bone_metastasis(s, at) is None and s.lesions == {}
    s, _ = systemic_apply(s, first, at)  # a late copy of the original: still withdrawn
    assert bone_metastasis(s, at) is None
    # an amendment keeps the lesion, dated by the amended finding
    other = finding(60, lesion_id="hum-L", skeletal_site="humerus")
    amended = correction(other, "amended", 90, modality="mri")
    s, _ = systemic_apply(s, other, at)
    s, _ = systemic_apply(s, amended, at)
    found = bone_metastasis(s, at)
    assert found is not None and found.event_id == amended.event_id


# ---- radiotherapy planner: a corrected finding is never resurrected ---------------------------------------------


def test_radiotherapy_planner_never_resurrects_a_corrected_finding() -> None:
    spine: dict[str, Any] = {
        "lesion_id": "l1",
        "skeletal_site": "spine",
        "vertebral_level": "L1",
        "cord_compression": True,
    }
    first = finding(0, **spine)
    error = correction(first, "entered-in-error", 30)
    s = LocalState()
    for e in (error, first):  # the correction arrives first; the original, late, must stay withdrawn
        s, _ = rt_apply(s, e)
    assert lesions(s) == {}
    later = finding(60, **spine)
    amended = correction(later, "amended", 90, named=False, cord_compression=False)
    s, _ = rt_apply(s, later)
    s, _ = rt_apply(s, amended)
    assert lesions(s)["l1"].latest.event_id == amended.event_id


# ---- clinical assessments carry the same correction (additive contract fields) --------------------------------


def assessment_correction(of: ClinicalAssessment, status: str, recorded: int, **fields: Any) -> ClinicalAssessment:
    doc = of.model_dump() | {"event_id": uuid.uuid4(), "record_status": status, "corrects": of.event_id}
    return ClinicalAssessment.model_validate(doc | {"recorded_at": T0 + timedelta(minutes=recorded)} | fields)


def test_scoring_a_corrected_assessment_no_longer_decides_mirels() -> None:
    estimate = pain()  # life expectancy 12 months, functional pain of fem-R
    s, out = run_scoring([estimate, finding(0)])
    [high] = active(out, "MIRELS-HIGH")
    amended = assessment_correction(estimate, "amended", 30, life_expectancy_months=2)
    s, out2 = run_scoring([amended], s)
    assert high.event_id in {i for o in out2 if isinstance(o, Recommendation) for i in o.supersedes}
    assert [r.rule_id for r in active(out2, "MIRELS-HIGH-SHORT-LE")] == ["MIRELS-HIGH-SHORT-LE"]  # L1330-1332
    s, out3 = run_scoring([assessment_correction(amended, "entered-in-error", 40)], s)
    assert s.assessment.life_expectancy_months is None and s.assessment.lesion_pain_intensity == {}
    assert active(out2 + out3, "MIRELS-HIGH-SHORT-LE") == []  # what it decided is withdrawn
    [mirels] = [x for x in current_scores(s, "p1", now=NOW) if x.score == "mirels"]
    assert mirels.total is None and mirels.missing == ["pain"]  # the pain it reported is withdrawn too
    s2, _ = run_scoring([assessment_correction(amended, "entered-in-error", 40), finding(0), amended, estimate])
    assert s2.assessment == s.assessment  # the same facts in any order


def test_systemic_and_radiotherapy_planners_forget_what_a_corrected_assessment_said() -> None:
    at = sr.AsOf(now=NOW)
    opinion = {"operable": True, "on": "2026-10-30"}
    said = ClinicalAssessment.model_validate(
        {
            "event_id": uuid.uuid4(),
            "patient_id": "p1",
            "occurred_at": T0,
            "recorded_at": T0,
            "source": "t",
            "life_expectancy_months": 12,
            "oncological_response": "good",
            "surgical_opinion": opinion,
        }
    )
    error = assessment_correction(said, "entered-in-error", 30)
    s, _ = systemic_apply(SystemicState(), said, at)
    assert [f.value for f in s.life_expectancies] == [12] and s.response is not None
    s, _ = systemic_apply(s, error, at)
    assert s.life_expectancies == [] and s.response is None
    local = LocalState()
    for e in (error, said):  # the correction first: the late original is not resurrected
        local, _ = rt_apply(local, e)
    assert local.assessed == {} and local.opinions == {}
