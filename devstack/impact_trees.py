"""The two sides of an impact run (issue 21, devstack/impact.py): their trees materialised from git (a revision,
`WORKTREE`, or a directory), each service's decision code digested (a service identical on both sides is taped by the
base and replayed by the candidate), a side's environment, and a base kept between runs under .run/impact-base,
keyed on everything that decides its outputs (`base_key`). Development tooling: services never import it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Final

from devstack.impact_stream import MAX_KEPT, packages, tree_digest

ROOT: Final = Path(__file__).resolve().parents[1]
CHILD: Final = Path(__file__).resolve().parent / "impact_child.py"
WORKTREE: Final = "WORKTREE"


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
    if (dest / "devstack" / "replay.py").exists():  # this run's other side: the same commit, extracted once
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
        # read to the end: tarfile stops at the end-of-archive blocks, before git's last padding (10 KB); closing the
        # pipe while git still writes it killed git by SIGPIPE, reported as a failed archive (CI under load, stop 34)
        p.stdout.read()
    if p.returncode:
        raise SystemExit(f"impact: git archive {ref} failed")
    if not (dest / "devstack" / "replay.py").exists():
        raise SystemExit(f"impact: {ref} has no devstack/replay.py (issue 25): too old to replay")
    return dest


def changed_files(base: str, candidate: str, repo: Path) -> list[str]:
    if candidate == WORKTREE:
        return git("diff", "--name-only", base, repo=repo).splitlines()
    return git("diff", "--name-only", base, candidate, repo=repo).splitlines()


# ---- the two sides ----------------------------------------------------------------------------------------------
#: what every service's decisions depend on besides its own package: the runtime, the clinical context, the contracts,
#: the replay that routes the records (a difference there: no service is reused)
COMMON: Final = ("shared", "contracts", "devstack/replay.py", "services/__init__.py")
SERVICE_IMPORT: Final = re.compile(rb"\bservices\.(\w+)")
#: the other ways a module names a service package (review R37-DERIVE): `from services import a, b` and a relative
#: `from ..name import x`
SERVICES_FROM: Final = re.compile(rb"\bfrom\s+(?:services|\.\.)\s+import\s+\(?([\w\s,]+)")
RELATIVE_FROM: Final = re.compile(rb"\bfrom\s+\.\.(\w+)")


def decision_digests(tree: Path) -> dict[str, str]:
    """Per service (devstack/replay.py MODULES): the digest of its package, of the other services' packages it
    imports, and of COMMON: two trees with the same digest for a service run the same decisions for it."""
    from devstack.replay import MODULES

    common = tree_digest(tree, COMMON)
    out = {}
    for name, (module, _) in MODULES.items():
        package = module.replace(".", "/")
        used = {package}
        for f in (tree / package).rglob("*.py"):
            text = f.read_bytes()
            names = SERVICE_IMPORT.findall(text) + RELATIVE_FROM.findall(text)
            # words after `import` (a word that names no package, e.g. the next line's, adds no file)
            names += [n for group in SERVICES_FROM.findall(text) for n in re.split(rb"[\s,()]+", group)]
            used |= {f"services/{m.decode()}" for m in names if m}
        out[name] = hashlib.sha256((common + tree_digest(tree, used)).encode()).hexdigest()
    return out


def child_env() -> dict[str, str]:
    """A side's environment: none of the live settings (each side runs its tree's defaults)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONHASHSEED"] = "0"
    return env


# ---- a base kept between runs -------------------------------------------------------------------------------------
#: the base tree's paths a kept base is keyed on: every file there (code and data: local codes, vocabularies); a base
#: whose side ran a module of its tree from elsewhere is not kept (impact_child.py `_outside`)
BASE_CODE: Final = ("services", "shared", "contracts", "devstack/__init__.py", "devstack/replay.py")
#: kept bases, under the repository's run folder; the newest MAX_KEPT are kept (10 000 patients: ~1 GB of tape each)
CACHE: Final = Path(".run") / "impact-base"
#: every service is taped by a base that is kept: any later candidate reuses whichever of them it has identical
ALL_TAPED: Final = ("lab-normalisation", "notification", "radiotherapy-planner", "scoring", "systemic-planner")


def code_digest(tree: Path) -> str:
    """The digest of a tree's decision code and data (BASE_CODE): read at the start of a run and again before its
    outputs are kept, so that a working tree edited meanwhile is not kept under either key (review R37-DERIVE)."""
    return tree_digest(tree, BASE_CODE)


def lineage(digests: list[str], store: bool) -> str:
    """Everything that decides a base's outputs but its tree: the event stream as written (the sha256 of each of its
    shards: the cohort's parameters, seed, sampling and generator), the side's script (the canonical form, the tape),
    the interpreter, the installed packages and the side's environment. Kept bases of one lineage differ only by
    their trees: one can be derived from another (`ancestor`)."""
    h = hashlib.sha256(b"osteocds-impact-lineage 1\0")
    h.update(CHILD.read_bytes())
    for digest in digests:
        h.update(bytes.fromhex(digest))
    env = child_env() | {"HOME": "", "TMPDIR": "", "PATH": ""}  # where things are, not what decides
    h.update(json.dumps([sys.version, packages(), env, store, len(digests)]).encode())
    return h.hexdigest()[:32]


def base_key(code: str, digests: list[str], store: bool) -> str:
    """Everything that decides a base's outputs: its tree's decision code and data (`code`: `code_digest` of BASE_CODE,
    as read at the start of the run) and its `lineage`."""
    h = hashlib.sha256(b"osteocds-impact-base 2\0")
    h.update(code.encode())
    h.update(lineage(digests, store).encode())
    return h.hexdigest()[:32]


def ancestor(repo: Path, line: str, digests: dict[str, str]) -> tuple[Path, list[str]] | None:
    """Issue 21 (speed, stop 37): the kept base of the same lineage (same event stream, script and environment) that
    shares the most services' decision code with a tree (`digests`, `decision_digests`; the newest of equals), and
    those services; None when no kept base shares one. A base for that tree is derived from it as a candidate is
    run against a kept base (devstack/impact_sides.py `derive_base`): only the services that differ run."""
    found: list[tuple[int, float, Path, list[str]]] = []
    top = repo / CACHE
    for entry in top.iterdir() if top.is_dir() else ():
        try:
            stats = json.loads((entry / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        theirs = stats.get("decision_digests") or {}
        if stats.get("lineage") != line or not set(stats.get("taped") or ()) >= set(ALL_TAPED):
            continue
        shared = sorted(n for n, d in digests.items() if theirs.get(n) == d)
        if shared:
            found.append((len(shared), entry.stat().st_mtime, entry, shared))
    if not found:
        return None
    _, _, entry, shared = max(found, key=lambda x: (x[0], x[1]))
    _used(entry)
    return entry, shared


def _used(entry: Path) -> None:
    """The newest used is the last evicted; an entry removed meanwhile (another run's eviction) is left removed, not
    made again as an empty file (review R37-DERIVE)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(entry)


def kept_base(repo: Path, key: str) -> Path | None:
    entry = repo / CACHE / key
    if not (entry / "stats.json").exists():
        return None
    _used(entry)
    return entry


def keep_base(
    repo: Path, key: str, staged: Path, work: Path, shards: int, stats: dict[str, Any], side: str = "base"
) -> None:
    """Keep a base that ran whole (its canonical outputs, stats and tapes, staged under the cache; `side`: the name of
    its outputs under `work`, "candidate" for a base derived as a candidate): renamed into place at once (a run
    reading it sees all of it or nothing); the oldest beyond MAX_KEPT removed."""
    for i in range(shards):
        shutil.copy(work / f"{side}.{i}.jsonl", staged / f"base.{i}.jsonl")
    (staged / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    try:
        staged.rename(repo / CACHE / key)
    except OSError:  # kept meanwhile by another run
        shutil.rmtree(staged, ignore_errors=True)
    entries = sorted(
        (e for e in (repo / CACHE).iterdir() if (e / "stats.json").exists()), key=lambda e: e.stat().st_mtime
    )
    for old in entries[:-MAX_KEPT]:
        shutil.rmtree(old, ignore_errors=True)
