"""Issue 22 (noticed at stop 19): the clinicians' live page (server-sent events, services/notification/web.py) read
the patient's Redis key directly, bypassing the state store's guard: after Redis lost its data the open page was
sent a view with no alerts ("nothing to do") until the rebuild. Now the stream reads through the guard: it sends
`unavailable` and ends, a new stream answers 503 until the state is rebuilt, then the alert is shown again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from contracts.topics import LAB_RESULTS
from devstack.stack import RunningStack
from tests.conftest import Publish, alerts, auth, lab, wait_for

pytestmark = pytest.mark.e2e


async def _events(response: httpx.Response) -> Any:
    """(event, data) of a server-sent event stream, as they come."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            lines = block.split("\n")
            event = next((line[7:] for line in lines if line.startswith("event: ")), None)
            data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
            if event is not None:
                yield event, json.loads(data or "{}")


def _crisis_rules(view: dict[str, Any]) -> list[str]:
    return [a["rule_id"] for a in view["alerts"] if a["rule_id"] == "LAB-CA-CRISIS"]


async def test_the_live_page_never_shows_a_lost_state_as_a_patient_without_alerts(
    stack: RunningStack, publish: Publish, patient_id: str
) -> None:
    drawn = datetime.now(UTC) - timedelta(hours=1)
    await publish(LAB_RESULTS.name, lab(patient_id, "2000-8", 3.30, "mmol/L", occurred_at=drawn))
    await publish(LAB_RESULTS.name, lab(patient_id, "1751-7", 28, "g/L", occurred_at=drawn))
    await wait_for(lambda: _has_crisis(stack, patient_id), timeout=20)
    url = f"{stack.urls['notification']}/patients/{patient_id}/events"
    seen: list[str] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=60), headers=auth()) as c:
        async with c.stream("GET", url) as r:
            assert r.status_code == 200
            events = _events(r)
            event, view = await anext(events)
            assert event == "view" and _crisis_rules(view) == ["LAB-CA-CRISIS"]
            redis = aioredis.Redis.from_url(stack.env["REDIS_URL"])
            await redis.flushdb()
            await redis.aclose()
            # until the stream ends: never a view without the crisis alert
            async for event, view in events:
                seen.append(event)
                if event == "view":
                    assert _crisis_rules(view) == ["LAB-CA-CRISIS"], "a lost state shown as a patient without alerts"
        # a new stream: 503 while the state is being rebuilt, then the alert again
        statuses: list[int] = []
        for _ in range(300):
            async with c.stream("GET", url) as r:
                statuses.append(r.status_code)
                if r.status_code == 200:
                    event, view = await anext(_events(r))
                    assert event == "view" and _crisis_rules(view) == ["LAB-CA-CRISIS"]
                    break
                assert r.status_code == 503
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the live page did not come back after the rebuild: {statuses[-5:]}")
    # the open stream noticed the loss (it ends with `unavailable`) unless the rebuild beat its next poll
    assert seen in ([], ["unavailable"]) or seen[-1] == "unavailable", seen
    print("LIVE-PAGE", json.dumps({"stream": seen, "statuses": statuses[:3] + statuses[-1:]}))


async def _has_crisis(stack: RunningStack, patient_id: str) -> bool:
    return any(a["rule_id"] == "LAB-CA-CRISIS" for a in await alerts(stack, patient_id))
