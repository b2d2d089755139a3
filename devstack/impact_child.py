"""One side of the rule-change impact replay (issue 21): run BY PATH in its own interpreter, never imported.

    python devstack/impact_child.py TREE STREAM OUT [SETTINGS_JSON]

TREE is a materialised revision of the repository (or the working tree); this script puts it first on sys.path and
imports that tree's `devstack/replay.py` and services, so two versions of the same modules never share an
interpreter. STREAM is the event file the parent wrote once (pickled: a header, then one (patient, records) per
patient). OUT receives one JSON line per patient: the canonical form of what the services decided (see
`canonical`), which the parent diffs. Only the standard library is imported before the tree is on the path.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import time
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
        self.versions = 0

    def add(self, severity: str, status: str, text: str, at: str, inputs: list[dict[str, Any]]) -> None:
        self.versions += 1
        self.final = status
        if status in ("withdrawn", "not_indicated") and self.kind == "alert":
            return  # a withdrawal is said by `final` and `statuses`
        self.statuses.add(status)
        self.severities.add(severity)
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
                d.add(v["severity"], v.get("status", "active"), v["text_fr"], at, v.get("inputs", []))
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
                    d.add(i["severity"], i["status"], i["text_fr"], at, i.get("inputs", []))
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
    tree, stream, out = Path(argv[0]).resolve(), Path(argv[1]), Path(argv[2])
    overrides: dict[str, Any] = json.loads(argv[3]) if len(argv) > 3 else {}
    _isolate(tree)
    t0, c0 = time.monotonic(), time.process_time()
    from datetime import UTC, datetime

    import devstack.replay as replay
    import services

    where = Path(services.__file__).resolve()
    if tree not in where.parents:
        raise SystemExit(f"impact: services imported from {where}, not from {tree}")
    settings = _settings(overrides)
    start = time.monotonic() - t0  # the tree's imports (compiled on first use) and the services built
    header, patients = _streams(stream)
    until = datetime.fromtimestamp(header["until_ms"] / 1000, UTC)
    r = replay.Replay(replay.build_services(settings), store=bool(header.get("store")), profile=True)

    class _Rec:
        __slots__ = ("_v", "key", "timestamp_ms", "topic")

        def __init__(self, topic: str, key: bytes, value: bytes, ts: int) -> None:
            self.topic, self.key, self._v, self.timestamp_ms = topic, key, value, ts

        def value(self) -> bytes:
            return self._v

    streams = ((p, [_Rec(*x) for x in recs]) for p, recs in patients)
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for run in replay.replay_patients(streams, r, until):
            f.write(json.dumps(canonical(run.patient, run.outputs, len(run.dead_letters)), ensure_ascii=False))
            f.write("\n")
            n += 1
    stats = {
        "patients": n,
        "applications": sum(r.inputs.values()),
        "cpu_s": round(time.process_time() - c0, 2),
        "wall_s": round(time.monotonic() - t0, 2),
        "start_s": round(start, 2),
        "settings": settings,
        "cpu_by_service": {
            name: round(sum(c[1] for (n, _), c in r.cost.items() if n == name), 2) for name in sorted(r.services)
        },
    }
    out.with_suffix(".stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return 0


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
