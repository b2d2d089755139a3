"""Rebuild a service's Redis state from the Kafka topics: Redis is a cache, the topics are the record.

The running service calls it by itself when its state is lost (shared/runtime/healing.py); an operator may also run
`python -m services.<name> rebuild`. Steps:

1. Replay: read every topic the patient aggregate subscribes to, from the beginning to its end now (at most
   `in_flight_bound` records past a partition's committed offset; nothing for a group that never committed), and
   apply the events with the same pure code, each patient's in publication order. This gives each patient's
   aggregate, its next deadline, the processed event IDs, and every output the service should have published. Past
   the group's committed offsets (HAZ-25-CHAOS-01): a record past a partition's committed offset may have been
   applied live and its outputs acted on downstream (a batch not yet committed; a partition whose commit waits for
   an earlier record held back by the fair backlog). A state rebuilt without it, then given it again in another
   order across topics, issued an intermediate wording (a Mirels score without the pain) that withdrew the
   critical alert downstream, and the final wording came back with the identity of its first delivery: dropped as
   a duplicate, the alert was lost. Every event replayed is marked processed (its redelivery is skipped); one past
   the committed offset that the pure code rejects is dead-lettered by the rebuild in step 2 (review RY: left to the
   live loop, a restore from the changelog this replay seeds marked it processed, and it was never dead-lettered).
   The pure code runs in a worker thread (as the live loop's), each event bounded as the live loop bounds an event
   delivered alone: MAX_STATE_BYTES too (review RY).
2. Difference: read the service's output topics (records whose `producer` header names the service) and
   publish, in replay order, every output whose identity (topic, event ID, `caused_by`) is not there, waiting
   for the broker's acknowledgements. An output computed during a gap and never sent goes out now; one sent
   already is not sent twice (consumers deduplicate on the same identity). Outputs on the topic that the replay
   does not explain, or whose content differs, are counted and logged (never their content).
3. Write: all states, deadlines, processed IDs and a new epoch in one MULTI/EXEC that WATCHes the epoch key, so
   a rebuild never overwrites what another instance (or a newer rebuild) wrote after it, and a flush during the
   rebuild makes it start again. Publishing comes before this write: a crash in between rebuilds again and finds
   the outputs on the topic.

Issue 22: with `STATE_CHANGELOG=true` the rebuild restores from the service's compacted changelog instead
(shared/runtime/changelog.py, `restore` below): read the changelog to its end (the newest state of every live
patient), read the inputs from the committed offsets up to the records those states already hold and mark them
processed, then write states, deadlines, marks and a new epoch as step 3 does. It grows with the live patients, not
with the history. It replays instead (and then writes every replayed state to the changelog, step 2b, before step
3) when the changelog was never completed, or with `STATE_RESTORE=replay`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from contracts.changelog import COMPLETE_KEY, StateChange
from contracts.topics import changelog_topic
from shared.runtime import changelog, limits, reading, retrying
from shared.runtime.aggregate import Apply, Result, apply_one, letter_of, size_refusal
from shared.runtime.in_force import (
    Decision,
    decisions_in_replay,
    held_in_force,
    superseded,
    withdrawing_what_is_held,
)
from shared.runtime.kafka import Outgoing
from shared.settings import Settings
from shared.transport import kafka_client_kwargs

if TYPE_CHECKING:
    from shared.runtime.service import Service

log = logging.getLogger(__name__)


@dataclass
class RebuildReport:
    patients: int
    events: int
    skipped: int
    duplicates: int
    #: outputs of the replay that were missing from the output topics, published by the rebuild
    published: int = 0
    #: outputs on the topics with the identity of a replayed output but other content
    differing: int = 0
    #: missing outputs not published: a later output of the replay has their decision's `alert_key` (issue 22)
    superseded: int = 0
    #: outputs of this service on the topics that the replay does not produce
    unexplained: int = 0
    seconds: float = 0.0
    #: issue 22: "replay" (the inputs replayed) or "changelog" (restored from the changelog)
    source: str = "replay"
    #: records read from the changelog (a restore), or written to it (a replay seeding it)
    changelog_records: int = 0
    #: records past the committed offsets that the pure code rejects, dead-lettered by the rebuild (review RY)
    dead_lettered: int = 0


@dataclass
class Replay:
    states: dict[str, BaseModel] = field(default_factory=dict)
    #: (patient, event ID) of every event replayed: its processed mark, in the patient's slot group
    seen: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[Outgoing] = field(default_factory=list)
    skipped: int = 0
    duplicates: int = 0
    #: per patient, the highest offset replayed per partition ("topic:partition"): the changelog's `applied` marks
    applied: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the slot groups whose missing outputs were published: the only ones the write may write (review RY)
    groups: set[str] | None = None
    #: (patient, record, error type, reason) of each record past its committed offset that the pure code rejects, or
    #: whose batch format's bad part the live loop dead-letters (`rejections`, review RZ): dead-lettered by the rebuild
    #: before its write marks it processed (review RY)
    rejected: list[tuple[str, ConsumerRecord, str, str]] = field(default_factory=list)


def identity(topic: str, value: bytes | str) -> tuple[str, str, str] | None:
    """What consumers deduplicate on (`Message.delivery_key`): topic, event ID, caused_by."""
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "event_id" not in doc:
        return None
    return topic, str(doc["event_id"]), str(doc.get("caused_by") or "")


async def committed_offsets(service: Service, topics: list[str]) -> dict[TopicPartition, int]:
    """The group's committed offsets, read through the admin API so that nothing joins or leaves the live group
    (explicit partitions: the embedded broker drops the connection without them). Retried while the group's
    coordinator is not available yet (a fresh Apache Kafka cluster, a coordinator failing over)."""
    return dict(await retrying.retry(service.settings, _committed_offsets, service, topics))


async def _committed_offsets(service: Service, topics: list[str]) -> dict[TopicPartition, int]:
    s = service.settings
    parts = await reading.partitions(service.settings, topics)
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(s))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(service.name, partitions=parts)
        return {tp: meta_.offset for tp, meta_ in offsets.items() if meta_.offset > 0}
    finally:
        await admin.close()


async def _published(
    service: Service, topics: set[str]
) -> tuple[dict[tuple[str, str, str], bytes], dict[str, list[tuple[str, bytes]]]]:
    """The service's outputs as its output topics hold them now: identity -> latest value, and per patient (the
    record key) every (topic, value) in each topic's order, when the service recalls them (`recall_published`). (The
    embedded broker reports the start of the last batch as the end; fetches return whole batches, so nothing is
    missed.)"""
    if not topics:
        return {}, {}
    parts = await reading.partitions(service.settings, sorted(topics))
    ends = await reading.end_offsets(service.settings, parts)
    records = await reading.read_range(service.settings, "rebuild", ends, whole_batches=True)
    # parsed in a worker thread: a long output topic starved the event loop (review RY, as `replay`)
    return await asyncio.to_thread(
        _index_published, records, service.name.encode(), service.recall_published is not None
    )


def _index_published(
    records: list[ConsumerRecord], me: bytes, recall: bool
) -> tuple[dict[tuple[str, str, str], bytes], dict[str, list[tuple[str, bytes]]]]:
    out: dict[tuple[str, str, str], bytes] = {}
    per_patient: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        if r.value is None or ("producer", me) not in (r.headers or ()):
            continue
        ident = identity(r.topic, r.value)
        if ident is not None:
            out[ident] = r.value
            if recall and r.key is not None:
                per_patient[r.key.decode()].append((r.topic, r.value))
    return out, per_patient


def in_flight_bound(settings: Settings) -> int:
    """How far past its partition's committed offset a record applied live can be: the live loop holds at most
    `READ_AHEAD_RECORDS` fetched records, plus a batch being applied and one finishing (shared/runtime/service.py)."""
    return settings.read_ahead_records + 2 * settings.kafka_max_poll_records


def past_committed(
    committed: Mapping[TopicPartition, int], ends: Mapping[TopicPartition, int], settings: Settings
) -> dict[TopicPartition, int]:
    """Where a replay stops in each partition (HAZ-25-CHAOS-01): past the committed offset to the end, as far as a
    record applied live can be (`in_flight_bound`; a long backlog behind it is left to the live loop). A group that
    never committed (a first start, a benchmark's fresh group) replays nothing: its records are processed live."""
    if not committed:
        return {}
    bound = in_flight_bound(settings)
    return {tp: min(end, committed.get(tp, 0) + bound) for tp, end in ends.items()}


@dataclass(slots=True)
class Replayed:
    """One decoded input of a patient, as `aggregate.apply_events` takes it (review RY)."""

    record: Any
    apply: Apply
    message: Any
    key: str
    #: past its partition's committed offset: perhaps never applied, nor dead-lettered, live
    uncommitted: bool


#: a dead letter the rebuild sent: the record's topic, partition and offset, and the error type
Letter = tuple[str, int, int, str]
#: an event, its encoded outputs, or the error that rejected it
_Result = Result[Replayed]


def apply_one_per_batch(start: Any, items: Sequence[Replayed], settings: Settings) -> tuple[Any, list[_Result]]:
    """One patient's replayed events as the live loop applies an event delivered in a batch of its own
    (`aggregate.apply_events`): the pure transition, the outputs' limit, and MAX_STATE_BYTES (review RY): an event
    whose state would pass it is rejected with the live loop's reason, and the next event applies to the state before
    it. The size is checked on the state after a run of events, the first event past the limit then found by bisection
    over the run's states (as the live loop: a state grows with its events), so a run that fits costs one encoding."""
    state, results = start, list[_Result]()
    i, run = 0, len(items)
    while i < len(items):
        after, part = [state], list[_Result]()
        for item in items[i : i + run]:
            new, result = apply_one(item, after[-1], settings)  # a pure failure: rejected live as well
            after.append(new)
            part.append(result)
        if limits.state_too_large(after[-1].model_dump_json().encode(), settings) is None:
            state, results, i, run = after[-1], results + part, i + len(part), 2 * len(part)
            continue
        lo, hi = 0, len(part)  # after[lo] fits (the state held), after[hi] does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if limits.state_too_large(after[mid].model_dump_json().encode(), settings) is None:
                lo = mid
            else:
                hi = mid
        too_large = limits.state_too_large(after[hi].model_dump_json().encode(), settings) or ""
        refused = size_refusal(too_large)  # the live loop's reason
        results += [*part[: hi - 1], (part[hi - 1][0], [], refused)]
        state, i, run = after[hi - 1], i + hi, 1
    return state, results


async def replay(service: Service) -> Replay:
    """Apply, with the service's own pure code, every input on the topics now (HAZ-25-CHAOS-01: not only what the
    group committed), each patient's events in publication order. Decoding and applying run in a worker thread, as
    the live loop's transactions do (shared/runtime/state.py `_transact_group`): a long replay starved the event loop
    (Kafka heartbeats, the rebuild lock's renewal, /healthz)."""
    s = service.settings
    topics = [name for name, sub in service.subscriptions.items() if sub.aggregate is not None]
    if not topics:  # review RY: no aggregate, nothing to replay (no topic named: the broker lists every topic)
        return Replay()
    committed = await committed_offsets(service, topics)
    ends = past_committed(committed, await reading.end_offsets(s, await reading.partitions(s, topics)), s)
    records = await reading.read_range(s, "rebuild", ends, whole_batches=True)
    return await asyncio.to_thread(fold, service, records, committed)


def fold(service: Service, records: list[ConsumerRecord], committed: Mapping[TopicPartition, int]) -> Replay:
    """The replay's CPU work, without I/O (`replay` runs it in a worker thread): decode the records as the live loop
    does, then apply each patient's events in publication order."""
    s = service.settings
    # per patient, events in the order they were published, each partition's own order kept (as the live consumer)
    records = reading.in_publication_order(records, sort=True)
    result = Replay()
    seen: set[str] = set()
    per_patient: dict[str, list[Replayed]] = defaultdict(list)
    model: type[BaseModel] | None = None
    for record in records:
        sub = service.subscriptions[record.topic]
        assert sub.aggregate is not None
        model = sub.aggregate[0]
        # review RO (HAZ-22-ORDER-04): what the live loop dead-letters before applying (too large, NaN or Infinity,
        # keyed by another patient, undecodable) is skipped here too, by the same checks, and never marked seen
        message, key, refused = service.batches.decode_checked(record)
        if refused is not None or message is None or key is None:
            result.skipped += 1
            continue
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        uncommitted = record.offset >= committed.get(TopicPartition(record.topic, record.partition), 0)
        patient_id: str = message.patient_id  # type: ignore[attr-defined]
        per_patient[patient_id].append(Replayed(record, sub.aggregate[1], message, key, uncommitted))
        marks = result.applied.setdefault(patient_id, {})
        marks[f"{record.topic}:{record.partition}"] = record.offset
    if model is None:
        return result
    for patient_id, events in per_patient.items():
        state, results = apply_one_per_batch(model(), events, s)
        for item, encoded, exc in results:
            # every event replayed is marked processed (its redelivery skipped), a rejected one too: dead-lettered live
            # already, or (past the committed offset) by the rebuild before it writes the marks (review RY)
            result.seen.append((patient_id, item.key))
            partial = getattr(item.message, "__dict__", {}).get("rejections") if item.uncommitted else None
            if partial:  # review RZ: a batch format's bad part, dead-lettered by the live loop as its good part applies
                result.rejected.append((patient_id, item.record, "PartiallyRejected", "; ".join(partial)))
            if exc is None:
                result.outputs += encoded
                continue
            result.skipped += 1
            if item.uncommitted:
                result.rejected.append((patient_id, item.record, *letter_of(exc)))  # as the live loop's
        result.states[patient_id] = state
    return result


async def rebuild(service: Service, expected_epoch: bytes | None = None) -> RebuildReport:
    """Replay, publish the difference, then write the state and a new epoch (see the module docstring).
    `expected_epoch` is the epoch Redis held when the loss was seen (None: no epoch key). With the changelog on, a
    restore from it (None when it was never completed: then a replay, which completes it). Within a heal
    (`service.heal_status`), the letters an earlier attempt sent and saw acknowledged are not sent again (review RZ: a
    failed attempt retried by shared/runtime/healing.py sent them again)."""
    t0 = time.perf_counter()
    s = service.settings
    if s.state_changelog and s.state_restore == "changelog":
        restored = await restore(service, expected_epoch)
        if restored is not None:
            return restored
        log.warning("the state changelog is not complete: replaying the inputs, then writing the changelog")
    status = service.heal_status  # review RZ: the letters of this heal's earlier attempts (none: an operator's)
    lettered: set[Letter] = set() if status is None else status.lettered
    while True:
        done = await replay(service)
        report = RebuildReport(len(done.states), len(done.seen), done.skipped, done.duplicates)
        await _publish_difference(service, done, report, lettered)
        if s.state_changelog:  # issue 22: step 2b, the changelog made complete before the state is written
            report.changelog_records = await changelog.seed(service, done.states, done.applied)
        epoch = uuid.uuid4().hex.encode()
        if await _write(service, done, expected_epoch, epoch):  # the epochs written are adopted (issue 22)
            break
        now = await service.store.read_epoch()
        if now is not None:  # another instance rebuilt meanwhile: adopt its state
            service.store.epoch = now
            break
        log.warning("state changed during the rebuild; rebuilding again")
    report.seconds = round(time.perf_counter() - t0, 3)
    log.info(
        "rebuild done",
        extra={
            "patients": report.patients,
            "count": report.events,
            "published": report.published,
            "differing": report.differing,
            "superseded": report.superseded,
            "unexplained": report.unexplained,
            "seconds": report.seconds,
        },
    )
    return report


async def _publish_difference(
    service: Service, done: Replay, report: RebuildReport, lettered: set[Letter] | None = None
) -> None:
    """Publish the replay's missing outputs and dead-letter the records past the committed offsets that it rejects,
    for the slot groups this rebuild writes, acknowledged before the write marks them processed."""
    published, per_patient = await _published(service, {o.topic for o in done.outputs})
    expected: set[tuple[str, str, str]] = set()
    acks = []

    # pure work in a worker thread (review RY: the event loop kept free, as in `replay`)
    def pure() -> tuple[dict[int, Decision], list[tuple[str, str, str] | None], dict[Decision, str]]:
        return (
            decisions_in_replay(done.outputs),
            [identity(o.topic, o.value) for o in done.outputs],
            held_in_force((ident[0], value) for ident, value in published.items()),
        )

    decisions, identities, held_downstream = await asyncio.to_thread(pure)
    replaced = superseded(decisions)
    # review RY: only the patients whose slot groups this rebuild writes (an intact group's are sent live)
    rebuilding, layout = await service.store.rebuilding(), service.store.layout
    done.groups = rebuilding
    for i, (out, ident) in enumerate(zip(done.outputs, identities, strict=True)):
        if ident is None:
            continue
        expected.add(ident)
        if layout.group(out.key) not in rebuilding:
            continue
        held = published.get(ident)
        if held is None and i in replaced:
            report.superseded += 1
        elif held is None:
            out = withdrawing_what_is_held(out, decisions.get(i), held_downstream)  # HAZ-25-CHAOS-02
            acks.append(await service.producer.send(out))
            published[ident] = out.value.encode()
            per_patient[out.key].append((out.topic, published[ident]))
            report.published += 1
        elif held != out.value.encode():
            report.differing += 1
    report.unexplained = len(published.keys() - expected)
    # review RY: a record past the committed offset that the pure code rejects is marked processed by the write (a
    # changelog seeded by this replay holds its offset too: a restore marks it so); the live loop, which would have
    # dead-lettered it when it came again, skips it. So the rebuild dead-letters it, with the live loop's error type
    # and reason: once, or twice if the live loop had applied it before its commit (at least once, as after a crash).
    lettered = set() if lettered is None else lettered
    letters: list[Letter] = []
    for patient_id, record, kind, reason in done.rejected:
        where = (record.topic, record.partition, record.offset, kind)
        if layout.group(patient_id) not in rebuilding or where in lettered or where in letters:
            continue
        acks.append(await service.producer.dead_letter(record, kind, reason))
        letters.append(where)
        report.dead_lettered += 1
    for ack in acks:
        await ack  # every missing output acknowledged before the state says it was produced
    lettered.update(letters)  # review RZ: only once acknowledged (a letter whose send failed is sent again)
    recall = service.recall_published
    if recall is not None:  # what downstream holds, which the replay's order may not have recomputed

        def recalled() -> dict[str, BaseModel]:
            return {p: recall(state, per_patient.get(p, [])) for p, state in done.states.items()}

        done.states = await asyncio.to_thread(recalled)


async def _write(service: Service, done: Replay, expected: bytes | None, epoch: bytes) -> bool:
    """Only if Redis still holds `expected`: the states, deadlines, processed marks and the service's derived keys
    with the new epoch, one MULTI/EXEC per slot group (one on a single Redis; on a Redis Cluster only the groups
    that lost their state when healing: shared/runtime/state.py `write_rebuilt`)."""
    timers = service.timers
    return await service.store.write_rebuilt(
        done.states,
        done.seen,
        expected,
        epoch,
        also=None
        if timers is None
        else (lambda pipe, states: timers.write(pipe, {p: service.due(s) for p, s in states.items()})),
        index=service.rebuild_writes,
        only=done.groups,
    )


# ---- issue 22: restore from the changelog -----------------------------------------------------------------------
async def held_tail(service: Service, applied: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """(patient, idempotency key) of the records past the committed offsets that the restored states already hold
    (each patient's `applied` marks): marked processed, their redelivery is skipped, not applied twice."""
    highest: dict[TopicPartition, int] = {}
    for marks in applied.values():
        for part, offset in marks.items():
            topic, _, partition = part.rpartition(":")
            tp = TopicPartition(topic, int(partition))
            highest[tp] = max(highest.get(tp, -1), offset)
    topics = sorted({tp.topic for tp in highest if tp.topic in service.subscriptions})
    if not topics:
        return []
    committed = await committed_offsets(service, topics)
    ends = {tp: off + 1 for tp, off in highest.items() if tp.topic in service.subscriptions}
    keys: list[tuple[str, str]] = []
    for record in await reading.read_range(service.settings, "restore", ends, committed):
        patient_id = record.key.decode() if record.key is not None else ""
        if record.offset > applied.get(patient_id, {}).get(f"{record.topic}:{record.partition}", -1):
            continue  # not in the restored state: processed normally when delivered again
        sub = service.subscriptions[record.topic]
        try:
            keys.append((patient_id, sub.idempotency_key(sub.decode(record))))
        except Exception:  # dead-lettered live, and again when delivered again (as after any crash)
            continue
    return keys


async def restore(service: Service, expected_epoch: bytes | None) -> RebuildReport | None:
    """The state from the changelog (see the module docstring); None when the changelog is not complete."""
    t0 = time.perf_counter()
    records, count = await changelog.read(service, changelog_topic(service.name).name)
    if not changelog.complete(records):
        return None
    now = time.time()
    ttl = service.store.state_ttl
    live: dict[str, StateChange] = {}
    expired: list[str] = []
    for key, value in records.items():
        if value is None or key == COMPLETE_KEY:
            continue
        change = changelog.decode(value)
        if ttl is not None and now - change.changed_at.timestamp() >= ttl:
            expired.append(key)  # Redis would have let it expire: so does the restore, and compaction drops it
        else:
            live[key] = change
    # written as a replay's states are (`_write`: one step with the deadlines, indexes, marks and the epoch)
    model = next(sub.aggregate[0] for sub in service.subscriptions.values() if sub.aggregate is not None)
    parsed = await asyncio.to_thread(lambda: {p: model.model_validate_json(c.state) for p, c in live.items()})
    done = Replay(states=parsed)  # parsed in a worker thread, the event loop kept free (review RY, as `replay`)
    done.seen = await held_tail(service, {p: c.applied for p, c in live.items()})
    while True:
        epoch = uuid.uuid4().hex.encode()
        if await _write(service, done, expected_epoch, epoch):  # the epochs written are adopted (as `rebuild`)
            break
        current = await service.store.read_epoch()
        if current is not None:  # another instance rebuilt meanwhile: adopt its state
            service.store.epoch = current
            break
        log.warning("state changed during the restore; restoring again")
    if expired:
        producer, topic = service.producer, changelog_topic(service.name).name
        await producer.acknowledged([await producer.tombstone(topic, p) for p in expired])
    report = RebuildReport(len(live), len(done.seen), 0, 0, source="changelog", changelog_records=count)
    report.seconds = round(time.perf_counter() - t0, 3)
    log.info(
        "state restored from the changelog",
        extra={"patients": report.patients, "count": count, "seconds": report.seconds},
    )
    return report
