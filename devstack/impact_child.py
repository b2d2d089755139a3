"""One side of the rule-change impact replay (issue 21): run BY PATH in its own interpreter, never imported.

    python devstack/impact_child.py TREE STREAM OUT [SETTINGS_JSON]

TREE is a materialised revision of the repository (or the working tree); this script puts it first on sys.path and
imports that tree's `devstack/replay.py` and services, so two versions of the same modules never share an
interpreter. STREAM is the event file the parent wrote once (pickled: a header, then one (patient, records) per
patient). OUT receives one JSON line per patient: the canonical form of what the services decided (see
`canonical`), which the parent diffs. Only the standard library is imported before the tree is on the path.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import pickle
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: topics whose outputs the impact compares
RECOMMENDATIONS = "osteocds.recommendations.v1"
ALERTS = "osteocds.alerts.v1"
PLANS = "osteocds.plans.v1"
LOCAL_PLANS = "osteocds.local-plans.v1"
#: inputs kept per decision for the report's examples (event IDs, never values or names)
MAX_INPUTS = 8


def _isolate(tree: Path) -> None:
    """The tree first on sys.path; the editable install's finder (the main checkout) removed."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    sys.path.insert(0, str(tree))
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]


def _no_network() -> None:
    """Issue 21 isolation: a side connects to nothing (no broker, no Redis, no live service): any network connection
    attempted in this process fails loudly (the replay needs none; a service reaching for one is a bug to see)."""
    import socket

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("impact: a replay side must not open a network connection")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _order(o: dict[str, Any]) -> str:
    """A medication order's dose and schedule (contracts/plan.py MedicationOrder)."""
    return (
        f"{o.get('drug')} {o.get('dose')} {o.get('unit')} {o.get('route')} /{o.get('interval')}"
        + (f" x{o['count']}" if o.get("count") is not None else "")
        + (f" {o['duration']}" if o.get("duration") else "")
    )


class _Decision:
    """Everything one decision (a rule about one subject) became over the patient's history."""

    __slots__ = (
        "critical_at",
        "ended_at",
        "final",
        "first",
        "first_at",
        "inputs",
        "kind",
        "last",
        "orders",
        "rule",
        "severities",
        "shown",
        "shown_critical",
        "statuses",
        "subject",
        "texts",
        "title",
        "versions",
    )

    def __init__(self, kind: str, rule: str, subject: str) -> None:
        self.kind, self.rule, self.subject = kind, rule, subject
        self.severities: set[str] = set()
        self.statuses: set[str] = set()
        self.texts: set[str] = set()
        self.orders: set[str] = set()
        self.inputs: dict[str, str] = {}
        self.first = self.last = ""
        self.shown = self.shown_critical = False
        self.final = ""
        self.first_at = ""
        self.critical_at = ""  #: when a version of it was first critical (the decision's input time)
        self.ended_at = ""  #: when an alert was withdrawn for good (empty: still standing at the end)
        self.title = ""
        self.versions = 0

    def add(
        self, severity: str, status: str, text: str, at: str, inputs: list[dict[str, Any]], title: str = ""
    ) -> None:
        self.versions += 1
        self.final = status
        if status in ("withdrawn", "not_indicated") and self.kind == "alert":
            self.ended_at = at
            return  # a withdrawal is said by `final` and `statuses`
        self.ended_at = ""
        self.statuses.add(status)
        self.severities.add(severity)
        self.title = title or self.title
        if severity == "critical" and not self.critical_at:
            self.critical_at = at
        self.texts.add(_h(text))
        if not self.first:
            self.first, self.first_at = text, at
        self.last = text
        for i in inputs:
            if len(self.inputs) < MAX_INPUTS and i.get("source_event_id"):
                self.inputs.setdefault(str(i["source_event_id"]), str(i.get("name")))

    def out(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "subject": self.subject,
            "severities": sorted(self.severities),
            "statuses": sorted(self.statuses),
            "final": self.final,
            "texts": sorted(self.texts),
            "orders": sorted(self.orders),
            "shown": self.shown,
            "shown_critical": self.shown_critical,
            "first": self.first,
            "last": self.last,
            "first_at": self.first_at,
            "critical_at": self.critical_at,
            "ended_at": self.ended_at,
            "title": self.title,
            "inputs": [{"id": k, "name": v} for k, v in self.inputs.items()],
            "versions": self.versions,
        }


def canonical(patient: str, outputs: dict[str, list[Any]], dead: int) -> dict[str, Any]:
    """Per decision (kind|rule|subject): severities, statuses, texts (hashed; first and last in full), orders (dose
    and schedule), whether an alert of it was SHOWN (notification published it: critical at once, others past the
    settle window) and the IDs of the inputs that decided it."""
    found: dict[str, _Decision] = {}
    ids: dict[str, str] = {}  #: recommendation event_id -> its decision

    def get(kind: str, rule: str, subject: str) -> _Decision:
        k = f"{kind}|{rule}|{subject}"
        if k not in found:
            found[k] = _Decision(kind, rule, subject)
        return found[k]

    for service, outs in outputs.items():
        for o in outs:
            if o.topic not in (RECOMMENDATIONS, ALERTS, PLANS, LOCAL_PLANS):
                continue
            v = json.loads(o.value)
            at = str(v.get("recorded_at", ""))
            if o.topic == RECOMMENDATIONS:
                # a withdrawal without a key belongs to the decision it supersedes
                withdrawn = [ids[str(x)] for x in v.get("supersedes", []) if str(x) in ids]
                if v.get("alert_key") is None and v.get("status") == "withdrawn" and withdrawn:
                    d = found[withdrawn[0]]
                else:
                    d = get("alert", v["rule_id"], v.get("alert_key") or f"{service}:{v['title']}")
                ids[str(v["event_id"])] = f"{d.kind}|{d.rule}|{d.subject}"
                d.add(
                    v["severity"], v.get("status", "active"), v["text_fr"], at, v.get("inputs", []), v.get("title", "")
                )
            elif o.topic == ALERTS:
                d = get("alert", v["rule_id"], v.get("alert_key") or f"{v['produced_by']}:{v['title']}")
                if v.get("status") != "withdrawn":
                    d.shown = True
                    d.shown_critical = d.shown_critical or v["severity"] == "critical"
            else:
                items: list[tuple[str, dict[str, Any]]] = []
                if o.topic == PLANS:
                    items = [("plan", i) for i in v.get("items", [])]
                else:
                    for s in v.get("sections", []):
                        items += [(f"local:{s['lesion_id']}", i) for i in s.get("items", [])]
                    items += [("local:patient", i) for i in v.get("patient_items", [])]
                for where, i in items:
                    d = get("plan", i["rule_id"], f"{where}:{i['key']}")
                    d.add(i["severity"], i["status"], i["text_fr"], at, i.get("inputs", []), i.get("title", ""))
                    d.orders.update(_order(x) for x in i.get("orders", []))
    return {"patient": patient, "dead_letters": dead, "decisions": {k: d.out() for k, d in sorted(found.items())}}


def _streams(path: Path) -> tuple[dict[str, Any], Iterator[tuple[str, list[tuple[str, bytes, bytes, int]]]]]:
    f = path.open("rb")
    header = pickle.load(f)

    def rest() -> Iterator[tuple[str, list[tuple[str, bytes, bytes, int]]]]:
        with f:
            for _ in range(header["patients"]):
                yield pickle.load(f)

    return header, rest()


def main(argv: list[str]) -> int:
    """TREE STREAM OUT [OPTIONS_JSON]: options `settings` (the candidate's overrides), `record` (write a tape of the
    `taped` services here) or `replay` (read the base's tape from here; the `taped` services without overrides), and
    with `replay`, `tape_out` (write this side's own complete tape here: every service's applications, so that this
    side's run is a kept base in turn, `_complete`).
    The tape is devstack/replay.py's `Tape` (issue 21, speed); a tree whose replay has none runs every service."""
    tree, stream, out = Path(argv[0]).resolve(), Path(argv[1]), Path(argv[2])
    options: dict[str, Any] = json.loads(argv[3]) if len(argv) > 3 else {}
    _isolate(tree)
    _no_network()
    t0, c0 = time.monotonic(), time.process_time()
    from datetime import UTC, datetime

    import devstack.replay as replay
    import services

    where = Path(services.__file__).resolve()
    if tree not in where.parents:
        raise SystemExit(f"impact: services imported from {where}, not from {tree}")
    settings = _settings(options.get("settings") or {})
    taped = set(options.get("taped") or ()) - set(settings)
    mode = "record" if options.get("record") else "replay" if options.get("replay") else ""
    own = set(replay.MODULES) - taped  # the services this side runs live (its changed ones, or every one)
    # a tree whose Tape goes on past a divergence per service: a patient whose records differ runs again with only
    # the services that diverged live (and those after them), the others from a tape (the base's, or this side's own
    # first run for the services it runs live); an older tree's Tape: every service live again
    again = hasattr(getattr(replay, "Tape", None), "divergent")
    tape = None
    if mode and taped and hasattr(replay, "Tape"):
        tape = (
            replay.Tape(taped, mode == "record", own)
            if again and mode == "replay"
            else replay.Tape(taped, mode == "record")
        )
    built = replay.build_services(settings)
    header, patients = _streams(stream)
    until = datetime.fromtimestamp(header["until_ms"] / 1000, UTC)
    store = bool(header.get("store"))
    extra: dict[str, Any] = {"tape": tape} if tape else {}  # a tree whose replay has no Tape: not given
    r = replay.Replay(built, store=store, profile=True, **extra)
    live = None
    if tape is not None and mode == "replay" and not again:  # a patient whose records differ: every service live
        live = replay.Replay(replay.build_services(settings), store=store, profile=True)
    # issue 21 (speed, stop 36): the gate, when the base taped the services this side runs live (see `_same_as_base`)
    gate = None
    upstream = _upstream(own, set(replay.MODULES)) if tape is not None and mode == "replay" and again else None
    if upstream is not None and own <= set(options.get("base_taped") or ()) and options.get("base_out"):
        gate = replay.Replay(replay.build_services(settings, names=sorted(upstream)), store=store, profile=True)
    _collector_as_the_runtime()
    start = time.monotonic() - t0  # the tree's imports (compiled on first use) and the services built

    class _Rec:
        __slots__ = ("_v", "key", "timestamp_ms", "topic")

        def __init__(self, topic: str, key: bytes, value: bytes, ts: int) -> None:
            self.topic, self.key, self._v, self.timestamp_ms = topic, key, value, ts

        def value(self) -> bytes:
            return self._v

    # issue 21 (speed, stop 37): this side's complete tape, kept as a base (devstack/impact_sides.py `keep_complete`)
    complete = bool(options.get("tape_out")) and tape is not None and mode == "replay" and again
    n = reruns = applications = same = whole_applications = 0
    live_again: dict[str, int] = dict.fromkeys(sorted(replay.MODULES), 0)  #: per service, patients it ran again
    with contextlib.ExitStack() as files:
        f = files.enter_context(out.open("w", encoding="utf-8"))
        tape_in = files.enter_context(Path(options["replay"]).open("rb")) if tape and mode == "replay" else None
        tape_out = files.enter_context(Path(options["record"]).open("wb")) if tape and mode == "record" else None
        base_lines = files.enter_context(Path(options["base_out"]).open(encoding="utf-8")) if gate else None
        whole = files.enter_context(Path(options["tape_out"]).open("wb")) if complete else None
        for patient, recs in patients:
            stream_ = [_Rec(*x) for x in recs]
            entries: dict[str, Any] = {}
            if tape is not None and tape_in is not None:
                taped_patient, blob = pickle.load(tape_in)
                if taped_patient != patient:
                    raise SystemExit(f"impact: the base's tape is for {taped_patient}, not {patient}")
                entries = pickle.loads(zlib.decompress(blob))
                if gate is not None and base_lines is not None:
                    line = base_lines.readline()
                    if not line.startswith(json.dumps({"patient": patient}, ensure_ascii=False)[:-1] + ","):
                        raise SystemExit(f"impact: the base's outputs are not in the order of the stream at {patient}")
                    alike, done = _same_as_base(replay, gate, own, entries, patient, stream_, until)
                    applications += done
                    if alike:  # the base's canonical outputs are this side's: written as they are
                        f.write(line if line.endswith("\n") else line + "\n")
                        if whole is not None:  # and so is every application: the base's tape as it is
                            pickle.dump((patient, blob), whole, protocol=pickle.HIGHEST_PROTOCOL)
                            whole_applications += sum(len(e) for e in entries.values())
                        n += 1
                        same += 1
                        continue
                tape.start(entries)
            elif tape is not None:
                tape.start()
            before = sum(r.inputs.values())
            (run,) = replay.replay_patients([(patient, stream_)], r, until)
            done = sum(r.inputs.values()) - before
            if tape is not None and tape_out is not None:
                # compressed (level 6: ~1.2 MB of JSON per patient to ~0.1 MB, ~8 ms)
                blob = zlib.compress(pickle.dumps(tape.entries, protocol=pickle.HIGHEST_PROTOCOL), 6)
                pickle.dump((patient, blob), tape_out, protocol=pickle.HIGHEST_PROTOCOL)
            if tape is not None and live is not None and not tape.consumed():
                reruns += 1  # its records to a taped service differ: every service live for this patient
                before = sum(live.inputs.values())
                (run,) = replay.replay_patients([(patient, stream_)], live, until)
                done = sum(live.inputs.values()) - before
            elif tape is not None and again and tape_in is not None and tape.divergent():
                reruns += 1
                run, done, last = _again(replay, r, tape, entries, own, patient, stream_, until, live_again)
                if whole is not None:
                    whole_applications += _complete(whole, patient, last.entries)
            elif whole is not None and tape is not None:  # every tape taken whole, this side's services recorded
                whole_applications += _complete(whole, patient, tape.entries)
            applications += done
            f.write(json.dumps(canonical(run.patient, run.outputs, len(run.dead_letters)), ensure_ascii=False))
            f.write("\n")
            n += 1
    cost = {name: 0.0 for name in sorted(r.services)}
    for rep in (r, *(x for x in (live, gate) if x is not None)):
        for (name, _), c in rep.cost.items():
            cost[name] += c[1]
    stats = {
        "patients": n,
        "applications": applications,
        "cpu_s": round(time.process_time() - c0, 2),
        "wall_s": round(time.monotonic() - t0, 2),
        "start_s": round(start, 2),
        "settings": settings,
        "taped": sorted(taped) if tape is not None else [],
        "reruns": reruns,
        "same_as_base": same,
        "live_again": live_again,
        "cpu_by_service": {name: round(v, 2) for name, v in cost.items()},
        "outside": _outside(tree, options.get("base_code") or []),
        "complete_tape": complete,
        "complete_applications": whole_applications,  #: in the complete tape: every service's, as a base counts
    }
    out.with_suffix(".stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return 0


#: the runtime's young-generation threshold (shared/settings.py `gc_young_threshold`) for a tree that has none
GC_YOUNG = 50_000


def _collector_as_the_runtime() -> None:
    """The garbage collector as a service runs it (shared/runtime/service.py `_tune_gc`, issue 25): what exists once
    the services are built leaves the collector's generations, and the youngest is collected every
    `gc_young_threshold` allocations (the tree's default) instead of Python's 700. Both sides run this same file, so
    both get it whatever their revision (issue 21, speed: -15 to -20 % CPU per patient, stop 36)."""
    from shared.settings import Settings

    field = Settings.model_fields.get("gc_young_threshold")
    young = field.default if field is not None and isinstance(field.default, int) else GC_YOUNG
    if young <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def _upstream(own: set[str], names: set[str]) -> set[str] | None:
    """`own` and every service whose outputs reach them, from the tree's topic registry (contracts/topics.py
    `TOPICS`: each topic's producers and consumers); None for a tree without it."""
    try:
        from contracts.topics import TOPICS
    except ImportError:
        return None
    feeds: dict[str, set[str]] = {}  #: consumer -> the services producing one of its topics
    for topic in TOPICS:
        for consumer in getattr(topic, "consumers", ()):
            feeds.setdefault(consumer, set()).update(p for p in getattr(topic, "producers", ()) if p in names)
    found, todo = set(own), list(own)
    while todo:
        for producer in feeds.get(todo.pop(), ()):
            if producer not in found:
                found.add(producer)
                todo.append(producer)
    return found


def _same_as_base(
    replay: Any, gate: Any, own: set[str], base: dict[str, Any], patient: str, stream: list[Any], until: Any
) -> tuple[bool, int]:
    """Issue 21 (speed): the patient through this side's live services and those upstream of them only (`gate`,
    the upstream ones from the base's tape); True when each live service did exactly what the base taped for it,
    record by record (digest and `Take`: the same outputs, dead letters and deadlines), and every taped one took its
    whole tape, and no service outside the gate published for this patient, in the base's run, on a topic a service of
    the gate reads. Then every service downstream receives the base's records, in the base's order: same code, same
    records, so the same outputs; the patient's canonical outputs are the base's, and nothing downstream is run or
    taken from a tape. Else (False) the patient runs as before (HAZ-21-04: the tape, then `_again`)."""
    tape = replay.Tape(set(gate.services) - own, False, own)
    tape.start(base)
    gate.tape = tape
    before = sum(gate.inputs.values())
    (_,) = replay.replay_patients([(patient, stream)], gate, until)
    done = sum(gate.inputs.values()) - before
    alike = tape.consumed() and all(tape.entries.get(name, []) == base.get(name, []) for name in own)
    if alike:
        # review R36-GATE: the upstream services come from the registry, which the candidate's services need not
        # match (a subscription it added): a topic one of the gate's services reads that a service outside the gate
        # published for this patient in the base's run sends the patient through the full run
        heard = set(gate.routes)
        outside = (take for name, e in base.items() if name not in gate.services for _, take in e)
        alike = not any(out[0] in heard for take in outside for out in take[6])
    return alike, done


def _again(
    replay: Any,
    r: Any,
    first: Any,
    base: dict[str, Any],
    own: set[str],
    patient: str,
    stream: list[Any],
    until: Any,
    live_again: dict[str, int],
) -> tuple[Any, int, Any]:
    """A patient whose records to some taped services differed from the base's (HAZ-21-04): run again with those
    services live from the start, every other one from a tape (the base's for the services this side shares with it,
    this side's first run for those it ran live); a tape that differs again adds its service to the live ones, until
    a run takes every tape whole (at most one run per service). A tape is only taken for the same code and the same
    records, digest by digest: the outputs are those of a run with every service live. The live services are recorded
    as well: the last run's tape holds every service's applications (`_complete`)."""
    # this side's own services from its first run (one that applied nothing: an empty tape, never the base's)
    tapes = {name: e for name, e in base.items() if name not in own} | {n: first.entries.get(n, []) for n in own}
    live: set[str] = set()
    divergent = first.divergent()
    try:
        while divergent:
            live |= divergent
            tape = replay.Tape((set(replay.MODULES) - live), False, live)
            tape.start(tapes)
            r.tape = tape
            before = sum(r.inputs.values())
            (run,) = replay.replay_patients([(patient, stream)], r, until)
            divergent = tape.divergent()
    finally:
        r.tape = first
    for name in live:
        live_again[name] += 1
    return run, sum(r.inputs.values()) - before, tape


def _complete(out: Any, patient: str, entries: dict[str, Any]) -> int:
    """One patient's complete tape (issue 21, speed): every service's applications, as a base records them (a tape
    taken whole is what this side's service would have recorded: same code, same records, digest by digest), so that
    this side is kept as a base and later runs against it replay it (devstack/impact_sides.py `derive_base`). Its
    number of applications."""
    kept = {name: e for name, e in entries.items() if e}
    blob = zlib.compress(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL), 6)
    pickle.dump((patient, blob), out, protocol=pickle.HIGHEST_PROTOCOL)
    return sum(len(e) for e in kept.values())


def _outside(tree: Path, code: list[str]) -> list[str]:
    """The tree's modules this side ran from outside `code` (the paths a cached base is keyed on, devstack/impact.py
    BASE_CODE; installed packages and this script aside): a base that ran one is not cached."""
    if not code:
        return []
    found, prefix = set(), Path(sys.prefix).resolve()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or "site-packages" in path:
            continue
        where = Path(path).resolve()
        if tree not in where.parents or where == Path(__file__).resolve() or prefix in where.parents:
            continue
        rel = where.relative_to(tree).as_posix()
        if not any(rel == c or rel.startswith(c + "/") for c in code):
            found.add(rel)
    return sorted(found)


def _settings(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{service: {field: value}}`, and env-style names (`CALCIUM_CURRENT_HOURS`) applied to every service whose
    settings class has that field (shared/settings.py reads the environment the same way); an unknown name fails."""
    import importlib

    from devstack.replay import MODULES

    fields: dict[str, set[str]] = {}
    for name, (package, cls) in MODULES.items():
        fields[name] = set(getattr(importlib.import_module(f"{package}.settings"), cls).model_fields)
    out: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if key in fields:
            if not isinstance(value, dict) or not set(value) <= fields[key]:
                raise SystemExit(f"impact: settings for {key}: unknown fields {sorted(set(value) - fields[key])}")
            out.setdefault(key, {}).update(value)
            continue
        field = key.lower()
        hits = [s for s, names in fields.items() if field in names]
        if not hits:
            raise SystemExit(f"impact: no service has a setting {key}")
        for s in hits:
            out.setdefault(s, {})[field] = value
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
