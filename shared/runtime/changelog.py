"""State changelogs (issue 22): each patient's stored aggregate also goes to the service's compacted changelog topic,
so a rebuild restores the live patients' states instead of replaying every input since the beginning (the Kafka
Streams pattern). On with `STATE_CHANGELOG=true` (a broker that compacts: Apache Kafka); off, a rebuild replays.

Writing (shared/runtime/service.py): after a batch's outputs are acknowledged and before its offsets are committed,
one record per patient of the batch (contracts/changelog.py `StateChange`, keyed by patient): the state's JSON as
Redis holds it, its next deadline, and `applied`, the highest offset per input partition of the patient's records this
process handled and has not committed yet. A patient whose state is the empty aggregate gets a tombstone. Records go
out in batch order (a batch's finish awaits the one before), so the newest record of a patient is its newest state.

Why `applied`: the record may hold events whose offsets are not committed (the process died between the changelog
and the commit, or a batch behind held the commit back). A restore marks those records processed, so their
redelivery skips them (rebuild.py `restore`), as the live service skips what it has marked. The state's outputs were
all acknowledged before the record was written: a restore has nothing to publish again.

Completeness: a changelog is restored only once it holds every patient: a rebuild that replays (the first start, or
`STATE_RESTORE=replay`) writes every state to it, tombstones the other keys, and then writes the `#complete` record
(first tombstoned, so a replay stopped half way is not taken for complete). Without it a rebuild replays.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka.structs import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from contracts.changelog import COMPLETE_KEY, StateChange
from contracts.topics import Topic, changelog_topic
from shared.runtime import reading
from shared.runtime.kafka import Outgoing, Producer

if TYPE_CHECKING:
    from shared.runtime.service import Service


@dataclass(frozen=True, slots=True)
class Change:
    """One changelog record to send: a patient's state (value) or its tombstone (None)."""

    key: str
    value: str | None


def encode(
    service: str,
    states: Mapping[str, tuple[BaseModel, bytes]],
    dues: Mapping[str, datetime | None],
    marks: Mapping[str, Mapping[str, int]],
    empty: bytes,
    now: datetime,
) -> list[Change]:
    """The records of a batch's patients (pure): each state's JSON as stored, or a tombstone for the empty state."""
    changed_at = now.isoformat()
    out: list[Change] = []
    for patient_id, (_, dumped) in states.items():
        if dumped == empty:  # as the store: no state for a patient whose events leave none
            out.append(Change(patient_id, None))
            continue
        due = dues.get(patient_id)
        doc = {
            "service": service,
            "patient_id": patient_id,
            "state": dumped.decode(),
            "due_at": None if due is None else due.isoformat(),
            "applied": dict(marks.get(patient_id, {})),
            "changed_at": changed_at,
        }
        out.append(Change(patient_id, json.dumps(doc, separators=(",", ":"))))
    return out


def decode(value: bytes) -> StateChange:
    return StateChange.model_validate_json(value)


class Writer:
    """The live service's changelog writer, with the marks of the records it handled and has not committed."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.topic: Topic = changelog_topic(service)
        #: patient -> 'topic:partition' -> highest offset of its records handled (applied or skipped as processed)
        self._marks: dict[str, dict[str, int]] = {}

    @staticmethod
    def handled(records: Iterable[tuple[ConsumerRecord, str]]) -> dict[str, dict[str, int]]:
        """The batch's records of patient aggregates, with their patient (in partition order): per patient, the
        highest offset per partition."""
        out: dict[str, dict[str, int]] = {}
        for record, patient_id in records:
            out.setdefault(patient_id, {})[f"{record.topic}:{record.partition}"] = record.offset
        return out

    def marks_for(self, patients: Iterable[str], noted: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        """The marks of the batch's patients: those kept, and this batch's records (read by the transaction's worker
        thread: copies)."""
        return {p: _highest(self._marks.get(p, {}), noted.get(p, {})) for p in patients}

    def remember(self, noted: Mapping[str, Mapping[str, int]]) -> None:
        """The batch's records are applied (or were processed already): kept until their offsets are committed. Not
        before: a batch stopped by a lost state is applied again, perhaps in other batches."""
        for patient_id, marks in noted.items():
            self._marks[patient_id] = _highest(self._marks.get(patient_id, {}), marks)

    def committed(self, commits: Mapping[TopicPartition, int]) -> None:
        """Offsets committed: marks below them are never needed again (those records are not delivered again)."""
        if not commits or not self._marks:
            return
        below = {f"{tp.topic}:{tp.partition}": at for tp, at in commits.items()}
        for patient_id in list(self._marks):
            marks = self._marks[patient_id]
            for part, at in below.items():
                if marks.get(part, at) < at:
                    del marks[part]
            if not marks:
                del self._marks[patient_id]

    async def send(self, producer: Producer, changes: Sequence[Change]) -> list[asyncio.Future[Any]]:
        """Queue the records (one record batch per partition); await the futures for the broker's acks."""
        outgoing: list[tuple[Outgoing, Any]] = [
            (Outgoing(self.topic.name, c.key, c.value, StateChange.schema_id), [])
            for c in changes
            if c.value is not None
        ]
        futures = await producer.send_many(outgoing) if outgoing else []
        for c in changes:
            if c.value is None:
                futures.append(await producer.tombstone(self.topic.name, c.key))
        return futures


def _highest(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Per partition, the higher of two marks (records delivered again after a restore come with lower offsets)."""
    out = dict(a)
    for part, offset in b.items():
        if offset > out.get(part, -1):
            out[part] = offset
    return out


async def read(service: Service, topic: str) -> tuple[dict[str, bytes | None], int]:
    """The changelog to its end: key -> newest value (None: a tombstone), and how many records were read. Every
    fetched record is kept, even past the reported end (the embedded broker reports the start of the last batch)."""
    parts = await reading.partitions(service.settings, [topic])
    if not parts:
        return {}, 0
    async with reading.consumer(service.settings, "restore", max_partition_fetch_bytes=8 * 1024 * 1024) as consumer:
        ends = await consumer.end_offsets(parts)
        consumer.assign(parts)
        await reading.Stall.bounded(consumer.seek_to_beginning(*parts))
        latest: dict[str, bytes | None] = {}
        count = 0
        remaining = {tp for tp in parts if ends[tp] > 0}
        stall = reading.Stall("changelog")
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=20_000)
            for recs in batch.values():
                count += len(recs)
                for r in recs:
                    if r.key is not None:
                        latest[r.key.decode()] = r.value
            positions = {tp: await reading.Stall.bounded(consumer.position(tp)) for tp in remaining}
            for tp, at in positions.items():
                if at >= ends[tp]:
                    remaining.discard(tp)
            if remaining:
                stall.check(positions)  # bounded, as `reading.read_range` (review RZ)
        return latest, count


def complete(records: Mapping[str, bytes | None]) -> bool:
    return records.get(COMPLETE_KEY) is not None


async def seed(
    service: Service, states: Mapping[str, BaseModel], marks: Mapping[str, Mapping[str, int]] | None = None
) -> int:
    """After a replay, before its Redis write: the changelog made to hold exactly these states (every one written,
    every other key tombstoned, each with the offsets it holds: `marks`), then marked complete. Returns the records
    written."""
    writer = Writer(service.name)
    producer = service.producer
    await asyncio.gather(await producer.tombstone(writer.topic.name, COMPLETE_KEY))  # incomplete while rewritten
    held, _ = await read(service, writer.topic.name)
    empty = (type(next(iter(states.values())))().model_dump_json().encode()) if states else b""
    now = datetime.now(UTC)

    def encoded() -> list[Change]:  # in a worker thread: the event loop kept free (review RY, as rebuild's replay)
        dumped = {p: (s, s.model_dump_json().encode()) for p, s in states.items()}
        dues = {p: service.due(s) for p, s in states.items()}
        return [
            c
            for c in encode(service.name, dumped, dues, marks or {}, empty, now)
            if c.value is not None or held.get(c.key) is not None
        ]

    changes = await asyncio.to_thread(encoded)
    changes += [Change(k, None) for k, v in held.items() if v is not None and k not in states and k != COMPLETE_KEY]
    await producer.acknowledged(await writer.send(producer, changes))
    marker = json.dumps({"seeded_at": now.isoformat(), "patients": len(states)})
    await producer.acknowledged(
        await producer.send_many(
            [(Outgoing(writer.topic.name, COMPLETE_KEY, marker, "osteocds.changelog-complete/1"), [])]
        )
    )
    return len(changes)
