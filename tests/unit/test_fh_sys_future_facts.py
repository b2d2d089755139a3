"""HAZ-27-FUTURE-HIDES (systemic planner): a fact dated beyond the clock-skew tolerance is left out of the decision at
`now` and never hides the newest current fact of its kind (lesion status and sightings, SREs, life expectancy,
oncological response, lab values, drug and dental events, biopsies); its date is a deadline.

Metamorphic, seeded: for a generated history H, and facts F like H's (same lesions, analytes, drugs) dated after
`now + tolerance` and recorded at `now`: (1) every plan item at `now` from H + F equals H's, and H + F's deadline is
never later than H's nor at or before `now`; (2) once the clock passes their dates, H + F decides as H + F recorded
when they happened; (3) a memo-warm plan equals a cold one."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner import texts as t
from services.systemic_planner.domain import build_plan
from services.systemic_planner.inputs import LESION_STATUSES_KEPT, SystemicState
from tests.unit.test_systemic_rules import T0, lab, run

TOL = r.Recency().future_tolerance
NOW = T0 + timedelta(days=2)
DAY = timedelta(days=1)
STATUSES = ["suspected", "confirmed", "resolved", None]
MODALITIES = ["ct", "mri", "xray", "bone_scan", "fdg_pet"]
LABS: dict[str, tuple[str, list[float]]] = {
    "creatinine_clearance": ("mL/min", [25.0, 45.0, 60.0, 90.0]),
    "vitamin_d_25oh": ("ng/mL", [8.0, 15.0, 25.0, 40.0]),
    "corrected_calcium": ("mmol/L", [2.3, 2.8, 3.7]),
    "ctx_serum": ("pg/mL", [150.0, 600.0]),
}


def _env(at: datetime, recorded: datetime | None = None) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": recorded or at}


def _finding(rnd: random.Random, at: datetime, lesion: str) -> ImagingFinding:
    body = {"lesion_id": lesion, "skeletal_site": "femur_shaft", "modality": rnd.choice(MODALITIES), "source": "t"}
    status = rnd.choice(STATUSES)
    return ImagingFinding.model_validate({**_env(at), **body, **({"status": status} if status else {})})


def _assessment(rnd: random.Random, at: datetime) -> ClinicalAssessment:
    body: dict[str, Any] = {"source": "t"}
    if rnd.random() < 0.7:
        body["life_expectancy_months"] = rnd.choice([2.0, 6.0, 12.0, 24.0])
    if rnd.random() < 0.6 or "life_expectancy_months" not in body:
        body["oncological_response"] = rnd.choice(["complete", "good", "stable", "progression"])
    return ClinicalAssessment.model_validate({**_env(at), **body})


def _sre(rnd: random.Random, at: datetime) -> SkeletalEvent:
    kind = rnd.choice(["hypercalcaemia", "pathological_fracture", "cord_compression"])
    return SkeletalEvent.model_validate(
        {**_env(at), "source": "scoring", "kind": kind, "rule_id": "CLASS-SRE", "evidence": []}
    )


def _lab(rnd: random.Random, at: datetime, analyte: str) -> Message:
    unit, values = LABS[analyte]
    extra: dict[str, Any] = {"interpretation": "interpretable"} if analyte == "ctx_serum" else {}
    minutes = (at - T0) // timedelta(minutes=1)  # a clearance's weight weighed with its creatinine (LAB-CRCL)
    e = lab(minutes, analyte, rnd.choice(values), unit, **extra)
    return e.model_copy(update={"occurred_at": at, "recorded_at": at, "result_id": f"{analyte}-{uuid.uuid4()}"})


def _treatment(rnd: random.Random, at: datetime, kind: str) -> TreatmentEvent:
    on = at.date()
    if kind == "drug_administration":
        t: dict[str, Any] = {"kind": kind, "drug": rnd.choice(["zoledronic_acid", "denosumab"]), "on": on}
    elif kind == "dental":
        t = {"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": on}
    else:
        t = {"kind": "systemic_drug", "drug": "cholecalciferol", "action": rnd.choice(["started", "stopped"]), "on": on}
    return TreatmentEvent.model_validate({**_env(at), "source": "t", "treatment": t})


def _biopsy(rnd: random.Random, at: datetime) -> CareEvent:
    body = {"kind": "bone_biopsy", "biopsy_id": "bx1", "status": rnd.choice(["planned", "reported"]), "on": at.date()}
    return CareEvent.model_validate({**_env(at), "source": "t", "event": body})


KINDS = ["finding", "assessment", "sre", "lab", "drug_administration", "dental", "systemic_drug", "biopsy"]


def _fact(rnd: random.Random, kind: str, at: datetime, like: str) -> Message:
    """A fact of `kind` at `at`; `like` names the lesion or analyte (the same as an existing fact's)."""
    if kind == "finding":
        return _finding(rnd, at, like)
    if kind == "assessment":
        return _assessment(rnd, at)
    if kind == "sre":
        return _sre(rnd, at)
    if kind == "lab":
        return _lab(rnd, at, like)
    if kind == "biopsy":
        return _biopsy(rnd, at)
    return _treatment(rnd, at, kind)


def _histories(seed: int) -> tuple[list[Message], list[tuple[str, str, datetime]], random.Random]:
    """H (dated up to `now`) and the future facts' kinds, names and dates (each like one of H's)."""
    rnd = random.Random(seed)
    past: list[Message] = []
    named: list[tuple[str, str]] = []
    for kind in KINDS:
        for _ in range(rnd.randint(0 if kind not in ("finding", "assessment") else 1, 3)):
            like = rnd.choice(["a", "b"]) if kind == "finding" else rnd.choice(list(LABS)) if kind == "lab" else ""
            at = NOW - timedelta(minutes=rnd.randint(1, 60 * 24 * 120))
            past.append(_fact(rnd, kind, at, like))
            named.append((kind, like))
    future = []
    for _ in range(rnd.randint(1, 6)):
        kind, like = rnd.choice(named)
        after = rnd.choice([US, timedelta(minutes=rnd.randint(1, 60 * 24 * 40))])
        if kind in ("drug_administration", "dental", "systemic_drug", "biopsy"):
            after += DAY  # dated by day: a date after today's
        future.append((kind, like, NOW + TOL + after))
    return past, future, rnd


US = timedelta(microseconds=1)


#: what the plan says of a fact dated in the future (a date to check): the one difference allowed
NOTES = (t.FUTURE_IGNORED, " Une estimation datée dans le futur est ignorée (date à vérifier).")


def _said(x: Any) -> Any:
    """`x` without the notes of a future-dated fact."""
    if isinstance(x, str):
        for note in NOTES:
            x = x.replace(note, "")
        return x
    if isinstance(x, list):
        return [_said(y) for y in x]
    if isinstance(x, dict):
        return {k: _said(v) for k, v in x.items()}
    return x


def _plan(s: SystemicState, now: datetime, memo: bool = False) -> tuple[list[dict[str, Any]], datetime | None]:
    at = r.AsOf(now=now, memo=memo)
    plan = [x.model_dump(mode="json") for x in build_plan(s, at)]
    return plan, at.next_due()


@pytest.mark.parametrize("seed", range(40))
def test_fh_sys_facts_dated_in_the_future_change_nothing_now_but_the_deadline(seed: int) -> None:
    past, future, rnd = _histories(seed)
    ahead = [_fact(rnd, kind, at, like).model_copy(update={"recorded_at": NOW}) for kind, like, at in future]
    m.clear()
    try:
        base, _ = run(past, now=NOW)
        mixed = list(past)
        for e in ahead:  # the future facts arrive among the current ones
            mixed.insert(rnd.randint(len(past) // 2, len(mixed)), e)
        both, _ = run(mixed, now=NOW)
        plan, due = _plan(base, NOW)
        plan_f, due_f = _plan(both, NOW)
        assert _said(plan_f) == plan  # left out (but for a note naming it), and hiding nothing current
        assert due_f is not None and due_f > NOW and (due is None or due_f <= due)
        assert _plan(both, NOW, memo=True) == (plan_f, due_f) and _plan(both, NOW, memo=True) == (plan_f, due_f)
        # once their dates have come: as if recorded when they happened (the normal order of arrival)
        later = max(at for _, _, at in future) + DAY
        normal = [e.model_copy(update={"recorded_at": e.occurred_at}) for e in ahead]
        dated, _ = run([*past, *normal], now=later)
        assert _plan(both, later)[0] == _plan(dated, later)[0]
        assert _plan(both, later, memo=True) == _plan(both, later)
    finally:
        m.clear()


def test_fh_sys_more_future_statuses_than_kept_make_the_lesion_status_unknown_never_a_future_one() -> None:
    """Fail safe: once the LESION_STATUSES_KEPT statuses kept are all future-dated (a current one may have been
    dropped), the start is "cannot decide" (a lesion's current status unknown), never decided on one not yet
    effective."""
    rnd = random.Random(7)
    past = [
        ImagingFinding.model_validate(
            {**_env(NOW - DAY), "source": "t", "lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "ct"}
        ),
        _assessment(rnd, NOW - DAY).model_copy(update={"life_expectancy_months": 12.0}),
    ]
    s, _ = run(past, now=NOW)
    assert _plan(s, NOW)[0][0]["status"] == "recommended"
    ahead = []
    for k in range(LESION_STATUSES_KEPT):
        f = _finding(rnd, NOW + TOL + timedelta(hours=k + 1), "a")
        ahead.append(f.model_copy(update={"status": "resolved", "recorded_at": NOW}))
    s2, _ = run(ahead[:-1], s, now=NOW)
    assert _plan(s2, NOW)[0] == _plan(s, NOW)[0]  # fewer than kept: nothing changes
    s3, _ = run(ahead[-1:], s2, now=NOW)
    start = _plan(s3, NOW)[0][0]
    assert start["key"] == "antiresorptive-start" and start["status"] == "cannot_decide"
    assert start["missing"] == ["current status of a bone lesion"]
    assert "antiresorptive-start" not in {x["key"] for x in _plan(s3, NOW + TOL + timedelta(hours=2))[0]}
