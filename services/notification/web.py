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
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from contracts.base import PatientId
from contracts.lifecycle import OVERRIDE_REASONS
from contracts.rules import CITATIONS
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
    """What the page shows, as JSON (pure)."""
    s = state or PatientAlerts()
    return {
        "patient_id": patient_id,
        "alerts": [a.model_dump(mode="json") for a in listing(s) if a.status in PAGE_STATUSES],
        "plan": None if s.plan is None else s.plan.model_dump(mode="json"),
        "local_plan": None if s.local_plan is None else s.local_plan.model_dump(mode="json"),
        "local_plan_note": LOCAL_PLAN_NOTE,
        "scores": [sc.model_dump(mode="json") for _, sc in sorted(s.scores.items())],
        "labs": [lab.model_dump(mode="json") for _, lab in sorted(s.labs.items())],
        # the guideline passages the labs' rules come from (unit conversion, corrected calcium, clearance...)
        "citations": {
            rid: CITATIONS[rid].model_dump(mode="json")
            for rid in sorted({r for lab in s.labs.values() for r in lab.rule_ids})
            if rid in CITATIONS
        },
        "override_reasons": [{"code": c, "display": d} for c, d in OVERRIDE_REASONS.items()],
    }


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
