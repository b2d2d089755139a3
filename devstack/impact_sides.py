"""The sides of an impact run (issue 21, devstack/impact.py) as processes: each side's shards in their own
interpreters on their own trees (`run_sides`, devstack/impact_child.py), a base derived from a kept one (`derive_base`,
stop 37), and one side's canonical outputs read back in the stream's order (`read_sides`). Development tooling:
services never import it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devstack import impact_report
from devstack.impact_stream import round_robin
from devstack.impact_trees import (
    ALL_TAPED,
    BASE_CODE,
    CACHE,
    CHILD,
    ancestor,
    child_env,
    code_digest,
    keep_base,
    kept_base,
)


def run_sides(
    trees: dict[str, Path],
    shards: list[Path],
    work: Path,
    settings: dict[str, Any],
    reuse: list[str],
    jobs: int,
    record: list[str] | None = None,
    tapes: Path | None = None,
    base_taped: list[str] | None = None,
    tape_out: Path | None = None,
) -> dict[str, Any]:
    """Each side's shards in their own interpreters on their own tree, `jobs` at a time; their canonical outputs in
    `work/{side}.{i}.jsonl`. The base's shard i records the applications of the services in `record` (default
    `reuse`) in a tape (`tapes/tape.{i}.pickle`, default under `work`); a candidate told which services the base
    taped (`base_taped`: the base run here, `record`; or a kept base's) reads the base's canonical outputs (beside
    its tape when kept, else under `work`) for its gate (impact_child.py `_same_as_base`); with services to `reuse`,
    the candidate's shard i, started once the base's is done (or at once when no base runs: a cached base's tape),
    replays them where the records are the same (else runs the patient again with every service live); without, the
    sides run side by side. `tape_out`: the candidate's shard i also writes its complete tape there (`tape.{i}.pickle`,
    a base derived from a kept one, `derive_base`)."""
    env = child_env()
    record = reuse if record is None else record
    tapes = tapes or work
    tasks: list[tuple[str, int, list[str]]] = []
    for i, stream in enumerate(shards):
        for side, tree in trees.items():
            options: dict[str, Any] = {}
            if side == "candidate" and settings:
                options["settings"] = settings
            if side == "base":
                options["base_code"] = list(BASE_CODE)
            if side == "base" and record:
                options["taped"] = record
                options["record"] = str(tapes / f"tape.{i}.pickle")
            elif side == "candidate" and reuse:
                options["taped"] = reuse
                options["replay"] = str(tapes / f"tape.{i}.pickle")
                taped_by_base = base_taped if base_taped is not None else record if "base" in trees else []
                if taped_by_base:
                    options["base_taped"] = taped_by_base
                    options["base_out"] = str((work if "base" in trees else tapes) / f"base.{i}.jsonl")
                if tape_out is not None:
                    options["tape_out"] = str(tape_out / f"tape.{i}.pickle")
                    options["base_code"] = list(BASE_CODE)
            out = work / f"{side}.{i}.jsonl"
            args = [sys.executable, str(CHILD), str(tree), str(stream), str(out), json.dumps(options)]
            tasks.append((side, i, args))
    wait = bool(reuse) and "base" in trees
    if wait:  # every base shard before the candidate's (each candidate shard needs its base's tape)
        tasks.sort(key=lambda t: t[0] != "base")
    running: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
    done: set[tuple[str, int]] = set()
    errors: dict[str, str] = {}
    try:
        while (tasks or running) and not errors:
            ready = [t for t in tasks if not wait or t[0] == "base" or ("base", t[1]) in done]
            while ready and len(running) < jobs:
                side, i, args = ready.pop(0)
                tasks.remove((side, i, args))
                # stderr to a file, not a pipe: a child writing more than a pipe holds would block until read
                with (work / f"{side}.{i}.stderr").open("wb") as err:
                    running[(side, i)] = subprocess.Popen(
                        args, cwd=trees[side], env=env | {"PYTHONPATH": str(trees[side])}, stderr=err
                    )
            time.sleep(0.05)
            for key, p in list(running.items()):
                if p.poll() is None:
                    continue
                del running[key]
                done.add(key)
                if p.returncode:
                    text = (work / f"{key[0]}.{key[1]}.stderr").read_bytes()[-3000:]
                    errors[f"{key[0]} {key[1]}"] = text.decode(errors="replace")
    finally:  # an error, an interrupt or a SIGTERM (main): no side left running
        for p in running.values():
            p.kill()
            p.wait()
    if errors:
        raise SystemExit("impact: " + "; ".join(f"{s} failed:\n{e}" for s, e in errors.items()))
    stats: dict[str, Any] = {}
    for side in trees:
        parts = [json.loads((work / f"{side}.{i}.stats.json").read_text()) for i in range(len(shards))]
        stats[side] = {
            "patients": sum(x["patients"] for x in parts),
            "applications": sum(x["applications"] for x in parts),
            "cpu_s": round(sum(x["cpu_s"] for x in parts), 2),
            "wall_s": max(x["wall_s"] for x in parts),
            "start_s": max(x["start_s"] for x in parts),
            "reruns": sum(x.get("reruns", 0) for x in parts),
            "same_as_base": sum(x.get("same_as_base", 0) for x in parts),
            "live_again": {
                n: sum(x.get("live_again", {}).get(n, 0) for x in parts) for n in parts[0].get("live_again", {})
            },
            "taped": parts[0].get("taped", []),
            "outside": sorted({m for x in parts for m in x.get("outside", [])}),
            "complete_tape": all(x.get("complete_tape") for x in parts),
            "complete_applications": sum(x.get("complete_applications", 0) for x in parts),
            "cpu_by_service": {
                n: round(sum(x["cpu_by_service"].get(n, 0.0) for x in parts), 2) for n in parts[0]["cpu_by_service"]
            },
        }
    return stats


def derive_base(
    repo: Path,
    tree: Path,
    key: str,
    line: str,
    shards: list[Path],
    work: Path,
    jobs: int,
    code: str,
    digests: dict[str, str],
) -> tuple[Path | None, dict[str, Any] | None]:
    """Issue 21 (speed, stop 37): a base that is not kept, derived from the kept base of the same lineage that shares
    the most services' decision code with it (`ancestor`): the tree is run as a candidate against that base (the
    services it shares taken from its tape while their records are the same, the gate, the patients run again), and
    writes its complete tape (impact_child.py `_complete`); its outputs and tape are kept under `key` as a base run
    cold would be. (the kept base, the run's stats) or (None, None): no ancestor, or a side that cannot write a
    complete tape (an older tree's replay) or ran a module from outside its tree, or a tree whose code is no longer
    `code` (`digests`: its decision digests, both read at the start of the run: a working tree edited meanwhile is
    not kept, review R37-DERIVE; then the base runs cold)."""
    found = ancestor(repo, line, digests)
    if found is None:
        return None, None
    entry, shared = found
    was = json.loads((entry / "stats.json").read_text(encoding="utf-8"))
    into = work / "derived"
    into.mkdir(exist_ok=True)
    staged = repo / CACHE / f".{key}.{os.getpid()}"
    staged.mkdir(parents=True, exist_ok=True)
    try:
        stats = run_sides(
            {"candidate": tree},
            shards,
            into,
            {},
            shared,
            jobs,
            tapes=entry,
            base_taped=list(was["taped"]),
            tape_out=staged,
        )["candidate"]
        kept = keep_complete(repo, key, staged, into, len(shards), stats, tree, code, digests, line, entry, shared)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return (kept_base(repo, key), kept) if kept is not None else (None, None)


def keep_complete(
    repo: Path,
    key: str,
    staged: Path,
    work: Path,
    shards: int,
    stats: dict[str, Any],
    tree: Path,
    code: str,
    digests: dict[str, str],
    line: str,
    ancestor_base: Path,
    shared: list[str],
) -> dict[str, Any] | None:
    """A candidate side that wrote its complete tape into `staged` (impact_child.py `_complete`: a base derived from
    `ancestor_base`, or a candidate kept in turn) kept as a base under `key`, its outputs under `work`; its stats as
    kept, or None when it cannot be: a shard without a complete tape, a module run from outside its tree, or a tree
    whose code is no longer `code` (read at the start of the run: a working tree edited meanwhile, review
    R37-DERIVE). Its applications are every service's, as a cold base counts them; those it ran live are
    `live_applications`."""
    if not stats["complete_tape"] or stats["outside"] or code_digest(tree) != code:
        return None
    kept = stats | {
        "taped": list(ALL_TAPED),
        "lineage": line,
        "decision_digests": digests,
        "derived_from": {"base": ancestor_base.name, "services": shared},
        "applications": stats["complete_applications"],
        "live_applications": stats["applications"],
    }
    keep_base(repo, key, staged, work, shards, kept, side="candidate")
    return kept


def read_sides(work: Path, side: str, shards: int) -> Iterator[dict[str, Any]]:
    """One side's canonical outputs (`work/{side}.{i}.jsonl`) in the stream's order."""
    return round_robin([impact_report.read_side(work / f"{side}.{i}.jsonl") for i in range(shards)])
