"""Issue 25: the HTTP and MLLP admission counts in Redis, and the refusal metric (see admission.py)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from services.lab_normalisation.admission import Budget, Path, Scope

log = logging.getLogger(__name__)


class BudgetMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.refused = Counter(
            "osteocds_intake_budget_refused_total",
            "Messages refused at intake because a patient's or a source's admission budget was spent",
            ["service", "path", "scope"],
            registry=registry,
        )
        for path in ("http", "mllp", "kafka"):
            for scope in ("patient", "source"):
                if not (path == "kafka" and scope == "source"):
                    self.refused.labels(service, path, scope)

    def count(self, path: Path, scope: Scope) -> None:
        self.refused.labels(self.service, path, scope).inc()
        log.warning("intake admission budget exceeded; message refused", extra={"reason_code": f"budget_{scope}"})


# KEYS[1] the count; ARGV: the size admitted, the key's lifetime (ms). Returns the count after.
_TAKE = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) redis.call('PEXPIRE', KEYS[1], ARGV[2]) return n"


#: issue 25: how long the check before parsing waits for Redis (a shortcut only: `take` decides after the parse)
SPENT_WAIT_S = 0.1


class IntakeBudget:
    """The HTTP and MLLP counts, in Redis (one key per scope, holder and window; it expires after two windows)."""

    def __init__(self, redis: Redis | RedisCluster, service: str, budget: Budget, metrics: BudgetMetrics) -> None:
        self.redis = redis
        self.prefix = f"osteocds:{service}:intake"  # the service's key prefix: its Redis ACL user may write it
        self.budget = budget
        self.metrics = metrics

    def limit(self, scope: Scope) -> int:
        return self.budget.per_patient if scope == "patient" else self.budget.per_source

    def _key(self, scope: Scope, who: str, at_ms: int) -> str:
        return f"{self.prefix}:{scope}:{who}:{self.budget.window(at_ms)}"

    async def take(self, path: Path, scope: Scope, who: str, size: int, at_ms: int) -> str | None:
        """Admit `size` results for `who`: None when admitted, else the refusal's reason (counted)."""
        limit = self.limit(scope)
        if limit <= 0:
            return None
        key = self._key(scope, who, at_ms)
        try:
            # one key, one atomic step (a script: on a Redis Cluster too, without a cluster transaction)
            after = await self.redis.eval(_TAKE, 1, key, size, 2 * self.budget.window_ms)
            before = int(after) - size
            if before < limit:
                return None
            await self.redis.decrby(key, size)  # refused: not counted
        except (RedisError, OSError) as exc:
            log.warning("intake budget not checked (Redis); message admitted", extra={"error_type": type(exc).__name__})
            return None
        self.metrics.count(path, scope)
        return self.budget.reason(scope, before, limit, at_ms)

    async def spent(self, path: Path, scope: Scope, who: str, at_ms: int) -> str | None:
        """Issue 25: the refusal's reason (counted) when `who`'s budget is already spent in this window, without
        taking anything: a flooding sender's message is refused before it is parsed. None otherwise (and when
        Redis does not answer: `take` decides after the parse)."""
        limit = self.limit(scope)
        if limit <= 0:
            return None
        try:  # bounded well below the socket timeout: `take` waits for Redis after the parse anyway (review R27C)
            got = await asyncio.wait_for(self.redis.get(self._key(scope, who, at_ms)), SPENT_WAIT_S)
        except (RedisError, OSError, TimeoutError):
            return None
        before = int(got or 0)
        if before < limit:
            return None
        self.metrics.count(path, scope)
        return self.budget.reason(scope, before, limit, at_ms)

    async def give_back(self, scope: Scope, who: str, size: int, at_ms: int) -> None:
        """A message admitted here but not published (refused later, or nothing in it used) does not count."""
        if self.limit(scope) <= 0:
            return
        try:
            await self.redis.decrby(self._key(scope, who, at_ms), size)
        except (RedisError, OSError):
            return
