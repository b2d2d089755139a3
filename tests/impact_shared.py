"""Issue 21 tests (tests/test_impact.py, tests/test_impact_again.py): runs several tests assert on, made once per
test session (CI time: the same two 13-patient runs served four runs of 20 before). Not a test module.

The trees are HEAD's with this checkout's devstack/replay.py (the Tape being changed, not only the one committed);
the candidate raises the crisis threshold (LAB-CA-CRISIS, L304-306) to 3.85 mmol/L: scoring's code alone differs."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack import impact

ROOT = Path(__file__).resolve().parents[1]
RULES = "services/scoring/rules.py"
CONSTANT = re.compile(r"^CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3\.5$", re.M)
#: the crisis runs' cohort: 13 patients x 1 year (seed 1) holds the same two patients with a calcium value in
#: (3.5, 3.85] as the 20 the tests used before (tests/test_impact.py `crossing`)
PATIENTS = 13
YEARS = 1.0


def tree(dest: Path, crisis: str | None = None) -> Path:
    """HEAD's tree with this checkout's replay; `crisis`: the crisis threshold changed (LAB-CA-CRISIS, L304-306)."""
    dest.mkdir()
    with subprocess.Popen(["git", "-C", str(ROOT), "archive", "HEAD"], stdout=subprocess.PIPE) as p:
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=p.stdout, check=True)
    shutil.copy(ROOT / "devstack" / "replay.py", dest / "devstack" / "replay.py")
    if crisis is not None:
        rules = dest / RULES
        text, n = CONSTANT.subn(f"CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = {crisis}", rules.read_text())
        assert n == 1, "the crisis threshold constant moved: update this test"
        rules.write_text(text)
    return dest


@functools.cache
def crisis_trees() -> tuple[Path, Path]:
    """(base, candidate): HEAD and HEAD with the crisis threshold at 3.85, under a directory removed at exit."""
    top = Path(tempfile.mkdtemp(prefix="osteocds-impact-test-"))
    atexit.register(shutil.rmtree, top, True)
    return tree(top / "base"), tree(top / "candidate", "3.85")


@functools.cache
def crisis_runs() -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(report, French text) of the crisis candidate against its base with every reuse on (the base run, not a kept
    one: `cache=False`), and the report of both sides run with every service live (`full`)."""
    base, candidate = crisis_trees()
    report, text, _ = impact.impact(str(base), str(candidate), patients=PATIENTS, years=YEARS, seed=1, cache=False)
    full, _, _ = impact.impact(str(base), str(candidate), patients=PATIENTS, years=YEARS, seed=1, full=True)
    return report, text, full


def child() -> ModuleType:
    """devstack/impact_child.py, loaded by path as the parent runs it (a side script, never imported as a package
    module): its gate's pure parts under test (tests/unit/test_impact_gate.py, test_review_r36_gate.py)."""
    spec = importlib.util.spec_from_file_location("impact_child_under_test", ROOT / "devstack" / "impact_child.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
