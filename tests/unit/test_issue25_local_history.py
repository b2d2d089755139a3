"""A deterministic, realistic history of one patient as the local-treatment planner receives it (issue 25): labs every
1-4 weeks, imaging every 2-4 months with its scores, assessments every 3-6 weeks, drug cycles, a few RT courses and a
surgery, local-treatment requests, and some corrections; delivered by recorded time (a few hours to days after the
clinical time, so some events arrive out of clinical order). Used by the issue-25 retention tests."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from contracts.rules import RULESET_VERSION, cite
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState

START = datetime(2021, 1, 4, 8, tzinfo=UTC)
#: the lesions as they appear: (lesion_id, site, level, first seen after N days)
LESIONS = (
    ("v-t8", "spine", "T8", 0),
    ("femur-r", "femur_shaft", None, 0),
    ("v-l2", "spine", "L2", 240),
    ("v-t11", "spine", "T11", 500),
    ("pelvis-l", "pelvis", None, 800),
    ("humerus-l", "humerus", None, 1100),
    ("v-t4", "spine", "T4", 1400),
)


class _Gen:
    def __init__(self, seed: int, patient: str) -> None:
        self.rnd = random.Random(seed)
        self.patient = patient
        self.out: list[Message] = []

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rnd.getrandbits(128), version=4)

    def env(self, at: datetime, delay: timedelta | None = None, **fields: Any) -> dict[str, Any]:
        lag = delay if delay is not None else timedelta(minutes=self.rnd.randint(5, 60 * 36))
        return {
            "event_id": str(self.uid()),
            "patient_id": self.patient,
            "occurred_at": at.isoformat(),
            "recorded_at": (at + lag).isoformat(),
            "source": "hospital",
            **fields,
        }

    def add(self, m: Message) -> Message:
        self.out.append(m)
        return m


def _score(g: _Gen, at: datetime, kind: str, subject: str, total: int | None, band: str | None) -> Score:
    return Score.model_validate(
        g.env(
            at,
            timedelta(minutes=1),
            source="scoring",
            score=kind,
            subject=subject,
            total=total,
            complete=total is not None,
            band=band,
            components=[],
            rule_ids=["SCORE-SINS"],
            ruleset_version=RULESET_VERSION,
            text_fr="x",
            citation=cite("SCORE-SINS").model_dump(),
        )
    )


def _treatment(g: _Gen, on: date, treatment: dict[str, Any], **fields: Any) -> TreatmentEvent:
    at = datetime(on.year, on.month, on.day, 10, tzinfo=UTC)
    return TreatmentEvent.model_validate(g.env(at, treatment={"on": on.isoformat(), **treatment}, **fields))


def patient_history(seed: int = 1, years: float = 5.0, patient: str = "pt-history") -> list[Message]:
    """The patient's events over `years`, in delivery order (recorded time). Deterministic from `seed`."""
    g = _Gen(seed, patient)
    rnd = g.rnd
    end = START + timedelta(days=365 * years)
    # labs: platelets and prothrombin (read), calcium and clearance (not read by this planner)
    t = START
    n = 0
    while t < end:
        for analyte, value, unit in (
            ("platelets", rnd.randint(40, 350), "G/L"),
            ("prothrombin_pct", rnd.randint(45, 100), "%"),
            ("corrected_calcium", round(rnd.uniform(2.1, 2.9), 2), "mmol/L"),
            ("creatinine_clearance", rnd.randint(40, 110), "mL/min"),
        ):
            n += 1
            g.add(
                NormalisedLab.model_validate(
                    g.env(
                        t,
                        timedelta(hours=3),
                        source="lab-normalisation",
                        analyte=analyte,
                        result_id=f"r{n}",
                        value=value,
                        unit=unit,
                    )
                )
            )
        t += timedelta(days=rnd.randint(7, 28))
    # imaging every 2-4 months, each current lesion described, its score derived by scoring
    t = START + timedelta(days=3)
    findings: list[ImagingFinding] = []
    while t < end:
        day = (t - START).days
        for lid, site, level, first in LESIONS:
            if day < first:
                continue
            compression = site == "spine" and rnd.random() < 0.08
            f = ImagingFinding.model_validate(
                g.env(
                    t,
                    timedelta(hours=rnd.randint(2, 72)),
                    lesion_id=lid,
                    skeletal_site=site,
                    vertebral_level=level,
                    modality="mri" if site == "spine" else "ct",
                    lesion_type=rnd.choice(("lytic", "mixed", "blastic")),
                    status="confirmed",
                    epidural_extension=compression or (site == "spine" and rnd.random() < 0.2),
                    cord_compression=compression if site == "spine" else None,
                    pathological_fracture=rnd.random() < 0.05,
                    canal_narrowing_pct=rnd.randint(0, 40) if site == "spine" else None,
                    tumour_cord_distance_mm=rnd.randint(1, 9) if site == "spine" else None,
                    vertebral_body_involvement_fraction=round(rnd.uniform(0.1, 0.6), 2) if site == "spine" else None,
                )
            )
            findings.append(g.add(f))  # type: ignore[arg-type]
            at = t + timedelta(hours=80)
            if site == "spine":
                total = rnd.randint(4, 15)
                band = "stable" if total <= 6 else "potentially_unstable" if total <= 12 else "unstable"
                g.add(_score(g, at, "sins", lid, total, band))
            else:
                total = rnd.randint(5, 11)
                g.add(_score(g, at, "mirels", lid, total, "high" if total >= 9 else "low"))
        g.add(
            _score(
                g,
                t + timedelta(hours=81),
                "oligometastatic",
                "patient",
                None,
                rnd.choice(("oligometastatic", "polymetastatic")),
            )
        )
        t += timedelta(days=rnd.randint(60, 120))
    # assessments every 3-6 weeks
    t = START + timedelta(days=5)
    assessments: list[ClinicalAssessment] = []
    while t < end:
        fields: dict[str, Any] = {
            "life_expectancy_months": rnd.choice((3, 6, 9, 12, 18, 24)),
            "pain": {
                "character": rnd.choice(("mechanical", "non_mechanical", "neuropathic")),
                "intensity": rnd.choice(("mild", "moderate", "functional")),
                "resistant_to_analgesics": rnd.random() < 0.4,
            },
            "frail": rnd.random() < 0.3,
            "neurological_deficit": rnd.random() < 0.05,
        }
        if rnd.random() < 0.3:
            fields["lesion_pain"] = [{"lesion_id": "v-t8", "intensity": "moderate", "resistant_to_analgesics": True}]
        if rnd.random() < 0.2:
            fields["surgical_opinion"] = {"operable": rnd.random() < 0.5, "on": t.date().isoformat()}
        if rnd.random() < 0.1:
            fields["cement_allergy"] = False
            fields["active_infection"] = rnd.random() < 0.1
        assessments.append(g.add(ClinicalAssessment.model_validate(g.env(t, **fields))))  # type: ignore[arg-type]
        t += timedelta(days=rnd.randint(21, 42))
    # drugs: denosumab every 4 weeks; two chemotherapy lines every 3 weeks; clopidogrel started then stopped
    drugs: list[TreatmentEvent] = []
    d = START.date() + timedelta(days=20)
    while d < end.date():
        drugs.append(g.add(_treatment(g, d, {"kind": "drug_administration", "drug": "denosumab"})))  # type: ignore[arg-type]
        d += timedelta(days=28)
    for drug, first, last in (("gemcitabine", 30, 400), ("carboplatin", 900, 1200)):
        d = START.date() + timedelta(days=first)
        while d < min(end.date(), START.date() + timedelta(days=last)):
            drugs.append(g.add(_treatment(g, d, {"kind": "drug_administration", "drug": drug})))  # type: ignore[arg-type]
            d += timedelta(days=21)
    for action, day in (("started", 600), ("stopped", 1500)):
        if START + timedelta(days=day) < end:
            g.add(
                _treatment(
                    g,
                    START.date() + timedelta(days=day),
                    {"kind": "systemic_drug", "drug": "clopidogrel", "action": action},
                )
            )
    # RT courses, a surgery, a radium course, and the requests that led to them
    for day, lid, site, level, dose, fx, dmax in (
        (60, "v-t8", "spine", "T8", 30.0, 10, 28.0),
        (420, "femur-r", "femur_shaft", None, 8.0, 1, None),
        (700, "v-l2", "spine", "L2", 20.0, 5, 19.0),
        (1300, "v-t8", "spine", "T8", 27.0, 3, 12.0),
    ):
        if START + timedelta(days=day) >= end:
            continue
        on = START.date() + timedelta(days=day)
        req_at = START + timedelta(days=day - 14)
        modality = "reirradiation" if day == 1300 else "palliative_rt"
        g.add(
            LocalTreatmentRequest.model_validate(
                g.env(
                    req_at,
                    request_id=f"req-{lid}-{day}",
                    lesion_id=lid,
                    modality=modality,
                    intent="pain",
                    total_dose_gy=dose,
                    fractions=fx,
                    planned_cord_dmax_gy=dmax if modality == "reirradiation" else None,
                    planned_on=on.isoformat(),
                )
            )
        )
        g.add(
            _treatment(
                g,
                on,
                {
                    "kind": "radiotherapy",
                    "site": site,
                    "vertebral_level": level,
                    "lesion_id": lid,
                    "total_dose_gy": dose,
                    "fractions": fx,
                    "cord_dmax_gy": dmax,
                    "end_on": (on + timedelta(days=max(0, 2 * (fx - 1)))).isoformat(),
                },
            )
        )
        if day != 1300:  # done: the request is closed a month later (the last one stays open)
            g.add(
                LocalTreatmentRequest.model_validate(
                    g.env(
                        START + timedelta(days=day + 30),
                        request_id=f"req-{lid}-{day}",
                        lesion_id=lid,
                        modality=modality,
                        status="cancelled",
                    )
                )
            )
    if years * 365 > 450:
        g.add(
            _treatment(
                g,
                START.date() + timedelta(days=450),
                {"kind": "surgery", "site": "femur", "procedure": "prophylactic_fixation", "lesion_id": "femur-r"},
            )
        )
    if years * 365 > 1000:
        g.add(
            _treatment(
                g, START.date() + timedelta(days=1000), {"kind": "metabolic_radiotherapy", "agent": "radium-223"}
            )
        )
    if years * 365 > 1250:
        g.add(
            LocalTreatmentRequest.model_validate(
                g.env(
                    START + timedelta(days=1250),
                    request_id="req-cement-l2",
                    lesion_id="v-l2",
                    modality="cementoplasty",
                    intent="pain",
                    planned_on=(START.date() + timedelta(days=1265)).isoformat(),
                )
            )
        )
    # corrections: about one a year of each kind, soon after what they correct
    for i, a in enumerate(assessments):
        if i % 10 == 7:
            at = datetime.fromisoformat(str(a.recorded_at)) + timedelta(days=2)
            g.add(
                ClinicalAssessment.model_validate(
                    g.env(at, timedelta(0), record_status="amended", corrects=str(a.event_id), life_expectancy_months=4)
                )
            )
    for i, f in enumerate(findings):
        if i % 25 == 11:
            g.add(
                ImagingFinding.model_validate(
                    g.env(
                        f.recorded_at + timedelta(days=3),
                        timedelta(0),
                        lesion_id=f.lesion_id,
                        skeletal_site=f.skeletal_site,
                        vertebral_level=f.vertebral_level,
                        modality=f.modality,
                        record_status="entered-in-error",
                        corrects=str(f.event_id),
                    )
                )
            )
    for i, e in enumerate(drugs):
        if i % 30 == 13:
            g.add(
                TreatmentEvent.model_validate(
                    g.env(
                        e.recorded_at + timedelta(days=1),
                        timedelta(0),
                        treatment=e.treatment.model_dump(mode="json"),
                        record_status="entered-in-error",
                        corrects=str(e.event_id),
                    )
                )
            )
    return sorted(g.out, key=lambda m: (m.recorded_at, m.event_id.int))


# ---- tests -----------------------------------------------------------------------------------------------------------
def _final_state(events: list[Message], retention: bool = True) -> LocalState:
    s = LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at + timedelta(minutes=1), retention=retention)
    return s


def test_five_years_of_realistic_data_stay_under_64_kb() -> None:
    """Issue 25's bound: labs every 1-4 weeks, imaging every 2-4 months on up to 7 lesions, monthly assessments,
    three drug lines, four RT courses, a surgery, corrections: the stored state stays under 64 KB (without
    retention it is more than twice that)."""
    events = patient_history(seed=11, years=5)
    kept = _final_state(events)
    full = _final_state(events, retention=False)
    size = len(kept.model_dump_json().encode())
    assert size < 64 * 1024
    assert len(full.model_dump_json().encode()) > 2 * size


def test_the_state_stops_growing_with_the_years() -> None:
    """Bounded, not merely smaller: 20 years of the same care weigh what 5 years weigh (within 15 %), while the
    records kept whole are the newest ones and every radiotherapy course."""
    five = len(_final_state(patient_history(seed=2, years=5)).model_dump_json())
    twenty_state = _final_state(patient_history(seed=2, years=20))
    twenty = len(twenty_state.model_dump_json())
    assert twenty < 1.15 * five
    assert twenty_state.folded["drug_events"] > 250 and twenty_state.folded["assessments"] > 150


def test_the_stored_json_is_pydantics_document() -> None:
    """stored.dump reuses the records' JSON: the same document as pydantic's, and it loads back equal."""
    s = _final_state(patient_history(seed=4, years=2))
    text = s.model_dump_json()
    assert json.loads(text) == json.loads(BaseModel.model_dump_json(s))
    assert LocalState.model_validate_json(text) == s
    assert json.loads(LocalState().model_dump_json()) == json.loads(BaseModel.model_dump_json(LocalState()))
