"""Limits that keep one message, or one patient, from stopping a consumer or delaying everyone else.

- `check_record`: an input larger than `max_message_bytes` is dead-lettered without being decoded.
- `check_key`: a record whose Kafka key is missing or differs from its message's `patient_id` breaks
  per-patient ordering (its events land on another partition than the patient's others): dead-lettered.
- `check_outputs` / `state_too_large`: an output that would not fit the producer's request limit, or a patient
  aggregate past `max_state_bytes`, rejects the event that caused it (dead letter with the reason) instead
  of failing the send or writing an unbounded Redis key.
- `DecodePool`: decoding (JSON validation, FHIR and HL7 parsing) runs in worker threads, so the event loop
  keeps answering health checks and moving other work while a large message is parsed.
- `FairBacklog`: the loop reads ahead (up to `read_ahead_records`) and fills each batch fairly across patients
  (max-min: patients with few records first, a flooding patient gets the rest of the batch), so another
  patient's record queued behind one patient's flood on the same partition is processed in the next batch.
  Issue 25: while a flooding patient and others both wait, every other batch holds the others alone, and a
  patient gets about `per_patient_seconds` of work per batch, from what its events took in the batch before.
  Offsets are committed only up to the first record not yet processed on each partition (at-least-once;
  records processed past it are recognised as already seen when delivered again).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.errors import Rejected
from shared.runtime.deadletter import ENVELOPE_BYTES
from shared.settings import Settings

T = TypeVar("T")

#: issue 25: the measured costs per patient kept for the time budget (FairBacklog): how many, and for how long
COSTS_KEPT = 1024
COST_KEPT_S = 60.0


def check_record(record: ConsumerRecord, settings: Settings) -> tuple[str, str] | None:
    size = len(record.value or b"") + len(record.key or b"")
    if size > settings.max_message_bytes:
        return "TooLarge", f"record of {size} bytes exceeds MAX_MESSAGE_BYTES={settings.max_message_bytes}"
    return None


_JSON_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NON_FINITE = re.compile(rb"-?\b(?:NaN|Infinity)\b")


def check_finite(record: ConsumerRecord) -> tuple[str, str] | None:
    """JSON has no NaN or Infinity, but Python's parsers accept them: such a value would be stored in a patient's
    aggregate, written back to Redis as null and make every later read of that state fail (a crash loop on one
    record). Refused here, for every JSON input."""
    raw = record.value or b""
    if (b"NaN" not in raw and b"Infinity" not in raw) or raw.lstrip()[:1] not in (b"{", b"["):
        return None
    if _NON_FINITE.search(_JSON_STRINGS.sub(b'""', raw)):
        return "NonFiniteNumber", "NaN or Infinity in a JSON number: not valid JSON"
    return None


def check_key(record: ConsumerRecord, message: Any) -> tuple[str, str] | None:
    """The record must be keyed by its message's patient_id (reasons never echo either value: PHI)."""
    patient_id = getattr(message, "patient_id", None)
    if patient_id is None:
        return None
    if record.key is None:
        return "MissingKey", "record has no key: records must be keyed by the message's patient_id"
    if record.key != str(patient_id).encode():
        return "KeyMismatch", "record key differs from the message's patient_id: per-patient ordering would break"
    return None


def check_outputs(encoded: Sequence[Any], settings: Settings) -> None:
    """Raise `Rejected` when an encoded output (shared.runtime.kafka.Outgoing) cannot fit one produce request."""
    limit = settings.kafka_max_request_bytes - ENVELOPE_BYTES
    for out in encoded:
        size = len(out.value.encode()) + len(out.key.encode())
        if size > limit:
            raise Rejected(f"an output of {size} bytes would exceed the producer's request limit ({limit})")


def state_too_large(dumped: bytes, settings: Settings) -> str | None:
    if len(dumped) > settings.max_state_bytes:
        return f"the patient's state would reach {len(dumped)} bytes, above MAX_STATE_BYTES={settings.max_state_bytes}"
    return None


class DecodePool:
    """Runs a batch's decoding in worker threads (the parsers are pure: no shared mutable state)."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{name}-decode")

    async def map(
        self, fn: Callable[[ConsumerRecord], T], records: Sequence[ConsumerRecord], inline: bool = False
    ) -> list[T]:
        """`fn` over the records in the threads, or on the calling loop when `inline` (a light batch)."""
        if inline or not records:
            return [fn(r) for r in records]
        loop = asyncio.get_running_loop()
        size = -(-len(records) // self.workers)
        chunks = [records[i : i + size] for i in range(0, len(records), size)]
        parts = await asyncio.gather(
            *(loop.run_in_executor(self._pool, lambda c=c: [fn(r) for r in c]) for c in chunks)  # type: ignore[misc]
        )
        return [x for part in parts for x in part]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FairBacklog:
    """Records fetched but not yet processed, per patient key, with the per-partition bookkeeping for commits."""

    def __init__(
        self, read_ahead: int, per_patient: int = 0, per_patient_bytes: int = 0, per_patient_seconds: float = 0.0
    ) -> None:
        self.read_ahead = read_ahead
        self.per_patient = per_patient or read_ahead
        #: issue 25: at most this many bytes of one patient per batch (always one record at least): one patient's
        #: heavy messages (hundreds of results each) do not make a batch that another patient's record waits for
        self.per_patient_bytes = per_patient_bytes
        #: issue 25: about this many seconds of one patient's work per batch (one record at least), from the seconds
        #: per record its events took in its last batch (`note_costs`): per patient key, (seconds per record, when
        #: noted), the newest COSTS_KEPT for COST_KEPT_S at most (review R27: kept past an emptied queue, since a
        #: costly patient's records may arrive a batch's worth at a time)
        self.per_patient_seconds = per_patient_seconds
        self._cost: OrderedDict[bytes | None, tuple[float, float]] = OrderedDict()
        self.size = 0
        self._by_key: dict[bytes | None, deque[ConsumerRecord]] = {}
        self._offsets: dict[TopicPartition, deque[int]] = {}  # held or in flight, in offset order
        self._done: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}  # next offset to accept from the fetcher
        self._committed: dict[TopicPartition, int] = {}
        #: issue 25: the last batch left out every patient with more records than its share (see `take`)
        self._light_only = False

    def room(self) -> int:
        return self.read_ahead - self.size

    def add(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batch.items():
            nxt = self._next.get(tp, -1)
            offsets = self._offsets.setdefault(tp, deque())
            self._done.setdefault(tp, set())
            for r in records:
                if r.offset < nxt:  # fetched again after a rebalance: already held, or processed
                    continue
                self._by_key.setdefault(r.key, deque()).append(r)
                offsets.append(r.offset)
                nxt = r.offset + 1
                self.size += 1
            if nxt >= 0:
                self._next[tp] = nxt

    def retain(self, assigned: Iterable[TopicPartition]) -> None:
        """Forget partitions this consumer no longer owns (their records go to the new owner)."""
        keep = set(assigned)
        lost = [tp for tp in self._offsets if tp not in keep]
        if not lost:
            return
        for tp in lost:
            for d in (self._offsets, self._done, self._next, self._committed):
                d.pop(tp, None)
        by_key: dict[bytes | None, deque[ConsumerRecord]] = {}
        for key, q in self._by_key.items():
            kept = deque(r for r in q if TopicPartition(r.topic, r.partition) in keep)
            if kept:
                by_key[key] = kept
        self._by_key = by_key
        self.size = sum(len(q) for q in by_key.values())

    def take(self, limit: int) -> list[ConsumerRecord]:
        """Up to `limit` records, max-min fair across patients and at most `per_patient` of one patient (and
        `per_patient_bytes`, one record at least); each patient's records in their order."""
        if not self._by_key:
            return []
        # shortest queues first, ties in arrival order (the sort is stable)
        queues = sorted(self._by_key.items(), key=lambda kq: len(kq[1]))
        now = time.monotonic()
        remaining, left = limit, len(queues)
        plan: list[tuple[bytes | None, deque[ConsumerRecord], int]] = []  # each patient's records taken, in order
        for key, q in queues:
            if remaining <= 0:
                break
            share = min(len(q), max(1, remaining // left), self.per_patient)
            cost = self._cost.get(key)
            if cost is not None and cost[0] > 0 and now - cost[1] <= COST_KEPT_S:
                share = min(share, max(1, int(self.per_patient_seconds / cost[0])))
            taken, size = 0, 0
            while taken < share:
                weight = len(q[taken].value or b"")
                if taken and self.per_patient_bytes and size + weight > self.per_patient_bytes:
                    break  # this patient's next record waits for the next batch
                taken, size = taken + 1, size + weight
            plan.append((key, q, taken))
            remaining -= taken
            left -= 1
        # Issue 25: a patient whose whole queue fits is light; one with records left over is flooding. While both
        # wait, every other batch holds the light patients alone, and the flooding ones get the batch after it (no
        # starvation). Another patient's record (a crisis value) then waits for one share of the flood at most:
        # either the one under way, or (arriving during a light-only batch) the one beside it in its own batch.
        light = [(k, q, n) for k, q, n in plan if n == len(q)]
        flooding = len(light) < len(plan) or len(plan) < len(self._by_key)
        if light and flooding and not self._light_only:
            plan, self._light_only = light, True
        else:
            self._light_only = False
        out: list[ConsumerRecord] = []
        for key, q, taken in plan:
            out += (q.popleft() for _ in range(taken))
            if not q:
                del self._by_key[key]
        self.size -= len(out)
        return out

    def note_costs(self, costs: dict[str, tuple[float, int]]) -> None:
        """Issue 25: per patient, the seconds its events of the last batch took and how many (the time budget)."""
        if not self.per_patient_seconds:
            return
        now = time.monotonic()
        for patient, (seconds, events) in costs.items():
            if events > 0:
                key = patient.encode()
                self._cost[key] = (seconds / events, now)
                self._cost.move_to_end(key)
        while self._cost and (len(self._cost) > COSTS_KEPT or now - next(iter(self._cost.values()))[1] > COST_KEPT_S):
            self._cost.popitem(last=False)  # bounded in count and in time (patient IDs)

    def done(self, records: Iterable[ConsumerRecord]) -> dict[TopicPartition, int]:
        """Mark records processed; the offsets to commit: per partition, the first record not yet processed."""
        touched: set[TopicPartition] = set()
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp in self._done:
                self._done[tp].add(r.offset)
                touched.add(tp)
        commits: dict[TopicPartition, int] = {}
        for tp in touched:
            offsets, done = self._offsets[tp], self._done[tp]
            while offsets and offsets[0] in done:
                done.discard(offsets.popleft())
            position = offsets[0] if offsets else self._next[tp]
            if self._committed.get(tp) != position:
                commits[tp] = self._committed[tp] = position
        return commits
