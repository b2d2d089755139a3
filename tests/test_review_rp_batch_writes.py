"""Review RP (issue 25, commit 83befdf): a slot group's state and outbox writes go in one EVAL inside its MULTI, the
timers in one ZREM/ZADD per key. On a real redis-server: every key keeps the expiry it had with one SET ... EX each,
nothing of a transaction is applied when it aborts (a concurrent writer, OOM), and sizes do not break the script.
HAZ-25-RUNTIME-01 (docs/hazard-log.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import ResponseError

from contracts.topics import clock_topic
from devstack import infra
from shared.runtime import state
from shared.runtime import timers as timers_module
from shared.runtime.state import MAX_TTL_S, StateStore
from shared.runtime.timers import Timers
from shared.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "redis-users.acl.template"


class Tally(BaseModel):
    n: int = 0
    note: str = ""


Fn = Callable[
    [dict[str, Tally | None], dict[str, bytes | None]],
    tuple[dict[str, Tally | bytes | tuple[Tally, bytes]], dict[str, bytes], int],
]


def bump(outbox: Callable[[str, int], bytes] | None = None, note: str = "") -> Fn:
    """Each patient's tally + 1; its outbox `outbox(patient, n)` (none if None)."""

    def fn(
        states: dict[str, Tally | None], boxes: dict[str, bytes | None]
    ) -> tuple[dict[str, Tally | bytes | tuple[Tally, bytes]], dict[str, bytes], int]:
        new: dict[str, Tally | bytes | tuple[Tally, bytes]] = {}
        out: dict[str, bytes] = {}
        for p, s in states.items():
            after = Tally(n=(s.n if s else 0) + 1, note=note)
            new[p] = after
            if outbox is not None:
                out[p] = outbox(p, after.n)
        return new, out, len(states)

    return fn


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A redis-server of this test alone (its maxmemory is changed)."""
    with infra.local_redis() as url:
        yield url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


def timers_of(r: aioredis.Redis, store: StateStore) -> Timers:
    return Timers(r, store.ns.removeprefix("osteocds:"), clock_topic("rp"), Settings(), lambda: datetime.now(UTC))


def ns() -> str:
    return f"rp-{uuid.uuid4().hex[:8]}"


async def test_every_state_and_outbox_gets_the_state_ttl_and_no_ttl_clears_an_old_one(
    client: aioredis.Redis,
) -> None:
    ttl = 5000
    store = StateStore(client, ns(), 60, state_ttl_seconds=ttl)
    patients = [f"p{i}" for i in range(30)]
    # an older key with a short expiry: the write gives it the state TTL again, as SET ... EX did
    await client.set(store.patient_key("p0"), Tally(n=7).model_dump_json(), ex=30)
    await client.set(store.patient_key("p1", "outbox"), b"old", ex=30)
    await store.transact_many(patients, Tally, bump(lambda p, n: f"{p}:{n}".encode()))
    for p in patients:
        for kind in ("state", "outbox"):
            left = await client.ttl(store.patient_key(p, kind))
            assert ttl - 5 <= left <= ttl, (p, kind, left)
    assert await store.load("p0", Tally) == Tally(n=8)
    assert await client.get(store.patient_key("p1", "outbox")) == b"p1:1"

    # a store without TTL (0): written keys never expire, an expiry they had is dropped (SET without EX)
    plain = StateStore(client, store.ns.removeprefix("osteocds:"), 60, state_ttl_seconds=0)
    await plain.transact_many(patients[:3], Tally, bump(lambda p, n: b"x"))
    for p in patients[:3]:
        assert await client.ttl(plain.patient_key(p)) == -1
        assert await client.ttl(plain.patient_key(p, "outbox")) == -1
    # a patient whose state does not change is not written: its expiry is left alone
    await client.expire(plain.patient_key("p0"), 100)

    def same(states: dict[str, Tally | None], boxes: dict[str, bytes | None]) -> Any:
        return {p: s for p, s in states.items() if s is not None}, {}, 0

    await plain.transact_many(["p0"], Tally, same)
    assert 0 < await client.ttl(plain.patient_key("p0")) <= 100


@pytest.mark.parametrize("ttl", [-1, MAX_TTL_S + 1, 2**62])
def test_a_ttl_redis_would_refuse_or_never_apply_is_refused_up_front(redis_url: str, ttl: int) -> None:
    """A negative TTL would silently never expire (the script drops it); one Redis refuses would fail the batch's
    SETs inside EXEC, which applies its counter and timers anyway (see the next test)."""
    r = aioredis.Redis.from_url(redis_url)
    with pytest.raises(ValueError):
        StateStore(r, ns(), 60, state_ttl_seconds=ttl)
    assert StateStore(r, ns(), 60, state_ttl_seconds=MAX_TTL_S).state_ttl == MAX_TTL_S


async def test_a_script_that_fails_inside_exec_does_not_abort_the_rest_of_the_transaction(
    client: aioredis.Redis,
) -> None:
    """Why nothing in the batch script may fail once queued: Redis runs the other commands of the EXEC anyway (here
    the counter's INCR), so a failing script means a counter and timers written without the states."""
    key = f"osteocds:{ns()}:seq"
    async with client.pipeline(transaction=True) as pipe:
        pipe.eval("return redis.call('SET', KEYS[1], 'v', 'EX', -1)", 1, f"{key}:state")
        pipe.incr(key)
        with pytest.raises(ResponseError, match="invalid expire"):
            await pipe.execute()
    assert await client.get(key) == b"1" and await client.exists(f"{key}:state") == 0


@pytest.mark.parametrize("script", ["_SET_MANY", "_FINISH", "_CLAIM", "_EXTEND"])
async def test_the_runtime_scripts_compile_as_redis_before_7_compiles_them(client: aioredis.Redis, script: str) -> None:
    """Redis < 7 (a developer's distribution Redis that `./osteocds up` reuses on port 6379, e.g. Debian 12's 7.0
    but Ubuntu 22.04's 6.0) compiles an EVAL body as `function f_<sha>() <body>\nend`, so a Redis 7 `#!lua`
    shebang fails there, at EXEC, after the rest of the transaction (test above). Compiled here by Redis's own Lua."""
    body = {"_SET_MANY": state._SET_MANY, "_FINISH": state._FINISH, "_CLAIM": timers_module._CLAIM}.get(
        script, timers_module._EXTEND
    )
    check = "local f, err = loadstring('function f_x() ' .. ARGV[1] .. '\\nend') if f then return 'ok' end return err"
    assert await client.eval(check, 0, body) == b"ok"


async def test_binary_empty_large_and_many_values_are_written_exactly(client: aioredis.Redis) -> None:
    store = StateStore(client, ns(), 60, state_ttl_seconds=3600)
    binary = bytes(range(256)) * 3 + b"\xff\xfe\x00"  # not UTF-8, with NULs

    def raw(states: dict[str, Tally | None], boxes: dict[str, bytes | None]) -> Any:
        big = Tally(n=1, note="é" * (1024 * 1024))  # ~2 MB of JSON (MAX_STATE_BYTES order)
        return {"big": big, "bin": binary, "empty": b""}, {"big": b"", "bin": binary}, 0

    await store.transact_many(["big", "bin", "empty"], Tally, raw)
    assert await client.get(store.patient_key("bin")) == binary
    assert await client.get(store.patient_key("bin", "outbox")) == binary
    assert await client.get(store.patient_key("empty")) == b""
    assert await client.get(store.patient_key("big", "outbox")) == b""
    big = await client.get(store.patient_key("big"))
    assert isinstance(big, bytes)
    assert len(big) > 2 * 1024 * 1024 and Tally.model_validate_json(big).note == "é" * (1024 * 1024)

    # thousands of patients in one slot group: 2 x 6 000 keys in one EVAL (no Lua unpack/stack limit)
    many = [f"m{i}" for i in range(6000)]
    assert await store.transact_many(many, Tally, bump(lambda p, n: p.encode())) == len(many)
    values = await client.mget([store.patient_key(p) for p in many] + [store.patient_key(p, "outbox") for p in many])
    assert values[: len(many)] == [Tally(n=1).model_dump_json().encode()] * len(many)
    assert values[len(many) :] == [p.encode() for p in many]
    assert 3590 <= await client.ttl(store.patient_key(many[-1], "outbox")) <= 3600


async def test_a_concurrent_writer_aborts_states_outboxes_timers_and_counter_together(
    client: aioredis.Redis, redis_url: str
) -> None:
    store = StateStore(client, ns(), 60, state_ttl_seconds=3600)
    timers = timers_of(client, store)
    sync = redis.Redis.from_url(redis_url)
    calls = 0
    due = datetime(2030, 1, 1, tzinfo=UTC)

    def fn(states: dict[str, Tally | None], boxes: dict[str, bytes | None]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer changes a watched key between the read and EXEC
            sync.set(store.patient_key("b"), Tally(n=100).model_dump_json())
        return bump(lambda p, n: f"try{calls}".encode(), note=f"try{calls}")(states, boxes)

    def also(pipe: Any, patients: list[str]) -> None:
        timers.write(pipe, {p: due + timedelta(days=calls) for p in patients})

    await store.transact_many(["a", "b"], Tally, fn, also=also)
    assert calls == 2
    assert await store.load("a", Tally) == Tally(n=1, note="try2")
    assert await store.load("b", Tally) == Tally(n=101, note="try2")
    assert await client.mget(store.patient_key("a", "outbox"), store.patient_key("b", "outbox")) == [b"try2"] * 2
    assert await timers.due_at("a") == due + timedelta(days=2)
    assert int(await client.get(store.group_seq_key("")) or 0) == 1  # one transaction applied, not two
    sync.close()


async def test_out_of_memory_aborts_the_whole_transaction_and_is_raised(own_redis: str) -> None:
    r = aioredis.Redis.from_url(own_redis)
    store = StateStore(r, ns(), 60, state_ttl_seconds=3600)
    timers = timers_of(r, store)
    due = datetime(2030, 1, 1, tzinfo=UTC)

    def also(pipe: Any, patients: list[str]) -> None:
        timers.write(pipe, dict.fromkeys(patients, due))

    try:
        await store.transact_many(["a", "b"], Tally, bump(lambda p, n: b"box"), also=also)
        before = await r.mget(store.patient_key("a"), store.patient_key("b"), store.group_seq_key(""))
        for policy in ("noeviction", "volatile-lru"):  # the compose setting; an eviction policy (evicts what it can)
            await r.config_set("maxmemory-policy", policy)
            await r.config_set("maxmemory", 1)  # every write is refused
            with pytest.raises(ResponseError, match="maxmemory"):
                await store.transact_many(["a", "b", "c"], Tally, bump(lambda p, n: b"new"), also=also)
            await r.config_set("maxmemory", 0)
            if policy == "noeviction":
                assert await r.mget(store.patient_key("a"), store.patient_key("b"), store.group_seq_key("")) == before
                assert await r.get(store.patient_key("a", "outbox")) == b"box"
            assert await r.exists(store.patient_key("c"), store.patient_key("c", "outbox")) == 0
            assert await r.get(store.patient_key("a", "outbox")) != b"new"
            assert await timers.due_at("c") is None
        # memory back: the same batch goes through
        await store.transact_many(["a", "b", "c"], Tally, bump(lambda p, n: b"new"), also=also)
        assert await store.load("c", Tally) == Tally(n=1) and await timers.due_at("c") == due
        # a limit just above what Redis holds, crossed by the batch itself (3 states of ~1 MB): all or nothing
        await r.config_set("maxmemory-policy", "noeviction")
        await r.config_set("maxmemory", int((await r.info("memory"))["used_memory"]) + 64 * 1024)
        fat = ["f1", "f2", "f3"]
        try:
            await store.transact_many(fat, Tally, bump(lambda p, n: b"x" * 1024 * 1024), also=also)
            applied = True
        except ResponseError as exc:
            assert "maxmemory" in str(exc)
            applied = False
        await r.config_set("maxmemory", 0)
        keys = [store.patient_key(p, k) for p in fat for k in ("state", "outbox")]
        assert await r.exists(*keys) == (len(keys) if applied else 0)
        assert [await timers.due_at(p) for p in fat] == [due if applied else None] * 3
    finally:
        await r.aclose()


async def test_timers_of_a_batch_add_move_and_remove_in_one_write(client: aioredis.Redis) -> None:
    store = StateStore(client, ns(), 60)
    timers = timers_of(client, store)
    due = datetime(2030, 1, 1, tzinfo=UTC)
    patients = [f"t{i}" for i in range(5000)]
    plan: dict[str, datetime | None] = {p: due + timedelta(seconds=i) for i, p in enumerate(patients)}

    def also(pipe: Any, ps: list[str]) -> None:
        timers.write(pipe, {p: plan[p] for p in ps})

    await store.transact_many(patients, Tally, bump(), also=also)
    assert await client.zcard(timers.key) == len(patients)
    # half lose their deadline, the others move
    plan = {p: None if i % 2 else due + timedelta(days=1, seconds=i) for i, p in enumerate(patients)}
    await store.transact_many(patients, Tally, bump(), also=also)
    assert await client.zcard(timers.key) == len(patients) // 2
    assert await timers.due_at("t0") == due + timedelta(days=1)
    assert await timers.due_at("t1") is None
    assert await timers.due_at("t4998") == due + timedelta(days=1, seconds=4998)


async def test_a_service_acl_user_may_run_the_batch_write(client: aioredis.Redis, redis_url: str) -> None:
    """The rights deploy/redis-users.acl.template gives a service (its rules as written there) are enough."""
    name = ns()
    user, password = f"u-{name}", uuid.uuid4().hex
    line = next(x for x in TEMPLATE.read_text().splitlines() if x.startswith("user lab-normalisation "))
    rules = [t.replace("osteocds:lab-normalisation:", f"osteocds:{name}:") for t in line.split()[4:]]
    assert f"~osteocds:{name}:*" in rules and "+@scripting" in rules
    await client.acl_setuser(user, enabled=True, passwords=[f"+{password}"], reset_keys=True, reset_channels=True)
    await client.execute_command("ACL", "SETUSER", user, *rules)  # type: ignore[no-untyped-call]
    r = aioredis.Redis.from_url(redis_url, username=user, password=password)
    try:
        store = StateStore(r, name, 60, state_ttl_seconds=3600)
        await store.transact_many(["a", "b"], Tally, bump(lambda p, n: b"box"))
        assert await store.load("b", Tally) == Tally(n=1)
        assert await client.get(store.patient_key("a", "outbox")) == b"box"
    finally:
        await r.aclose()
        await client.acl_deluser(user)
