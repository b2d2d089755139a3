"""The five services' pure decisions run in process over a stream of hospital inputs: no Kafka, no Redis (issue 25's
history and scale benchmarks; issue 21's rule-change impact replay runs it twice, base and candidate).

    replay = Replay()                       # the five services, built from their settings classes
    for g in Cohort(1, 100, 2).events():
        replay.feed(g.topic, g.key, g.value(), g.timestamp_ms)
    replay.finish()                         # the clock ticks still due by the last input's time
    replay.outputs["scoring"]               # what scoring published, in order

What it runs is what each service declares: `services/<name>/app.py` `build(settings)` gives a `Service` whose
`subscriptions` map a topic to its decoder and its aggregate `(model, apply)`. A record goes through what the
runtime's loop does for one event (shared/runtime/batch.py `Batches.decode`, shared/runtime/aggregate.py
`apply_events`): the size and NaN checks, the decoder (with the future-date checks of hospital inputs), the
idempotency key (a duplicate is skipped), the key check, then `apply_events` on the patient's state (a `Rejected`
or failing event is dead-lettered with its reason; MAX_STATE_BYTES is enforced). Each output
(shared.runtime.kafka.Outgoing) becomes a record of its topic, timestamped at the time of the input that caused
it, and goes to every service subscribed to it, in order, breadth first, before the next input: in live
operation an input arrives hours after the one before, and its consequences are processed in milliseconds.

Time. A record's timestamp is its publication time (a cohort's `recorded_at`). With `clock="record"` (the default)
the services that read a clock decide at the time of the record they apply, as they would have live; with
`clock="wall"` they decide now. This sets each clocked service's `Service.clock` (scoring, systemic planner and
radiotherapy planner read `service.clock()` at each event). Notification reads no clock (every time comes from its
records). Deadlines (a service's `due`, shared/runtime/timers.py) fire as clock ticks
(contracts/clock.py, built like `Timers.tick`) on the service's clock topic, before the first input at or after
them, 1 ms after their due time, like the live timers (which poll every second).

State is kept per (service, patient) as the model the transition returned, after `apply_events` has written it as
JSON (the runtime's cost per batch, here per event; `store=False` skips it: the transitions alone); `roundtrip=True`
keeps the JSON and reads it back before each event, as the runtime does between batches (slower; a state whose JSON
does not read back the same would show there). `forget(patient)` drops a patient's states once their stream is
done (a cohort replayed patient by patient needs one patient's states at a time: every state is per patient).

Tape (issue 21's impact replay, speed): `Replay(tape=Tape(names, recording=True))` records each application of those
services (the record's digest and what it did: `Take`); a replay given the tape with `recording=False` (a candidate
whose code for them is byte-identical) takes the taped outcome of a record with the same digest instead of decoding
and applying it, and says when the records differ (`Tape.diverged`).
"""

from __future__ import annotations

import hashlib
import heapq
import importlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ValidationError

from contracts.base import derived_id
from contracts.clock import ClockTick
from contracts.topics import SERVICES, clock_topic
from shared.errors import Rejected
from shared.runtime import decoding, limits
from shared.runtime.aggregate import apply_events
from shared.runtime.kafka import Outgoing
from shared.runtime.service import Service
from shared.runtime.subscription import Subscription
from shared.settings import Settings

#: service name -> (module of its app and settings, settings class name)
MODULES: Final[dict[str, tuple[str, str]]] = {
    "lab-normalisation": ("services.lab_normalisation", "LabSettings"),
    "scoring": ("services.scoring", "ScoringSettings"),
    "systemic-planner": ("services.systemic_planner", "SystemicSettings"),
    "radiotherapy-planner": ("services.radiotherapy_planner", "RadiotherapySettings"),
    "notification": ("services.notification", "NotificationSettings"),
}
#: services whose decisions read `Service.clock` (set by the replay); the others: see the module's docstring
CLOCKED: Final = frozenset({"scoring", "systemic-planner", "radiotherapy-planner"})
#: a deadline fires this long after it passes (the live timers poll every TIMER_POLL_INTERVAL_S, 1 s; a tick fired
#: exactly at its deadline would find it not yet passed)
TICK_DELAY: Final = timedelta(milliseconds=1)
#: deadlines are ordered by their instant in whole microseconds since the epoch (exact, as datetimes are): the
#: services' times carry different tzinfo objects, whose comparison asks each for its offset
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_TICK_DELAY_US: Final = TICK_DELAY // _US
#: a deadline that keeps falling due again at the same instant stops after this many ticks (a loop in a service)
MAX_TICKS_AT_ONCE: Final = 20


@dataclass(slots=True)
class Record:
    """What a service's decoder reads of a Kafka ConsumerRecord."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int  #: publication time, epoch milliseconds
    partition: int = 0
    offset: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_type: int = 0
    checksum: None = None
    serialized_key_size: int = -1
    serialized_value_size: int = -1


@dataclass(slots=True)
class Applied:
    """One event a service applied (or refused): the record, its outputs, and the dead-letter reason if refused."""

    service: str
    record: Record
    outputs: list[Outgoing]
    error: tuple[str, str] | None = None


@dataclass(slots=True)
class _Event:
    """An event for `apply_events` (shared/runtime/aggregate.Event)."""

    message: Any
    apply: Any


#: What applying one record to one service did (`Replay._take`), a plain tuple so that a tape pickles small:
#: (patient, dead-letter error (type, reason) or None, partial rejections or None, duplicate, transition run,
#: its next deadline, its outputs as (topic, key, value, schema_id))
Take = tuple[
    str, tuple[str, str] | None, str | None, bool, bool, datetime | None, tuple[tuple[str, str, str, str], ...]
]


def record_digest(record: Record) -> bytes:
    """What decides a record's decoding and its application besides the state: topic, key, value and time (the clock
    of the services that read one is the record's time)."""
    h = hashlib.sha1(record.topic.encode())
    h.update(b"\0" + (record.key or b"") + b"\0" + str(record.timestamp).encode() + b"\0")
    h.update(record.value or b"")
    return h.digest()


class Tape:
    """Issue 21 (speed): the applications of the services in `names`, per patient. Recording (the base): each
    application's record digest and `Take` (what decoding, the checks, idempotency and the transition did).
    Replaying (a candidate whose code for these services is byte-identical): a record whose digest is the next one
    taped for that service takes the taped `Take` without decoding or running anything (same code, same records one
    by one, same outcome); the first record that differs for a service marks that service `divergent` and its tape
    gives nothing more (the caller runs that patient again with that service live; the other services' tapes go on).
    `record` (when replaying): services run live and recorded as well, so that a patient run again takes their
    outcome instead of running them twice (their records must be the same again, digest by digest).
    `start(entries)` begins a patient."""

    def __init__(self, names: Iterable[str], recording: bool, record: Iterable[str] = ()) -> None:
        self.names = frozenset(names)
        self.recording = recording
        #: run live and recorded: every service of `names` when recording, else those of `record`
        self.recorded = self.names if recording else frozenset(record) - self.names
        self.entries: dict[str, list[tuple[bytes, Take]]] = {}
        self._next: dict[str, int] = {}
        self._diverged: set[str] = set()

    @property
    def diverged(self) -> bool:
        return bool(self._diverged)

    def start(self, entries: Mapping[str, list[tuple[bytes, Take]]] | None = None) -> None:
        replayed = () if self.recording else self.names
        self.entries = {} if entries is None else {n: e for n, e in entries.items() if n in replayed}
        self._next = dict.fromkeys(self.entries, 0)
        self._diverged = set()

    def add(self, name: str, digest: bytes, take: Take) -> None:
        self.entries.setdefault(name, []).append((digest, take))

    def take(self, name: str, digest: bytes) -> Take | None:
        if name in self._diverged:
            return None
        entries, i = self.entries.get(name, ()), self._next.get(name, 0)
        if i >= len(entries) or entries[i][0] != digest:
            self._diverged.add(name)
            return None
        self._next[name] = i + 1
        return entries[i][1]

    def divergent(self) -> frozenset[str]:
        """The replayed services whose records differed from their tape's, or that did not take all of it."""
        replayed = () if self.recording else self.names
        short = {n for n in replayed if self._next.get(n, 0) != len(self.entries.get(n, ()))}
        return frozenset(self._diverged | short)

    def consumed(self) -> bool:
        """Every taped application replayed, for the same records, and nothing else asked of the tape."""
        return not self.divergent()


def build_services(
    settings: Mapping[str, Mapping[str, Any]] | None = None, names: Iterable[str] = SERVICES
) -> dict[str, Service]:
    """Each service as its app module builds it, with its settings class (service_name set) and the overrides of
    `settings[name]` (e.g. a candidate threshold); lab-normalisation's MLLP listener is off."""
    out: dict[str, Service] = {}
    for name in names:
        package, cls = MODULES[name]
        settings_cls: type[Settings] = getattr(importlib.import_module(f"{package}.settings"), cls)
        doc: dict[str, Any] = {"service_name": name}
        if name == "lab-normalisation":
            doc["mllp_port"] = 0
        doc.update((settings or {}).get(name, {}))
        built = importlib.import_module(f"{package}.app").build(settings_cls(**doc))
        out[name] = built[0] if isinstance(built, tuple) else built
    return out


class Replay:
    """The services' pure transitions over a stream of records, in process (see the module's docstring)."""

    def __init__(
        self,
        services: Mapping[str, Service] | None = None,
        clock: Literal["record", "wall"] = "record",
        roundtrip: bool = False,
        store: bool = True,
        keep: bool = True,
        on_apply: Callable[[str, str, Record, BaseModel], None] | None = None,
        profile: bool = False,
        tape: Tape | None = None,
    ) -> None:
        self.services = dict(services) if services is not None else build_services()
        #: issue 21: the services in `tape.names` are recorded or replayed from a tape (see `Tape`)
        self.tape = tape
        #: the time the services decide at (clock="record": the record being applied)
        self.now = datetime.fromtimestamp(0, UTC)
        self.clock_mode = clock
        if clock == "record":
            for name in CLOCKED & set(self.services):
                self.services[name].clock = self._clock
        self.roundtrip = roundtrip
        #: write each new state as JSON (shared/runtime/aggregate.apply_events, as the runtime); False: the
        #: transitions alone, no JSON and no MAX_STATE_BYTES (the pure decisions' own cost)
        self.store = store or roundtrip
        #: keep every Applied in `applied` (and outputs per service): off for long runs (counts only)
        self.keep = keep
        #: called before each event is applied: (service, patient, record, state before); history benchmarks
        self.on_apply = on_apply
        self.routes: dict[str, list[tuple[str, Subscription]]] = defaultdict(list)
        for name, service in self.services.items():
            for topic, sub in service.subscriptions.items():
                if sub.aggregate is None:
                    raise ValueError(f"{name} handles {topic} outside a patient aggregate: not replayable here")
                self.routes[topic].append((name, sub))
        self.states: dict[tuple[str, str], BaseModel | bytes] = {}
        self.seen: dict[tuple[str, str], set[str]] = defaultdict(set)  #: (service, patient) -> idempotency keys
        #: (due, service, patient) of the deadlines still to fire, and each one's current deadline
        #: (instant in µs, service, patient, deadline as the service gave it) of the deadlines still to fire, and
        #: each slot's current deadline (µs)
        self._dues: list[tuple[int, str, str, datetime]] = []
        self._due_of: dict[tuple[str, str], int] = {}
        #: the last record digested and its digest (a record goes to each service subscribed to it, one after another)
        self._digested: tuple[Record | None, bytes] = (None, b"")
        self.applied: list[Applied] = []
        self.inputs: Counter[str] = Counter()  #: events applied per service
        self.produced: Counter[tuple[str, str]] = Counter()  #: outputs per (service, topic)
        self.dead_letters: Counter[tuple[str, str, str]] = Counter()  #: (service, topic, error type)
        self.reasons: list[tuple[str, str, str]] = []  #: (service, topic, reason) of every dead letter
        self.duplicates: Counter[str] = Counter()
        self.ticks: Counter[str] = Counter()
        #: profile=True: per (service, history bucket) the events applied and their CPU seconds (decode + apply +
        #: store), the bucket of the n-th event of a patient in a service being the power of ten n rounds up to
        #: (an outcome taken from a tape runs none of the service's code: neither timed nor counted here)
        self.profile = profile
        self.cost: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0.0])
        self.lengths: Counter[tuple[str, str]] = Counter()
        self._offset = 0

    def _clock(self) -> datetime:
        return self.now

    # ---- the stream -----------------------------------------------------------------------------------------------
    def feed(self, topic: str, key: str | bytes | None, value: bytes, timestamp_ms: int) -> list[Applied]:
        """One input record: the deadlines due by its time fire first, then it and everything it causes."""
        at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        self.fire_until(at)
        k = key.encode() if isinstance(key, str) else key
        return self._cascade(Record(topic, k, value, timestamp_ms, offset=self._next_offset()))

    def run(self, stream: Iterable[Any], until: datetime | None = None) -> None:
        """Every generated message (devstack.cohort_model.Generated: topic, key, message) in order, then
        `finish(until)`."""
        for g in stream:
            self.feed(g.topic, g.key, g.value(), g.timestamp_ms)
        self.finish(until)

    def finish(self, until: datetime | None = None) -> None:
        """Fire the deadlines due by `until` (default: the time of the last input)."""
        self.fire_until(until or self.now)

    def fire_until(self, at: datetime) -> None:
        fired: Counter[tuple[str, str, int]] = Counter()
        limit = (at - _EPOCH) // _US - _TICK_DELAY_US
        while self._dues and self._dues[0][0] <= limit:
            us, name, patient, due = heapq.heappop(self._dues)
            if self._due_of.get((name, patient)) != us:
                continue  # replaced by a later deadline
            del self._due_of[(name, patient)]
            fired[(name, patient, us)] += 1
            if fired[(name, patient, us)] > MAX_TICKS_AT_ONCE:
                continue
            service = self.services[name]
            fired_at = due + TICK_DELAY  # as Timers.tick: the deadline, and when it fired (after it)
            tick = ClockTick(
                event_id=derived_id("clock", name, patient, due.isoformat(), fired_at.isoformat()),
                patient_id=patient,
                occurred_at=due,
                recorded_at=fired_at,
                source=name,
                service=name,
                due_at=due,
            )
            self.ticks[name] += 1
            record = Record(
                clock_topic(service.name).name,
                patient.encode(),
                tick.model_dump_json().encode(),
                math.ceil(fired_at.timestamp() * 1000),
                offset=self._next_offset(),
            )
            self._cascade(record, only=name)

    def forget(self, patient: str) -> None:
        """Drop a patient's states and pending deadlines (their stream is done)."""
        for name in self.services:
            self.states.pop((name, patient), None)
            self._due_of.pop((name, patient), None)
            self.seen.pop((name, patient), None)
            self.lengths.pop((name, patient), None)

    def state(self, service: str, patient: str) -> BaseModel | None:
        raw = self.states.get((service, patient))
        if raw is None or isinstance(raw, BaseModel):
            return raw
        sub = next(s for n, s in self._all_subs() if n == service)
        assert sub.aggregate is not None
        return sub.aggregate[0].model_validate_json(raw)

    def outputs(self, service: str) -> list[Outgoing]:
        """What `service` published, in order (needs keep=True)."""
        return [o for a in self.applied if a.service == service for o in a.outputs]

    # ---- one record and its consequences ---------------------------------------------------------------------------
    def _next_offset(self) -> int:
        self._offset += 1
        return self._offset

    def _all_subs(self) -> Iterable[tuple[str, Subscription]]:
        for subs in self.routes.values():
            yield from subs

    def _cascade(self, first: Record, only: str | None = None) -> list[Applied]:
        queue = [first]
        done: list[Applied] = []
        i = 0
        while i < len(queue):
            record = queue[i]
            i += 1
            if self.clock_mode == "record":
                self.now = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            for name, sub in self.routes.get(record.topic, ()):
                if only is not None and record is first and name != only:
                    continue
                applied = self._apply(name, sub, record)
                if applied is None:
                    continue
                done.append(applied)
                for out in applied.outputs:
                    queue.append(
                        Record(
                            out.topic,
                            out.key.encode(),
                            out.value.encode(),
                            record.timestamp,
                            offset=self._next_offset(),
                        )
                    )
        if self.keep:
            self.applied += done
        return done

    def _apply(self, name: str, sub: Subscription, record: Record) -> Applied | None:
        tape = self.tape
        if not self.profile or (tape is not None and name in tape.names and not tape.recording):
            return self._applied(name, sub, record)  # a taped outcome runs nothing of the service's: not timed
        t0 = time.process_time()
        applied = self._applied(name, sub, record)
        elapsed = time.process_time() - t0
        if applied is not None:
            slot = (name, (record.key or b"").decode())
            self.lengths[slot] += 1
            n = self.lengths[slot]
            cell = self.cost[(name, 10 ** max(1, math.ceil(math.log10(n))))]
            cell[0] += 1
            cell[1] += elapsed
        return applied

    def _applied(self, name: str, sub: Subscription, record: Record) -> Applied | None:
        tape = self.tape
        if tape is None or (name not in tape.names and name not in tape.recorded):
            return self._effect(name, record, self._take(name, sub, record))
        last, digest = self._digested
        if last is not record:
            digest = record_digest(record)
            self._digested = (record, digest)
        if name in tape.recorded:
            take = self._take(name, sub, record)
            tape.add(name, digest, take)
            return self._effect(name, record, take)
        taken = tape.take(name, digest)  # the base's application of the same record: no decoding, no transition
        return None if taken is None else self._effect(name, record, taken)

    def _take(self, name: str, sub: Subscription, record: Record) -> Take:
        """Apply one record to `name` (decode, checks, idempotency, transition): what it did, as a `Take`."""
        service = self.services[name]
        settings = service.settings
        error = None
        message: Any = None
        if record.value is None:
            error = ("EmptyMessage", "message has no value")
        else:
            error = limits.check_record(record, settings) or limits.check_finite(record)
        if error is None:
            try:
                message = sub.decode(record)
                key = sub.idempotency_key(message)
                error = limits.check_key(record, message)
            except ValidationError as exc:
                error = ("ValidationError", decoding.validation_reason(exc))
            except Rejected as exc:
                error = ("Rejected", str(exc))
            except (ValueError, UnicodeDecodeError) as exc:
                error = (type(exc).__name__, f"cannot decode: {exc}"[:500])
            except Exception as exc:  # as the runtime: a decoder's bug dead-letters the record
                error = (type(exc).__name__, "cannot decode: unexpected error in the decoder")
        if error is not None:
            return ("", error, None, False, False, None, ())
        patient = message.patient_id
        seen = self.seen[(name, patient)]
        if key in seen:
            return (patient, None, None, True, False, None, ())
        seen.add(key)
        partial = getattr(message, "__dict__", {}).get("rejections")
        assert sub.aggregate is not None
        model, transition = sub.aggregate
        slot = (name, patient)
        held = self.states.get(slot)
        state = model() if held is None else model.model_validate_json(held) if isinstance(held, bytes) else held
        if self.on_apply is not None:
            self.on_apply(name, patient, record, state)
        if self.store:  # as the runtime: the state bounded by MAX_STATE_BYTES and written as JSON
            new, dumped, _, results = apply_events(state, [_Event(message, transition)], settings)
            self.states[slot] = dumped if self.roundtrip else new
            _, outputs, failure = results[0]
        else:  # the transition alone (the same outputs while no state passes MAX_STATE_BYTES)
            try:
                new, produced = transition(state, message)
                outputs = [Outgoing.of(o) for o in produced]
                limits.check_outputs(outputs, settings)
                failure = None
            except Exception as exc:
                new, outputs, failure = state, [], exc
            self.states[slot] = new
        due = service.due(new) if service.due is not None else None
        if failure is not None:
            kind = "Rejected" if isinstance(failure, Rejected) else type(failure).__name__
            error = (kind, str(failure)[:500])
            outputs = []
        rejected = "; ".join(partial) if partial else None
        taped = tuple((o.topic, o.key, o.value, o.schema_id) for o in outputs)
        return (patient, error, rejected, False, True, due, taped)

    def _effect(self, name: str, record: Record, take: Take) -> Applied | None:
        """What the replay counts, schedules and passes on for one application (live or taped)."""
        patient, error, rejected, duplicate, ran, due, outputs = take
        if duplicate:
            self.duplicates[name] += 1
            return None
        if rejected is not None:
            self._dead(name, record, ("PartiallyRejected", rejected))
        if ran:
            self.inputs[name] += 1
            if self.services[name].due is not None:
                self._schedule(name, patient, due)
        if error is not None:
            return self._dead(name, record, error)
        outs = [Outgoing(*o) for o in outputs]
        for out in outs:
            self.produced[(name, out.topic)] += 1
        return Applied(name, record, outs)

    def _schedule(self, name: str, patient: str, due: datetime | None) -> None:
        slot = (name, patient)
        if due is None:
            self._due_of.pop(slot, None)
            return
        us = (due - _EPOCH) // _US
        if self._due_of.get(slot) == us:
            return
        self._due_of[slot] = us
        heapq.heappush(self._dues, (us, name, patient, due))

    def _dead(self, name: str, record: Record, error: tuple[str, str]) -> Applied:
        self.dead_letters[(name, record.topic, error[0])] += 1
        self.reasons.append((name, record.topic, error[1]))
        return Applied(name, record, [], error)


@dataclass
class PatientRun:
    """One patient's replay: what each service published, and its dead letters."""

    patient: str
    outputs: dict[str, list[Outgoing]] = field(default_factory=dict)
    dead_letters: list[tuple[str, str, str]] = field(default_factory=list)


def replay_patients(
    streams: Iterable[tuple[str, Iterable[Any]]], replay: Replay, until: datetime | None = None
) -> Iterable[PatientRun]:
    """Each (patient, stream) replayed alone on `replay` (its states dropped afterwards), its deadlines fired up to
    `until` (give the cohort's last publication time, or its `end`, to get what the cohort replayed as one stream
    gives: every state is per patient): what issue 21 compares patient by patient, and a cohort's in-process
    figures without every patient's state in memory."""
    for patient, stream in streams:
        start, reasons = len(replay.applied), len(replay.reasons)
        replay.run(stream, until)
        run = PatientRun(patient, dead_letters=replay.reasons[reasons:])
        for a in replay.applied[start:]:
            if a.outputs:
                run.outputs.setdefault(a.service, []).extend(a.outputs)
        if replay.keep:
            del replay.applied[start:]
        del replay.reasons[reasons:]
        replay.forget(patient)
        yield run
