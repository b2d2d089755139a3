"""One batch of the service loop (shared/runtime/service.py `Service._run`), and finishing it.

Processing: decode and check every record (off the event loop but for a light batch), skip the event IDs already
processed (in Redis, or marked by a batch still finishing), call the plain handlers, apply each patient's events in
order to its aggregate (one Redis transaction per slot group: states and outboxes), dead-letter what is refused, and
queue the outputs. Finishing (after the batch before it, strictly in order): every output acknowledged by the broker,
the changelog records sent (issue 22), then in one Redis step the outboxes cleared and the event IDs marked
processed, and only then the offsets committed. Any failure raises before the commit, so the records are delivered
again (at-least-once; the handlers are idempotent by event ID).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord, RecordMetadata
from pydantic import BaseModel, ValidationError

from shared.errors import Rejected
from shared.observability.metrics import Metrics, OpsMetrics, origin_of
from shared.observability.tracing import Headers, Tracing, output_headers
from shared.runtime import decoding, limits, retrying
from shared.runtime.aggregate import Applied, Apply, apply_batch, letter_of
from shared.runtime.changelog import Change, Writer
from shared.runtime.changelog import encode as changelog_encode
from shared.runtime.kafka import Outgoing, Producer
from shared.runtime.state import StateStore
from shared.runtime.subscription import Context, Subscription
from shared.runtime.timers import Timers
from shared.settings import Settings

log = logging.getLogger("shared.runtime.service")  # the loop's log, as before the split


class Runtime(Protocol):
    """What a batch reads of its service (shared/runtime/service.py `Service`)."""

    @property
    def name(self) -> str: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def subscriptions(self) -> dict[str, Subscription]: ...
    @property
    def store(self) -> StateStore: ...
    @property
    def producer(self) -> Producer: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def ops(self) -> OpsMetrics: ...
    @property
    def tracing(self) -> Tracing: ...
    @property
    def decode_pool(self) -> limits.DecodePool: ...
    @property
    def changelog(self) -> Writer | None: ...
    @property
    def timers(self) -> Timers | None: ...
    def due(self, state: BaseModel) -> datetime | None: ...


def _patient_of(d: Decoded) -> str:
    """The patient of a decoded record (its processed mark lives in that patient's slot group): the message's
    `patient_id`, else the record's key (records are keyed by patient)."""
    patient = getattr(d.message, "patient_id", None)
    return str(patient) if patient is not None else (d.record.key or b"").decode(errors="replace")


def _merged(parts: list[Applied[Any]]) -> Applied[Any]:
    """The slot groups' results of one batch as one (each patient's outputs stay in order)."""
    out: Applied[Any] = Applied()
    for part in parts:
        out.results += part.results
        out.resend += part.resend
        out.outboxes.update(part.outboxes)
        out.seconds.update(part.seconds)
    return out


@dataclass
class Sent:
    """A processed batch whose outputs are queued: what finishing it needs."""

    records: list[ConsumerRecord]
    acks: list[asyncio.Future[Any]]
    outboxes: dict[str, str]
    #: (patient, event ID) of the events to mark processed (the mark lives in the patient's slot group)
    done_keys: list[tuple[str, str]]
    t0: float
    #: issue 22: the batch's changelog records, sent once its outputs are acknowledged (shared/runtime/changelog.py)
    changelog: list[Change] = field(default_factory=list)
    #: issue 25: per patient, the seconds its events took to apply and how many (the backlog's time budget)
    costs: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass(slots=True)
class Decoded:
    record: ConsumerRecord
    sub: Subscription
    message: BaseModel | None = None
    error: tuple[str, str] | None = None
    key: str | None = None
    #: issue 14: the record's trace span (None when tracing is off) and its hospital input's time (ms)
    span: Any = None
    origin_ms: int = 0

    @property
    def apply(self) -> Apply:
        """The transition of the aggregate this event goes to (shared/runtime/aggregate.py)."""
        assert self.sub.aggregate is not None
        return self.sub.aggregate[1]


class Batches:
    """The batches of one service's loop: processing one, and finishing it (see the module's docstring)."""

    def __init__(self, owner: Runtime) -> None:
        self.owner = owner
        #: the pipelined finish (Service._run): the newest batch still finishing, the event IDs it marks and the
        #: patients whose outbox it clears
        self._finishing: asyncio.Task[None] | None = None
        self._in_flight_keys: set[str] = set()
        self._in_flight_patients: set[str] = set()

    def finish_after(
        self, sent: Sent, previous: asyncio.Task[None] | None, backlog: limits.FairBacklog, consumer: AIOKafkaConsumer
    ) -> asyncio.Task[None]:
        """Start finishing `sent` once `previous` has finished (the pipelined finish)."""
        self._finishing = asyncio.create_task(self._finish(sent, previous, backlog, consumer))
        return self._finishing

    async def _finish(
        self,
        sent: Sent,
        previous: asyncio.Task[None] | None,
        backlog: limits.FairBacklog,
        consumer: AIOKafkaConsumer,
    ) -> None:
        """After the batch before it: wait for every output's acknowledgement, then in one Redis step clear the
        outboxes and mark the event IDs processed, then commit. Any failure raises before the commit."""
        try:
            if previous is not None:
                await previous  # strictly in order: its failure is this batch's too
            await self.owner.producer.acknowledged(sent.acks)  # every output acknowledged before anything is marked
            # issue 22: the states whose outputs are acknowledged go to the changelog before the commit
            logged = (
                []
                if self.owner.changelog is None
                else await self.owner.changelog.send(self.owner.producer, sent.changelog)
            )
            await self._retry(self.owner.store.finish, sent.outboxes, sent.done_keys)
            await self.owner.producer.acknowledged(logged)
            if sent.outboxes:
                self.owner.ops.outbox_cleared()
        finally:
            self._in_flight_keys.difference_update(key for _, key in sent.done_keys)
            self._in_flight_patients.difference_update(sent.outboxes)
        assigned = consumer.assignment()  # a partition revoked meanwhile is the new owner's to commit
        if commits := {tp: at for tp, at in backlog.done(sent.records).items() if tp in assigned}:
            try:
                await consumer.commit(commits)
            except CommitFailedError:
                # issue 22: expelled from the group (a session outlived by a coordinator's failover, a stalled
                # loop): the group has moved on. Not fatal: these records go to the partitions' next owner (this
                # process too, once it rejoins) from the last commit, and the processed marks skip them there.
                self.owner.ops.commits_refused.labels(self.owner.name).inc()
                log.warning("offset commit refused after a rebalance; the batch is delivered again and skipped")
                return
            if self.owner.changelog is not None:
                self.owner.changelog.committed(commits)
        self.owner.ops.batch_seconds.labels(self.owner.name).observe(time.perf_counter() - sent.t0)

    async def process(self, records: list[ConsumerRecord]) -> Sent:
        """Decode, deduplicate, handle and queue the outputs of one batch (nothing awaited from the broker here)."""
        t0 = time.perf_counter()
        self.owner.ops.records_ahead(records, self.owner.settings.clock_skew_tolerance_seconds)  # HAZ-27-FUTURE-HIDES
        # parsing off the event loop, but for a light batch (plain JSON, DECODE_INLINE_BYTES at most)
        inline = sum(len(r.value or b"") for r in records) <= self.owner.settings.decode_inline_bytes and all(
            decoding.light(self.owner.subscriptions[topic].decode) for topic in {r.topic for r in records}
        )
        decoded = await self.owner.decode_pool.map(self.decode, records, inline)
        noted: dict[str, dict[str, int]] = {}  # issue 22: the records each patient's changelog record will say it holds
        if self.owner.changelog is not None:
            handled = [d for d in decoded if d.error is None and d.sub.aggregate is not None]
            noted = self.owner.changelog.handled((d.record, d.message.patient_id) for d in handled)  # type: ignore[union-attr]
        refs = [(_patient_of(d), d.key) for d in decoded if d.key is not None]
        already = await self._retry(self.owner.store.seen_many, refs) if refs else set()
        already |= self._in_flight_keys.intersection(key for _, key in refs)  # processed by a batch still finishing
        acks: list[asyncio.Future[Any]] = []
        work: list[Decoded] = []
        for d in decoded:
            if d.error is not None:
                acks.append(await self._dead_letter(d, *d.error, outcome="dead_lettered"))
            elif d.key in already:
                self.owner.metrics.count(d.record.topic, "duplicate")
                self.owner.tracing.finish(d.span, "duplicate")
            else:
                assert d.key is not None
                already.add(d.key)
                work.append(d)
                partial = getattr(d.message, "__dict__", {}).get("rejections")  # a batch format's bad part
                if partial:
                    # the good part is processed (and counted) below; the bad part is dead-lettered
                    self.owner.metrics.messages.labels(self.owner.name, d.record.topic, "partially_rejected").inc()
                    acks.append(
                        await self.owner.producer.dead_letter(d.record, "PartiallyRejected", "; ".join(partial))
                    )

        # One patient's events keep their order; one aggregate transaction per patient per batch.
        groups: dict[str, list[Decoded]] = {}
        results: list[tuple[Decoded, Sequence[Outgoing], BaseException | None]] = []
        for d in work:
            if d.sub.aggregate is not None:
                groups.setdefault(d.message.patient_id, []).append(d)  # type: ignore[union-attr]
            else:
                results.append(await self._run_handler(d))
        applied: Applied[Decoded] = Applied()
        changelog: list[Change] = []
        if groups:
            applied, changelog = await self._retry(self._run_aggregates, groups, noted)
            results += applied.results
            self.owner.ops.outbox_written(sum(len(r[1]) for r in applied.results), len(applied.resend))
        if self.owner.changelog is not None:  # applied (or skipped as processed): kept until committed
            self.owner.changelog.remember(noted)
        # outputs of an earlier attempt that stopped before the broker's ack go first, then this batch's, in order
        outgoing: list[tuple[Outgoing, Headers | None]] = [(pending, None) for pending in applied.resend]

        done_keys: list[tuple[str, str]] = []
        now = time.time()  # the outputs' latency from their hospital input (one clock reading per batch)
        for d, outputs, exc in results:
            topic = d.record.topic
            if isinstance(exc, Rejected):
                acks.append(await self._dead_letter(d, *letter_of(exc), outcome="rejected"))
                done_keys.append((_patient_of(d), d.key))  # type: ignore[arg-type]
                continue
            if exc is not None:
                acks.append(await self._dead_letter(d, *letter_of(exc), outcome="failed"))
                log.error("handler failed", exc_info=exc, extra={"topic": topic, "event_id": d.key})
                continue
            headers = output_headers(d.span, d.origin_ms)
            for message in outputs:
                out = message if isinstance(message, Outgoing) else Outgoing.of(message)  # encoded once
                outgoing.append((out, headers))
                self.owner.ops.output(out.topic, out.value, d.origin_ms, now)
            self.owner.metrics.count(topic, "processed")
            self.owner.tracing.finish(d.span, "processed", outputs)
            done_keys.append((_patient_of(d), d.key))  # type: ignore[arg-type]
        acks += await self.owner.producer.send_many(outgoing)
        for out, _ in outgoing:
            self.owner.metrics.output(out.schema_id)
        self.owner.metrics.flush()
        self._in_flight_keys.update(key for _, key in done_keys)
        self._in_flight_patients.update(applied.outboxes)
        return Sent(records, acks, applied.outboxes, done_keys, t0, changelog, applied.seconds)

    async def _dead_letter(
        self, d: Decoded, error_type: str, reason: str, outcome: str
    ) -> asyncio.Future[RecordMetadata]:
        self.owner.metrics.count(d.record.topic, outcome)
        self.owner.tracing.finish(d.span, outcome, error_type=error_type)
        log.warning(outcome, extra={"topic": d.record.topic, "offset": d.record.offset, "error_type": error_type})
        return await self.owner.producer.dead_letter(d.record, error_type, reason)

    async def _run_handler(self, d: Decoded) -> tuple[Decoded, Sequence[Outgoing], BaseException | None]:
        assert d.sub.handler is not None
        t0 = time.perf_counter()
        context = Context(self.owner.store, self.owner.settings, d.record)
        try:
            try:
                outputs = await d.sub.handler(d.message, context)  # the first attempt: as `_retry`, inlined
            except retrying.TRANSIENT as failed:
                outputs = await retrying.retry_after(self.owner.settings, failed, d.sub.handler, d.message, context)
        except retrying.TRANSIENT:
            raise
        except Exception as exc:
            return d, [], exc
        encoded = [Outgoing.of(o) for o in outputs]  # encoded once: checked here, sent by the loop
        try:
            limits.check_outputs(encoded, self.owner.settings)
        except Rejected as exc:
            return d, [], exc
        self.owner.metrics.handled(d.record.topic, time.perf_counter() - t0)
        return d, encoded, None

    async def _run_aggregates(
        self, groups: dict[str, list[Decoded]], noted: Mapping[str, Mapping[str, int]] | None = None
    ) -> tuple[Applied[Decoded], list[Change]]:
        """Apply each patient's events, in order, to its aggregate: one Redis transaction for the whole batch,
        which also writes the outputs to each patient's outbox (sent, then cleared once acknowledged). With a
        changelog, also the batch's changelog records (issue 22)."""
        if self._in_flight_patients.intersection(groups) and self._finishing is not None:
            # an outbox of the batch still finishing: cleared first, so this batch never sends its outputs again
            await self._finishing
        first = next(iter(groups.values()))[0]
        assert first.sub.aggregate is not None
        model = first.sub.aggregate[0]
        token = uuid.uuid4().hex
        t0 = time.perf_counter()
        dues: dict[str, datetime | None] = {}  # each patient's next deadline, written with its state
        due = None if self.owner.timers is None else self.owner.due
        marks = None if self.owner.changelog is None else self.owner.changelog.marks_for(groups, noted or {})
        changelogs: dict[str, list[Change]] = {}  # per slot group (issue 22: one transaction per group on a cluster)

        def apply_all(
            states: dict[str, BaseModel | None], pending: dict[str, bytes | None]
        ) -> tuple[Mapping[str, BaseModel | bytes | tuple[BaseModel, bytes]], dict[str, bytes], Applied[Decoded]]:
            # the patients of one slot group (all of them on one Redis)
            part = {p: groups[p] for p in states}
            new, outboxes, applied, next_dues = apply_batch(
                part, model, states, pending, token, self.owner.settings, due
            )
            dues.update(next_dues)
            if marks is not None:  # encoded here, off the event loop (a retried transaction encodes again)
                empty = model().model_dump_json().encode()
                changelogs[next(iter(part), "")] = changelog_encode(
                    self.owner.name, new, next_dues, marks, empty, datetime.now(UTC)
                )
            return new, outboxes, applied

        timers = self.owner.timers
        also = None if timers is None else (lambda pipe, ps: timers.write(pipe, {p: dues.get(p) for p in ps}))
        applied = await self.owner.store.transact_many(list(groups), model, apply_all, also=also, merge=_merged)
        changelog = [c for part in changelogs.values() for c in part]
        per_message = (time.perf_counter() - t0) / max(1, len(applied.results))
        for d, _, _ in applied.results:
            self.owner.metrics.handled(d.record.topic, per_message)  # summed per topic, observed once (Metrics.flush)
        return applied, changelog

    def decode(self, record: ConsumerRecord) -> Decoded:
        d = Decoded(
            record,
            self.owner.subscriptions[record.topic],
            span=self.owner.tracing.consume(record),
            origin_ms=origin_of(record),
        )
        d.message, d.key, d.error = self.decode_checked(record)
        return d

    def decode_checked(self, record: ConsumerRecord) -> tuple[BaseModel | None, str | None, tuple[str, str] | None]:
        """A record as the loop takes it: its message, its idempotency key and the refusal that dead-letters it before
        any transition (None: accepted). The rebuild's replay skips exactly what this refuses (review RO)."""
        sub = self.owner.subscriptions[record.topic]
        if record.value is None:
            return None, None, ("EmptyMessage", "message has no value")
        if (refused := limits.check_record(record, self.owner.settings) or limits.check_finite(record)) is not None:
            return None, None, refused
        message: BaseModel | None = None
        try:
            message = sub.decode(record)
            key = sub.idempotency_key(message)
            return message, key, limits.check_key(record, message)  # keyed by patient, or per-patient order breaks
        except ValidationError as exc:
            error = ("ValidationError", decoding.validation_reason(exc))
        except Rejected as exc:
            error = ("Rejected", str(exc))
        except (ValueError, UnicodeDecodeError) as exc:
            error = (type(exc).__name__, f"cannot decode: {exc}"[:500])
        except Exception as exc:  # a decoder must never stop the loop: that record would block its partition
            error = (type(exc).__name__, "cannot decode: unexpected error in the decoder")
            log.error("decoder failed", exc_info=exc, extra={"topic": record.topic, "offset": record.offset})
        return message, None, error

    async def _retry(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return await retrying.retry(self.owner.settings, fn, *args)
