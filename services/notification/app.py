"""Kafka and HTTP adapters of the notification service.

Kafka: recommendations (with the time they arrived), clinicians' actions (osteocds.alert-actions.v1), its
clock ticks (settle window, escalation: shared/runtime/timers.py), both plans, scores and labs (for the page) → the
patient's alert aggregate → osteocds.alerts.v1.
HTTP (every route needs a token, shared/web/auth.py): GET /alerts, POST /alerts/{id}/ack | override | resolve,
CDS Hooks 2.0 under /cds-services, the clinicians' page (web.py).

An acknowledgement or an override is never written to Redis by the HTTP handler: it is published as an
`AlertAction` (the actor is the token's subject) and applied by the consumer like any event, so the state can
be rebuilt from Kafka alone. The handler waits until its action is applied and answers with the alert (202
with the action ID if that takes longer than ACTION_WAIT_SECONDS).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts import guideline
from contracts.base import Message, PatientId
from contracts.clinical import Alert, Recommendation
from contracts.lifecycle import AlertAction, OverrideReasonCode
from contracts.rules import CITATIONS
from contracts.topics import ALERT_ACTIONS, LABS_NORMALISED, LOCAL_PLANS, PLANS, RECOMMENDATIONS, SCORES
from services.notification import cds, orders, orders_facts, signin
from services.notification.actions import allowed, ended_status, find
from services.notification.domain import AlertPolicy, Arrived, PatientAlerts, action_applied, apply_event, listing
from services.notification.lifecycle import SERVICE, next_due
from services.notification.settings import NotificationSettings
from services.notification.web import web_router
from shared.runtime.service import Service
from shared.web.auth import CLINICIAN, INTEGRATION, Principal, public, record_audit, require
from shared.web.http import create_app

Action = Literal["acknowledge", "override", "resolve"]


class ActionRequest(BaseModel):
    """Who acts comes from the access token, never from the body."""

    model_config = ConfigDict(extra="forbid")

    patient_id: PatientId


class OverrideRequest(ActionRequest):
    reason: OverrideReasonCode = Field(description="Coded reason (the CDS Hooks overrideReasons of the card).")
    comment: str | None = Field(default=None, max_length=1000)


def arrived(record: ConsumerRecord) -> Arrived:
    """A recommendation and the broker's timestamp of its record: when notification received it."""
    at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    return Arrived(message=Recommendation.model_validate_json(record.value), at=at)


def policy_of(settings: NotificationSettings) -> AlertPolicy:
    return AlertPolicy(
        settle=timedelta(seconds=settings.alert_settle_seconds),
        escalation_delay=timedelta(seconds=settings.alert_escalation_delay_seconds),
        escalation_max_level=settings.alert_escalation_max_level,
        escalate_to=settings.alert_escalate_to,
    )


class Actions:
    """Publish a person's action on an alert and wait until the consumer has applied it."""

    def __init__(self, service: Service, settings: NotificationSettings) -> None:
        self.service = service
        self.wait = settings.action_wait_seconds
        self.producer = service.producer  # the app's request producer (no lingering) once the app is built

    async def load(self, patient_id: str) -> PatientAlerts | None:
        return await self.service.store.load(patient_id, PatientAlerts)

    async def act(
        self,
        request: Request,
        who: Principal,
        patient_id: str,
        alert_id: str,
        action: Action,
        channel: Literal["api", "web", "cds-hooks"],
        reason: str | None = None,
        comment: str | None = None,
    ) -> tuple[int, Alert | dict[str, str]]:
        state = await self.load(patient_id) or PatientAlerts()
        alert = find(state, alert_id)
        if alert is None:
            if (gone := ended_status(state, alert_id)) is not None:  # ended long ago: only its tombstone is kept
                raise HTTPException(409, f"cannot {action} an alert that is {gone}")
            raise HTTPException(404, "no such alert for this patient")
        if not allowed(alert, action):
            done = {"acknowledge": "acknowledged", "override": "overridden", "resolve": "resolved"}[action]
            if alert.status == done:  # a repeat: the first action stays
                return 200, alert
            raise HTTPException(409, f"cannot {action} an alert that is {alert.status}")
        role = who.role_for((CLINICIAN,))
        await record_audit(request, who, action, patient_id, (CLINICIAN,))
        now = datetime.now(UTC)
        msg = AlertAction(
            event_id=uuid.uuid4(),
            patient_id=patient_id,
            occurred_at=now,
            recorded_at=now,
            source=SERVICE,
            action=action,
            alert_id=alert.recommendation_id,
            alert_version=alert.event_id,  # HAZ-22-ORDER-01: the version acted on, never a later issue
            actor=who.subject,
            actor_role=role,
            channel=channel,
            reason=reason,
            comment=comment,
        )
        await (await self.producer.send(msg))
        deadline = asyncio.get_running_loop().time() + self.wait
        while asyncio.get_running_loop().time() < deadline:
            now_state = await self.load(patient_id)
            if action_applied(now_state, msg.event_id):
                assert now_state is not None
                return 200, find(now_state, alert_id) or alert
            await asyncio.sleep(0.02)
        return 202, {"action_id": str(msg.event_id), "status": "accepted, not applied yet"}


def build(settings: NotificationSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    policy = policy_of(settings)

    def apply(state: PatientAlerts, event: object) -> tuple[PatientAlerts, list[Message]]:
        return apply_event(state, event, policy)

    service.patient_aggregate(
        (RECOMMENDATIONS,), PatientAlerts, apply, decode=arrived, idempotency_key=lambda m: m.delivery_key()
    )
    service.patient_aggregate(
        (ALERT_ACTIONS, PLANS, LOCAL_PLANS, SCORES, LABS_NORMALISED),
        PatientAlerts,
        apply,
        due=lambda state: next_due(state, policy),  # end of a settle window, next escalation
    )
    actions = Actions(service, settings)
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=list[Alert], dependencies=[require(CLINICIAN, audit="read")])
    async def get_alerts(
        request: Request,
        response: Response,
        patient_id: Annotated[PatientId, Query()],
        status: Annotated[
            Literal["active", "acknowledged", "overridden", "resolved", "withdrawn"] | None, Query()
        ] = None,
        severity: Annotated[Literal["critical", "warning", "info"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[Alert]:
        """The patient's alerts shown to clinicians, most severe and most recent first; `limit`/`offset` pages
        (total in `X-Total-Count`, next page in `Link`). Info and warning alerts appear once settled."""
        found = listing(await actions.load(patient_id), status, severity)
        response.headers["X-Total-Count"] = str(len(found))
        if offset + limit < len(found):
            nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
            response.headers["Link"] = f'<{nxt}>; rel="next"'
        return found[offset : offset + limit]

    async def respond(result: tuple[int, Alert | dict[str, str]]) -> JSONResponse:
        code, body = result
        content = body.model_dump(mode="json") if isinstance(body, Alert) else body
        return JSONResponse(content, status_code=code)

    @router.post("/alerts/{alert_id}/ack", response_model=Alert, responses={202: {}, 404: {}, 409: {}})
    async def ack(
        request: Request, alert_id: str, body: ActionRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> JSONResponse:
        """Acknowledge an alert, as the token's subject."""
        return await respond(await actions.act(request, who, body.patient_id, alert_id, "acknowledge", "api"))

    @router.post("/alerts/{alert_id}/override", response_model=Alert, responses={202: {}, 404: {}, 409: {}})
    async def override(
        request: Request, alert_id: str, body: OverrideRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> JSONResponse:
        """Override an alert with a coded reason and an optional comment, as the token's subject."""
        result = await actions.act(
            request, who, body.patient_id, alert_id, "override", "api", body.reason, body.comment
        )
        return await respond(result)

    @router.post("/alerts/{alert_id}/resolve", response_model=Alert, responses={202: {}, 404: {}, 409: {}})
    async def resolve(
        request: Request, alert_id: str, body: ActionRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> JSONResponse:
        """Mark an acknowledged or overridden alert resolved, as the token's subject."""
        return await respond(await actions.act(request, who, body.patient_id, alert_id, "resolve", "api"))

    hooks = APIRouter(prefix="/cds-services", tags=["cds-hooks"])

    @hooks.get("", dependencies=[require(CLINICIAN, INTEGRATION)])
    async def cds_discovery() -> dict[str, Any]:
        """CDS Hooks 2.0 discovery."""
        return cds.discovery()

    async def remember_cards(patient_id: str, cards: list[dict[str, Any]]) -> None:
        """The feedback names only the card: remember whose it is."""
        if cards:
            async with service.redis.pipeline(transaction=False) as pipe:
                _index_cards(service, pipe, patient_id, cards)
                await pipe.execute()

    @hooks.post(f"/{cds.SERVICE_ID}")
    async def cds_patient_view(
        request: Request, body: cds.HookRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks `patient-view`: cards from the patient's alerts and plan."""
        patient_id = body.context.patientId
        await record_audit(request, who, "read", patient_id, (CLINICIAN,))
        cards = cds.cards(await actions.load(patient_id))
        await remember_cards(patient_id, cards)
        return {"cards": cards}

    @hooks.post(f"/{cds.SERVICE_ID}/feedback")
    async def cds_feedback(
        request: Request, body: cds.FeedbackRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks feedback: `accepted` acknowledges the card's alert, `overridden` overrides it with the
        coded overrideReason and the user's comment. The actor is the token's subject."""
        results = []
        for item in body.feedback:
            patient_id = await _patient_of_card(service, item.card)
            if patient_id is None:  # the plan card, or a card we do not know: nothing to change
                results.append({"card": item.card, "result": "ignored"})
                continue
            state = await actions.load(patient_id) or PatientAlerts()
            alert = find(state, item.card)
            action: Action = "acknowledge" if item.outcome == "accepted" else "override"
            reason = None
            if action == "override":
                reason = cds.reason_code(item) or "other"
            if alert is None or not allowed(alert, action):
                results.append({"card": item.card, "result": "unchanged"})
                continue
            comment = item.overrideReason.userComment if item.overrideReason else None
            code, _ = await actions.act(request, who, patient_id, item.card, action, "cds-hooks", reason, comment)
            results.append({"card": item.card, "result": "applied" if code == 200 else "accepted"})
        return {"results": results}

    def links(request: Request) -> orders.Links:
        base = (settings.cds_public_base_url or str(request.base_url)).rstrip("/")
        return orders.Links(
            page=lambda pid: f"{base}/ui/patients/{pid}",
            passage=lambda rule_id: f"{base}/cds-services/guideline/{rule_id}",
        )

    async def order_cards(request: Request, body: cds.OrderHookRequest, who: Principal, hook: str) -> dict[str, Any]:
        if body.hook != hook:
            raise HTTPException(400, f"this service answers the {hook} hook")
        patient_id = body.context.patientId
        await record_audit(request, who, "read", patient_id, (CLINICIAN,))
        facts = orders_facts.facts(await actions.load(patient_id), datetime.now(UTC))
        selections = body.context.selections if hook == "order-select" else None
        found = orders.cards(body.context.draftOrders, facts, patient_id, links(request), selections)
        await remember_cards(patient_id, found)
        return {"cards": found}

    @hooks.post(f"/{cds.ORDER_SIGN_ID}")
    async def cds_order_sign(
        request: Request, body: cds.OrderHookRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks `order-sign`: the draft orders checked against the patient's current facts (orders.py)."""
        return await order_cards(request, body, who, "order-sign")

    @hooks.post(f"/{cds.ORDER_SELECT_ID}")
    async def cds_order_select(
        request: Request, body: cds.OrderHookRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks `order-select`: the same checks, on the selected draft orders only."""
        return await order_cards(request, body, who, "order-select")

    async def order_feedback(request: Request, body: cds.FeedbackRequest, who: Principal) -> dict[str, Any]:
        """Feedback on an order card: no alert to change; it is recorded on the audit trail (who, the patient, the
        outcome and the coded reason; never the free comment), the actor being the token's subject."""
        results = []
        for item in body.feedback:
            patient_id = await _patient_of_card(service, item.card)
            if patient_id is None:
                results.append({"card": item.card, "result": "ignored"})
                continue
            what = "cds-order-accepted"
            if item.outcome == "overridden":
                what = f"cds-order-overridden:{cds.reason_code(item) or 'other'}"
            await record_audit(request, who, what, patient_id, (CLINICIAN,))
            results.append({"card": item.card, "result": "recorded"})
        return {"results": results}

    @hooks.post(f"/{cds.ORDER_SIGN_ID}/feedback")
    async def cds_order_sign_feedback(
        request: Request, body: cds.FeedbackRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks feedback on `order-sign` cards (accepted / overridden with a coded reason): audited."""
        return await order_feedback(request, body, who)

    @hooks.post(f"/{cds.ORDER_SELECT_ID}/feedback")
    async def cds_order_select_feedback(
        request: Request, body: cds.FeedbackRequest, who: Annotated[Principal, require(CLINICIAN)]
    ) -> dict[str, Any]:
        """CDS Hooks feedback on `order-select` cards: audited."""
        return await order_feedback(request, body, who)

    guideline = _guideline_lines(settings)

    @hooks.get(
        "/guideline/{rule_id}",
        response_class=PlainTextResponse,
        include_in_schema=False,  # a document, not an API (like the page shell): open, no patient data
        dependencies=[public("the guideline's published text (a card's source.url): no patient data")],
    )
    async def cds_passage(rule_id: str) -> PlainTextResponse:
        """The guideline passage a rule cites (its line ranges of the French text), for a card's `source.url`."""
        citation = CITATIONS.get(rule_id)
        if citation is None or guideline is None:
            raise HTTPException(404, "no such passage")
        return PlainTextResponse(_passage(guideline, rule_id, citation.section, citation.lines))

    service.rebuild_writes = lambda pipe, states: _reindex_cards(service, pipe, states)
    app = create_app(service, [router, hooks, web_router(service, settings, actions.load)])
    signin.install(app, settings)  # issue 19: page sign-in (code flow + PKCE, SMART launch), /ui/ headers
    origins = [o.strip() for o in settings.cds_allowed_origins.split(",") if o.strip()]
    if origins:  # issue 19: a browser-based CDS client (the public sandbox) calls the hooks from its own origin
        app.add_middleware(CdsCors, origins=origins)
    actions.producer = app.state.request_producer
    return service, app


class CdsCors:
    """CORS for the CDS Hooks endpoints only (/cds-services...), for the configured origins: a preflight is answered
    before authentication, an actual call still needs its bearer token (CDS Hooks 2.0, Cross-Origin Resource
    Sharing). Every other path is left as it is (the clinicians' page and API are same-origin)."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/cds-services"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _guideline_lines(settings: NotificationSettings) -> list[str] | None:
    path = Path(settings.guideline_path) if settings.guideline_path else guideline.TEXT
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None


def _passage(lines: list[str], rule_id: str, section: str, cited: str) -> str:
    """The cited line ranges ("L1153-1184, L900-906"), each headed by its range."""
    out = [f"{rule_id} — {section} ({cited})", ""]
    for part in cited.split(","):
        m = re.fullmatch(r"\s*L(\d+)(?:-(\d+))?\s*", part)
        if m is None:
            continue
        first = int(m.group(1))
        last = int(m.group(2) or first)
        out += [f"[L{first}-{last}]", *(x.rstrip() for x in lines[first - 1 : last] if x.strip()), ""]
    return "\n".join(out)


#: how long a served card's patient is remembered for its feedback
CARD_INDEX_TTL_S = 30 * 24 * 3600


def _card_key(service: Service, card: str) -> str:
    return f"osteocds:{service.name}:card:{card}"


def _index_cards(service: Service, pipe: Any, patient_id: str, cards: list[dict[str, Any]]) -> None:
    for card in cards:
        pipe.set(_card_key(service, card["uuid"]), patient_id, ex=CARD_INDEX_TTL_S)


def _reindex_cards(service: Service, pipe: Any, states: Mapping[str, BaseModel]) -> None:
    """After a lost Redis, the card index is rebuilt with the states: every card patient-view would serve now
    (the feedback on a card served before the loss still reaches its alert)."""
    for patient_id, state in states.items():
        if isinstance(state, PatientAlerts):
            _index_cards(service, pipe, patient_id, cds.cards(state))


async def _patient_of_card(service: Service, card: str) -> str | None:
    """Feedback names only the card: its alert's patient comes from the card index written when the card
    was served."""
    raw = await service.redis.get(_card_key(service, card))
    return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)
