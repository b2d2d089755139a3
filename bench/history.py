"""Per-event cost against one patient's history length, per service (issue 25: flat cost per event, bounded state).

    .venv/bin/python bench/history.py [--lengths 10,100,1000,10000] [--window 50] [--repeats 5] [--seed 1]
        [--services scoring]

Pure and in process: nothing external is started. Times are CPU time of this process (`time.process_time`), so
that the figures hold on a shared, loaded host. One patient's long history (devstack/cohort.py
`patient_history`, a denser-than-realistic stream over 10 years) is replayed through the five services
(devstack/replay.py); each service's own input stream for that patient (hospital inputs, the upstream services'
outputs, its clock ticks) is recorded, with the service's state as JSON just before its 10th, 100th, 1 000th and
10 000th event. Then, per service and per length n, from that state: the time per event of decode + apply + store
(`model_dump_json()` of the new state) over the next `window` events of its stream (best of `repeats`), the load
(`model_validate_json` of the stored state) and the first store after it (the runtime parses a patient's state, and
makes its parts' JSON, once per process: shared/runtime/parsed.py) timed separately, and the state's size. A
realistic 5-year patient (density 1) is replayed too, for its final state size per service (the bound: 64 KB).

Prints a table per service, then per service `RESULT name=history-<service> value=<us per event at the longest
length> unit=us baseline=<us per event at the shortest> ratio=<value/baseline>` (issue 25: ratio <= 1.5) and
`RESULT name=state-<service> value=<state bytes at the longest length> unit=B baseline=65536 ratio=...`, and last
`RESULT name=history value=<worst ratio> unit=x baseline=1.5 ratio=<worst/1.5>`.
While the services keep every event, their cost per event grows with the history: `--budget` (seconds) stops the
recording pass when it runs out and reports the lengths reached.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from contracts.topics import SERVICES
from devstack.cohort import ANCHOR, patient_history
from devstack.replay import Record, Replay, build_services
from shared.runtime.kafka import Outgoing

#: who consumes whose outputs: a service is dropped from the recording pass once its stream is long enough and no
#: service still recording needs its outputs
UPSTREAM = {
    "lab-normalisation": (),
    "scoring": ("lab-normalisation",),
    "systemic-planner": ("lab-normalisation", "scoring"),
    "radiotherapy-planner": ("lab-normalisation", "scoring"),
    "notification": ("lab-normalisation", "scoring", "systemic-planner", "radiotherapy-planner"),
}
#: lab-normalisation's share of a long history's messages (~0.55): how long a history to generate
LAB_SHARE = 0.5


@dataclass
class Stream:
    """One service's input records for the patient, and its state (JSON) before the n-th event for each n."""

    records: list[Record] = field(default_factory=list)
    states: dict[int, bytes] = field(default_factory=dict)


@dataclass
class Row:
    length: int
    apply_us: float  #: decode + apply + store, per event
    load_us: float  #: model_validate_json of the state
    state_bytes: int
    first_store_us: float = 0.0  #: the first store after a load (every part's JSON made once), not per event
    #: per input topic: (events of that topic in the window, best us per event of that topic): the windows' mixes
    #: differ (a long history holds more lesions, so more imaging per lab), so a kind's own cost is shown apart
    by_kind: dict[str, tuple[int, float]] = field(default_factory=dict)


def record(
    lengths: Sequence[int], window: int, seed: int, budget: float, only: Sequence[str] = SERVICES
) -> tuple[Replay, dict[str, Stream]]:
    """The recording pass: the streams of the services `only` and their upstream, to max(lengths) + window events."""
    wanted = max(lengths) + window
    streams = {name: Stream() for name in SERVICES}
    replay: Replay

    def on_apply(service: str, patient: str, rec: Record, state: BaseModel) -> None:
        s = streams[service]
        n = len(s.records)
        if n in lengths:
            s.states[n] = state.model_dump_json().encode()
        if n < wanted:
            s.records.append(rec)

    replay = Replay(keep=False, on_apply=on_apply, store=False)  # the states are dumped where measured
    history = patient_history(seed, int(wanted / LAB_SHARE) + 500)
    t0 = time.perf_counter()
    active = set(only) | {up for name in only for up in UPSTREAM[name]}
    for topic in list(replay.routes):  # a service neither measured nor upstream of one is not run
        replay.routes[topic] = [(n, sub) for n, sub in replay.routes[topic] if n in active]
    for i, g in enumerate(history):
        replay.feed(g.topic, g.key, g.value(), g.timestamp_ms)
        done = {name for name in active if len(streams[name].records) >= wanted}
        if done:
            needed = {up for name in active - done for up in UPSTREAM[name]}
            for name in done - needed:
                active.discard(name)
                for topic in list(replay.routes):
                    replay.routes[topic] = [(n, sub) for n, sub in replay.routes[topic] if n != name]
        if not active:
            break
        if time.perf_counter() - t0 > budget:
            print(f"recording stopped by --budget {budget:.0f} s after {i + 1} hospital messages")
            break
        if (i + 1) % 1000 == 0:
            reached = ", ".join(f"{n} {len(streams[n].records)}" for n in SERVICES)
            print(f"  {i + 1} hospital messages, {time.perf_counter() - t0:.0f} s: {reached}", flush=True)
    return replay, streams


def measure(replay: Replay, name: str, stream: Stream, window: int, repeats: int) -> list[Row]:
    """Per length: best-of-`repeats` time per event over the next `window` events from the recorded state."""
    service = replay.services[name]
    rows = []
    for n, raw in sorted(stream.states.items()):
        records = stream.records[n : n + window]
        if len(records) < window:
            continue
        aggregate = next(iter(service.subscriptions.values())).aggregate
        assert aggregate is not None
        model = aggregate[0]
        loads = []
        for _ in range(repeats):
            t = time.process_time()
            model.model_validate_json(raw)
            loads.append(time.process_time() - t)
        best, first = float("inf"), float("inf")
        kinds: dict[str, float] = {}
        counts = Counter(rec.topic for rec in records)
        for _ in range(repeats):
            state = model.model_validate_json(raw)
            # the runtime keeps the states it parsed or wrote between batches (shared/runtime/parsed.py), so a
            # patient's state is parsed, and its parts' JSON made (the stored JSON reuses it), once per process:
            # timed apart, as the load is
            t = time.process_time()
            state.model_dump_json()
            first = min(first, time.process_time() - t)
            gc.collect()
            elapsed = 0.0
            per_topic: dict[str, float] = {}
            for rec in records:
                replay.now = datetime.fromtimestamp(rec.timestamp / 1000, UTC)  # the services' clock (replay.py)
                sub = service.subscriptions[rec.topic]
                assert sub.aggregate is not None
                t = time.process_time()
                message = sub.decode(rec)
                try:
                    state, outputs = sub.aggregate[1](state, message)
                    for o in outputs:
                        Outgoing.of(o)
                except Exception:  # a refused event leaves the state as it was (as the runtime)
                    pass
                state.model_dump_json()
                spent = time.process_time() - t
                elapsed += spent
                per_topic[rec.topic] = per_topic.get(rec.topic, 0.0) + spent
            best = min(best, elapsed / len(records))
            for topic, spent in per_topic.items():
                kinds[topic] = min(kinds.get(topic, float("inf")), spent / counts[topic])
        by_kind = {topic: (counts[topic], kinds[topic] * 1e6) for topic in sorted(counts)}
        rows.append(Row(n, best * 1e6, min(loads) * 1e6, len(raw), first * 1e6, by_kind))
    return rows


def realistic_state_sizes(seed: int) -> dict[str, int]:
    """Each service's state after a realistic 5-year patient (density 1), in bytes of JSON."""
    replay = Replay(build_services(), keep=False)
    history = patient_history(seed, 10**6, years=5, density=1.0)
    replay.run(history)
    patient = history[0].key
    out = {}
    for name in SERVICES:
        state = replay.state(name, patient)
        out[name] = 0 if state is None else len(state.model_dump_json().encode())
    return out


def short(topic: str) -> str:
    """A topic's short name in the by-kind lines: `osteocds.labs.normalised.v1` -> `labs.normalised`."""
    parts = topic.split(".")
    return ".".join(parts[1:-1]) if len(parts) >= 3 else topic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="10,100,1000,10000")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=900, help="seconds for the recording pass")
    parser.add_argument("--services", default=",".join(SERVICES), help="the services measured, comma-separated")
    args = parser.parse_args()
    lengths = sorted(int(x) for x in args.lengths.split(","))
    only = [name for name in SERVICES if name in args.services.split(",")]
    print(
        f"history bench at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, patient seed {args.seed}, anchor {ANCHOR:%Y-%m-%d}"
    )
    t0 = time.perf_counter()
    replay, streams = record(lengths, args.window, args.seed, args.budget, only)
    # the recorded streams (every service's inputs and states) are the bench's heap, not a service's: left out of the
    # garbage collector's passes, so that a window's collections cost what the service's own objects cost
    gc.collect()
    gc.freeze()
    print(f"recording pass: {time.perf_counter() - t0:.1f} s")
    sizes = realistic_state_sizes(args.seed)
    results: list[str] = []
    worst = 0.0
    for name in only:
        rows = measure(replay, name, streams[name], args.window, args.repeats)
        print(f"\n{name} (window {args.window} events, best of {args.repeats}; {len(streams[name].records)} recorded)")
        print(f"  {'events':>7} {'us/event':>10} {'load us':>10} {'1st store':>10} {'state B':>10}")
        for r in rows:
            store = r.first_store_us
            print(f"  {r.length:>7} {r.apply_us:>10.1f} {r.load_us:>10.1f} {store:>10.1f} {r.state_bytes:>10}")
        for r in rows:  # each kind's own cost (events in the window x us per event)
            kinds = ", ".join(f"{short(t)} {c} x {us:.0f}" for t, (c, us) in r.by_kind.items())
            print(f"  {r.length:>7} by kind: {kinds}")
        print(f"  state after a realistic 5-year patient: {sizes[name]} B")
        if len(rows) >= 2:
            first, last = rows[0], rows[-1]
            ratio = last.apply_us / first.apply_us
            worst = max(worst, ratio)
            print(f"  ratio {last.length} / {first.length} events: {ratio:.2f}")
            results.append(
                f"RESULT name=history-{name} value={last.apply_us:.1f} unit=us baseline={first.apply_us:.1f} "
                f"ratio={ratio:.3f}"
            )
            results.append(
                f"RESULT name=state-{name} value={last.state_bytes} unit=B baseline=65536 "
                f"ratio={last.state_bytes / 65536:.3f}"
            )
    print()
    for line in results:
        print(line)
    print(f"RESULT name=history value={worst:.3f} unit=x baseline=1.5 ratio={worst / 1.5:.3f}")


if __name__ == "__main__":
    main()
