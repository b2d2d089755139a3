"""Review R37-DERIVE (issue 21, impact replay speed, commit a7a6568): a base derived from a kept base, and a candidate
without settings kept as a base in turn, must keep and report exactly what a cold run of that tree keeps and reports.
Real impact runs on small cohorts in throwaway git repositories (as tests/test_impact.py), no mock of the rule engine.
The crisis threshold is LAB-CA-CRISIS (referentiel L304-306: corrected calcium above 3.5 mmol/L, LAB-CA-CORR L316)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devstack import impact, impact_sides, impact_trees
from devstack.replay import MODULES
from tests import test_impact
from tests.test_impact import RULES, SMALL, _git, _kept_as_cold

#: the fixture of tests/test_impact.py: a throwaway repository whose first commit is HEAD's tree (threshold 3.5)
repo = test_impact.repo

THRESHOLD = re.compile(r"^CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = [0-9.]+$", re.M)
KEYS = ("patients_changed", "changed_patients", "critical_lost", "dead_letters", "rules")


def _threshold(repo: Path, value: str) -> None:
    """The crisis threshold of the repository's working tree (services/scoring/rules.py, LAB-CA-CRISIS)."""
    rules = repo / RULES
    text, n = THRESHOLD.subn(f"CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = {value}", rules.read_text())
    assert n == 1
    rules.write_text(text)


def test_a_worktree_edited_while_the_candidate_runs_is_not_kept_under_its_old_key(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R37-DERIVE (fixed): the WORKTREE candidate kept as a base was keyed on the tree as read before its children ran
    and its digests after; an edit saved meanwhile kept the edited tree's outputs under the unedited tree's key, and
    once that tree was committed every later run took that wrong base. Each tree's code is now read once at the start
    (`code_digest`: the key and the digests) and again before keeping: a tree edited meanwhile is not kept."""
    kw: dict[str, Any] = {"patients": SMALL, "years": 1}

    def run(**more: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **(kw | more))[0]

    _threshold(repo, "3.96")
    assert run()["patients_changed"] >= 1  # HEAD (3.5) kept, cold
    original = impact_sides.run_sides

    def edited_meanwhile(*args: Any, **more: Any) -> dict[str, Any]:
        if more.get("tape_out") is not None:  # the developer reverts the worktree while the candidate starts
            _threshold(repo, "3.5")
        return original(*args, **more)

    monkeypatch.setattr(impact, "run_sides", edited_meanwhile)
    run()  # the kept base taken; the candidate (3.96 when its key was read) kept as a base in turn
    monkeypatch.setattr(impact, "run_sides", original)
    # the developer commits 3.96 after all; the next change goes back to 3.5
    _threshold(repo, "3.96")
    _git(repo, "commit", "-qam", "crisis at 3.96")
    _threshold(repo, "3.5")
    later = run()
    cold = run(cache=False)
    assert cold["patients_changed"] >= 1
    for key in KEYS:
        assert later[key] == cold[key], key


def test_a_derived_base_reports_the_applications_of_a_cold_base(repo: Path) -> None:
    """R37-DERIVE (fixed): a derived base kept its derivation's count of applications (only what ran live against the
    ancestor) as the base's; it now keeps its complete tape's count (every service's, as a cold base counts them) and
    the derivation's own as `live_applications`."""
    kw: dict[str, Any] = {"patients": SMALL, "years": 1}

    def run(**more: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **(kw | more))[0]

    _threshold(repo, "3.96")
    run()  # HEAD (3.5) kept, cold
    _git(repo, "commit", "-qam", "crisis at 3.96")
    _threshold(repo, "3.85")
    derived = run()
    assert derived["reused"]["base_derived_from"] is not None
    cold = run(cache=False)
    assert derived["applications"]["base"] == cold["applications"]["base"]


def test_a_candidate_with_settings_or_a_full_run_keeps_and_derives_nothing(repo: Path) -> None:
    """What was tried (no defect): a candidate with settings is never kept as a base (its outputs are not its tree's),
    and `full=True` (as `cache=False`, `--ci`) neither derives a base nor keeps one."""
    kw: dict[str, Any] = {"patients": SMALL, "years": 1}

    def run(**more: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **(kw | more))[0]

    def kept() -> set[str]:
        return {e.name for e in (repo / impact_trees.CACHE).iterdir() if not e.name.startswith(".")}

    _threshold(repo, "3.96")
    run()  # HEAD (3.5) kept, cold
    first = kept()
    assert len(first) == 1
    settings = run(settings={"CALCIUM_CURRENT_HOURS": 48})
    assert settings["reused"]["base_kept"] and kept() == first
    _git(repo, "commit", "-qam", "crisis at 3.96")
    _threshold(repo, "3.85")
    full = run(full=True)
    assert full["reused"]["base_derived_from"] is None and not full["reused"]["base_kept"] and kept() == first


def test_a_base_derived_across_an_upstream_change_keeps_what_a_cold_base_keeps(repo: Path) -> None:
    """What was tried (no defect): the change since the kept base is upstream of every other service (lab's
    calcium mg/dL factor, LAB-UNITS), so the gate, `_again` and its recording of the live services
    (`record=live`) decide most patients: the derived base's outputs and complete tape, and its report, are a cold
    base's."""
    kw: dict[str, Any] = {"patients": 6, "years": 1}

    def run(**more: Any) -> dict[str, Any]:
        return impact.impact("HEAD", impact_trees.WORKTREE, repo=repo, **(kw | more))[0]

    _threshold(repo, "3.96")
    run()  # HEAD kept, cold
    units = repo / "services" / "lab_normalisation" / "units.py"
    text, n = re.subn(r'"mg/dL", 1 / 4\.008,', '"mg/dL", 1 / 3.9,', units.read_text())
    assert n >= 1
    units.write_text(text)
    _git(repo, "commit", "-qm", "calcium factor", "--", "services/lab_normalisation/units.py")
    derived = run()
    assert derived["reused"]["base_derived_from"]["services"] == sorted(set(MODULES) - {"lab-normalisation"})
    cold = run(cache=False)
    for key in KEYS:
        assert derived[key] == cold[key], key
    entries = {e.name: e for e in (repo / impact_trees.CACHE).iterdir() if not e.name.startswith(".")}
    came = {
        n: json.loads((e / "stats.json").read_text(encoding="utf-8")).get("derived_from") for n, e in entries.items()
    }
    (mine,) = (
        entries[n]
        for n, d in came.items()
        if d
        and d["base"] == derived["reused"]["base_derived_from"]["base"]
        and set(d["services"]) == set(derived["reused"]["base_derived_from"]["services"])
    )
    how = json.loads((mine / "stats.json").read_text(encoding="utf-8"))
    assert how["reruns"] >= 1, {k: how[k] for k in ("same_as_base", "reruns", "live_again")}
    _kept_as_cold(run, entries, mine)
