"""Issue 25: notification's retention never changes what clinicians are told.

`apply_event` is `transition` then `retain`. For generated histories (recommendations issued, withdrawn, issued
again after their withdrawal, delivered twice, out of order; actions; labs, scores and plans; gaps from seconds
to years, so that every horizon is crossed), the two give the same outputs event by event, the same deadlines, the
same cards and the same alerts that hold. What may differ is stated and checked: an alert issued again after an
earlier cycle ended more than ENDED_KEPT ago carries only its recent history (a suffix of the full one, same
event IDs), and once its tombstone is gone too (TOMBSTONE_KEPT) it is raised afresh (never with an event ID
already published when the full state would not repeat one either).
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import InputUsed, Message, Severity, derived_id
from contracts.clinical import Alert, Recommendation
from contracts.lifecycle import AlertAction
from contracts.rules import RULESET_VERSION, cite
from services.notification import cds, web
from services.notification.actions import ended_status, find
from services.notification.domain import (
    APPLIED_FOR,
    ENDED,
    ENDED_KEPT,
    TOMBSTONE_KEPT,
    Arrived,
    PatientAlerts,
    apply_event,
    listing,
    retain,
    transition,
)
from services.notification.lifecycle import next_due
from tests.unit.test_issue25_notification_history import (
    LAB,
    PATIENT,
    PLAN,
    POLICY,
    SCORE,
    START,
    Timed,
    drive,
    history,
    tick_at,
)

RULES = ("LAB-CA-CRISIS", "SYS-ZA-DOSE", "RT-MSCC", "SYS-VITD-CORR")
SEVERITY: dict[str, Severity] = {
    "LAB-CA-CRISIS": "critical",
    "SYS-ZA-DOSE": "warning",
    "RT-MSCC": "warning",
    "SYS-VITD-CORR": "info",
}
ACTIONS = ("acknowledge", "override", "resolve")
GAPS = (0, 1, 20, 31, 600, 3600, 86400, 8 * 86400, 15 * 86400, 40 * 86400, 200 * 86400, 500 * 86400)


def full(state: PatientAlerts, event: object) -> tuple[PatientAlerts, list[Message]]:
    return transition(state, event, POLICY)


def kept(state: PatientAlerts, event: object) -> tuple[PatientAlerts, list[Message]]:
    return apply_event(state, event, POLICY)


def last_state(timed: list[Timed]) -> PatientAlerts:
    state = PatientAlerts()
    for _, state, _ in drive(timed, kept):  # noqa: B007 (the state after the last event)
        pass
    return state


def rid_of(key: int) -> uuid.UUID:
    return derived_id("h25-rec", key)


def make_rec(key: int, cause: int, at: datetime) -> Recommendation:
    rule = RULES[key % len(RULES)]
    return Recommendation(
        event_id=rid_of(key),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="systemic-planner",
        rule_id=rule,
        ruleset_version=RULESET_VERSION,
        severity=SEVERITY[rule],
        title=f"Décision {key}",
        text_fr=f"Décision {key}.",
        citation=cite(rule),
        inputs=[InputUsed(name="corrected_calcium", value=3.6, unit="mmol/L")],
        produced_by="systemic-planner",
        caused_by=f"cause-{cause}",
    )


def make_withdrawal(key: int, cause: int, at: datetime) -> Recommendation:
    rule = RULES[key % len(RULES)]
    return Recommendation(
        event_id=derived_id("withdraw", rid_of(key), cause),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="systemic-planner",
        rule_id=rule,
        ruleset_version=RULESET_VERSION,
        severity="info",
        title="Recommandation retirée",
        text_fr="La décision ne tient plus.",
        citation=cite(rule),
        inputs=[],
        produced_by="systemic-planner",
        status="withdrawn",
        supersedes=[rid_of(key)],
        caused_by=f"cause-{cause}",
    )


def make_action(key: int, action: str, n: int, at: datetime) -> AlertAction:
    return AlertAction(
        event_id=derived_id("h25-action", n),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="notification",
        action=action,
        alert_id=rid_of(key),
        actor="dr-a",
        actor_role="clinician",
        reason="other" if action == "override" else None,
    )


KEYS = st.integers(0, 3)
OP = st.one_of(
    st.tuples(st.just("rec"), KEYS, st.integers(0, 3), st.integers(-30, 0)),
    st.tuples(st.just("withdraw"), KEYS, st.integers(0, 3), st.integers(-30, 0)),
    st.tuples(st.just("act"), KEYS, st.sampled_from(ACTIONS), st.just(0)),
    st.tuples(st.just("gap"), st.sampled_from(GAPS), st.just(0), st.just(0)),
    st.tuples(st.just("again"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.sampled_from(("lab", "score", "plan")), KEYS, st.just(0), st.just(0)),
)
OPS = st.lists(OP, min_size=20, max_size=90)


def random_ops(rng: random.Random, n: int) -> list[tuple[str, int, object, int]]:
    """The same kinds of op as OPS, drawn from a seeded generator (to check what the property test can reach)."""
    out: list[tuple[str, int, object, int]] = []
    for _ in range(n):
        kind = rng.choice(("rec", "rec", "withdraw", "withdraw", "act", "gap", "gap", "again", "lab", "plan"))
        if kind in ("rec", "withdraw"):
            out.append((kind, rng.randint(0, 3), rng.randint(0, 3), rng.randint(-30, 0)))
        elif kind == "act":
            out.append((kind, rng.randint(0, 3), rng.choice(ACTIONS), 0))
        elif kind == "gap":
            out.append((kind, rng.choice(GAPS), 0, 0))
        else:
            out.append((kind, rng.randint(0, 3), 0, 0))
    return out


def timeline(ops: list[tuple[str, int, object, int]]) -> list[Timed]:
    """The ops as timed events: `gap` moves the clock, `again` delivers the previous event once more, a negative
    last number is an arrival stamped up to 30 s before the one processed just before it (out of order)."""
    t, n = START, 0
    out: list[Timed] = []
    for kind, a, b, skew in ops:
        n += 1
        at = t + timedelta(seconds=skew)
        event: object
        if kind == "gap":
            t += timedelta(seconds=a)
            continue
        if kind == "again":
            if out:
                out.append((t, out[-1][1]))
            continue
        if kind == "rec":
            event = Arrived(message=make_rec(a, int(str(b)), at), at=at)
        elif kind == "withdraw":
            event = Arrived(message=make_withdrawal(a, int(str(b)), at), at=at)
        elif kind == "act":
            event = make_action(a, str(b), n, at)
        elif kind == "lab":
            event = LAB.model_copy(update={"event_id": derived_id("lab", n), "patient_id": PATIENT, "occurred_at": at})
        elif kind == "score":
            event = SCORE.model_copy(
                update={"event_id": derived_id("sc", n), "patient_id": PATIENT, "subject": f"l{a}"}
            )
        else:
            event = PLAN.model_copy(update={"version": n, "patient_id": PATIENT})
        out.append((t, event))
    return out


def without_history(alert: Alert) -> dict[str, object]:
    return alert.model_dump(mode="json", exclude={"history", "event_id"})


class Both:
    """The full and the retained state side by side, checked after every event."""

    def __init__(self) -> None:
        self.full, self.kept = PatientAlerts(), PatientAlerts()
        self.fresh: set[str] = set()  # raised afresh after their tombstone went: step IDs count from 0 again
        self.ids_full: set[uuid.UUID] = set()
        self.ids_kept: set[uuid.UUID] = set()

    def step(self, e: object) -> None:
        if isinstance(e, Arrived) and e.message.status == "active":
            rid = str(e.message.event_id)
            before = self.full.alerts.get(rid)
            gone = rid not in self.kept.alerts and rid not in self.kept.ended  # not even a tombstone left
            if before is not None and before.status in ENDED and gone:
                self.fresh.add(rid)
        self.full, out_full = full(self.full, e)
        self.kept, out_kept = kept(self.kept, e)
        assert len(out_kept) == len(out_full)
        for f, k in zip(out_full, out_kept, strict=True):
            assert isinstance(f, Alert) and isinstance(k, Alert)
            assert without_history(k) == without_history(f)  # status, severity, content, escalation...
            n = len(k.history)
            assert 0 < n <= len(f.history)
            if str(k.recommendation_id) in self.fresh:  # raised afresh: its first step says so, the rest the same
                assert [t.model_dump(exclude={"event"}) for t in k.history] == [
                    t.model_dump(exclude={"event"}) for t in f.history[-n:]
                ]
                assert k.event_id not in self.ids_kept or f.event_id in self.ids_full  # no ID published twice
            else:
                assert k.history == f.history[-n:]
                assert k.event_id == f.event_id
            self.ids_full.add(f.event_id)
            self.ids_kept.add(k.event_id)
        assert next_due(self.kept, POLICY) == next_due(self.full, POLICY)
        assert cds.cards(self.kept) == cds.cards(self.full)
        holding = [without_history(a) for a in listing(self.full) if a.status not in ENDED]
        assert [without_history(a) for a in listing(self.kept) if a.status not in ENDED] == holding
        assert retain(self.kept) == self.kept  # the stored state is the retained one (idempotent)


def the_same(timed: list[Timed]) -> Both:
    """Both transitions over `timed`, with the clock tick of every deadline the full state asks for: the same
    outputs, deadlines, cards and alerts that hold; only the stated differences."""
    both = Both()
    for when, event in timed:
        while (due := next_due(both.full, POLICY)) is not None and due <= when:
            both.step(tick_at(due))
        both.step(event)
    assert PatientAlerts.model_validate_json(both.kept.model_dump_json()) == both.kept
    return both


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_retention_changes_no_output_no_deadline_and_no_card(ops: list[tuple[str, int, object, int]]) -> None:
    the_same(timeline(ops))


def test_the_generated_histories_reach_every_horizon() -> None:
    """What the property test draws does cross the horizons: tombstones, folded cycles, a decision issued again
    from its tombstone and one raised afresh after its tombstone went (seeded draws of the same ops)."""
    reached = {"tombstone": 0, "folded": 0, "from tombstone": 0, "afresh": 0}
    for seed in range(30):
        both = the_same(timeline(random_ops(random.Random(seed), 60)))
        reached["tombstone"] += bool(both.kept.ended)
        reached["folded"] += any(both.kept.folded.values())
        reached["from tombstone"] += any(rid in both.kept.alerts for rid in both.kept.folded)
        reached["afresh"] += bool(both.fresh)
    assert all(reached.values()), reached


def test_a_realistic_five_year_history_gives_the_same_outputs() -> None:
    the_same(history(11, 5))


def test_five_years_stay_under_the_bound_and_every_horizon_holds() -> None:
    """A patient followed 5 years (tests/unit/test_issue25_notification_history.py): the state stays small, no
    alert that still holds is ever dropped, no withdrawn or resolved alert outlives ENDED_KEPT, no tombstone
    TOMBSTONE_KEPT, no applied action ID APPLIED_FOR."""
    biggest = 0
    s_full = PatientAlerts()
    for event, s, _ in drive(history(5, 5), kept):
        s_full, _ = full(s_full, event)
        biggest = max(biggest, len(s.model_dump_json()))
        if s.as_of is None:  # labs and scores only so far
            continue
        holding = {rid for rid, a in s_full.alerts.items() if a.status not in ENDED}
        assert holding <= set(s.alerts)
        for rid in holding:
            assert s.alerts[rid].escalation_level == s_full.alerts[rid].escalation_level
        for a in s.alerts.values():
            if a.status in ENDED:
                assert max(t.at for t in a.history) >= s.as_of - ENDED_KEPT
        assert all(e.at >= s.as_of - TOMBSTONE_KEPT for e in s.ended.values())
        assert all(at >= s.as_of - APPLIED_FOR for at in s.applied.values())
    assert len(s_full.model_dump_json()) > 2 * len(s.model_dump_json())  # without retention it keeps growing
    assert biggest < 64 * 1024


def test_an_unacknowledged_critical_alert_is_kept_and_escalated_after_years_of_other_events() -> None:
    t = START
    crisis = make_rec(0, 1, t)
    assert crisis.severity == "critical"
    timed: list[Timed] = [(t, Arrived(message=crisis, at=t))]
    for day in range(1, 900, 7):  # years of other decisions issued and withdrawn
        at = t + timedelta(days=day)
        timed += [(at, Arrived(message=make_rec(1, day, at), at=at))]
        timed += [(at + timedelta(hours=1), Arrived(message=make_withdrawal(1, day, at), at=at + timedelta(hours=1)))]
    s = last_state(timed)
    alert = s.alerts[str(crisis.event_id)]
    assert alert.status == "active" and alert.escalation_level == POLICY.escalation_max_level
    assert [a.recommendation_id for a in listing(s, "active")] == [crisis.event_id]
    assert [t.event for t in alert.history] == ["raised", "shown", "escalated", "escalated"]
    other = str(rid_of(1))  # issued and withdrawn every week: only its recent cycles stay in its history
    assert len(s.alerts[other].history) <= 4 * 3 and s.folded[other] > 300
    assert len(s.model_dump_json()) < 8 * 1024


def test_an_alert_issued_again_after_its_tombstone_continues_and_an_action_on_the_tombstone_changes_nothing() -> None:
    t0 = START
    first = make_rec(1, 1, t0)
    timed: list[Timed] = [
        (t0, Arrived(message=first, at=t0)),
        (t0 + timedelta(minutes=5), make_action(1, "acknowledge", 1, t0 + timedelta(minutes=5))),
        (t0 + timedelta(days=1), Arrived(message=make_withdrawal(1, 2, t0), at=t0 + timedelta(days=1))),
        (t0 + timedelta(days=30), LAB),  # a lab does not move the clock: the resolved alert is still whole
    ]
    s = last_state(timed)
    rid = str(first.event_id)
    assert s.alerts[rid].status == "resolved" and s.ended == {}
    later = t0 + timedelta(days=30)
    s, out = kept(s, make_action(1, "resolve", 2, later))  # the clock moves: only its tombstone is left
    assert out == [] and rid not in s.alerts and ended_status(s, rid) == "resolved" and find(s, rid) is None
    steps = s.ended[rid].steps
    again = make_rec(1, 3, later + timedelta(minutes=1))
    s, out = kept(s, Arrived(message=again, at=later + timedelta(minutes=1)))
    alert = s.alerts[rid]  # a warning: held for the settle window
    assert out == [] and alert.status == "active" and [t.event for t in alert.history] == ["reactivated"]
    assert s.folded[rid] == steps and s.ended == {}
    s, [shown] = kept(s, tick_at(later + timedelta(minutes=1) + POLICY.settle))
    assert isinstance(shown, Alert) and shown.event_id == derived_id(
        "alert-step", rid, steps + 2, "shown", later + timedelta(minutes=1) + POLICY.settle
    )


def test_a_state_stored_before_retention_still_loads_and_is_retained_on_its_next_event() -> None:
    s = PatientAlerts()
    old_alert_at = START
    s, _ = kept(s, Arrived(message=make_rec(0, 1, old_alert_at), at=old_alert_at))
    s, _ = kept(s, Arrived(message=make_withdrawal(0, 2, old_alert_at), at=old_alert_at + timedelta(hours=1)))
    doc = json.loads(s.model_dump_json())
    for new_field in ("as_of", "ended", "folded"):
        del doc[new_field]
    doc["applied"] = [str(uuid.uuid4()) for _ in range(3)]  # the old list of action IDs
    old = PatientAlerts.model_validate_json(json.dumps(doc))
    assert old.as_of is None and set(old.applied) == set(doc["applied"])
    later = START + timedelta(days=60)
    s, _ = kept(old, Arrived(message=make_rec(2, 1, later), at=later))
    assert str(rid_of(0)) in s.ended and s.applied == {} and s.as_of == later


def test_web_view_and_cards_read_the_retained_state() -> None:
    s = last_state(history(2, 2))
    page = web.view(s, PATIENT)
    assert {a["status"] for a in page["alerts"]} <= set(web.PAGE_STATUSES)
    assert json.loads(json.dumps(cds.cards(s))) == cds.cards(s)
    assert s.as_of is not None and s.as_of > START + timedelta(days=365)
