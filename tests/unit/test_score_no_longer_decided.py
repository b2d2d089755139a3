"""HAZ-22-ORDER-03: a score scoring no longer decides (its only finding entered in error) is published as such, and
the radiotherapy planner (RT-SBRT-CI reads SINS) and the page then hold it as absent; a score back to an earlier
content is a new version (a new ID), never dropped downstream as a second delivery of the earlier one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import Score
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from contracts.plan import PlanItem
from contracts.topics import SCORES
from services.notification.domain import AlertPolicy, PatientAlerts
from services.notification.domain import apply_event as notify
from services.radiotherapy_planner.domain import apply_event as rt_apply
from services.radiotherapy_planner.facts import LocalState
from services.scoring.domain import ScoringState, current_scores, recall_published
from services.scoring.domain import apply_event as scoring_apply

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
PATIENT = "pt-haz-22-order-03"
#: an unstable T8 (SCORE-SINS): semi-rigid T3-T10 (1) + mechanical pain (3) + lytic (2)
#: + subluxation (4) + collapse > 50 % (3) + bilateral posterolateral (3): 16
T8: dict[str, Any] = {
    "lesion_id": "t8",
    "skeletal_site": "spine",
    "vertebral_level": "T8",
    "lesion_type": "lytic",
    "alignment": "subluxation_translation",
    "vertebral_collapse": "gt_50",
    "posterolateral_involvement": "bilateral",
    "modality": "mri",
}


def env(minutes: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    return {"event_id": uuid.uuid4(), "patient_id": PATIENT, "occurred_at": at, "recorded_at": at, "source": "t"}


def finding(minutes: int, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(env(minutes) | T8 | fields)


def pain(minutes: int, character: str, **fields: Any) -> ClinicalAssessment:
    doc = env(minutes) | {"lesion_pain": [{"lesion_id": "t8", "character": character}], **fields}
    return ClinicalAssessment.model_validate(doc)


def entered_in_error(of: ImagingFinding, minutes: int) -> ImagingFinding:
    doc = of.model_dump() | {"event_id": uuid.uuid4(), "record_status": "entered-in-error", "corrects": of.event_id}
    return ImagingFinding.model_validate(doc | {"recorded_at": T0 + timedelta(minutes=minutes)})


def scoring(events: list[Message], s: ScoringState | None = None) -> tuple[ScoringState, list[Score]]:
    s = s or ScoringState()
    out: list[Score] = []
    for e in events:
        s, o = scoring_apply(s, e, now=NOW)
        out += [x for x in o if isinstance(x, Score)]
    return s, out


def sins(out: list[Score]) -> list[Score]:
    return [x for x in out if x.score == "sins" and x.subject == "t8"]


def test_scoring_publishes_a_no_longer_decided_sins_when_its_only_finding_is_entered_in_error() -> None:
    seen = finding(0)
    s, out = scoring([pain(0, "mechanical"), seen])
    [first] = sins(out)
    assert first.status == "current" and first.total is not None and first.band == "unstable"
    s, out2 = scoring([entered_in_error(seen, 30)], s)
    [gone] = sins(out2)
    assert (gone.status, gone.total, gone.band, gone.complete) == ("withdrawn", None, None, False)
    assert gone.supersedes == [first.event_id] and gone.event_id != first.event_id
    assert gone.missing == ["plus de constat d'imagerie pour cette lésion"]
    assert not sins(current_scores(s, PATIENT, now=NOW))
    # said once: the correction delivered again, or the original late, publishes no other version
    s, out3 = scoring([entered_in_error(seen, 30), seen], s)
    assert not sins(out3)


def test_a_score_back_to_an_earlier_content_is_a_new_version_the_consumers_apply() -> None:
    seen = finding(0)
    again = finding(60)  # the same lesion seen again, as it was, after the first report was entered in error
    s, out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30), again])
    first, gone, back = sins(out)
    assert (back.total, back.band) == (first.total, first.band) and back.status == "current"
    ids = [x.event_id for x in (first, gone, back)]
    assert len(set(ids)) == 3 and back.supersedes == [gone.event_id]
    [served] = sins(current_scores(s, PATIENT, now=NOW))
    assert served.event_id == back.event_id  # the API serves the ID the version was published with
    # each consumer, given each version once (the runtime drops an ID it has seen), ends on the last one
    page, rt = PatientAlerts(), LocalState()
    for x in (first, gone, back):
        page, _ = notify(page, x, AlertPolicy())
        rt, _ = rt_apply(rt, x)
    assert page.scores["sins:t8"].event_id == back.event_id
    assert rt.scores["sins:t8"].event_id == back.event_id and rt.scores["sins:t8"].total == back.total


def sbrt_ci(rt_events: list[Message]) -> PlanItem:
    s, out = LocalState(), list[Message]()
    for e in rt_events:
        s, o = rt_apply(s, e, now=NOW)
        out += o
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    return {i.key: i for sec in plan.sections for i in sec.items}["t8:sbrt-ci"]


def test_the_radiotherapy_planner_drops_a_sins_no_longer_decided_and_decides_sbrt_without_it() -> None:
    seen = finding(0)
    _, out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30)])
    first, gone = sins(out)
    # the planner's own view of the lesion is kept (it is not sent the correction): only the score changes
    life = ClinicalAssessment.model_validate(env(0) | {"life_expectancy_months": 12})
    req = LocalTreatmentRequest.model_validate(
        env(5)
        | {
            "request_id": "req-t8-sbrt",
            "lesion_id": "t8",
            "modality": "sbrt",
            "intent": "ablative_oligometastatic",
            "total_dose_gy": 27,
            "fractions": 3,
        }
    )
    base: list[Message] = [life, seen, req]
    with_sins = sbrt_ci([*base, first])
    assert any(i.name == "sins_band" and i.value == "unstable" for i in with_sins.inputs)
    withdrawn = sbrt_ci([*base, first, gone])
    never = sbrt_ci(base)
    assert not [i for i in withdrawn.inputs if i.source_event_id in (first.event_id, gone.event_id)]
    assert (withdrawn.status, withdrawn.severity, withdrawn.title) == (never.status, never.severity, never.title)
    assert (withdrawn.status, withdrawn.severity) != (with_sins.status, with_sins.severity)


def test_notification_takes_a_no_longer_decided_score_off_the_page_even_when_dated_earlier() -> None:
    seen = finding(0)
    _, out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30)])
    first, gone = sins(out)
    page, _ = notify(PatientAlerts(), first, AlertPolicy())
    assert "sins:t8" in page.scores
    page_after, _ = notify(page, gone, AlertPolicy())
    assert "sins:t8" not in page_after.scores
    # the withdrawal names the version it ends: it holds even when its times are older than that version's
    early = gone.model_copy(update={"occurred_at": first.occurred_at - timedelta(days=1)})
    early = early.model_copy(update={"recorded_at": first.recorded_at - timedelta(days=1)})
    assert "sins:t8" not in notify(page, early, AlertPolicy())[0].scores
    assert "sins:t8" not in rt_apply(rt_apply(LocalState(), first)[0], early)[0].scores


def test_a_replay_that_went_through_other_versions_recalls_the_ids_downstream_holds() -> None:
    """A rebuild replays the events in its own order (shared/runtime/rebuild.py): here it never went through the
    withdrawal the live service published, so its state names no version. `recall_published` takes the versions from
    the scores topic: the next version then names the one the consumers hold, and they apply it."""
    seen = finding(0)
    again = finding(60)
    live, out = scoring([pain(0, "mechanical"), seen, entered_in_error(seen, 30), again])
    first, gone, back = sins(out)
    rebuilt, _ = scoring([pain(0, "mechanical"), again, seen, entered_in_error(seen, 30)])  # another order
    assert rebuilt.scores == live.scores and rebuilt.score_ids != live.score_ids  # the chain differs, not the content
    topic = [(SCORES.name, x.model_dump_json().encode()) for x in out]
    recalled = recall_published(rebuilt, topic)
    assert recalled.score_ids == live.score_ids
    assert recall_published(rebuilt, []) == rebuilt  # nothing published: the replay's own record stands
    # the lesion resolves: the withdrawal names the version the page holds, which applies it whatever its times
    resolved = finding(90, status="resolved")
    _, after = scoring([resolved], recalled)
    [withdrawn] = sins(after)
    assert withdrawn.supersedes == [back.event_id]
    page = PatientAlerts()
    for x in (first, gone, back, withdrawn):
        page, _ = notify(page, x, AlertPolicy())
    assert "sins:t8" not in page.scores
