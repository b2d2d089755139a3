"""Issue 9.7 on every hospital.* topic: no date or time of a hospital input may lie after its receipt (plus the
clock-skew tolerance), at any depth of the message, except the dates that are planned by meaning
(shared/clinical/clock.py FUTURE_ALLOWED); the runtime applies the check to every hospital decoder
(shared/runtime/service.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from contracts.care import CareEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from contracts.topics import TOPICS, Topic
from services.radiotherapy_planner.app import build as build_rt
from services.radiotherapy_planner.settings import RadiotherapySettings
from services.scoring.app import build as build_scoring
from services.scoring.settings import ScoringSettings
from services.systemic_planner.app import build as build_systemic
from services.systemic_planner.settings import SystemicSettings
from shared.clinical import clock
from shared.clinical.clock import NotAfter, check_message
from shared.errors import Rejected
from shared.runtime.decoding import json_decoder, not_future
from shared.runtime.service import Service
from shared.settings import Settings

RECEIVED = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
GUARD = NotAfter(RECEIVED, timedelta(minutes=5))
TODAY = RECEIVED.date()
NEXT_WEEK = TODAY + timedelta(days=7)
PAST = RECEIVED - timedelta(hours=2)


def envelope(occurred_at: datetime = PAST, recorded_at: datetime = PAST) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "patient_id": "pt-1",
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "source": "test-bus",
    }


def finding(**kw: Any) -> ImagingFinding:
    return ImagingFinding(**envelope(**kw), lesion_id="femur-R", skeletal_site="femur_shaft", modality="xray")


def treatment(body: dict[str, Any]) -> TreatmentEvent:
    return TreatmentEvent.model_validate({**envelope(), "treatment": body})


def care(body: dict[str, Any]) -> CareEvent:
    return CareEvent.model_validate({**envelope(), "event": body})


def request(**kw: Any) -> LocalTreatmentRequest:
    return LocalTreatmentRequest(**envelope(), request_id="rq-1", lesion_id="L3", modality="cementoplasty", **kw)


def reason(message: BaseModel, guard: NotAfter = GUARD) -> str:
    with pytest.raises(Rejected) as caught:
        check_message(message, guard)
    return str(caught.value)


# ---- envelope and nested dates -----------------------------------------------------------------------------------


def test_future_envelope_times_are_rejected_naming_the_field() -> None:
    assert reason(finding(occurred_at=datetime(2099, 1, 1, tzinfo=UTC))).startswith("occurred_at is in the future")
    assert reason(finding(recorded_at=RECEIVED + timedelta(hours=1))).startswith("recorded_at is in the future")
    check_message(finding(), GUARD)  # a current finding passes


def test_a_nested_date_is_checked_and_named_by_its_path() -> None:
    opinion = {"operable": False, "on": date(2099, 1, 1)}
    assessment = ClinicalAssessment(**envelope(), ecog=1, surgical_opinion=opinion)
    assert reason(assessment).startswith("surgical_opinion.on is in the future (2099-01-01")
    surgery = treatment({"kind": "surgery", "site": "femur", "procedure": "prophylactic_fixation", "on": NEXT_WEEK})
    assert reason(surgery).startswith("treatment.on is in the future")
    dose = treatment({"kind": "drug_administration", "drug": "clopidogrel", "on": TODAY - timedelta(days=1)})
    check_message(dose, GUARD)


def test_a_list_item_date_is_checked_and_named_with_its_index() -> None:
    earlier = {"on": date(2025, 3, 1), "end_on": date(2025, 3, 14), "fractions": 10}
    later = {"on": date(2099, 3, 1), "fractions": 5}
    assert reason(request(previous_courses=[earlier, later])).startswith("previous_courses[1].on is in the future")
    check_message(request(previous_courses=[earlier]), GUARD)


# ---- planned dates (FUTURE_ALLOWED) ----------------------------------------------------------------------------


def test_exempt_planned_dates_are_accepted() -> None:
    check_message(request(planned_on=NEXT_WEEK), GUARD)  # the planned procedure date (RT-DRUG, IR-CEMENT)
    check_message(care({"kind": "bone_biopsy", "biopsy_id": "b1", "status": "planned", "on": NEXT_WEEK}), GUARD)
    check_message(care({"kind": "pathway_step", "item": "psychologist", "status": "to_do", "on": NEXT_WEEK}), GUARD)
    course = {"kind": "radiotherapy", "site": "spine", "total_dose_gy": 30, "fractions": 10, "on": TODAY}
    check_message(treatment({**course, "end_on": NEXT_WEEK}), GUARD)  # course in progress: planned last fraction


def test_the_same_date_on_a_status_that_is_not_planned_is_rejected() -> None:
    reported = care({"kind": "bone_biopsy", "biopsy_id": "b1", "status": "reported", "on": NEXT_WEEK})
    assert reason(reported).startswith("event.on is in the future")
    for status in ("done", "declined", "not_applicable"):
        step = care({"kind": "pathway_step", "item": "psychologist", "status": status, "on": NEXT_WEEK})
        assert reason(step).startswith("event.on is in the future")
    course = {"kind": "radiotherapy", "site": "spine", "total_dose_gy": 30, "fractions": 10, "on": NEXT_WEEK}
    assert reason(treatment(course)).startswith("treatment.on is in the future")  # its first fraction has happened
    # an exempt field exempts only itself: the envelope of a planned request is still checked
    future_request = LocalTreatmentRequest(
        **envelope(occurred_at=datetime(2099, 1, 1, tzinfo=UTC)),
        request_id="rq-1",
        lesion_id="L3",
        modality="cementoplasty",
        planned_on=NEXT_WEEK,
    )
    assert reason(future_request).startswith("occurred_at is in the future")


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [
        (timedelta(days=730), True),  # a 2-year review (a pathway step to do)
        (timedelta(days=1095), True),
        (timedelta(days=1098), False),
        (timedelta(days=365 * 40), False),  # a mistyped year
    ],
)
def test_a_planned_date_beyond_the_horizon_is_refused(ahead: timedelta, accepted: bool) -> None:
    """Planned dates may lie in the future, within PLANNED_DATE_HORIZON_DAYS (1096) of the receipt: a date decades
    ahead is an entry error, never kept as a plan."""
    planned = TODAY + ahead
    messages = [
        request(planned_on=planned),
        care({"kind": "pathway_step", "item": "psychologist", "status": "to_do", "on": planned}),
        care({"kind": "bone_biopsy", "biopsy_id": "b1", "status": "planned", "on": planned}),
        treatment(
            {
                "kind": "radiotherapy",
                "site": "spine",
                "total_dose_gy": 30,
                "fractions": 10,
                "on": TODAY,
                "end_on": planned,
            }
        ),
    ]
    for message in messages:
        if accepted:
            check_message(message, GUARD)
        else:
            assert "is planned too far ahead" in reason(message) and "horizon 1096 days" in reason(message)


def test_the_planned_date_horizon_is_a_setting() -> None:
    decode = not_future(json_decoder(LocalTreatmentRequest), Settings(planned_date_horizon_days=30))
    message = request(planned_on=TODAY + timedelta(days=60))
    raw = message.model_dump_json().encode()
    ts = int(RECEIVED.timestamp() * 1000)
    with pytest.raises(Rejected, match="planned_on is planned too far ahead"):
        decode(ConsumerRecord("hospital.local-treatment-requests.v1", 0, 0, ts, 0, b"pt-1", raw, None, 0, 0, []))


# ---- tolerance and calendar dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead", "tolerance", "accepted"),
    [
        (timedelta(minutes=4), timedelta(minutes=5), True),
        (timedelta(minutes=5), timedelta(minutes=5), True),  # the limit itself is still plausible
        (timedelta(minutes=6), timedelta(minutes=5), False),
        (timedelta(minutes=4), timedelta(minutes=3), False),
        (timedelta(minutes=20), timedelta(minutes=30), True),
    ],
)
def test_clock_skew_tolerance(ahead: timedelta, tolerance: timedelta, accepted: bool) -> None:
    message = finding(occurred_at=RECEIVED + ahead)
    guard = NotAfter(RECEIVED, tolerance)
    if accepted:
        check_message(message, guard)
    else:
        assert f"clock-skew tolerance {tolerance.total_seconds() / 60:g} min" in reason(message, guard)


def record(message: BaseModel, received: datetime) -> ConsumerRecord:
    value = message.model_dump_json().encode()
    ts = int(received.timestamp() * 1000)
    return ConsumerRecord("hospital.imaging-findings.v1", 0, 0, ts, 0, b"pt-1", value, None, 0, len(value), [])


def test_not_future_reads_the_tolerance_setting_and_the_record_timestamp() -> None:
    decode = json_decoder(ImagingFinding)
    ahead = finding(occurred_at=RECEIVED + timedelta(minutes=10))
    with pytest.raises(Rejected, match="occurred_at is in the future"):
        not_future(decode, Settings())(record(ahead, RECEIVED))  # default 300 s
    assert not_future(decode, Settings(clock_skew_tolerance_seconds=900))(record(ahead, RECEIVED)) == ahead
    # the reference is the record's timestamp, never the consumer's clock: a replay years later agrees
    old = finding(occurred_at=datetime(2020, 1, 1, 12, tzinfo=UTC), recorded_at=datetime(2020, 1, 1, 12, tzinfo=UTC))
    with pytest.raises(Rejected, match="occurred_at is in the future"):
        not_future(decode, Settings())(record(old, datetime(2019, 12, 31, tzinfo=UTC)))


def test_a_calendar_date_counts_from_its_first_minute_in_the_hospital_time_zone() -> None:
    """A surgery done today in Paris, recorded at 00:30 local (23:30 UTC the day before), is current."""
    received = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)  # 2026-11-29 00:30 Europe/Paris
    today = treatment({"kind": "surgery", "site": "femur", "procedure": "fracture_fixation", "on": date(2026, 11, 29)})
    today = today.model_copy(update={"occurred_at": received - timedelta(minutes=10), "recorded_at": received})
    decode = not_future(json_decoder(TreatmentEvent), Settings(hospital_timezone="Europe/Paris"))
    assert decode(record(today, received)) == today
    with pytest.raises(Rejected, match=r"treatment\.on is in the future"):
        not_future(json_decoder(TreatmentEvent), Settings(hospital_timezone="UTC"))(record(today, received))
    tomorrow = today.model_copy(update={"treatment": today.treatment.model_copy(update={"on": date(2026, 11, 30)})})
    with pytest.raises(Rejected, match=r"treatment\.on is in the future"):
        decode(record(tomorrow, received))


# ---- the runtime applies it to every hospital decoder ------------------------------------------------------------


def hospital_topics(service: Service) -> set[str]:
    return {name for name in service.subscriptions if name.startswith("hospital.")}


def test_every_hospital_decoder_of_every_service_checks_future_dates() -> None:
    services = [
        build_scoring(ScoringSettings())[0],
        build_systemic(SystemicSettings())[0],
        build_rt(RadiotherapySettings())[0],
    ]
    consumed: set[str] = set()
    for service in services:
        for name in hospital_topics(service):
            assert getattr(service.subscriptions[name].decode, "checks_dates", False), (service.name, name)
        consumed |= hospital_topics(service)
    lab_topics = {"hospital.patient-records.v1", "hospital.lab-results.v1", "hospital.fhir-r4.v1", "hospital.hl7v2.v1"}
    # every hospital topic of the registry is consumed by one of them, or is lab-normalisation's (own checks)
    assert {t.name for t in TOPICS if t.name.startswith("hospital.")} == consumed | lab_topics


def test_a_custom_hospital_decoder_without_a_date_check_is_refused_at_declaration() -> None:
    service = Service(Settings())
    topic = Topic("hospital.imaging-findings.v1", ImagingFinding, (), (), "test")
    with pytest.raises(ValueError, match="must check future dates"):
        service.patient_aggregate((topic,), ImagingFinding, lambda s, e: (s, []), decode=json_decoder(ImagingFinding))
    service.patient_aggregate(
        (topic,), ImagingFinding, lambda s, e: (s, []), decode=not_future(json_decoder(ImagingFinding), Settings())
    )


# ---- the walk visits only fields that may hold a date (a plan per model class), and never skips one --------------


class _Sub(BaseModel):
    on: date | None = None
    label: str = ""


class _Opaque:
    """A type the plan cannot see into: visited at run time."""


class _Wide(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    name: str = ""
    count: int = 0
    ratio: float | None = None
    kind: Literal["a", "b"] = "a"
    ref: uuid.UUID | None = None
    when: datetime | None = None
    anything: Any = None
    by_name: dict[str, date] = {}
    subs: list[_Sub] = []
    pair: tuple[datetime, ...] = ()
    opaque: _Opaque | None = None


def test_the_date_plan_keeps_every_field_that_may_hold_a_date() -> None:
    visited = {name for name, _ in clock._fields(_Wide)}
    assert visited == {"when", "anything", "by_name", "subs", "pair", "opaque"}
    assert {name for name, _ in clock._fields(_Sub)} == {"on"}


@pytest.mark.parametrize(
    ("update", "path"),
    [
        ({"when": RECEIVED + timedelta(hours=1)}, "when"),
        ({"anything": {"nested": [RECEIVED + timedelta(hours=1)]}}, r"anything\[nested\]\[0\]"),
        ({"by_name": {"x": NEXT_WEEK}}, r"by_name\[x\]"),
        ({"subs": [_Sub(), _Sub(on=NEXT_WEEK)]}, r"subs\[1\]\.on"),
        ({"pair": (PAST, RECEIVED + timedelta(days=1))}, r"pair\[1\]"),
    ],
)
def test_a_future_date_anywhere_the_plan_keeps_is_rejected(update: dict[str, Any], path: str) -> None:
    check_message(_Wide(), GUARD)
    with pytest.raises(Rejected, match=f"^{path} is in the future"):
        check_message(_Wide(**update), GUARD)


def test_records_of_different_receipt_times_each_get_their_own_verdict() -> None:
    """not_future keeps the guard of the last record's timestamp: interleaved timestamps never borrow one."""
    decode = not_future(json_decoder(ImagingFinding), Settings())
    message = finding(occurred_at=RECEIVED - timedelta(minutes=1))
    early = RECEIVED - timedelta(hours=1)  # the same message received an hour before it happened: refused
    for received, accepted in [(RECEIVED, True), (early, False), (RECEIVED, True), (RECEIVED, True), (early, False)]:
        if accepted:
            assert decode(record(message, received)) == message
        else:
            with pytest.raises(Rejected, match="occurred_at is in the future"):
                decode(record(message, received))
