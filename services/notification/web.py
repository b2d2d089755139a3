"""The clinicians' page, one per patient, in French, served by notification behind the same login.

GET /ui/patients/{id}        the page itself: static HTML and script, no patient data (open by design); it asks
                             for the user's access token and calls the two routes below with it
GET /patients/{id}/view      everything the page shows (clinician; audited): the alerts that still hold, the
                             systemic plan, the local-treatment plan (per lesion), the scores
                             with their components, the recent labs with their provenance, each with its citation
GET /patients/{id}/events    the same, live, as server-sent events: a new `view` whenever the patient's state
                             changes (clinician; audited once per connection; ends when the token expires)
No front-end build chain: one HTML file with plain JavaScript (services/notification/static/patient.html).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from contracts.base import InputUsed, PatientId
from contracts.clinical import Alert, NormalisedLab, Score
from contracts.lifecycle import OVERRIDE_REASONS
from contracts.local import LocalTreatmentPlan
from contracts.plan import PlanItem
from contracts.rules import CITATIONS, Citation
from services.notification import vocabulary
from services.notification.domain import PatientAlerts, listing
from services.notification.settings import NotificationSettings
from shared.runtime.service import Service
from shared.runtime.state import StateLost
from shared.web.auth import CLINICIAN, Principal, public, require

PAGE: Final = Path(__file__).with_name("static") / "patient.html"
#: statuses the page lists (the others no longer hold)
PAGE_STATUSES: Final = ("active", "acknowledged", "overridden")
LOCAL_PLAN_NOTE: Final = (
    "Pas de plan de traitement local pour ce patient (le planificateur de radiothérapie n'en a pas publié)."
)
KEEP_ALIVE_S: Final = 15.0


def view(state: PatientAlerts | None, patient_id: str) -> dict[str, Any]:
    """What the page shows, as JSON (pure): the raw records and, beside each, a `display` object with everything a
    clinician reads, in French (services/notification/vocabulary.py), values rounded to their rule's precision."""
    s = state or PatientAlerts()
    shown = [a for a in listing(s) if a.status in PAGE_STATUSES]
    ranks = critical_ranks(shown)
    return {
        "patient_id": patient_id,
        "alerts": [alert_view(a, s, ranks.get(str(a.recommendation_id))) for a in shown],
        "plan": None if s.plan is None else plan_view(s.plan.model_dump(mode="json"), s.plan.items, s),
        "local_plan": None if s.local_plan is None else local_plan_view(s.local_plan, s),
        "local_plan_note": LOCAL_PLAN_NOTE,
        "scores": [score_view(sc) for _, sc in sorted(s.scores.items())],
        "labs": [lab_view(lab) for _, lab in sorted(s.labs.items())],
        # the guideline passages the labs' rules come from (unit conversion, corrected calcium, clearance...)
        "citations": {
            rid: CITATIONS[rid].model_dump(mode="json") | {"passage": passage(rid, CITATIONS[rid])}
            for rid in sorted({r for lab in s.labs.values() for r in lab.rule_ids})
            if rid in CITATIONS
        },
        "override_reasons": [{"code": c, "display": d} for c, d in OVERRIDE_REASONS.items()],
    }


#: Critical alerts ranked against each other: a threat to life first (LAB-CA-CRISIS: the crisis "met en jeu le
#: pronostic vital", L300-306; RT-MSCC: spinal cord compression, an emergency, L1290-1292, L1397-1402), then the
#: longest unanswered (higher escalation level), then the oldest raised.
VITAL_RULES: Final = {
    "LAB-CA-CRISIS": "urgence vitale : crise aiguë hypercalcémique",
    "RT-MSCC": "urgence : compression médullaire",
}


def critical_ranks(alerts: list[Alert]) -> dict[str, dict[str, Any]]:
    """Rank of each active critical alert (1 = first to handle) and why it is there."""
    critical = [a for a in alerts if a.severity == "critical" and a.status == "active"]
    far = datetime.max.replace(tzinfo=UTC)
    ordered = sorted(
        critical,
        key=lambda a: (
            a.rule_id not in VITAL_RULES,
            -a.escalation_level,
            a.raised_at or a.occurred_at or far,
            str(a.recommendation_id),
        ),
    )
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(ordered, start=1):
        why = [VITAL_RULES.get(a.rule_id, "alerte critique")]
        if a.escalation_level:
            why.append(f"sans réponse, escaladée (niveau {a.escalation_level})")
        why.append(f"levée le {vocabulary.when(a.raised_at or a.occurred_at)}")
        out[str(a.recommendation_id)] = {"rank": i, "of": len(ordered), "why": " ; ".join(why)}
    return out


def passage(rule_id: str, citation: Citation) -> dict[str, str]:
    """Where the page opens the cited passage: the guideline text notification serves (GET
    /cds-services/guideline/{rule_id}), anchored by the rule and its first line range."""
    first = citation.lines.split(",")[0].strip()
    anchor = f"{rule_id}:{first}" if first.startswith("L") else rule_id
    return {
        "url": f"/cds-services/guideline/{rule_id}",
        "anchor": anchor,
        "label": f"{citation.section} ({citation.lines})"
        if citation.lines.strip() not in ("", "-")
        else citation.section,
        "document": citation.document,
    }


def _used(i: InputUsed, s: PatientAlerts, producer: str) -> dict[str, Any]:
    """One datum a rule used: its French name, value and unit at the rule's precision, when it was taken, where
    it comes from."""
    lab = next((x for x in s.labs.values() if i.source_event_id is not None and x.event_id == i.source_event_id), None)
    if lab is not None:
        source = _lab_source(lab)
    elif i.source_event_id is not None and any(
        d.event_id == i.source_event_id for x in s.labs.values() for d in x.derived_from
    ):
        source = "résultat du laboratoire"
    elif i.source_event_id is not None:
        source = f"transmis par le {vocabulary.PRODUCERS.get(producer, vocabulary.untranslated(producer))}"
    else:
        source = f"établi par le {vocabulary.PRODUCERS.get(producer, vocabulary.untranslated(producer))}"
    base = i.name.partition(":")[0]
    return {
        "name": vocabulary.name(i.name),
        "value": vocabulary.value(i.value, base, i.unit, i.comparator),
        "censored": i.comparator is not None,
        "at": sample_time(i, s),
        "source": source,
    }


def sample_time(i: InputUsed, s: PatientAlerts | None) -> str:
    """When a datum was taken. Review RD (HAZ-19-PAGE-R04): a datum taken from a laboratory result and sent without
    its own time has the result's."""
    if i.occurred_at is None and s is not None and i.source_event_id is not None:
        lab = next((x for x in s.labs.values() if x.event_id == i.source_event_id), None)
        return vocabulary.when(lab.occurred_at if lab is not None else None)
    return vocabulary.when(i.occurred_at)


def _lab_source(lab: NormalisedLab) -> str:
    if lab.derived_from:
        return "calculé à partir de : " + " ; ".join(
            f"{vocabulary.ANALYTES.get(d.analyte, vocabulary.name(d.analyte))} "
            f"{vocabulary.value(d.value, d.analyte, d.unit, d.comparator)} ({vocabulary.when(d.occurred_at)})"
            for d in lab.derived_from
        )
    loinc = f" (LOINC {lab.loinc})" if lab.loinc else ""
    return f"résultat du laboratoire{loinc}, normalisé"


def alert_view(a: Alert, s: PatientAlerts, rank: dict[str, Any] | None) -> dict[str, Any]:
    """An alert with what a clinician reads of it."""
    out = a.model_dump(mode="json")
    handled = []
    if a.acknowledged_by:
        handled.append(f"acquittée par {a.acknowledged_by} le {vocabulary.when(a.acknowledged_at)}")
    if a.overridden_by:
        handled.append(
            f"passée outre par {a.overridden_by} le {vocabulary.when(a.overridden_at)} — raison : "
            f"{vocabulary.override_reason(a.override_reason)}"
            + (f" (« {a.override_comment} »)" if a.override_comment else "")
        )
    escalated = None
    if a.escalation_level:
        to = ESCALATED_TO.get(a.escalated_to or "", vocabulary.untranslated(a.escalated_to or ""))
        escalated = f"escaladée (niveau {a.escalation_level}, vers {to})"
    out["display"] = {
        "title": vocabulary.prose(a.title),
        "text": vocabulary.prose(a.text_fr),
        "severity": vocabulary.SEVERITIES[a.severity],
        "status": vocabulary.ALERT_STATUSES[a.status],
        "raised": vocabulary.when(a.raised_at or a.occurred_at),
        "used": [_used(i, s, a.produced_by) for i in a.inputs],
        "missing": [vocabulary.missing(m) for m in a.missing],
        "handled": handled,
        "override_reason": vocabulary.override_reason(a.override_reason) or None,
        "escalated": escalated,
        "rank": rank,
        "passage": passage(a.rule_id, a.citation),
        "producer": vocabulary.PRODUCERS.get(a.produced_by, vocabulary.untranslated(a.produced_by)),
    }
    return out


#: where an escalated alert went (NotificationSettings.alert_escalate_to)
ESCALATED_TO: Final = {"escalation": "le médecin d'astreinte"}


def item_view(item: PlanItem, s: PatientAlerts | None = None) -> dict[str, Any]:
    out = item.model_dump(mode="json")
    out["display"] = {
        "title": vocabulary.prose(item.title),
        "text": vocabulary.prose(item.text_fr),
        "what_would_change": None if item.what_would_change_fr is None else vocabulary.prose(item.what_would_change_fr),
        "orders": [vocabulary.prose(o.instructions_fr) for o in item.orders],
        "status": vocabulary.ITEM_STATUSES.get(item.status, vocabulary.untranslated(item.status)),
        "used": [
            {
                "name": vocabulary.name(i.name),
                "value": vocabulary.value(i.value, i.name.partition(":")[0], i.unit, i.comparator),
                "at": sample_time(i, s),
            }
            for i in item.inputs
        ],
        "missing": [vocabulary.missing(m) for m in item.missing],
        "checks": [
            {
                "name": vocabulary.name(c.name),
                "status": vocabulary.CHECK_STATUSES[c.status].label,
                "mark": vocabulary.CHECK_STATUSES[c.status].mark,
                "done": c.status in ("done", "waived"),
                "detail": vocabulary.prose(c.detail_fr),
            }
            for c in item.checks
        ],
        "passage": passage(item.rule_id, item.citation),
    }
    return out


def plan_view(raw: dict[str, Any], items: list[PlanItem], s: PatientAlerts | None = None) -> dict[str, Any]:
    return raw | {"items": [item_view(i, s) for i in items]}


def local_plan_view(plan: LocalTreatmentPlan, s: PatientAlerts | None = None) -> dict[str, Any]:
    raw = plan.model_dump(mode="json")
    raw["patient_items"] = [item_view(i, s) for i in plan.patient_items]
    raw["sections"] = [
        section.model_dump(mode="json")
        | {
            "items": [item_view(i, s) for i in section.items],
            "display": {"site": vocabulary.site(section.skeletal_site, section.vertebral_level)},
        }
        for section in plan.sections
    ]
    return raw


def score_view(sc: Score) -> dict[str, Any]:
    out = sc.model_dump(mode="json")
    band = vocabulary.BANDS.get(sc.band, vocabulary.untranslated(sc.band)) if sc.band else None
    out["display"] = {
        "text": vocabulary.prose(sc.text_fr),
        "score": vocabulary.SCORES.get(sc.score, vocabulary.untranslated(sc.score)),
        "subject": "patient" if sc.subject == "patient" else sc.subject,
        "total": "incomplet" if sc.total is None else str(sc.total),
        "band": band,
        "components": [
            {
                "name": vocabulary.name(c.name),
                "value": vocabulary.component(sc.score, c.name, c.value),
                "points": "—" if c.points is None else str(c.points),
            }
            for c in sc.components
        ],
        "missing": [vocabulary.missing(m) for m in sc.missing],
        "passage": passage(sc.rule_ids[0] if sc.rule_ids else "", sc.citation),
    }
    return out


def _interpretation(code: str | None) -> str | None:
    return None if code is None else vocabulary.INTERPRETATIONS.get(code, vocabulary.untranslated(code))


def lab_view(lab: NormalisedLab) -> dict[str, Any]:
    out = lab.model_dump(mode="json")
    converted = None
    if lab.original_unit and (lab.original_unit != lab.unit or lab.original_value != lab.value):
        before = vocabulary.original(lab.original_value, lab.analyte, lab.original_unit, lab.unit, lab.comparator)
        after = vocabulary.value(lab.value, lab.analyte, lab.unit, lab.comparator)
        converted = f"{before} → {after}"
    out["display"] = {
        "analyte": vocabulary.ANALYTES.get(lab.analyte, vocabulary.untranslated(lab.analyte)),
        "value": "non calculable"
        if lab.value is None
        else vocabulary.value(lab.value, lab.analyte, lab.unit, lab.comparator)
        + (" (résultat censuré)" if lab.comparator else ""),
        "at": vocabulary.when(lab.occurred_at),
        "conversion": converted or "aucune conversion",
        "source": _lab_source(lab),
        "interpretation": _interpretation(lab.interpretation),
        "notes": [vocabulary.prose(n) for n in lab.notes],
        "missing": [vocabulary.missing(m) for m in lab.missing],
    }
    return out


def web_router(
    service: Service,
    settings: NotificationSettings,
    load: Callable[[str], Awaitable[PatientAlerts | None]],
) -> APIRouter:
    router = APIRouter(tags=["page"])

    @router.get(
        "/ui/patients/{patient_id}",
        response_class=HTMLResponse,
        dependencies=[public("static page shell: no patient data; it calls the API with the user's token")],
    )
    async def page(patient_id: PatientId) -> HTMLResponse:
        """The clinicians' page for one patient (French)."""
        return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @router.get("/patients/{patient_id}/view", dependencies=[require(CLINICIAN, audit="read")])
    async def patient_view(patient_id: PatientId) -> dict[str, Any]:
        """Everything the page shows for this patient."""
        return view(await load(patient_id), patient_id)

    @router.get("/patients/{patient_id}/events", response_class=StreamingResponse)
    async def events(
        request: Request, patient_id: PatientId, who: Annotated[Principal, require(CLINICIAN, audit="read")]
    ) -> StreamingResponse:
        """Server-sent events: `view` with the page's data at once and whenever it changes. Read through the state
        store's guard like every other read: while the patient's slot group is lost or rolled back (a flush, a
        Redis Cluster failover) the request answers 503, and an open stream sends `unavailable` and ends, never a
        stale or empty view (issue 22)."""
        expires = float(who.claims.get("exp", time.time() + 3600))
        first = await service.store.load_raw(patient_id)  # StateLost: 503 before the stream starts

        async def stream() -> AsyncIterator[str]:
            last: bytes | str | None = b""
            raw: bytes | None = first
            quiet_since = time.monotonic()
            while not await request.is_disconnected():
                if time.time() >= expires:
                    yield "event: expired\ndata: {}\n\n"
                    return
                if raw != last:
                    last = raw
                    state = None if raw is None else PatientAlerts.model_validate_json(raw)
                    yield f"event: view\ndata: {json.dumps(view(state, patient_id), ensure_ascii=False)}\n\n"
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(settings.live_poll_seconds)
                try:
                    raw = await service.store.load_raw(patient_id)
                except StateLost:
                    yield "event: unavailable\ndata: {}\n\n"
                    return

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return router
