"""The event stream an impact run replays (issue 21, devstack/impact.py): a generated cohort or the hospital input
topics' retained history, written once per run into one pickle file per shard (patient k in shard k % n), read back
by both sides; a generated stream kept between runs under .run/impact-stream, keyed on everything that decides its
bytes (`stream_key`). Development tooling: services never import it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import pickle
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
#: kept streams and bases keep the newest MAX_KEPT
MAX_KEPT: Final = 3


def tree_digest(tree: Path, paths: Iterable[str]) -> str:
    """The files under `paths` (names and bytes; compiled files left out), as one digest."""
    h = hashlib.sha256()
    for rel in sorted(paths):
        top = tree / rel
        files = sorted(top.rglob("*")) if top.is_dir() else [top] if top.exists() else []
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                h.update(str(f.relative_to(tree)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def packages() -> list[str]:
    """The installed distributions, each once (run from the checkout, its own egg-info is found a second time on the
    path: the key must not depend on the directory the command runs from)."""
    from importlib import metadata

    return sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()})


# ---- the event stream, written once ------------------------------------------------------------------------------
class _Shards:
    """The event stream split into `n` files, patient k of the stream in file k % n (each side's shard i reads file
    i; the outputs are merged back in the stream's order, round robin). Each file: its header (its own number of
    patients), then (patient, records) per patient."""

    def __init__(self, path: Path, n: int, header: dict[str, Any]) -> None:
        n = max(1, min(n, header["patients"]))
        self.paths = [path] if n == 1 else [path.with_name(f"{path.stem}.{i}{path.suffix}") for i in range(n)]
        self._files = [p.open("wb") for p in self.paths]
        total = header["patients"]
        for i, f in enumerate(self._files):
            pickle.dump(header | {"patients": total // n + (1 if i < total % n else 0)}, f)
        self.count = 0

    def add(self, patient: str, records: list[tuple[str, bytes, bytes, int]]) -> None:
        pickle.dump((patient, records), self._files[self.count % len(self._files)], protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def close(self) -> None:
        for f in self._files:
            f.close()


def write_cohort(
    path: Path, seed: int, patients: int, years: float, store: bool, sample: int = 1, shards: int = 1
) -> dict[str, Any]:
    """The cohort's patients (1 in `sample`: patient i for i a multiple of it), each one's stream in order."""
    from devstack.cohort import Cohort

    cohort = Cohort(seed, patients, years)
    events = 0
    chosen = range(0, patients, sample)
    header = {"patients": len(chosen), "until_ms": round(cohort.end.timestamp() * 1000), "store": store}
    out = _Shards(path, shards, header)
    for i in chosen:
        recs = [(g.topic, g.key.encode(), g.value(), g.timestamp_ms) for g in cohort.patient(i)]
        events += len(recs)
        out.add(cohort.patient_id(i), recs)
    out.close()
    part = f", 1 patient sur {sample} ({len(chosen)})" if sample > 1 else ""
    source = f"cohorte de {patients} patients x {years:g} ans (graine {seed}{part})"
    return {"source": source, "events": events, "shards": out.paths} | header


def write_topics(path: Path, store: bool, timeout_s: float = 60.0, shards: int = 1) -> dict[str, Any]:
    """The hospital input topics' retained history, per patient in publication order (group-less consumer)."""
    streams = asyncio.run(_read_topics(timeout_s))
    until = max((r[3] for recs in streams.values() for r in recs), default=0)
    header = {"patients": len(streams), "until_ms": until, "store": store}
    out = _Shards(path, shards, header)
    for patient in sorted(streams):
        out.add(patient, sorted(streams[patient], key=_published))
    out.close()
    events = sum(len(v) for v in streams.values())
    return {
        "source": f"historique retenu des topics d'entrée ({len(streams)} patients)",
        "events": events,
        "shards": out.paths,
    } | header


def read_stream(paths: list[Path]) -> Iterator[tuple[str, list[tuple[str, bytes, bytes, int]]]]:
    """The stream's patients in order (the shards read round robin)."""
    return round_robin([_read_shard(p) for p in paths])


def _read_shard(path: Path) -> Iterator[tuple[str, list[tuple[str, bytes, bytes, int]]]]:
    with path.open("rb") as f:
        for _ in range(pickle.load(f)["patients"]):
            yield pickle.load(f)


def round_robin(parts: list[Iterator[Any]]) -> Iterator[Any]:
    """Item k of the merged stream from part k % len(parts) (how _Shards split it)."""
    while True:
        for part in parts:
            item = next(part, None)
            if item is None:
                return
            yield item


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


# ---- a generated event stream kept between runs -------------------------------------------------------------------
#: kept streams, beside the kept bases (never the topics' history: patients' data); the newest MAX_KEPT are kept
STREAMS: Final = Path(".run") / "impact-stream"
#: the code that writes a generated stream, in the tree running this command (whose devstack.cohort, contracts and
#: this module's writer this process imports): a change to any of it writes the stream again
GENERATOR_ROOT: Final = ROOT
GENERATOR_CODE: Final = (
    "devstack/cohort.py",
    "devstack/cohort_model.py",
    "devstack/cohort_care.py",
    "devstack/cohort_patient.py",
    "devstack/impact_stream.py",
    "devstack/__init__.py",
    "contracts",
)


def stream_key(seed: int, patients: int, years: float, store: bool, sample: int, shards: int) -> str:
    """Everything that decides a generated stream's bytes: the cohort's seed, size, years and end (the generator's
    ANCHOR), the sampling, the shards, `store` (in each shard's header), the generator's code (GENERATOR_CODE), the
    interpreter and the installed packages (the messages' serialisation)."""
    from devstack.cohort import ANCHOR

    h = hashlib.sha256(b"osteocds-impact-stream 1\0")
    h.update(tree_digest(GENERATOR_ROOT, GENERATOR_CODE).encode())
    params = [seed, patients, repr(float(years)), ANCHOR.isoformat(), store, sample, shards]
    h.update(json.dumps([params, sys.version, packages()]).encode())
    return h.hexdigest()[:32]


def _file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def kept_stream(
    repo: Path, seed: int, patients: int, years: float, store: bool, sample: int, shards: int
) -> dict[str, Any]:
    """write_cohort's result for a stream kept under STREAMS (written there, then renamed into place, when there is
    none for its key): a run against a kept base does not generate the cohort again. Each shard's sha256 (`digests`,
    computed once when written) is what base_key reads; a kept shard whose size is not the one written is not used."""
    key = stream_key(seed, patients, years, store, sample, shards)
    entry = repo / STREAMS / key
    meta = entry / "meta.json"
    if meta.exists():
        source: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
        paths = [entry / name for name in source.pop("files")]
        if [p.stat().st_size if p.exists() else -1 for p in paths] == source.pop("sizes"):
            with contextlib.suppress(FileNotFoundError):  # the newest used is the last evicted (never made again)
                os.utime(entry)
            return source | {"shards": paths}
        shutil.rmtree(entry, ignore_errors=True)
    staged = repo / STREAMS / f".{key}.{os.getpid()}"
    staged.mkdir(parents=True, exist_ok=True)
    try:
        source = write_cohort(staged / "stream.pickle", seed, patients, years, store, sample, shards)
        paths = source.pop("shards")
        source["digests"] = [_file_sha256(p) for p in paths]
        done = source | {"files": [p.name for p in paths], "sizes": [p.stat().st_size for p in paths]}
        (staged / "meta.json").write_text(json.dumps(done), encoding="utf-8")
        with contextlib.suppress(OSError):  # kept meanwhile by another run: the same bytes (same key)
            staged.rename(entry)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    olds = sorted(
        (e for e in (repo / STREAMS).iterdir() if not e.name.startswith(".") and (e / "meta.json").exists()),
        key=lambda e: e.stat().st_mtime,
    )
    for old in olds[:-MAX_KEPT]:
        if old != entry:
            shutil.rmtree(old, ignore_errors=True)
    return source | {"shards": [entry / p.name for p in paths]}
