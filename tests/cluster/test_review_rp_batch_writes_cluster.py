"""Review RP (issue 25, commit 83befdf) on a Redis Cluster: a batch over every slot group, one of them holding a
single patient, writes each group's states and outboxes in one EVAL whose keys all sit in the group's slot (no
CROSSSLOT), with the state TTL, and its timers in that group's set. Runs in the Redis Cluster tier (`python -m
tests.cluster`, OSTEOCDS_REDIS=cluster); skipped on one Redis, where tests/test_review_rp_batch_writes.py covers the
same writes. HAZ-25-RUNTIME-01."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from contracts.topics import clock_topic
from shared.runtime.state import BUCKETS, StateStore, bucket_of
from shared.runtime.timers import Timers
from shared.settings import Settings
from shared.transport import redis_client

pytestmark = pytest.mark.skipif(
    os.environ.get("OSTEOCDS_REDIS") != "cluster", reason="Redis Cluster tier: python -m tests.cluster <this file>"
)


class Tally(BaseModel):
    n: int = 0


async def test_a_batch_over_every_slot_group_writes_each_in_its_slot_with_its_ttl(redis_url: str) -> None:
    r = redis_client(Settings(redis_url=redis_url))
    assert isinstance(r, RedisCluster)
    name = f"rp-{uuid.uuid4().hex[:8]}"
    store = StateStore(r, name, 60, state_ttl_seconds=3600)
    timers = Timers(r, name, clock_topic("rp"), Settings(), lambda: datetime.now(UTC))
    # 20 patients in every bucket but one, which gets a single patient
    patients: list[str] = []
    counts = dict.fromkeys(range(BUCKETS), 0)
    i = 0
    while any(c < (1 if b == 0 else 20) for b, c in counts.items()):
        p, i = f"p{i}", i + 1
        b = bucket_of(p)
        if counts[b] < (1 if b == 0 else 20):
            counts[b] += 1
            patients.append(p)
    due = datetime(2030, 1, 1, tzinfo=UTC)

    def fn(states: dict[str, Tally | None], boxes: dict[str, bytes | None]) -> Any:
        return {p: Tally(n=(s.n if s else 0) + 1) for p, s in states.items()}, {p: p.encode() for p in states}, 1

    def also(pipe: Any, ps: list[str]) -> None:
        timers.write(pipe, {p: due + timedelta(seconds=k) for k, p in enumerate(ps)})

    try:
        assert await store.transact_many(patients, Tally, fn, also=also, merge=sum) == BUCKETS
        for p in patients:
            keys = [store.patient_key(p), store.patient_key(p, "outbox"), timers.key_of(p)]
            assert len({key_slot(k.encode()) for k in keys}) == 1  # one slot per group's EVAL
            assert await store.load(p, Tally) == Tally(n=1)
            assert await r.get(keys[1]) == p.encode()
            assert 3590 <= await r.ttl(keys[0]) <= 3600 and 3590 <= await r.ttl(keys[1]) <= 3600
            assert await timers.due_at(p) is not None
        lone = next(p for p in patients if bucket_of(p) == 0)
        assert await r.zcard(timers.key_of(lone)) == 1
        # a second batch: every deadline of the lone group removed, the others kept
        due_none: dict[str, datetime | None] = {lone: None}

        def also_again(pipe: Any, ps: list[str]) -> None:
            timers.write(pipe, {p: due_none.get(p, due) for p in ps})

        await store.transact_many(patients, Tally, fn, also=also_again, merge=sum)
        assert await timers.due_at(lone) is None and await store.load(lone, Tally) == Tally(n=2)
    finally:
        await store.aclose()
        await r.aclose()
