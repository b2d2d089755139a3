"""MLLP listener (HL7 v2 over TCP, the transport hospital interface engines use), built on the `hl7`
package's asyncio MLLP streams. Each framed message goes through the same function as POST /hl7v2 and its
ACK is sent back framed; a connection carries any number of messages in turn. Started and stopped with the
HTTP app (its lifespan), so `python -m services.lab_normalisation` and `./osteocds up` run it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from hl7.mllp import InvalidBlockError, start_hl7_server

from services.lab_normalisation.common import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
Handler = Callable[[bytes], Awaitable[bytes]]


def serve_mllp(app: FastAPI, host: str, port: int, handle: Handler) -> None:
    """Run an MLLP server on host:port for the app's lifetime (after the service has started)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            server = await start_hl7_server(_client(handle), host, port, limit=MAX_MESSAGE_BYTES + 1024)
            log.info("MLLP listener started", extra={"port": port})
            try:
                yield
            finally:
                server.close()
                await server.wait_closed()

    app.router.lifespan_context = lifespan


def _client(handle: Handler) -> Callable[..., Awaitable[None]]:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    block = await reader.readblock()  # type: ignore[attr-defined]
                except asyncio.IncompleteReadError:
                    return  # the peer closed the connection
                except (InvalidBlockError, ValueError):
                    log.warning("MLLP: not a framed message, or too large; closing the connection")
                    return
                writer.writeblock(await handle(block))  # type: ignore[attr-defined]
                await writer.drain()
        except ConnectionError:
            return
        except Exception:  # e.g. the broker unreachable: no ACK, so the sender keeps the message and resends
            log.exception("MLLP: message not handled; connection closed without an ACK")
        finally:
            writer.close()

    return on_client
