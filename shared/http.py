"""FastAPI app factory: every service gets /healthz, /readyz and /metrics, and runs its consumer loop
inside the app's lifespan. `run()` serves it with uvicorn; SIGTERM drains, commits and stops."""

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

from shared.logging import configure_logging
from shared.rebuild import RebuildReport, rebuild
from shared.service import Service
from shared.settings import Settings
from shared.state import StateLost


async def _rebuild(service: Service) -> RebuildReport:
    """The operator's rebuild: replaces the state and epoch whatever Redis holds (a running instance then sees
    another epoch and adopts it), and publishes the outputs missing from the topics."""
    await service.producer.start()
    try:
        return await rebuild(service, await service.store.read_epoch())
    finally:
        await service.producer.stop()
        await service.redis.aclose()


def create_app(service: Service, routers: Sequence[APIRouter] = (), title: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title=title or f"OsteoCDS {service.name}", lifespan=lifespan)
    app.state.service = service

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
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
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
