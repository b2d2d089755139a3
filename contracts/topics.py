"""Topic registry: every topic, its key, its value model, who produces it and who consumes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from contracts.care import CareEvent
from contracts.changelog import StateChange
from contracts.clinical import Alert, DeadLetter, NormalisedLab, Recommendation, Score, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding, LabResult, PatientRecord, TreatmentEvent
from contracts.lifecycle import AlertAction, AuditEvent
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from contracts.plan import TreatmentPlan
from contracts.raw import FhirR4Payload, Hl7v2Payload

# Service names (also their consumer group IDs).
LAB_NORMALISATION: Final = "lab-normalisation"
SCORING: Final = "scoring"
SYSTEMIC_PLANNER: Final = "systemic-planner"
RADIOTHERAPY_PLANNER: Final = "radiotherapy-planner"
NOTIFICATION: Final = "notification"
HOSPITAL_BUS: Final = "hospital integration bus"
SERVICES: Final = (LAB_NORMALISATION, SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER, NOTIFICATION)
ALL_SERVICES: Final = "every service"


@dataclass(frozen=True)
class Topic:
    name: str
    value: type[BaseModel]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    key: str = "patient_id"
    partitions: int = 6
    #: "compact" for the changelog topics (issue 22): the broker keeps the newest record per key
    cleanup_policy: str = "delete"


PATIENT_RECORDS = Topic(
    "hospital.patient-records.v1",
    PatientRecord,
    (HOSPITAL_BUS,),
    (LAB_NORMALISATION,),
    "Patient registered or updated: birth date, sex, weight, histology, molecular profile. Absent fields are "
    "unknown and leave what is known unchanged.",
)
LAB_RESULTS = Topic(
    "hospital.lab-results.v1",
    LabResult,
    (HOSPITAL_BUS,),
    (LAB_NORMALISATION,),
    "Laboratory results in the project's JSON form, any unit the lab uses.",
)
FHIR_R4 = Topic(
    "hospital.fhir-r4.v1",
    FhirR4Payload,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (LAB_NORMALISATION,),
    "Raw FHIR R4 JSON: Observation (labs, body weight), Patient, or a Bundle of them; one patient per message. "
    "lab-normalisation's POST /fhir publishes what it accepts here.",
)
HL7V2 = Topic(
    "hospital.hl7v2.v1",
    Hl7v2Payload,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (LAB_NORMALISATION,),
    "Raw HL7 v2.5 ORU^R01 messages (MSH/PID/OBR/OBX, ER7 text); one patient per message. "
    "lab-normalisation's POST /hl7v2 publishes what it accepts here.",
)
IMAGING_FINDINGS = Topic(
    "hospital.imaging-findings.v1",
    ImagingFinding,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER),
    "One bone lesion described on one imaging study. lab-normalisation publishes the clinicians' entries here "
    "(issue 23: forms and FHIR QuestionnaireResponse; `source` saisie:<form>:<clinician>).",
)
CLINICAL_ASSESSMENTS = Topic(
    "hospital.clinical-assessments.v1",
    ClinicalAssessment,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER),
    "ECOG, pain, neurology, life-expectancy estimate, primary control.",
)
TREATMENT_EVENTS = Topic(
    "hospital.treatment-events.v1",
    TreatmentEvent,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER),
    "Systemic drug started/stopped or administered (date of the last dose), radiotherapy course (cord dose), "
    "metabolic radiotherapy, surgery (lesion and level), dental care.",
)
LOCAL_TREATMENT_REQUESTS = Topic(
    "hospital.local-treatment-requests.v1",
    LocalTreatmentRequest,
    (HOSPITAL_BUS, LAB_NORMALISATION),
    (RADIOTHERAPY_PLANNER,),
    "A clinician's request for a local-treatment decision on one lesion: palliative RT, SBRT, re-irradiation "
    "(earlier courses and cord doses), cementoplasty or surgery, with intent and proposed scheme.",
)
CARE_EVENTS = Topic(
    "hospital.care-events.v1",
    CareEvent,
    (HOSPITAL_BUS,),
    (SYSTEMIC_PLANNER,),
    "Care-pathway steps (QUAL-PATHWAY: done, to do, declined) and bone biopsies planned or reported (MOL-BIOPSY).",
)
LABS_NORMALISED = Topic(
    "osteocds.labs.normalised.v1",
    NormalisedLab,
    (LAB_NORMALISATION,),
    (SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER, NOTIFICATION),
    "Lab values in canonical SI units, and derived values (corrected calcium, creatinine clearance) with provenance.",
)
SCORES = Topic(
    "osteocds.scores.v1",
    Score,
    (SCORING,),
    (SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER, NOTIFICATION),
    "Mirels, SINS and oligometastatic status, with every component.",
)
SKELETAL_EVENTS = Topic(
    "osteocds.skeletal-events.v1",
    SkeletalEvent,
    (SCORING,),
    (SYSTEMIC_PLANNER,),
    "Skeletal-related events (CLASS-SRE), one message per event.",
)
RECOMMENDATIONS = Topic(
    "osteocds.recommendations.v1",
    Recommendation,
    (SCORING, SYSTEMIC_PLANNER, RADIOTHERAPY_PLANNER),
    (NOTIFICATION,),
    "Every rule decision, with rule ID, rule-set version, inputs, French text and citation.",
)
PLANS = Topic(
    "osteocds.plans.v1",
    TreatmentPlan,
    (SYSTEMIC_PLANNER,),
    (NOTIFICATION,),
    "Each new version of a patient's bone-targeted treatment plan (items, orders, missing data), for EHRs.",
)
LOCAL_PLANS = Topic(
    "osteocds.local-plans.v1",
    LocalTreatmentPlan,
    (RADIOTHERAPY_PLANNER,),
    (NOTIFICATION,),
    "Each new version of a patient's local-treatment plan (radiotherapy, SBRT, re-irradiation, cementoplasty, "
    "surgery), one section per lesion, for EHRs.",
)
ALERTS = Topic(
    "osteocds.alerts.v1",
    Alert,
    (NOTIFICATION,),
    (),
    "Clinician-facing alerts and every change of their lifecycle (shown, acknowledged, overridden, resolved, "
    "withdrawn, escalated), for EHR inboxes. Info and warning alerts appear only once they have held for the "
    "settle window.",
)
ALERT_ACTIONS = Topic(
    "osteocds.alert-actions.v1",
    AlertAction,
    (NOTIFICATION,),
    (NOTIFICATION,),
    "What clinicians did with an alert (acknowledge, override with a coded reason, resolve; the actor is the "
    "access token's subject). notification's alert state is rebuilt from this topic, the recommendations and "
    "its clock topic (settle window, escalation).",
)
AUDIT = Topic(
    "osteocds.audit.v1",
    AuditEvent,
    (ALL_SERVICES,),
    (),
    "Audit trail: every read of a patient's data and every acknowledgement or override, with who (token "
    "subject and roles), what, which patient ID and when; never clinical values.",
)
DEAD_LETTER = Topic(
    "osteocds.deadletter.v1",
    DeadLetter,
    (ALL_SERVICES,),
    (),
    "Messages that could not be decoded, validated or processed, with the reason and original bytes.",
    key="original key",
    partitions=1,
)


def clock_topic(service: str) -> Topic:
    """A service's own clock topic (shared/runtime/timers.py): it publishes a tick there when a patient's deadline
    passes and consumes it through its normal per-patient path."""
    return Topic(
        f"osteocds.clock.{service}.v1",
        ClockTick,
        (service,),
        (service,),
        f"Clock ticks of {service}: a patient's scheduled deadline (review, overdue check) has passed.",
    )


def changelog_topic(service: str) -> Topic:
    """A service's changelog (issue 22, shared/runtime/changelog.py): its patients' stored states, compacted, read
    by the service itself only when it restores its state. Not in TOPICS: no subscription reads it."""
    return Topic(
        f"osteocds.changelog.{service}.v1",
        StateChange,
        (service,),
        (service,),
        f"{service}'s patient states (compacted: the newest per patient), restored instead of replaying its inputs.",
        cleanup_policy="compact",
    )


CLOCK_SYSTEMIC_PLANNER = clock_topic(SYSTEMIC_PLANNER)
CLOCK_NOTIFICATION = clock_topic(NOTIFICATION)
#: issue 18: a compression or a life-expectancy estimate ages out of its currency window, and the remaining estimate
#: crosses 1 year, 3 months, 6 weeks, without another event: the local plan is decided again then
CLOCK_RADIOTHERAPY_PLANNER = clock_topic(RADIOTHERAPY_PLANNER)
#: issue 18: a crisis calcium, a fracture or compression, a pain or staging ages out of its window on time
CLOCK_SCORING = clock_topic(SCORING)

TOPICS: Final[tuple[Topic, ...]] = (
    PATIENT_RECORDS,
    LAB_RESULTS,
    FHIR_R4,
    HL7V2,
    IMAGING_FINDINGS,
    CLINICAL_ASSESSMENTS,
    TREATMENT_EVENTS,
    LOCAL_TREATMENT_REQUESTS,
    CARE_EVENTS,
    LABS_NORMALISED,
    SCORES,
    SKELETAL_EVENTS,
    RECOMMENDATIONS,
    PLANS,
    LOCAL_PLANS,
    ALERTS,
    ALERT_ACTIONS,
    AUDIT,
    DEAD_LETTER,
    CLOCK_SYSTEMIC_PLANNER,
    CLOCK_NOTIFICATION,
    CLOCK_RADIOTHERAPY_PLANNER,
    CLOCK_SCORING,
)

#: issue 22: the changelog topic of every stateful service (each of the five keeps a per-patient aggregate)
CHANGELOGS: Final[tuple[Topic, ...]] = tuple(changelog_topic(s) for s in SERVICES)
