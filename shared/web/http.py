"""FastAPI app factory: every service gets /healthz, /readyz and /metrics, and runs its consumer loop
inside the app's lifespan. `run()` serves it with uvicorn; SIGTERM drains, commits and stops.

Every route but /healthz and /readyz needs a bearer token with a role (shared/web/auth.py): /metrics needs
`ops`; a service whose routes are not all protected does not start. /docs and /openapi.json are open
(no patient data; they declare the bearer scheme) unless AUTH_PUBLIC_DOCS=false, which turns them off."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.lifecycle import AuditEvent
from shared.observability.logging import configure_logging
from shared.observability.tracing import instrument_app
from shared.runtime.kafka import Producer
from shared.runtime.rebuild import RebuildReport, rebuild
from shared.runtime.service import Service
from shared.runtime.state import StateLost
from shared.settings import Settings
from shared.web import http_limits
from shared.web.auth import OPS, AuthSettings, install, require, unguarded_routes


async def _rebuild(service: Service) -> RebuildReport:
    """The operator's rebuild: replaces the state and epoch whatever Redis holds (a running instance then sees
    another epoch and adopts it), and publishes the outputs missing from the topics."""
    await service.producer.start()
    try:
        return await rebuild(service, await service.store.read_epoch())
    finally:
        await service.producer.stop()
        await service.redis.aclose()


def create_app(
    service: Service,
    routers: Sequence[APIRouter] = (),
    title: str | None = None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    auth = auth or AuthSettings()
    # One message per request (an audit record, a clinician's action), awaited before answering: a producer
    # that does not linger (the consumer loop's producer batches for up to KAFKA_LINGER_MS).
    requests = Producer(service.settings.model_copy(update={"kafka_linger_ms": 0}))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        await requests.start()
        try:
            yield
        finally:
            await requests.stop()
            await service.stop()

    docs = {} if auth.auth_public_docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title=title or f"OsteoCDS {service.name}", lifespan=lifespan, **docs)  # type: ignore[arg-type]
    app.state.service = service
    app.state.request_producer = requests

    async def audit_sink(event: AuditEvent) -> None:
        await (await requests.send(event))

    install(app, service.name, audit_sink, auth)
    http_limits.install(app, service.settings)  # bodies streamed with a limit (413), deep JSON refused (400)

    @app.exception_handler(StateLost)
    async def state_lost(_: Request, __: StateLost) -> JSONResponse:
        # the service is rebuilding its state: nothing is read from or written to a half-empty cache
        return JSONResponse({"detail": "state is being rebuilt; retry shortly"}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        ok = service.healthy
        return JSONResponse(
            {"status": "ok" if ok else "failed", "service": service.name}, status_code=200 if ok else 503
        )

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks = await service.readiness()
        ok = all(checks.values())
        body: dict[str, object] = {"ready": ok, "checks": checks}
        if not ok:  # why (HAZ-25-HEAL-01): the failing checks' reasons, no patient data
            body["reasons"] = service.not_ready_reasons(checks)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], dependencies=[require(OPS)])
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    if unprotected := unguarded_routes(app):
        raise RuntimeError(f"routes without a role requirement: {', '.join(unprotected)}")
    instrument_app(app, service.tracing)  # issue 14: server spans when tracing is on (no URL path/query kept)
    return app


SettingsT = TypeVar("SettingsT", bound=Settings)


def run(settings: SettingsT, build: Callable[[SettingsT], tuple[Service, FastAPI]]) -> None:
    """Entry point of `python -m services.<name>` (serve) and `python -m services.<name> rebuild`."""
    configure_logging(settings.service_name, settings.log_level)
    service, app = build(settings)
    if sys.argv[1:] == ["rebuild"]:
        report = asyncio.run(_rebuild(service))
        print(json.dumps(dataclasses.asdict(report)))
        return
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            lifespan="on",
        )
    )

    def fatal(_: BaseException) -> None:
        server.should_exit = True  # exit non-zero so the orchestrator restarts us; nothing was committed

    service.on_fatal = fatal
    asyncio.run(server.serve())
    sys.exit(1 if service.fatal is not None else 0)
