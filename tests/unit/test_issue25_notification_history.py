"""Issue 25: a deterministic history of notification's inputs for one patient followed for years, and a driver
that feeds it through a transition as the runtime does (each deadline's clock tick when it passes).

The history mixes what notification consumes, at a realistic pace: a lab panel every 1-4 weeks (5 analytes,
some corrected), imaging every 2-4 months (a Mirels or SINS score per lesion, a new local plan), a new systemic
plan version after about half the panels, each changed plan item withdrawn and issued again (contents recur,
so the same recommendation ID comes back after its withdrawal), a crisis calcium now and then (critical: a
clinician acknowledges or overrides it, or nobody does and it escalates; it is withdrawn days later), some
warnings acknowledged and resolved, duplicates. Used by test_issue25_notification_retention.py and by the
measurements of the README's retention section.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import NormalisedLab, Recommendation, Score
from contracts.clock import ClockTick
from contracts.examples import EXAMPLES
from contracts.lifecycle import AlertAction
from contracts.local import LocalTreatmentPlan
from contracts.plan import TreatmentPlan
from contracts.topics import LABS_NORMALISED, LOCAL_PLANS, PLANS, SCORES
from services.notification.domain import AlertPolicy, Arrived, PatientAlerts
from services.notification.lifecycle import next_due
from shared.clinical.recommend import recommendation, withdrawal

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
PATIENT = "pt-25-notif"
POLICY = AlertPolicy()
LAB = NormalisedLab.model_validate(EXAMPLES[LABS_NORMALISED.name])
SCORE = Score.model_validate(EXAMPLES[SCORES.name])
PLAN = TreatmentPlan.model_validate(EXAMPLES[PLANS.name])
LOCAL = LocalTreatmentPlan.model_validate(EXAMPLES[LOCAL_PLANS.name])
ANALYTES = ("total_calcium", "albumin", "corrected_calcium", "creatinine", "creatinine_clearance")
#: plan items and the contents each may take (a content that comes back is the same recommendation ID again)
PLAN_ITEMS = {
    "SYS-ZA-DOSE": ("4 mg", "3.5 mg", "3.3 mg"),
    "SYS-VITD-CORR": ("dose de charge", "entretien"),
    "SYS-AR-START": ("acide zolédronique", "dénosumab"),
    "SYS-SCHEDULE": ("toutes les 4 semaines", "toutes les 12 semaines"),
}

Timed = tuple[datetime, object]  # when notification processes it, the event


@dataclass
class Gen:
    rng: random.Random
    out: list[tuple[datetime, int, object]] = field(default_factory=list)
    n: int = 0

    def at(self, when: datetime, event: object) -> None:
        self.n += 1
        heapq.heappush(self.out, (when, self.n, event))

    def uid(self, *parts: object) -> uuid.UUID:
        self.n += 1
        return derived_id("h25", self.n, *parts)


def clinician_action(action: str, alert: object, at: datetime, n: int, namespace: str, actor: str) -> AlertAction:
    """`actor`'s action on `alert` (its recommendation ID) at `at`; its event ID derived from `namespace` and `n`."""
    return AlertAction(
        event_id=derived_id(namespace, n),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="notification",
        action=action,
        alert_id=alert,
        actor=actor,
        actor_role="clinician",
    )


def _trigger(g: Gen, when: datetime) -> NormalisedLab:
    return LAB.model_copy(update={"event_id": g.uid("trigger"), "patient_id": PATIENT, "occurred_at": when})


def _rec(g: Gen, rule: str, severity: str, key: tuple[object, ...], when: datetime) -> Recommendation:
    trig = _trigger(g, when)
    inputs = [
        InputUsed(name="corrected_calcium", value=round(g.rng.uniform(2.0, 3.9), 2), unit="mmol/L"),
        InputUsed(name="creatinine_clearance", value=round(g.rng.uniform(25, 110)), unit="mL/min"),
    ]
    r = recommendation(
        rule_id=rule,
        trigger=trig,
        produced_by="systemic-planner",
        severity=severity,  # type: ignore[arg-type]
        title=f"Décision {rule}",
        text_fr=f"Décision {rule} : {key[-1]}. Voir le référentiel pour le détail de la conduite à tenir.",
        inputs=inputs,
        key=key,
    )
    return r.model_copy(update={"caused_by": trig.delivery_key()})


def _withdraw(g: Gen, rec_id: uuid.UUID, rule: str, when: datetime) -> Recommendation:
    trig = _trigger(g, when)
    w = withdrawal(rec_id, rule, trig, "systemic-planner", "La décision ne tient plus.")
    return w.model_copy(update={"caused_by": trig.delivery_key()})


def _action(g: Gen, rid: uuid.UUID, action: str, when: datetime) -> AlertAction:
    return AlertAction(
        event_id=g.uid("action"),
        patient_id=PATIENT,
        occurred_at=when,
        recorded_at=when,
        source="notification",
        action=action,
        alert_id=rid,
        actor=f"dr-{g.rng.randint(1, 9)}",
        actor_role="clinician",
        reason="clinical-judgement" if action == "override" else None,
        comment="Vu en RCP." if action == "override" and g.rng.random() < 0.5 else None,
    )


def history(seed: int, years: float) -> list[Timed]:
    """One patient's inputs over `years`, in the order notification processes them (deterministic)."""
    g = Gen(random.Random(seed))
    end = START + timedelta(days=365 * years)
    t, panel, imaging, plan_v, local_v = START, 0, START + timedelta(days=g.rng.randint(0, 30)), 0, 0
    lesions = ["L1-body", "femur-left"]
    published: dict[str, tuple[str, uuid.UUID]] = {}  # plan item -> (content, recommendation ID)
    last_labs: list[NormalisedLab] = []
    while t < end:
        if imaging <= t:  # scores per lesion, a new local plan, sometimes a radiotherapy recommendation
            if len(lesions) < 6 and g.rng.random() < 0.15:  # a new focus now and then (a few lesions in all)
                lesions.append(f"lesion-{len(lesions)}")
            for i, lesion in enumerate(lesions):
                score = SCORE.model_copy(
                    update={"event_id": g.uid("score"), "patient_id": PATIENT, "subject": lesion, "occurred_at": t}
                )
                g.at(t + timedelta(seconds=5 + i), score)
            local_v += 1
            g.at(t + timedelta(seconds=20), LOCAL.model_copy(update={"version": local_v, "patient_id": PATIENT}))
            if g.rng.random() < 0.3:
                lesion = g.rng.choice(lesions)
                r = _rec(g, "RT-PAIN", "warning", (lesion, g.rng.choice(("8 Gy", "20 Gy/5"))), t)
                g.at(t + timedelta(seconds=25), Arrived(message=r, at=t + timedelta(seconds=25)))
                done = t + timedelta(days=g.rng.randint(10, 40))
                g.at(done, Arrived(message=_withdraw(g, r.event_id, "RT-PAIN", done), at=done))
            imaging = t + timedelta(days=g.rng.randint(60, 120))
        panel += 1
        labs = []
        for a in ANALYTES:
            lab = LAB.model_copy(
                update={
                    "event_id": g.uid("lab"),
                    "patient_id": PATIENT,
                    "analyte": a,
                    "result_id": f"LAB-{panel}-{a}",
                    "value": round(g.rng.uniform(1, 100), 2),
                    "occurred_at": t,
                }
            )
            labs.append(lab)
            g.at(t + timedelta(seconds=2), lab)
        if last_labs and g.rng.random() < 0.05:  # a late correction of the previous panel
            old = g.rng.choice(last_labs)
            when = t + timedelta(hours=3)
            g.at(when, old.model_copy(update={"event_id": g.uid("withdrawn"), "status": "withdrawn"}))
            g.at(when, old.model_copy(update={"event_id": g.uid("amended"), "status": "amended", "value": 2.5}))
        if g.rng.random() < 0.03:  # a late lab of an older date: never hides the newer one
            late = labs[0].model_copy(update={"event_id": g.uid("late"), "occurred_at": t - timedelta(days=30)})
            g.at(t + timedelta(seconds=4), late)
        last_labs = labs
        if g.rng.random() < 0.5:  # the systemic planner decides again: a new plan, each changed item re-issued
            plan_v += 1
            g.at(t + timedelta(seconds=8), PLAN.model_copy(update={"version": plan_v, "patient_id": PATIENT}))
            for rule in g.rng.sample(sorted(PLAN_ITEMS), g.rng.randint(1, 2)):
                content = g.rng.choice(PLAN_ITEMS[rule])
                old_item = published.get(rule)
                if old_item is not None and old_item[0] == content:
                    continue
                when = t + timedelta(seconds=9)
                if old_item is not None:
                    g.at(when, Arrived(message=_withdraw(g, old_item[1], rule, when), at=when))
                r = _rec(g, rule, "info" if rule == "SYS-SCHEDULE" else "warning", (rule, content), t)
                g.at(when, Arrived(message=r, at=when))
                published[rule] = (content, r.event_id)
                if g.rng.random() < 0.25:  # a clinician acknowledges it after it settled
                    act = when + timedelta(minutes=g.rng.randint(2, 600))
                    g.at(act, _action(g, r.event_id, "acknowledge", act))
                if g.rng.random() < 0.03:  # delivered twice
                    g.at(when + timedelta(seconds=1), Arrived(message=r, at=when + timedelta(seconds=1)))
        if g.rng.random() < 0.04:  # a crisis calcium: critical at once, acted on (or escalated), withdrawn later
            when = t + timedelta(seconds=3)
            r = _rec(g, "LAB-CA-CRISIS", "critical", ("crisis", str(labs[2].event_id)), t)
            g.at(when, Arrived(message=r, at=when))
            choice = g.rng.random()
            act = when + timedelta(minutes=g.rng.randint(1, 40))
            if choice < 0.7:
                g.at(act, _action(g, r.event_id, "acknowledge", act))
            elif choice < 0.85:
                g.at(act, _action(g, r.event_id, "override", act))
            gone = t + timedelta(days=g.rng.randint(2, 10))
            g.at(gone, Arrived(message=_withdraw(g, r.event_id, "LAB-CA-CRISIS", gone), at=gone))
            if g.rng.random() < 0.5:
                done = gone + timedelta(hours=g.rng.randint(1, 48))
                g.at(done, _action(g, r.event_id, "resolve", done))
        t += timedelta(days=g.rng.randint(7, 28))
    timed = [(when, event) for when, _, event in sorted(g.out)]
    return [(when, event) for when, event in timed if when < end]


Transition = Callable[[PatientAlerts, object], tuple[PatientAlerts, list[Message]]]


def tick_at(due: datetime) -> ClockTick:
    return ClockTick(
        event_id=derived_id("notification", PATIENT, due),
        patient_id=PATIENT,
        occurred_at=due,
        recorded_at=due,
        source="notification",
        service="notification",
        due_at=due,
    )


def drive(
    timed: list[Timed], apply: Transition, policy: AlertPolicy = POLICY
) -> Iterator[tuple[object, PatientAlerts, list[Message]]]:
    """Each event through `apply` in order, after the clock tick of every deadline passed before it (as
    shared/runtime/timers.py sends them); yields each event (ticks included), the state and the outputs."""
    state = PatientAlerts()
    for when, event in timed:
        while (due := next_due(state, policy)) is not None and due <= when:
            tick = tick_at(due)
            state, out = apply(state, tick)
            yield tick, state, out
        state, out = apply(state, event)
        yield event, state, out
