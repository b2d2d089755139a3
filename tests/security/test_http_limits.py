"""Issue 13: request bodies are streamed with a limit (413 with a reason, before the whole body is read) and deep
JSON nesting is refused with 400 and a reason, never a 500 (lab-normalisation's POST /fhir and /hl7v2,
notification's POST /alerts/{id}/ack), through the real services."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from devstack.stack import RunningStack
from shared.settings import Settings
from shared.web.http_limits import json_depth

pytestmark = pytest.mark.e2e
LIMIT = Settings().http_max_body_bytes


async def test_a_declared_oversized_body_is_refused_before_it_is_read(stack: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.post(f"{stack.urls['lab-normalisation']}/fhir", content=b"{" + b" " * (LIMIT + 10) + b"}")
    assert r.status_code == 413 and "HTTP_MAX_BODY_BYTES" in r.json()["detail"]


async def test_a_streamed_body_is_cut_at_the_limit(stack: RunningStack) -> None:
    """A chunked upload without Content-Length, on a raw connection: the service answers 413 once the limit is
    passed, while the client still has most of a 50 MB body to send (it is never read whole)."""
    url = httpx.URL(stack.urls["lab-normalisation"])
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        f"POST /hl7v2 HTTP/1.1\r\nHost: {url.host}\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: x-application/hl7-v2+er7\r\n\r\n".encode()
    )
    response = asyncio.ensure_future(reader.read(4096))
    sent, chunk = 0, b"A" * 65_536
    try:
        while sent < 50 * 1_048_576 and not response.done():
            writer.write(b"10000\r\n" + chunk + b"\r\n")
            sent += len(chunk)
            await writer.drain()
            await asyncio.sleep(0)
        head = await asyncio.wait_for(response, timeout=10)
    except ConnectionError:  # the server closed after answering
        head = await asyncio.wait_for(response, timeout=10)
    try:
        while b"}" not in head:  # the JSON body after the headers
            more = await asyncio.wait_for(reader.read(4096), timeout=5)
            if not more:
                break
            head += more
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413") and b"HTTP_MAX_BODY_BYTES" in head
    assert sent < 10 * 1_048_576, sent


@pytest.mark.parametrize(
    ("service", "path"),
    [("lab-normalisation", "/fhir"), ("notification", "/alerts/x/ack"), ("lab-normalisation", "/hl7v2")],
)
async def test_deeply_nested_json_is_a_400_with_a_reason(stack: RunningStack, service: str, path: str) -> None:
    for depth in (100, 50_000):
        body = b"[" * depth + b"]" * depth
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.post(f"{stack.urls[service]}{path}", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "HTTP_MAX_JSON_DEPTH" in r.json()["detail"], (depth, r.text[:200])


@pytest.mark.serial  # timed (CPU): alone in `./osteocds test`
def test_json_depth_skips_strings_and_is_fast() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}], "c": "\\"]]"}') == 3
    assert json_depth(b"[]") == 1 and json_depth(b'"x"') == 0
    doc = b'{"entry": [' + b",".join(b'{"resource": {"a": [1, 2, {"b": "c"}]}}' for _ in range(20_000)) + b"]}"
    t0 = time.perf_counter()
    assert json_depth(doc) == 6
    assert time.perf_counter() - t0 < 1.0  # about 0.8 MB of dense JSON
