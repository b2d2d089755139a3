"""Rule-change impact replay (issue 21): which patients' advice a rule or setting change would alter, before it goes
live. Development tooling: services never import it.

    ./osteocds impact --base HEAD~1 --candidate WORKTREE [--settings FILE] [--patients N] [--years Y] [--seed S]
                      [--from-topics] [--json FILE]
    ./osteocds impact --ci          # CI: the change -> HEAD on a small cohort when a rule or setting file changed
                                    # (base: --base, $OSTEOCDS_IMPACT_BASE, merge-base with origin/main, HEAD~1)

Each side (a git revision, `WORKTREE` for the working tree, or a directory holding a tree) is materialised with
`git archive` into a temporary directory and run in its own Python process (devstack/impact_child.py, by path)
that imports that tree's devstack/replay.py and services, so two versions of the same modules never share an
interpreter; the patients are split into one shard per core, each shard of each side its own process. Both read
the SAME event stream, written once by this process: a generated cohort (devstack/cohort.py of the tree running
this command), or with --from-topics the hospital input topics' retained history read with a group-less consumer
(nothing published, no offsets committed, no Redis). `--settings FILE` (YAML or JSON): setting overrides for the
candidate's services, `{service: {field: value}}` or env-style names (`CALCIUM_CURRENT_HOURS: 48`) applied to every
service that has that setting. The children run with an environment free of the live settings (only PATH, HOME,
LANG): each side uses its tree's defaults; a child refuses network connections. A service whose decision code is
byte-identical on both sides is recorded by the base and replayed by the candidate while its records are the same
(devstack/replay.py `Tape`: no decoding, no transition; `--full`: off); when every service is identical and no
setting changes, the candidate is not run. A base run on a generated cohort is kept under .run/impact-base (its
outputs and a tape of every service), keyed on everything that decides them (`base_key`): a later candidate against
the same base and cohort does not run it again (`--no-cache`, `--full` and `--ci` run it); a base not kept is derived
from the kept base sharing the most services with it (only the services that differ run: devstack/impact_sides.py
`derive_base`), and a candidate without settings is kept as a base in turn; the generated event
stream under .run/impact-stream (`stream_key`: the cohort's parameters and the generator's code), not written
again. The report (devstack/impact_report.py): French text on stdout, JSON with --json.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from devstack import impact_report, infra
from devstack.impact_sides import derive_base, keep_complete, read_sides, run_sides
from devstack.impact_stream import kept_stream, write_cohort, write_topics
from devstack.impact_trees import (
    ALL_TAPED,
    CACHE,
    ROOT,
    WORKTREE,
    base_key,
    changed_files,
    code_digest,
    decision_digests,
    describe,
    git,
    keep_base,
    kept_base,
    lineage,
    materialise,
)

#: the files whose change runs the CI impact step: everything the replay runs (decision digests below): the five
#: services' packages (rules, decision modules, settings, the apps' wiring of their transitions, parsers), the shared
#: runtime and clinical context, the contracts, the replay itself. An allowlist of "rule files" missed decisions made
#: elsewhere (notification's orders_rules.py, lab-normalisation's parsers, a service's app.py wiring, the runtime's
#: limits): a change anywhere there is replayed (about a minute), only the pages' static files are left out.
RULE_FILES: Final = ("services/*", "shared/*", "contracts/*", "devstack/replay.py")
NOT_RULE_FILES: Final = ("services/*/static/*", "*.md")
#: the CI cohort: small enough for ~1 minute on the 2-core CI machine (README "Rule-change impact")
CI_PATIENTS: Final = 40
CI_YEARS: Final = 2.0
HAZARD_LOG: Final = "docs/hazard-log.md"
#: CI: the environment's name for the commit before the change (e.g. a push's previous head), and the upstream ref
#: whose merge-base is the base otherwise
BASE_ENV: Final = "OSTEOCDS_IMPACT_BASE"
UPSTREAM_ENV: Final = "OSTEOCDS_IMPACT_UPSTREAM"


def rule_files(paths: list[str]) -> list[str]:
    return [
        p
        for p in paths
        if any(fnmatch.fnmatch(p, g) for g in RULE_FILES) and not any(fnmatch.fnmatch(p, g) for g in NOT_RULE_FILES)
    ]


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
    jobs: int = 0,
    full: bool = False,
    cache: bool = True,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Run both sides and diff them: (the JSON report, the French text, each side's hazard log). `jobs`: processes
    at once (0: one per core); `full`: both sides run every service for every patient (no reuse of identical
    services, no shortcut when nothing differs). The temporary directory (trees, stream, outputs) is removed before
    returning."""
    work = Path(tempfile.mkdtemp(prefix="osteocds-impact-"))
    try:
        return _impact(
            base,
            candidate,
            repo,
            settings or {},
            patients,
            years,
            seed,
            from_topics,
            store,
            sample,
            work,
            jobs or os.cpu_count() or 2,
            full,
            cache,
        )
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
    jobs: int,
    full: bool,
    cache: bool,
) -> tuple[dict[str, Any], str, dict[str, str]]:
    t0 = time.monotonic()
    timing: dict[str, float] = {}
    trees = {"base": materialise(base, repo, work / "trees"), "candidate": materialise(candidate, repo, work / "trees")}
    # each tree's code as read now: a tree edited before its outputs are kept is not kept (review R37-DERIVE)
    code = {side: code_digest(tree) for side, tree in trees.items()}
    digests = {side: decision_digests(tree) for side, tree in trees.items()}
    same = [] if full or store else sorted(n for n, d in digests["base"].items() if digests["candidate"].get(n) == d)
    everything = bool(same) and set(same) >= set(digests["base"]) and not settings
    timing["trees_s"] = time.monotonic() - t0
    stream = work / "stream.pickle"
    # a base kept between runs: a generated cohort only (never a copy of the topics' history: patients' data)
    keep = cache and not full and not from_topics
    # side by side without reuse: `jobs` shards in all; with it (or a base kept: the shards are part of its key),
    # each side's shards in turn
    n = jobs if same or everything or keep else max(1, jobs // 2)
    if from_topics:
        source = write_topics(stream, store, shards=n)
    elif keep:  # the generated stream kept beside the base (its digests key the base)
        source = kept_stream(repo, seed, patients, years, store, sample, n)
    else:
        source = write_cohort(stream, seed, patients, years, store, sample, shards=n)
    shards: list[Path] = source["shards"]
    timing["stream_s"] = time.monotonic() - t0 - sum(timing.values())
    line = lineage(source["digests"], store) if keep else ""
    key = base_key(code["base"], source["digests"], store) if keep else ""
    kept = kept_base(repo, key) if keep else None
    derived: dict[str, Any] | None = None
    cstaged: Path | None = None  # the candidate's tapes, staged to be kept
    if kept is None and keep:  # a kept base sharing services with this one: this one derived from it (stop 37)
        kept, derived = derive_base(repo, trees["base"], key, line, shards, work, jobs, code["base"], digests["base"])
    timing["base_derived_s"] = time.monotonic() - t0 - sum(timing.values())
    staged = None
    # where the base's canonical outputs are read from: a kept base's in place (not copied)
    base_out = kept or work
    try:
        if kept is not None:  # the base's outputs and tapes as an earlier run left them: the base is not run
            was = json.loads((kept / "stats.json").read_text(encoding="utf-8"))
            # the candidate, without settings, kept as a base in turn (its complete tape): once merged, it is the base
            ckey = base_key(code["candidate"], source["digests"], store) if same and not settings else ""
            if ckey and ckey != key and kept_base(repo, ckey) is None and not everything:
                cstaged = repo / CACHE / f".{ckey}.{os.getpid()}"
                cstaged.mkdir(parents=True, exist_ok=True)
            stats = (
                {}
                if everything
                else run_sides(
                    {"candidate": trees["candidate"]},
                    shards,
                    work,
                    settings,
                    same,
                    jobs,
                    tapes=kept,
                    base_taped=list(was.get("taped") or ()),
                    tape_out=cstaged,
                )
            )
            if cstaged is not None:
                mine = (trees["candidate"], code["candidate"], digests["candidate"], line, kept, same)
                keep_complete(repo, ckey, cstaged, work, len(shards), stats["candidate"], *mine)
            stats["base"] = was | {"cpu_s": 0.0, "wall_s": 0.0, "start_s": 0.0, "kept_cpu_s": was["cpu_s"]}
            if derived is not None:  # this run derived it: its cost is this run's
                stats["base"] |= {k: derived[k] for k in ("cpu_s", "wall_s", "start_s")}
        else:
            if keep:
                staged = repo / CACHE / f".{key}.{os.getpid()}"
                staged.mkdir(parents=True, exist_ok=True)
            # every service taped when the base is kept, or when the candidate reuses some (its gate reads the
            # base's applications of the services it runs live: impact_child.py `_same_as_base`)
            record = list(ALL_TAPED) if (keep or same) and not store else same
            if everything:
                stats = run_sides({"base": trees["base"]}, shards, work, {}, [], jobs, record, staged)
            else:
                stats = run_sides(trees, shards, work, settings, same, jobs, record, staged)
            if staged is not None and not stats["base"]["outside"] and code_digest(trees["base"]) == code["base"]:
                known = {"lineage": line, "decision_digests": digests["base"]}
                keep_base(repo, key, staged, work, len(shards), stats["base"] | known)
    finally:
        for folder in (staged, cstaged):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
    if everything:  # the same decision code for every service and no setting: the same outputs, the base's
        stats["candidate"] = stats["base"] | {"cpu_s": 0.0, "wall_s": 0.0, "start_s": 0.0, "cpu_by_service": {}}
    timing["sides_s"] = time.monotonic() - t0 - sum(timing.values())
    if everything:  # one side's outputs, read once, both sides of the diff
        sides = itertools.tee(read_sides(base_out, "base", len(shards)))
    else:
        sides = (read_sides(base_out, "base", len(shards)), read_sides(work, "candidate", len(shards)))
    report = impact_report.diff(*sides)
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
        "reused": {
            # those the candidate took from the base (a service with a candidate setting is never reused)
            "services": same if everything else stats["candidate"].get("taped", []),
            "candidate_run": not everything,
            "patients_run_again": stats["candidate"].get("reruns", 0),
            # patients whose live services did what the base taped: the base's outputs, nothing downstream run
            "patients_same_as_base": stats["candidate"].get("same_as_base", 0),
            # per service, the patients run again with it live (the others taken from a tape; older trees: all)
            "live_again": stats["candidate"].get("live_again", {}),
            "base_kept": kept is not None and derived is None,
            # the base derived from a kept one of another tree: that base's key and the services taken from it
            "base_derived_from": derived["derived_from"] if derived is not None else None,
        },
        "timing": {k: round(v, 2) for k, v in timing.items()}
        | {f"{s}_{k}": stats[s][k] for s in stats for k in ("wall_s", "start_s")}
        | {"jobs": jobs, "shards": len(shards)},
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


def ci_base(given: str | None, candidate: str, repo: Path) -> tuple[str | None, str]:
    """The revision CI compares with: the newest ancestor of the candidate that is not part of the change (a push
    of several commits, one of which changed a rule, is compared as a whole). `--base` when given; else the one the
    environment names (OSTEOCDS_IMPACT_BASE, e.g. the commit before the push; its merge-base with the candidate);
    else the merge-base with the upstream branch (OSTEOCDS_IMPACT_UPSTREAM, default origin/main) when that ref
    exists and is not the candidate itself; else the candidate's parent. (None, why) when there is none."""
    if given:
        return given, "--base"

    def commit(ref: str) -> str | None:
        r = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"], capture_output=True, text=True
        )
        return r.stdout.strip() or None

    if candidate == WORKTREE:
        candidate = "HEAD"  # the working tree's change: from HEAD's own base
    head = commit(candidate)
    named = os.environ.get(BASE_ENV, "").strip()
    if named and set(named) != {"0"}:  # all zeros: a push that created the branch names no previous commit
        if commit(named) is None:
            raise SystemExit(f"impact --ci: {BASE_ENV}={named} is not a commit of this clone (fetch it): no gate")
        return git("merge-base", named, candidate, repo=repo), f"{BASE_ENV}={named}"
    upstream = os.environ.get(UPSTREAM_ENV, "").strip() or "origin/main"
    if head is not None and commit(upstream) is not None:
        fork = git("merge-base", upstream, candidate, repo=repo)
        if fork != head:
            return fork, f"merge-base {candidate} {upstream}"
    parent = commit(f"{candidate}~1")
    if parent is None:
        return None, f"no {candidate}~1 (first commit or shallow clone)"
    return parent, f"{candidate}~1"


def ci(args: argparse.Namespace, repo: Path) -> int:
    """CI: the impact of the change (ci_base -> the candidate, default HEAD) on a small cohort, when it touches a rule
    or a setting default; fails when a critical alert is removed or downgraded without that rule's HAZ entry changed
    in the same diff."""
    candidate = args.candidate or "HEAD"
    base, why = ci_base(args.base, candidate, repo)
    if base is None:
        print(f"impact --ci: {why}: nothing to compare with, nothing replayed")
        return 0
    try:
        short = git("rev-parse", "--short", f"{base}^{{commit}}", repo=repo)
    except subprocess.CalledProcessError:
        raise SystemExit(f"impact --ci: base {base} is not a commit") from None
    print(f"impact --ci: base {short} ({why}) -> {candidate}")
    touched = rule_files(changed_files(base, candidate, repo))
    if not touched:
        print(f"impact --ci: {short} -> {candidate} changes no rule or setting file: nothing to replay")
        return 0
    more = f" and {len(touched) - 12} other files" if len(touched) > 12 else ""
    print(f"impact --ci: {short} -> {candidate} changes {', '.join(touched[:12])}{more}")
    report, text, logs = impact(
        base,
        candidate,
        repo=repo,
        settings=load_settings(args.settings),
        patients=args.patients or CI_PATIENTS,
        years=args.years or CI_YEARS,
        seed=args.seed,
        jobs=args.jobs,
        full=args.full,
        cache=False,  # the gate replays its base every time (a fresh CI machine has none kept anyway)
    )
    print(text, end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    hazard = impact_report.rules_with_changed_hazard(logs["base"], logs["candidate"])
    blocking = impact_report.gate(report, hazard)
    if blocking:
        rules = sorted({x["rule"] for x in blocking})
        print(
            f"impact --ci: FAILED: {len(blocking)} critical alert(s) removed, downgraded, no longer shown or delayed "
            f"({', '.join(rules)}) and no "
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
    p.add_argument("--base", help="git revision, WORKTREE or a directory (default HEAD; --ci: see --ci)")
    p.add_argument("--candidate", help="git revision, WORKTREE or a directory (default WORKTREE; --ci: HEAD)")
    p.add_argument("--settings", help="YAML or JSON setting overrides for the candidate's services")
    p.add_argument("--patients", type=int, help=f"cohort size (default 200; --ci: {CI_PATIENTS})")
    p.add_argument("--years", type=float, help="years of history per patient (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample", type=int, default=1, help="replay 1 patient in K of the cohort (a faster estimate)")
    p.add_argument("--from-topics", action="store_true", help="the input topics' retained history instead of a cohort")
    p.add_argument("--store", action="store_true", help="write each state as JSON as the runtime does (slower)")
    p.add_argument("--jobs", type=int, default=0, help="processes at once (default: one per core)")
    p.add_argument(
        "--full", action="store_true", help="run every service on both sides (no reuse of identical decision code)"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="run the base even when an earlier run against the same base, cohort and settings kept it (.run/)",
    )
    p.add_argument("--json", help="write the JSON report to this file")
    p.add_argument("--repo", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument(
        "--ci",
        action="store_true",
        help=f"CI mode: the change (base: --base, else ${BASE_ENV}, else the merge-base with origin/main, else "
        "HEAD~1) -> HEAD, when a rule or setting file changed",
    )
    args = p.parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) as SystemExit: the `finally` blocks stop the sides and remove the work directory
    infra.exit_on_sigterm()
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
        jobs=args.jobs,
        full=args.full,
        cache=not args.no_cache,
    )
    print(text, end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
