"""Issue 13, the proof in short form (CI): mixed patient events while every service is SIGKILLed twice and
Redis is flushed once; the final alerts equal a fault-free run's. The long form is `./osteocds chaos`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.harness import chaos

pytestmark = pytest.mark.e2e


async def test_kills_and_a_redis_flush_lose_duplicate_or_falsify_no_alert(tmp_path: Path) -> None:
    summary = await chaos(events_n=1200, rate=120.0, kills=2, flush=True, workdir=tmp_path)
    assert summary["kills"] == 10 and summary["redis_flushes"] == 1
    assert summary["critical_alerts"] > 20, summary
    assert summary["state_lost_logged"] + summary["state_rebuilt_logged"] > 0, summary
    assert (summary["lost"], summary["duplicated"], summary["wrong"]) == (0, 0, 0), summary
