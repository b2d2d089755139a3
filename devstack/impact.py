"""Rule-change impact replay (issue 21): which patients' advice a rule or setting change would alter, before it goes
live. Development tooling: services never import it.

    ./osteocds impact --base HEAD~1 --candidate WORKTREE [--settings FILE] [--patients N] [--years Y] [--seed S]
                      [--from-topics] [--json FILE]
    ./osteocds impact --ci          # CI: HEAD~1 -> HEAD on a small cohort when a rule or setting file changed

Each side (a git revision, `WORKTREE` for the working tree, or a directory holding a tree) is materialised with
`git archive` into a temporary directory and run in its own Python process (devstack/impact_child.py, by path)
that imports that tree's devstack/replay.py and services, so two versions of the same modules never share an
interpreter; base and candidate run in parallel (two cores). Both read the SAME event stream, written once by this
process: a generated cohort (devstack/cohort.py of the tree running this command), or with --from-topics the
hospital input topics' retained history read with a group-less consumer (nothing published, no offsets committed,
no Redis). `--settings FILE` (YAML or JSON): setting overrides for the candidate's services, `{service: {field:
value}}` or env-style names (`CALCIUM_CURRENT_HOURS: 48`) applied to every service that has that setting. The
children run with an environment free of the live settings (only PATH, HOME, LANG): each side uses its tree's
defaults. The report (devstack/impact_report.py): French text on stdout, JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

from devstack import impact_report

ROOT: Final = Path(__file__).resolve().parents[1]
CHILD: Final = Path(__file__).resolve().parent / "impact_child.py"
WORKTREE: Final = "WORKTREE"
#: the files whose change runs the CI impact step: rules, decision modules and setting defaults of the five services,
#: the shared clinical context, the rule catalogue (not: the apps' wiring, HTTP, static pages)
RULE_FILES: Final = (
    "services/*/rules*",
    "services/*/rules/*",
    "services/*/domain*",
    "services/*/settings.py",
    "services/scoring/*.py",
    "services/systemic_planner/*.py",
    "services/radiotherapy_planner/*.py",
    "services/lab_normalisation/rules.py",
    "services/lab_normalisation/units.py",
    "services/lab_normalisation/loinc.py",
    "services/lab_normalisation/local_codes.yaml",
    "shared/settings.py",
    "shared/clinical/*",
    "contracts/rules.py",
)
NOT_RULE_FILES: Final = ("*/app.py", "*/__main__.py", "*/__init__.py")
#: the CI cohort: small enough for ~1 minute on the 2-core CI machine (README "Rule-change impact")
CI_PATIENTS: Final = 40
CI_YEARS: Final = 2.0
HAZARD_LOG: Final = "docs/hazard-log.md"


def git(*args: str, repo: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def describe(ref: str, repo: Path) -> str:
    if ref == WORKTREE or Path(ref).is_dir():
        return ref
    return f"{ref} ({git('rev-parse', '--short', ref, repo=repo)})"


def materialise(ref: str, repo: Path, into: Path) -> Path:
    """The tree of `ref`: the working tree itself for WORKTREE, a directory as given, else `git archive` of the
    revision extracted under `into` (nothing in the repository changes)."""
    if ref == WORKTREE:
        return repo
    if Path(ref).is_dir():
        return Path(ref).resolve()
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}", repo=repo)
    dest = into / commit[:12]
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
    if p.returncode:
        raise SystemExit(f"impact: git archive {ref} failed")
    if not (dest / "devstack" / "replay.py").exists():
        raise SystemExit(f"impact: {ref} has no devstack/replay.py (issue 25): too old to replay")
    return dest


def changed_files(base: str, candidate: str, repo: Path) -> list[str]:
    if candidate == WORKTREE:
        return git("diff", "--name-only", base, repo=repo).splitlines()
    return git("diff", "--name-only", base, candidate, repo=repo).splitlines()


def rule_files(paths: list[str]) -> list[str]:
    return [
        p
        for p in paths
        if any(fnmatch.fnmatch(p, g) for g in RULE_FILES) and not any(fnmatch.fnmatch(p, g) for g in NOT_RULE_FILES)
    ]


# ---- the event stream, written once ------------------------------------------------------------------------------
def write_cohort(path: Path, seed: int, patients: int, years: float, store: bool, sample: int = 1) -> dict[str, Any]:
    """The cohort's patients (1 in `sample`: patient i for i a multiple of it), each one's stream in order."""
    from devstack.cohort import Cohort

    cohort = Cohort(seed, patients, years)
    events = 0
    chosen = range(0, patients, sample)
    with path.open("wb") as f:
        header = {"patients": len(chosen), "until_ms": round(cohort.end.timestamp() * 1000), "store": store}
        pickle.dump(header, f)
        for i in chosen:
            recs = [(g.topic, g.key.encode(), g.value(), g.timestamp_ms) for g in cohort.patient(i)]
            events += len(recs)
            pickle.dump((cohort.patient_id(i), recs), f)
    part = f", 1 patient sur {sample} ({len(chosen)})" if sample > 1 else ""
    source = f"cohorte de {patients} patients x {years:g} ans (graine {seed}{part})"
    return {"source": source, "events": events} | header


def write_topics(path: Path, store: bool, timeout_s: float = 60.0) -> dict[str, Any]:
    """The hospital input topics' retained history, per patient in publication order (group-less consumer)."""
    streams = asyncio.run(_read_topics(timeout_s))
    until = max((r[3] for recs in streams.values() for r in recs), default=0)
    with path.open("wb") as f:
        header = {"patients": len(streams), "until_ms": until, "store": store}
        pickle.dump(header, f)
        for patient in sorted(streams):
            pickle.dump((patient, sorted(streams[patient], key=_published)), f)
    events = sum(len(v) for v in streams.values())
    return {"source": f"historique retenu des topics d'entrée ({len(streams)} patients)", "events": events} | header


def _published(record: tuple[str, bytes, bytes, int]) -> tuple[int, str]:
    """Publication order: the record's timestamp, then (same millisecond, another topic) the message's recorded_at."""
    try:
        recorded = str(json.loads(record[2]).get("recorded_at", ""))
    except (ValueError, AttributeError):
        recorded = ""
    return record[3], recorded


async def _read_topics(timeout_s: float) -> dict[str, list[tuple[str, bytes, bytes, int]]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from contracts.topics import HOSPITAL_BUS, TOPICS
    from shared.settings import Settings
    from shared.transport import kafka_client_kwargs

    settings = Settings(service_name="impact")
    topics = [t.name for t in TOPICS if HOSPITAL_BUS in t.producers]
    consumer = AIOKafkaConsumer(
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **kafka_client_kwargs(settings)
    )
    out: dict[str, list[tuple[str, bytes, bytes, int]]] = defaultdict(list)
    await consumer.start()
    try:
        known = await consumer.topics()  # fetches the metadata partitions_for_topic reads
        parts = [
            TopicPartition(t, p) for t in topics if t in known for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise SystemExit("impact: the input topics were not read to their end in time")
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    if r.offset < ends[tp] and r.key is not None and r.value is not None:
                        out[r.key.decode()].append((tp.topic, r.key, r.value, r.timestamp))
    finally:
        await consumer.stop()
    return out


# ---- the two sides ----------------------------------------------------------------------------------------------
def run_sides(trees: dict[str, Path], stream: Path, work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Base and candidate in parallel, each in its own interpreter on its own tree; their canonical outputs."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONHASHSEED"] = "0"
    procs = {}
    for side, tree in trees.items():
        args = [sys.executable, str(CHILD), str(tree), str(stream), str(work / f"{side}.jsonl")]
        if side == "candidate" and settings:
            args.append(json.dumps(settings))
        procs[side] = subprocess.Popen(args, cwd=tree, env=env | {"PYTHONPATH": str(tree)}, stderr=subprocess.PIPE)
    errors = {}
    for side, p in procs.items():
        _, err = p.communicate()
        if p.returncode:
            errors[side] = err.decode(errors="replace")[-3000:]
    if errors:
        raise SystemExit("impact: " + "; ".join(f"{s} failed:\n{e}" for s, e in errors.items()))
    return {side: json.loads((work / f"{side}.stats.json").read_text()) for side in trees}


def impact(
    base: str,
    candidate: str,
    *,
    repo: Path = ROOT,
    settings: dict[str, Any] | None = None,
    patients: int = 200,
    years: float = 2.0,
    seed: int = 1,
    from_topics: bool = False,
    store: bool = False,
    sample: int = 1,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Run both sides and diff them: (the JSON report, the French text, each side's hazard log). The temporary
    directory (trees, stream, outputs) is removed before returning."""
    work = Path(tempfile.mkdtemp(prefix="osteocds-impact-"))
    try:
        return _impact(base, candidate, repo, settings or {}, patients, years, seed, from_topics, store, sample, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _impact(
    base: str,
    candidate: str,
    repo: Path,
    settings: dict[str, Any],
    patients: int,
    years: float,
    seed: int,
    from_topics: bool,
    store: bool,
    sample: int,
    work: Path,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    t0 = time.monotonic()
    timing: dict[str, float] = {}
    trees = {"base": materialise(base, repo, work / "trees"), "candidate": materialise(candidate, repo, work / "trees")}
    timing["trees_s"] = time.monotonic() - t0
    stream = work / "stream.pickle"
    source = write_topics(stream, store) if from_topics else write_cohort(stream, seed, patients, years, store, sample)
    timing["stream_s"] = time.monotonic() - t0 - sum(timing.values())
    stats = run_sides(trees, stream, work, settings)
    timing["sides_s"] = time.monotonic() - t0 - sum(timing.values())
    report = impact_report.diff(
        impact_report.read_side(work / "base.jsonl"), impact_report.read_side(work / "candidate.jsonl")
    )
    timing["diff_s"] = time.monotonic() - t0 - sum(timing.values())
    head = {
        "base": describe(base, repo),
        "candidate": describe(candidate, repo),
        "settings": settings,
        "source": source["source"],
        "events": source["events"],
        "wall_s": time.monotonic() - t0,
        "cpu_s": {s: stats[s]["cpu_s"] for s in stats},
        "applications": {s: stats[s]["applications"] for s in stats},
        "cpu_by_service": {s: stats[s].get("cpu_by_service", {}) for s in stats},
        "timing": {k: round(v, 2) for k, v in timing.items()}
        | {f"{s}_{k}": stats[s][k] for s in stats for k in ("wall_s", "start_s")},
    }
    report = head | report
    logs = {
        s: (t / HAZARD_LOG).read_text(encoding="utf-8") if (t / HAZARD_LOG).exists() else "" for s, t in trees.items()
    }
    return report, impact_report.french(report, head), logs


def load_settings(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise SystemExit(f"impact: {path}: a mapping of settings is expected")
    return doc


def ci(args: argparse.Namespace, repo: Path) -> int:
    """CI: the impact of the last change on a small cohort, when it touches a rule or a setting default; fails when
    a critical alert is removed or downgraded without that rule's HAZ entry changed in the same diff."""
    base = args.base or "HEAD~1"
    candidate = args.candidate or "HEAD"
    try:
        git("rev-parse", "--verify", f"{base}^{{commit}}", repo=repo)
    except subprocess.CalledProcessError:
        print(f"impact --ci: no {base} to compare with (first commit or shallow clone): nothing to replay")
        return 0
    touched = rule_files(changed_files(base, candidate, repo))
    if not touched:
        print(f"impact --ci: {base} -> {candidate} changes no rule or setting file: nothing to replay")
        return 0
    print(f"impact --ci: {base} -> {candidate} changes {', '.join(touched)}")
    report, text, logs = impact(
        base,
        candidate,
        repo=repo,
        settings=load_settings(args.settings),
        patients=args.patients or CI_PATIENTS,
        years=args.years or CI_YEARS,
        seed=args.seed,
    )
    print(text, end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    hazard = impact_report.rules_with_changed_hazard(logs["base"], logs["candidate"])
    blocking = impact_report.gate(report, hazard)
    if blocking:
        rules = sorted({x["rule"] for x in blocking})
        print(
            f"impact --ci: FAILED: {len(blocking)} critical alert(s) removed or downgraded ({', '.join(rules)}) and no "
            f"{HAZARD_LOG} entry naming {'that rule' if len(rules) == 1 else 'those rules'} changed in this diff"
        )
        return 1
    if report["critical_lost"]:
        print("impact --ci: critical alerts removed or downgraded, each rule's hazard-log entry updated in this diff")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="./osteocds impact", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--base", help="git revision, WORKTREE or a directory (default HEAD; --ci: HEAD~1)")
    p.add_argument("--candidate", help="git revision, WORKTREE or a directory (default WORKTREE; --ci: HEAD)")
    p.add_argument("--settings", help="YAML or JSON setting overrides for the candidate's services")
    p.add_argument("--patients", type=int, help=f"cohort size (default 200; --ci: {CI_PATIENTS})")
    p.add_argument("--years", type=float, help="years of history per patient (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", type=int, default=1, help="replay 1 patient in K of the cohort (a faster estimate)")
    p.add_argument("--from-topics", action="store_true", help="the input topics' retained history instead of a cohort")
    p.add_argument("--store", action="store_true", help="write each state as JSON as the runtime does (slower)")
    p.add_argument("--json", help="write the JSON report to this file")
    p.add_argument("--repo", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument("--ci", action="store_true", help="CI mode: HEAD~1 -> HEAD when a rule or setting file changed")
    args = p.parse_args(argv)
    repo = Path(args.repo).resolve()
    if args.ci:
        return ci(args, repo)
    report, text, _ = impact(
        args.base or "HEAD",
        args.candidate or WORKTREE,
        repo=repo,
        settings=load_settings(args.settings),
        patients=args.patients or 200,
        years=args.years or 2.0,
        seed=args.seed,
        from_topics=args.from_topics,
        store=args.store,
        sample=args.sample,
    )
    print(text, end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
