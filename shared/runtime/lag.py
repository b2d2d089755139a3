"""`python -m shared.runtime.lag`: the lag exporter (issue 14). Serves on /metrics the consumer lag and the oldest
unprocessed record's age of every service's consumer group, read from the broker, so a stopped or stuck service
still shows its growing lag (a service's own /metrics shows it only while it runs). Stateless, no Redis;
one replica is enough. /healthz and /readyz like the services; /metrics needs a token with the `ops` role."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from contracts.lifecycle import AuditEvent
from contracts.topics import SERVICES, TOPICS
from shared.observability.lag import LagGauges, LagMonitor
from shared.observability.logging import configure_logging
from shared.settings import Settings
from shared.web.auth import OPS, AuthSettings, install, require, unguarded_routes

NAME = "lag-exporter"


def consumer_groups() -> dict[str, list[str]]:
    """Each service's consumer group (its name) and the topics it consumes, from the topic registry."""
    groups: dict[str, list[str]] = {name: [] for name in SERVICES}
    for topic in TOPICS:
        for consumer in topic.consumers:
            if consumer in groups:
                groups[consumer].append(topic.name)
    return groups


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()
    monitor = LagMonitor(settings, consumer_groups(), LagGauges(registry))
    state: dict[str, bool] = {"sampled": False}
    stopping = asyncio.Event()

    async def sampled() -> None:
        state["sampled"] = True

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await monitor.start()
        task = asyncio.create_task(monitor.run(stopping, settings.lag_interval_s, sampled))
        try:
            yield
        finally:
            stopping.set()
            await task
            await monitor.stop()

    app = FastAPI(title="OsteoCDS lag exporter", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    async def no_audit(event: AuditEvent) -> None:  # no route here reads patient data
        raise RuntimeError("the lag exporter audits nothing")

    install(app, NAME, no_audit, AuthSettings())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "service": NAME})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        return JSONResponse({"ready": state["sampled"]}, status_code=200 if state["sampled"] else 503)

    @app.get("/metrics", dependencies=[require(OPS)])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if unprotected := unguarded_routes(app):
        raise RuntimeError(f"routes without a role requirement: {', '.join(unprotected)}")
    return app


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m shared.runtime.lag",
        description="Consumer-lag exporter: serves /metrics (ops role) with every consumer group's lag and the age "
        "of its oldest waiting record, sampled every LAG_INTERVAL_S (settings: KAFKA_BOOTSTRAP_SERVERS, HTTP_PORT, "
        "OIDC_*).",
    ).parse_args()
    settings = Settings(service_name=NAME)
    configure_logging(NAME, settings.log_level)
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
