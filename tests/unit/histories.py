"""Generated histories shared by several test files (one definition each, imported where used).

The systemic planner's generator (issue 25, first written for tests/unit/test_issue25_systemic_retention.py): five
drawn integers per event make labs, findings, assessments, SREs, scores, drug starts, stops and doses, dental and care
events and clock ticks, out of clinical order, corrected, withdrawn and delivered twice within the horizon the
retention policy states; `systemic_history` walks it and gives the time each event is decided at.

Lab-normalisation's generated histories (tests/unit/test_issue25_lab_retention.py `histories`) are of one patient,
whose demographics (`lab_record`) the clearances read.

The clocks' property (review RK: tests/unit/test_review_rk_*_clock.py): `assert_every_change_is_due`.

Shared tables hammered from several threads (the runtime applies events in a worker thread while the API reads):
`in_racing_threads`."""

from __future__ import annotations

import itertools
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding, PatientRecord, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from tests.unit.test_lab_domain import T0 as LAB_T0

# ---- the systemic planner's generated histories ----------------------------------------------------------------
T0 = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)
LESIONS = ("a", "b", "c")
LABS = (
    ("creatinine_clearance", "mL/min", (12.0, 28.0, 35.0, 45.0, 55.0, 75.0, None)),
    ("vitamin_d_25oh", "ng/mL", (8.0, 15.0, 25.0, 45.0, 90.0, None)),
    ("corrected_calcium", "mmol/L", (2.3, 2.5, 2.8, 3.7, None)),
    ("ctx_serum", "pg/mL", (150.0, 300.0, 600.0, None)),
)
DRUGS = ("denosumab", "zoledronic_acid", "carboplatin", "osimertinib", "cholecalciferol", "xyzomab")
PATHWAY = ("multidisciplinary_decision", "pain_management", "oncogenetics")
#: the horizon the policy states, fixed here (not read from retention.py, so that a smaller policy fails): a
#: withdrawal names one of the 2 newest live results of its analyte, at most 2 in a row; a correction names one of
#: the 2 newest recorded findings of its lesion, assessments, or one of the newest treatment records
NEWEST = 2
IN_A_ROW = 2
#: a drug record is corrected within this long of the newest record (retention_treatments.DRUG_HORIZON is 120 days)
DRUG_RECENT = timedelta(days=100)
#: the runtime drops a second delivery within SEEN_TTL_SECONDS (14 days) of the first: only those arrive twice here
DEDUPE_WINDOW = timedelta(days=14)
#: event kinds (see `_event`) by profile: each example dwells on one part of the state, so that it outgrows what is
#: kept (a mixed profile, labs, findings, assessments, treatments, care)
PROFILES = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13),
    (0, 0, 1, 1, 2, 2, 9, 12, 13, 13),
    (3, 3, 4, 4, 5, 0, 12),
    (5, 5, 5, 5, 3, 0, 12),
    (8, 9, 9, 10, 10, 0, 12),
    (11, 11, 11, 0, 12),
)


@dataclass
class World:
    """The history generated so far: what a correction, a withdrawal or a duplicate may name (within the horizon
    the retention policy states: the newest records of their kind)."""

    n: int = 0
    now: datetime = T0
    clock: datetime = T0  # the newest recorded_at so far
    events: list[Message] = field(default_factory=list)
    seen: list[datetime] = field(default_factory=list)  # the clock when each event arrived
    labs: dict[str, list[NormalisedLab]] = field(default_factory=dict)
    withdrawn_in_a_row: dict[str, int] = field(default_factory=dict)
    findings: dict[str, list[ImagingFinding]] = field(default_factory=dict)
    assessments: list[ClinicalAssessment] = field(default_factory=list)
    treatments: list[TreatmentEvent] = field(default_factory=list)
    sres: list[SkeletalEvent] = field(default_factory=list)

    def uid(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(int=self.n)

    def env(self, occurred: datetime, delay: timedelta = timedelta(hours=1), source: str = "t") -> dict[str, Any]:
        return {
            "event_id": self.uid(),
            "patient_id": "p1",
            "occurred_at": occurred,
            "recorded_at": occurred + delay,
            "source": source,
        }


def _day(t: datetime) -> date:
    return t.date()


def _event(w: World, step: tuple[int, int, int, int, int], profile: tuple[int, ...]) -> Message | None:
    """One event from five drawn integers: kind (in `profile`), a choice, a value, a clinical-time offset, a flag."""
    kind, choice, value, offset, flag = step
    kind = profile[kind % len(profile)]
    base = w.clock + timedelta(days=offset % 40, hours=value % 24)  # the clock moves on by up to 40 days
    late = w.clock - timedelta(days=offset % 60)  # a record of up to 60 days ago, arriving now
    occurred = late if flag % 5 == 0 else base
    if kind in (0, 1, 2):  # a lab result, sometimes withdrawn, sometimes dated in the future
        analyte, unit, values = LABS[choice % len(LABS)]
        held = w.labs.setdefault(analyte, [])
        live = [x for x in held if x.status != "withdrawn"]
        if flag % 5 == 1 and live and w.withdrawn_in_a_row.get(analyte, 0) < IN_A_ROW:
            newest = sorted(live, key=lambda x: (x.occurred_at, x.recorded_at, x.event_id.int))[-NEWEST:]
            target = newest[value % len(newest)]
            w.withdrawn_in_a_row[analyte] = w.withdrawn_in_a_row.get(analyte, 0) + 1
            return target.model_copy(
                update={"event_id": w.uid(), "status": "withdrawn", "recorded_at": w.clock + timedelta(hours=2)}
            )
        if flag % 11 == 3:
            occurred = base + timedelta(days=30)  # dated in the future
        w.withdrawn_in_a_row[analyte] = 0
        doc: dict[str, Any] = {
            **w.env(occurred, source="lab-normalisation"),
            "analyte": analyte,
            "result_id": f"{analyte}-{w.n}",
            "value": values[value % len(values)],
            "unit": unit,
            "missing": ["weight"] if values[value % len(values)] is None else [],
        }
        if analyte == "ctx_serum":
            doc["interpretation"] = "not_interpretable" if flag % 4 == 2 else "interpretable"
        if analyte == "creatinine_clearance" and doc["value"] is not None:
            doc["derived_from"] = [
                {"event_id": w.uid(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": occurred}
            ]
        lab = NormalisedLab.model_validate(doc)
        held.append(lab)
        return lab
    if kind in (3, 4):  # an imaging finding; sometimes an amendment or an entered-in-error of a recent one
        lesion = LESIONS[choice % len(LESIONS)]
        held_f = w.findings.setdefault(lesion, [])
        extra: dict[str, Any] = {}
        if flag % 6 == 1 and held_f:
            recent = sorted(held_f, key=lambda f: (f.recorded_at, f.event_id.int))[-NEWEST:]
            target_f = recent[value % len(recent)]
            status = "entered-in-error" if value % 3 == 0 else "amended"
            explicit = status == "entered-in-error" or value % 2 == 0
            extra = {"record_status": status, "corrects": target_f.event_id if explicit else None}
            occurred = target_f.occurred_at
        finding = ImagingFinding.model_validate(
            {
                **w.env(occurred, timedelta(hours=3)),
                "lesion_id": lesion,
                "skeletal_site": "femur_shaft" if lesion != "b" else "pelvis",
                "modality": ("ct", "mri", "bone_scan", "fdg_pet")[value % 4],
                "status": (None, "confirmed", "suspected", "resolved", None)[offset % 5],
                **extra,
            }
        )
        if extra and extra["corrects"] is None:  # an amendment naming no record follows its lesion's newest ones
            finding = finding.model_copy(update={"recorded_at": w.clock + timedelta(hours=3)})
        held_f.append(finding)
        return finding
    if kind == 5:  # a clinical assessment; sometimes a correction of a recent one
        extra = {}
        if flag % 5 == 1 and w.assessments:
            recent_a = sorted(w.assessments, key=lambda a: (a.recorded_at, a.event_id.int))[-NEWEST:]
            target_a = recent_a[value % len(recent_a)]
            status = "entered-in-error" if value % 3 == 0 else "amended"
            explicit = status == "entered-in-error" or value % 2 == 0
            extra = {"record_status": status, "corrects": target_a.event_id if explicit else None}
        a = ClinicalAssessment.model_validate(
            {
                **w.env(occurred),
                "life_expectancy_months": (None, 2.0, 5.0, 12.0, 24.0)[value % 5],
                "oncological_response": (None, "good", "stable", "progression", "complete")[choice % 5],
                **extra,
            }
        )
        if extra and extra["corrects"] is None:  # an amendment naming no record follows the newest ones
            a = a.model_copy(update={"recorded_at": w.clock + timedelta(hours=1)})
        w.assessments.append(a)
        return a
    if kind == 6:  # an SRE from scoring, or the withdrawal of one
        if flag % 4 == 1 and w.sres:
            gone = w.sres[value % len(w.sres)]
            return SkeletalEvent.model_validate(
                {
                    **w.env(gone.occurred_at, source="scoring"),
                    "kind": gone.kind,
                    "rule_id": "CLASS-SRE",
                    "evidence": [],
                    "status": "withdrawn",
                    "supersedes": [gone.event_id],
                }
            )
        current = (None, True, False)[value % 3]
        sre = SkeletalEvent.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "kind": ("hypercalcaemia", "pathological_fracture", "cord_compression")[choice % 3],
                "rule_id": "CLASS-SRE",
                "evidence": [],
                "current": current,
                "evidence_at": occurred if current is not None else None,
            }
        )
        w.sres.append(sre)
        return sre
    if kind == 13:  # what the planner reads nothing of: another analyte, another score
        if flag % 2:
            return NormalisedLab.model_validate(
                {
                    **w.env(occurred, source="lab-normalisation"),
                    "analyte": ("albumin", "creatinine", "total_calcium")[choice % 3],
                    "result_id": f"other-{w.n}",
                    "value": 40.0,
                    "unit": "g/L",
                }
            )
        return Score.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "score": ("mirels", "sins")[choice % 2],
                "subject": "a",
                "total": 9,
                "complete": True,
                "band": None,
                "components": [],
                "rule_ids": ["MIRELS-HIGH"],
                "ruleset_version": RULESET_VERSION,
                "text_fr": "x",
                "citation": cite("MIRELS-HIGH").model_dump(),
            }
        )
    if kind == 7:
        return Score.model_validate(
            {
                **w.env(occurred, source="scoring"),
                "score": "oligometastatic",
                "subject": "patient",
                "total": None,
                "complete": True,
                "band": ("oligometastatic", "multi_metastatic", "undetermined")[choice % 3],
                "components": [],
                "rule_ids": ["CLASS-OLIGO"],
                "ruleset_version": RULESET_VERSION,
                "text_fr": "x",
                "citation": cite("CLASS-OLIGO").model_dump(),
            }
        )
    if kind in (8, 9, 10):  # a drug started or stopped, given, a dental event, a radiotherapy course; or a correction
        on = _day(base) - timedelta(days=(offset * 7) % 90) + timedelta(days=flag % 3 * 15)
        recent_t: list[TreatmentEvent] = []
        if flag % 6 == 1 and w.treatments:
            recent_t = sorted(w.treatments, key=lambda e: (e.recorded_at, e.event_id.int))[-2 * NEWEST :]
            recent_t = [x for x in recent_t if x.treatment.on >= (w.clock - DRUG_RECENT).date()]
        if flag % 6 == 1 and recent_t:
            target_t = recent_t[value % len(recent_t)]
            status = "entered-in-error" if value % 2 == 0 else "amended"
            body = target_t.treatment.model_dump()
            if status == "amended" and "on" in body:
                body["on"] = body["on"] + timedelta(days=choice % 5)
            return TreatmentEvent.model_validate(
                {**w.env(base), "treatment": body, "record_status": status, "corrects": target_t.event_id}
            )
        drug = DRUGS[choice % len(DRUGS)]
        if kind == 8:
            body = {"kind": "systemic_drug", "drug": drug, "action": ("started", "stopped")[value % 2], "on": on}
        elif kind == 9:
            body = {"kind": "drug_administration", "drug": drug, "on": on, "ongoing": True if flag % 9 == 4 else None}
        elif value % 4 == 3:
            body = {"kind": "radiotherapy", "site": "femur", "total_dose_gy": 8, "fractions": 1, "on": on}
        else:
            body = {
                "kind": "dental",
                "action": ("assessment", "extraction", "jaw_bone_exposure")[value % 3],
                "orthopantomogram": flag % 2 == 0,
                "cleared_for_antiresorptive": (None, True, False)[offset % 3],
                "exposure_weeks": (None, 4.0, 10.0)[choice % 3],
                "craniofacial_irradiation": (None, False, True)[flag % 3],
                "on": on,
            }
        e = TreatmentEvent.model_validate({**w.env(base), "treatment": body})
        w.treatments.append(e)
        return e
    if kind == 11:  # care events: a pathway step, a biopsy planned or reported
        on = _day(base) + timedelta(days=(value % 3) * 10 - 10)
        if flag % 2:
            body = {
                "kind": "pathway_step",
                "item": PATHWAY[choice % len(PATHWAY)],
                "status": ("done", "to_do", "declined", "not_applicable")[value % 4],
                "on": on,
            }
        else:
            body = {
                "kind": "bone_biopsy",
                "biopsy_id": f"b{choice % 2}",
                "status": ("planned", "reported")[value % 2],
                "on": on,
                "histology": (None, "adenocarcinoma", "squamous_cell")[offset % 3],
                "molecular_results": {"EGFR": ("négatif", "échec", "L858R")[flag % 3]},
            }
        return CareEvent.model_validate({**w.env(base), "event": body})
    again = [e for e, seen in zip(w.events, w.seen, strict=True) if seen >= w.clock - DEDUPE_WINDOW]
    if again and flag % 2:  # a second delivery, within the runtime's duplicate window (else it is dropped there)
        return again[-1 - value % min(5, len(again))]
    due = w.now + timedelta(days=offset % 30)
    return ClockTick.model_validate(
        {**w.env(due, timedelta(0), "systemic-planner"), "service": "systemic-planner", "due_at": due}
    )


def _dump(out: list[Message]) -> list[Any]:
    return [o.model_dump(mode="json") for o in out]


steps = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 30), st.integers(0, 30), st.integers(0, 200), st.integers(0, 100)),
    min_size=30,
    max_size=110,
)


def _prologue(w: World) -> list[Message]:
    """A confirmed bone metastasis, an SRE and a dental assessment: the plan has its items from the start."""
    found = ImagingFinding.model_validate(
        {**w.env(T0), "lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "ct", "status": "confirmed"}
    )
    w.findings["a"] = [found]
    sre = SkeletalEvent.model_validate(
        {**w.env(T0, source="scoring"), "kind": "pathological_fracture", "rule_id": "CLASS-SRE", "evidence": []}
    )
    dental = TreatmentEvent.model_validate(
        {
            **w.env(T0),
            "treatment": {"kind": "dental", "action": "assessment", "orthopantomogram": True, "on": T0.date()},
        }
    )
    return [found, sre, dental]


Step = tuple[int, int, int, int, int]


def systemic_history(program: list[Step], profile: tuple[int, ...]) -> Iterator[tuple[Message, datetime, Step]]:
    """The generated history in delivery order (the prologue's three events, then one event per step that makes
    one), each with the time it is decided at (`World.now`: after the newest record, moving on by the step's offset)
    and the step that drew it. Lazy: each event is generated from the history taken so far."""
    w = World()
    for i, step in enumerate([(0, 0, 0, 0, 0)] * 3 + program):
        e = _prologue(w)[i] if i < 3 else _event(w, step, profile)
        if e is None:
            continue
        if not isinstance(e, ClockTick):
            w.clock = max(w.clock, e.recorded_at)
        w.now = max(w.now, w.clock + timedelta(minutes=5 + step[3] % 17 * 60))
        w.events.append(e)
        w.seen.append(w.clock)
        yield e, w.now, step


# ---- lab-normalisation's generated histories ---------------------------------------------------------------------
def lab_record() -> PatientRecord:
    """The patient of the generated lab histories: a woman born in 1956, known 500 days before the lab tests' T0
    (LAB-CRCL reads her age and sex)."""
    return PatientRecord.model_validate(
        {
            "event_id": "00000000-0000-0000-0000-000000000001",
            "patient_id": "p1",
            "occurred_at": LAB_T0 - timedelta(days=500),
            "recorded_at": LAB_T0 - timedelta(days=500),
            "source": "adt",
            "birth_date": "1956-04-02",
            "sex": "female",
        }
    )


# ---- the clocks' properties (review RK, HAZ-18-17) ---------------------------------------------------------------
def envelope(at: datetime, n: int, patient_id: str, salt: tuple[int, int]) -> dict[str, Any]:
    """The envelope of a history's n-th event, occurred and recorded at `at`; its ID `n * salt[0] + salt[1]` (each
    test its own salt: no two histories share an ID)."""
    return {
        "event_id": str(uuid.UUID(int=n * salt[0] + salt[1], version=4)),
        "patient_id": patient_id,
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "source": "t",
    }


def assert_every_change_is_due(
    decided: Callable[[datetime], object],
    next_due: Callable[[datetime], datetime | None],
    grid: list[datetime],
    slack: timedelta = timedelta(0),
) -> None:
    """A service's clock names every moment its decision changes with no new event: whenever what is decided at a
    time of `grid` differs from what was decided at the time before it (t1), `next_due(t1)` falls on or before that
    time (plus `slack`): no window passes unseen."""
    before = decided(grid[0])
    for t1, t2 in itertools.pairwise(grid):
        after = decided(t2)
        if after != before:
            due = next_due(t1)
            assert due is not None and due <= t2 + slack, (t1, t2, due, before, after)
        before = after


def in_racing_threads(work: Callable[[int], None], threads: int = 4) -> list[str]:
    """`work(k)` in `threads` threads at once, the interpreter switching between them as often as it can; the errors
    they raised (repr), none when the shared tables they use hold."""
    errors: list[str] = []

    def run(k: int) -> None:
        try:
            work(k)
        except Exception as e:
            errors.append(repr(e))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        started = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
        for t in started:
            t.start()
        for t in started:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return errors
