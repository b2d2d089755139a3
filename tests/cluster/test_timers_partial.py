"""Issue 22 (review R1): the clock on a Redis Cluster claims due deadlines group by group (one script per slot group,
shared/runtime/timers.py). A group whose claim fails (its master unreachable, a failover not done yet; with
`cluster-require-full-coverage no` the other masters keep serving) must not stop the other groups' deadlines from
firing: before, the first failure failed the whole poll after the other groups' deadlines had been claimed (leased),
so no tick was sent for any of them, poll after poll, for as long as that one master was out."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from contracts.topics import TOPICS
from devstack.redis_cluster import RedisCluster
from shared.runtime.state import Layout
from shared.runtime.timers import Timers
from shared.settings import Settings
from shared.transport import redis_client


async def test_one_slot_groups_failed_claim_does_not_hold_back_the_others_deadlines(
    redis_cluster: RedisCluster,
) -> None:
    svc = "scoring"
    layout = Layout(f"osteocds:{svc}", cluster=True)
    out_of_reach = layout.groups[0]
    # a user that reaches every group's keys but one: that group's claim fails as an unreachable master's would
    reachable = [f"~osteocds:{svc}:{g}*" for g in layout.groups if g != out_of_reach]
    password = secrets.token_urlsafe(16)
    for node in redis_cluster.nodes:
        rules = ["reset", "on", f">{password}", *reachable, "+@all"]
        assert redis_cluster.cli(node, "ACL", "SETUSER", "clock-probe", *rules).strip() == "OK"
    admin = redis_client(Settings(redis_url=redis_cluster.cluster_url))
    settings = Settings(
        service_name=svc,
        redis_url=redis_cluster.cluster_url,
        redis_username="clock-probe",
        redis_password=SecretStr(password),
    )
    r = redis_client(settings)
    now = datetime.now(UTC)
    topic = next(t for t in TOPICS if t.name == f"osteocds.clock.{svc}.v1")
    try:
        writer = Timers(admin, svc, topic, settings, lambda: now)
        patients = [f"pt-clock-{i}" for i in range(200)]
        for p in patients:
            await writer.schedule(p, now - timedelta(seconds=1))
        blocked = {p for p in patients if layout.group(p) == out_of_reach}
        assert blocked and len(blocked) < len(patients)
        timers = Timers(r, svc, topic, settings.model_copy(update={"timer_batch": 1000}), lambda: now)
        claimed = {p for p, _ in await timers.claim(now)}
        assert claimed == set(patients) - blocked
    finally:
        await r.aclose()
        await admin.aclose()
