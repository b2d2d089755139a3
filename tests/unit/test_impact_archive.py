"""devstack/impact.py `materialise`: a revision's tree from `git archive` piped into tarfile. tarfile stops at the
end-of-archive blocks, ~10 KB before git's last padding: closing the pipe before git wrote it killed git
(SIGPIPE), reported as "git archive HEAD failed" (a fresh-clone CI, stop 34). A git whose last write comes late
stands in for a loaded host here: the real git does the archiving, the wrapper only delays its last 10 KB."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from devstack import impact_trees

ROOT = Path(__file__).resolve().parents[2]

SLOW_LAST_WRITE = """#!{python}
import subprocess, sys, time
if "archive" not in sys.argv[1:]:
    sys.exit(subprocess.run([{git!r}, *sys.argv[1:]]).returncode)
raw = subprocess.run([{git!r}, *sys.argv[1:]], capture_output=True, check=True).stdout
sys.stdout.buffer.write(raw[:-10240])
sys.stdout.buffer.flush()
time.sleep(0.5)  # the padding written after the reader has seen the end-of-archive blocks
sys.stdout.buffer.write(raw[-10240:])
sys.stdout.buffer.flush()
"""


def test_an_archive_whose_last_padding_comes_late_is_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git = shutil.which("git")
    assert git is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(SLOW_LAST_WRITE.format(python=sys.executable, git=git))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tree = impact_trees.materialise("HEAD", ROOT, tmp_path / "trees")  # the code before the fix: SystemExit here
    committed = impact_trees.git("show", "HEAD:devstack/replay.py", repo=ROOT)
    assert (tree / "devstack" / "replay.py").read_text().rstrip("\n") == committed.rstrip("\n")
