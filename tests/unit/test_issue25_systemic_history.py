"""Issue 25, systemic planner: a deterministic multi-year history of one patient (the planner's inputs), the state
bound for 5 years of it, and per-event cost flat from 10 to 10 000 events of history.

`history(seed, years)` is the realistic mix the retention policy is sized for (README, "Retention: systemic
planner"): corrected calcium and creatinine clearance every 1 to 4 weeks, vitamin D every 3 months, serum CTX
every 6 months, imaging every 2 to 4 months (a few lesions, now and then a new one), assessments every 1 to 3
months, the oligometastatic score after each imaging, a few SREs, chemotherapy lines, denosumab given monthly for
2 years then stopped with a zoledronic acid relay, dental checks every 6 months, a vitamin D loading, a few
radiotherapy courses and corrections (withdrawn results, amended findings, treatment records entered in error)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event

START = datetime(2021, 1, 4, 9, 0, tzinfo=UTC)
SITES = ("femur_shaft", "pelvis", "humerus", "rib", "skull", "sternum")


class _Gen:
    def __init__(self, seed: int, patient: str) -> None:
        self.rnd = random.Random(seed)
        self.patient = patient
        self.n = 0

    def uid(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.rnd.getrandbits(128) | (1 << 127))

    def env(self, at: datetime, delay_hours: float = 2.0, source: str = "hospital") -> dict[str, Any]:
        return {
            "event_id": self.uid(),
            "patient_id": self.patient,
            "occurred_at": at,
            "recorded_at": at + timedelta(hours=delay_hours),
            "source": source,
        }


def _lab(g: _Gen, at: datetime, analyte: str, value: float | None, unit: str, **extra: Any) -> NormalisedLab:
    doc: dict[str, Any] = {
        **g.env(at, 6, "lab-normalisation"),
        "analyte": analyte,
        "result_id": f"{analyte}-{at:%Y%m%d%H%M}",
        "value": value,
        "unit": unit,
        **extra,
    }
    if analyte == "creatinine_clearance":
        doc["rule_ids"] = ["LAB-CRCL"]
        doc["derived_from"] = [
            {"event_id": g.uid(), "analyte": "creatinine", "value": 80.0, "unit": "umol/L", "occurred_at": at},
            {"event_id": g.uid(), "analyte": "body_weight", "value": 68.0, "unit": "kg", "occurred_at": at},
        ]
    return NormalisedLab.model_validate(doc)


def _treatment(g: _Gen, at: datetime, body: dict[str, Any], **extra: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate({**g.env(at, 4), "treatment": body, **extra})


def _drug(g: _Gen, on: date, name: str, action: str) -> TreatmentEvent:
    at = datetime(on.year, on.month, on.day, 10, tzinfo=UTC)
    return _treatment(g, at, {"kind": "systemic_drug", "drug": name, "action": action, "on": on})


def _given(g: _Gen, on: date, name: str) -> TreatmentEvent:
    at = datetime(on.year, on.month, on.day, 11, tzinfo=UTC)
    return _treatment(g, at, {"kind": "drug_administration", "drug": name, "on": on})


def _day(t: datetime) -> date:
    return t.date()


def history(seed: int = 1, years: float = 5.0, patient: str = "p-history", density: float = 1.0) -> list[Message]:
    """One patient's events over `years`, in the order they are recorded (deterministic from `seed`); `density`
    divides the interval between two lab visits (a long history for the cost measures)."""
    g = _Gen(seed, patient)
    rnd = g.rnd
    end = START + timedelta(days=365.25 * years)
    out: list[Message] = []
    lesions = [f"L{i}" for i in range(rnd.randint(2, 4))]
    sites = {lesion: rnd.choice(SITES) for lesion in lesions}

    def finding(at: datetime, lesion: str, **extra: Any) -> ImagingFinding:
        return ImagingFinding.model_validate(
            {
                **g.env(at, 24),
                "lesion_id": lesion,
                "skeletal_site": sites[lesion],
                "modality": rnd.choice(("ct", "ct", "mri", "fdg_pet")),
                "size_cm": round(rnd.uniform(0.8, 4.0), 1),
                "status": "confirmed",
                **extra,
            }
        )

    def assessment(at: datetime) -> ClinicalAssessment:
        return ClinicalAssessment.model_validate(
            {
                **g.env(at, 3),
                "life_expectancy_months": rnd.choice((6, 12, 18, 24)),
                "oncological_response": rnd.choice(("good", "partial", "stable", "progression")),
                "ecog": rnd.randint(0, 2),
            }
        )

    def oligo(at: datetime) -> Score:
        return Score.model_validate(
            {
                **g.env(at, 25, "scoring"),
                "score": "oligometastatic",
                "subject": "patient",
                "total": None,
                "complete": True,
                "band": "oligometastatic" if len(lesions) <= 3 else "multi_metastatic",
                "components": [],
                "rule_ids": ["CLASS-OLIGO"],
                "ruleset_version": RULESET_VERSION,
                "text_fr": "x",
                "citation": cite("CLASS-OLIGO").model_dump(),
            }
        )

    def sre(at: datetime, kind: str) -> SkeletalEvent:
        return SkeletalEvent.model_validate(
            {**g.env(at, 26, "scoring"), "kind": kind, "rule_id": "CLASS-SRE", "evidence": []}
        )

    # onboarding
    t0 = START
    out += [finding(t0, lesion) for lesion in lesions]
    out += [assessment(t0 + timedelta(hours=5)), oligo(t0 + timedelta(hours=1))]
    out.append(_treatment(g, t0, {"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": t0.date()}))
    for item in ("multidisciplinary_decision", "patient_information", "pain_management", "smoking_cessation"):
        body: dict[str, Any] = {"kind": "pathway_step", "item": item, "status": "done", "on": t0.date()}
        out.append(CareEvent.model_validate({**g.env(t0, 1), "event": body}))
    biopsy = {"kind": "bone_biopsy", "biopsy_id": "b1", "status": "planned", "on": t0.date() + timedelta(days=3)}
    out.append(CareEvent.model_validate({**g.env(t0, 1), "event": biopsy}))
    reported = {
        **biopsy,
        "status": "reported",
        "histology": "adenocarcinoma",
        "decalcification": "edta",
        "molecular_results": {"EGFR": "exon 19 deletion", "ALK": "négatif", "KRAS": "sauvage", "PD-L1": "5%"},
    }
    out.append(CareEvent.model_validate({**g.env(t0 + timedelta(days=12), 1), "event": reported}))
    # drug lines: chemotherapy, then a TKI; cholecalciferol loading; denosumab monthly for 2 years, then the relay
    d0 = t0.date()
    out += [
        _drug(g, d0 + timedelta(days=7), "carboplatin", "started"),
        _drug(g, d0 + timedelta(days=7), "pemetrexed", "started"),
    ]
    out += [_drug(g, d0 + timedelta(days=90), "carboplatin", "stopped")]
    out += [
        _drug(g, d0 + timedelta(days=200), "pemetrexed", "stopped"),
        _drug(g, d0 + timedelta(days=200), "osimertinib", "started"),
    ]
    out += [_drug(g, d0 + timedelta(days=10), "cholecalciferol", "started")]
    out += [_drug(g, d0 + timedelta(days=10 + 56), "cholecalciferol", "stopped")]
    deno_start = d0 + timedelta(days=21)
    n_deno = 26
    for k in range(n_deno):
        out.append(_given(g, deno_start + timedelta(days=28 * k), "denosumab"))
    stop = deno_start + timedelta(days=28 * n_deno)
    out.append(_drug(g, stop, "denosumab", "stopped"))
    for k in range(3):
        out.append(_given(g, stop + timedelta(days=7 + 84 * k), "zoledronic_acid"))
    # radiotherapy courses the planner is sent but does not read
    for k in range(3):
        on = d0 + timedelta(days=150 + 400 * k)
        body = {
            "kind": "radiotherapy",
            "site": sites[lesions[k % len(lesions)]],
            "total_dose_gy": 8,
            "fractions": 1,
            "on": on,
        }
        out.append(_treatment(g, datetime(on.year, on.month, on.day, 12, tzinfo=UTC), body))
    # periodic follow-up
    t = t0 + timedelta(days=1)
    next_vit_d = t0
    next_ctx = t0 + timedelta(days=180)
    next_imaging = t0 + timedelta(days=rnd.randint(60, 120))
    next_assessment = t0 + timedelta(days=rnd.randint(30, 90))
    next_dental = t0 + timedelta(days=182)
    sres = 0
    while t < end:
        crcl = round(rnd.uniform(35, 95), 1)
        out.append(_lab(g, t, "creatinine_clearance", crcl, "mL/min"))
        ca = round(rnd.uniform(2.15, 2.7), 2)
        out.append(_lab(g, t, "corrected_calcium", ca, "mmol/L"))
        if rnd.random() < 0.04:  # a result withdrawn by the laboratory (LAB-CORRECTION), days later
            withdrawn = _lab(g, t, "corrected_calcium", ca, "mmol/L", status="withdrawn")
            out.append(withdrawn.model_copy(update={"recorded_at": t + timedelta(days=rnd.randint(1, 10))}))
        if t >= next_vit_d:
            out.append(_lab(g, t, "vitamin_d_25oh", round(rnd.uniform(12, 45), 1), "ng/mL"))
            next_vit_d = t + timedelta(days=rnd.randint(80, 100))
        if t >= next_ctx:
            out.append(_lab(g, t, "ctx_serum", round(rnd.uniform(100, 600)), "pg/mL", interpretation="interpretable"))
            next_ctx = t + timedelta(days=182)
        if t >= next_imaging:
            if len(lesions) < 10 and t < t0 + timedelta(days=3 * 365) and rnd.random() < 0.3:  # new foci, early
                new = f"L{len(lesions)}"
                lesions.append(new)
                sites[new] = rnd.choice(SITES)
            found = [finding(t, lesion) for lesion in lesions]
            out += found
            if rnd.random() < 0.1:  # an amended finding, weeks later
                x = found[0]
                amended = finding(t, x.lesion_id, record_status="amended", corrects=x.event_id)
                out.append(amended.model_copy(update={"recorded_at": t + timedelta(days=rnd.randint(3, 30))}))
            out.append(oligo(t))
            next_imaging = t + timedelta(days=rnd.randint(60, 120))
        if t >= next_assessment:
            out.append(assessment(t))
            next_assessment = t + timedelta(days=rnd.randint(30, 90))
        if t >= next_dental:
            body = {"kind": "dental", "action": "assessment", "orthopantomogram": rnd.random() < 0.5, "on": t.date()}
            out.append(_treatment(g, t, body))
            next_dental = t + timedelta(days=182)
        if sres < 3 and rnd.random() < 0.02:
            out.append(sre(t, ("pathological_fracture", "hypercalcaemia", "radiotherapy_for_pain")[sres]))
            sres += 1
        if rnd.random() < 0.01:  # a drug record entered in error (a dose that was not given)
            wrong = _given(g, t.date(), "zoledronic_acid")
            out.append(wrong)
            err = {**g.env(t, 48), "treatment": wrong.treatment.model_dump(), "record_status": "entered-in-error"}
            out.append(TreatmentEvent.model_validate({**err, "corrects": wrong.event_id}))
        t += timedelta(days=rnd.choice((7, 7, 14, 14, 21, 28)) / density, hours=rnd.uniform(-2, 2))
    out.sort(key=lambda m: (m.recorded_at, str(m.event_id)))
    return out


def now_for(e: Message) -> datetime:
    """The decision time of an event: shortly after it was recorded (the runtime's wall clock)."""
    return e.recorded_at + timedelta(minutes=5)


def replay(events: list[Message], state: SystemicState | None = None) -> Iterator[tuple[SystemicState, list[Message]]]:
    s = state or SystemicState()
    for e in events:
        s, out = apply_event(s, e, r.AsOf(now=now_for(e)))
        yield s, out


def per_event_seconds(state: SystemicState, events: list[Message], repeat: int = 3) -> float:
    """Decode the event, load the state, apply, and write the state (what the runtime does per event): the best
    of `repeat` timings of `events` applied each on `state`."""
    raw = state.model_dump_json().encode()
    docs = [(type(e), e.model_dump_json().encode()) for e in events]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for kind, doc in docs:
            e = kind.model_validate_json(doc)
            s = SystemicState.model_validate_json(raw)
            s, _ = apply_event(s, e, r.AsOf(now=now_for(e)))
            s.model_dump_json()
        best = min(best, (time.perf_counter() - started) / len(docs))
    return best


#: issue 25: the state of a patient followed 5 years with realistic data stays under this (bytes of JSON)
STATE_BOUND = 64 * 1024


def test_five_years_of_realistic_history_stay_under_the_bound() -> None:
    """Labs every 1 to 4 weeks, imaging every 2 to 4 months, assessments, SREs, drug lines, 2 years of monthly
    denosumab, dental checks, corrections: the retained state never passes 64 KB (the whole history's does)."""
    for seed in (1, 2):
        events = history(seed, 5.0)
        largest = 0
        for i, (s, _) in enumerate(replay(events)):
            if i % 10 == 0 or i == len(events) - 1:
                largest = max(largest, len(s.model_dump_json()))
        full = SystemicState()
        for e in events:
            full, _ = apply_event(full, e, r.AsOf(now=now_for(e)), keep_all=True)
        assert largest < STATE_BOUND < len(full.model_dump_json()), (seed, largest)


def test_a_long_history_plateaus() -> None:
    """A denser history of 3 000 events (labs every 2 to 7 days over 14 years): the state reaches its plateau, and
    the cost per event (decode, load, apply, store) follows the state, not the history's length."""
    events = history(3, 14.0, density=4.0)[:3000]
    states = {n: s for n, (s, _) in enumerate(replay(events), 1) if n in (10, 1000, 3000)}
    sizes = {n: len(s.model_dump_json()) for n, s in states.items()}
    assert sizes[3000] < STATE_BOUND and sizes[3000] < 1.3 * sizes[1000], sizes
