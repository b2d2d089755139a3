"""Review R37-DERIVE (issue 21, impact replay speed, commit a7a6568): the kept base a base is derived from
(devstack/impact_trees.py `ancestor`) and the per-service decision digests that decide which services are taken from
its tape (`decision_digests`). The end-to-end checks (impact runs) are tests/test_review_r37_derive.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from devstack.impact_trees import ALL_TAPED, CACHE, ancestor, decision_digests, lineage
from devstack.replay import MODULES

ROOT = Path(__file__).resolve().parents[2]
LINE = "a" * 32


def _entry(repo: Path, name: str, stats: dict[str, object]) -> Path:
    entry = repo / CACHE / name
    entry.mkdir(parents=True)
    (entry / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return entry


def test_the_ancestor_is_of_the_same_lineage_taped_whole_and_shares_the_most_services(tmp_path: Path) -> None:
    """What was tried (no defect): an entry of another lineage (cohort, seed, sample, store, shards, packages), an
    entry of the older format (no lineage, no digests), one whose tape lacks a service (a `store` base: none) or a
    staged one left without stats are never ancestors; of the rest, the one sharing the most services."""
    mine = {name: f"d-{name}" for name in MODULES}
    all_but_scoring = {**mine, "scoring": "other"}
    only_notification = {name: "other" for name in MODULES} | {"notification": mine["notification"]}
    _entry(tmp_path, "other-lineage", {"lineage": "b" * 32, "taped": list(ALL_TAPED), "decision_digests": mine})
    _entry(tmp_path, "older-format", {"taped": list(ALL_TAPED)})
    _entry(tmp_path, "not-taped", {"lineage": LINE, "taped": [], "decision_digests": mine})
    (tmp_path / CACHE / ".staged.1").mkdir()
    assert ancestor(tmp_path, LINE, mine) is None
    few = _entry(tmp_path, "few", {"lineage": LINE, "taped": list(ALL_TAPED), "decision_digests": only_notification})
    assert ancestor(tmp_path, LINE, mine) == (few, ["notification"])
    most = _entry(tmp_path, "most", {"lineage": LINE, "taped": list(ALL_TAPED), "decision_digests": all_but_scoring})
    found = ancestor(tmp_path, LINE, mine)
    assert found == (most, sorted(set(MODULES) - {"scoring"}))


def test_a_lineage_is_one_event_stream_and_one_store_mode() -> None:
    """What was tried (no defect): another cohort, seed, sample or shard count (the shards' digests) or `store` is
    another lineage, so a base is never derived from a kept base of another stream."""
    one, two = "11" * 32, "22" * 32
    lines = {lineage([one], False), lineage([two], False), lineage([one], True), lineage([one, two], False)}
    assert len(lines) == 4
    assert lineage([one], False) == lineage([one], False)


def _tree(into: Path) -> Path:
    """The decision code of this checkout (what `decision_digests` reads), copied."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("services", "shared", "contracts"):
        shutil.copytree(ROOT / part, into / part, ignore=skip)
    (into / "devstack").mkdir()
    shutil.copy(ROOT / "devstack" / "replay.py", into / "devstack" / "replay.py")
    return into


@pytest.mark.parametrize(
    "line",
    [
        "from services import scoring  # noqa: F401\n",
        "from ..scoring import rules  # noqa: F401\n",
        "from .. import scoring  # noqa: F401\n",
        "from services import (\n    lab_normalisation,\n    scoring,\n)  # noqa: F401\n",
    ],
)
def test_a_service_importing_another_one_without_its_dotted_name_changes_digest_with_it(
    tmp_path: Path, line: str
) -> None:
    """R37-DERIVE (latent from stop 36, fixed): `decision_digests` saw only `services.NAME`; `from services import
    scoring` and a relative `from ..scoring import rules` (or `from .. import scoring`) now count as well, so a
    service's digest changes with every package it runs."""
    tree = _tree(tmp_path / "tree")
    helper = tree / "services" / "notification" / "uses_scoring.py"
    helper.write_text(line, encoding="utf-8")
    before = decision_digests(tree)
    rules = tree / "services" / "scoring" / "rules.py"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n# scoring changed\n", encoding="utf-8")
    after = decision_digests(tree)
    assert after["scoring"] != before["scoring"]
    assert after["notification"] != before["notification"]
