"""HTTP request limits, before any endpoint runs: the body is read as a stream and refused with 413 as soon as it
passes `http_max_body_bytes` (a declared Content-Length above the limit is refused before reading); a JSON body
nested deeper than `http_max_json_depth` is refused with 400 (a reason in both), never a 500 from the parser's
recursion. The body is then handed to the endpoint unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """The nesting depth of a JSON text (strings skipped), without parsing it."""
    brackets = _STRINGS.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in (0x5B, 0x7B) else -1
        deepest = max(deepest, depth)
    return deepest


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length", b"")
        too_large = f"request body exceeds HTTP_MAX_BODY_BYTES={self.max_bytes}"
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(scope, send, 413, too_large)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.max_bytes:  # stop reading: the rest is never held in memory
                await _refuse(scope, send, 413, too_large)
                return
        if bytes(body.lstrip()[:1]) in (b"{", b"[") and json_depth(bytes(body)) > self.max_depth:
            await _refuse(scope, send, 400, f"JSON nested deeper than HTTP_MAX_JSON_DEPTH={self.max_depth}")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http_max_body_bytes,
        max_depth=settings.http_max_json_depth,
    )

    async def too_deep(request: Request, exc: Exception) -> JSONResponse:  # a parser's recursion: the input's fault
        return JSONResponse({"detail": "input nested too deeply to parse"}, status_code=400)

    app.add_exception_handler(RecursionError, too_deep)
