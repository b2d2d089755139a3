"""Issue 20, a developer's first hour: `./osteocds --help`, the venv's Python, the demo's answers, one service of
`up` at a time, and a Redis state that outlives its broker. No broker, no network: the script runs in a
temporary copy with fake interpreters, the stack's functions in-process with fakes."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from devstack import demo, infra, supervisor, up_infra
from devstack import stack as st

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "osteocds"


# --- 1. help ---------------------------------------------------------------------------------------------------


def _commands_of_script() -> set[str]:
    """Every command the script's `case` dispatches on."""
    found: set[str] = set()
    for label in re.findall(r"^\s{2}([a-z|\-]+)\)", SCRIPT.read_text(), flags=re.M):
        found |= {c for c in label.split("|") if not c.startswith("-")}
    return found


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_exits_0_and_lists_every_command(flag: str) -> None:
    done = subprocess.run([str(SCRIPT), flag], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^\s{2}([a-z]+)\s", done.stdout, flags=re.M))
    assert {"up", "demo", "token", "test", "check", "bench", "chaos"} <= listed
    assert _commands_of_script() <= listed


def test_an_unknown_command_fails_and_shows_the_help() -> None:
    done = subprocess.run([str(SCRIPT), "nonsense"], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode != 0
    assert "unknown command: nonsense" in done.stderr and "bench" in done.stderr


# --- 2. a .venv of another Python is recreated --------------------------------------------------------------

#: a stand-in interpreter: answers the version query, "creates" a venv (a copy of itself), accepts anything else
FAKE_PYTHON = """#!/bin/sh
case "$*" in
  *version_info*) echo {version} ;;
  "-m venv .venv") mkdir -p .venv/bin && cp "$0" .venv/bin/python ;;
  *) echo "ran: $*" >> "$(dirname "$0")/ran.log" ;;
esac
"""


def _fake_python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON.format(version=version))
    path.chmod(0o755)
    return path


def _project_copy(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy2(SCRIPT, proj / "osteocds")
    shutil.copy2(ROOT / "pyproject.toml", proj / "pyproject.toml")
    return proj


def _stamp(proj: Path) -> str:
    return ".installed-" + hashlib.sha1((proj / "pyproject.toml").read_bytes()).hexdigest()[:12]


def test_a_venv_of_another_python_is_recreated(tmp_path: Path) -> None:
    """`PYTHON=python3.12 ./osteocds up` once left a 3.12 .venv (installed, stamped) that every later command used."""
    proj = _project_copy(tmp_path)
    _fake_python(proj / ".venv" / "bin" / "python", "3.12")
    (proj / ".venv" / _stamp(proj)).touch()
    good = _fake_python(tmp_path / "bin" / "python3.11", "3.11")
    done = subprocess.run(
        ["./osteocds", "token", "--role", "clinician", "--user", "u"],
        cwd=proj,
        env={**os.environ, "PYTHON": str(good)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ".venv runs Python 3.12, OsteoCDS needs 3.11: recreating it" in done.stderr
    version = subprocess.run(
        [str(proj / ".venv/bin/python"), "-c", "import sys; print(sys.version_info)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "3.11"  # the new venv is the 3.11 interpreter's
    assert (proj / ".venv" / _stamp(proj)).exists()  # installed again, then stamped
    assert "-m pip install" in (proj / ".venv/bin/ran.log").read_text()


def test_a_venv_of_the_right_python_is_kept(tmp_path: Path) -> None:
    proj = _project_copy(tmp_path)
    _fake_python(proj / ".venv" / "bin" / "python", "3.11")
    (proj / ".venv" / _stamp(proj)).touch()
    done = subprocess.run(
        ["./osteocds", "token", "--role", "clinician", "--user", "u"],
        cwd=proj,
        env={**os.environ, "PYTHON": "/nonexistent/python"},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "recreating" not in done.stderr and "installing" not in done.stderr
    assert "-m devstack.stack token" in (proj / ".venv/bin/ran.log").read_text()


def test_a_python_of_another_version_makes_no_venv(tmp_path: Path) -> None:
    proj = _project_copy(tmp_path)
    wrong = _fake_python(tmp_path / "bin" / "python3.12", "3.12")
    done = subprocess.run(
        ["./osteocds", "token", "--role", "clinician", "--user", "u"],
        cwd=proj,
        env={**os.environ, "PYTHON": str(wrong)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode != 0
    assert "is Python 3.12, not 3.11: set PYTHON" in done.stderr
    assert not (proj / ".venv").exists()


# --- 3 and 4. the demo: its curl, its settle window, and when the system does not answer -----------------------

CRITICAL = [
    {"rule_id": "LAB-CA-CRISIS", "severity": "critical"},
    {"rule_id": "RT-MSCC", "severity": "critical"},
]
SETTLED = [{"rule_id": "SYS-AR-START", "severity": "warning"}]


def _alert(a: dict[str, str]) -> dict[str, object]:
    return {
        **a,
        "title": "t",
        "status": "active",
        "text_fr": "x",
        "citation": {"section": "s", "lines": "L1"},
    }


def _run_demo(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    answers: list[list[dict[str, str]]],
    settle: float | None = None,
    window: float = 0,
) -> tuple[int, str, str]:
    """cmd_demo against a fake stack: `answers` are what /alerts returns, call after call (the last repeats)."""
    state = tmp_path / "stack.json"
    urls = {"notification": "http://127.0.0.1:18105", "systemic-planner": "http://127.0.0.1:18103"}
    state.write_text(json.dumps({"kafka": "127.0.0.1:1", "urls": urls, "settle_seconds": window}))
    monkeypatch.setattr(demo, "STATE_FILE", state)
    monkeypatch.setattr(demo, "DEMO_CRITICAL_WAIT_S", 0.3)
    monkeypatch.setattr(demo, "SETTLE_MARGIN_S", 0.0)
    monkeypatch.setattr(demo, "local_token", lambda *a, **k: "tok")

    async def publish(*_: object) -> None:
        return None

    monkeypatch.setattr(demo, "_publish", publish)
    calls = {"n": 0}

    def fetch(notif: str, patient: str, headers: dict[str, str]) -> list[dict[str, object]]:
        i = min(calls["n"], len(answers) - 1)
        calls["n"] += 1
        return [_alert(a) for a in answers[i]]

    monkeypatch.setattr(demo, "fetch_active", fetch)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = demo.cmd_demo(argparse.Namespace(patient=None, settle=settle))
    return code, out.getvalue(), err.getvalue()


def test_demo_prints_a_ready_to_paste_curl_with_its_patient(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, err = _run_demo(monkeypatch, tmp_path, [CRITICAL, CRITICAL + SETTLED])
    assert code == 0, err
    patient = re.search(r"for patient (demo-[0-9a-f]{8})", out)
    assert patient
    pid = patient.group(1)
    assert f"Live page: http://127.0.0.1:18105/ui/patients/{pid}" in out
    assert 'curl -H "Authorization: Bearer $(./osteocds token --role clinician --user clinician-1)" \\' in out
    assert f'"http://127.0.0.1:18105/alerts?patient_id={pid}"' in out
    assert demo.query_hint("http://h:1", "p-1")[1].strip() == '"http://h:1/alerts?patient_id=p-1"'


def test_demo_fails_when_a_critical_alert_does_not_come(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A stalled radiotherapy planner: the cord compression never shows; demo used to exit 0 with one alert."""
    code, _, err = _run_demo(monkeypatch, tmp_path, [CRITICAL[:1]])
    assert code == 1
    assert "did not answer as expected" in err and "RT-MSCC" in err


def test_demo_waits_for_every_critical_alert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, err = _run_demo(monkeypatch, tmp_path, [[], CRITICAL[:1], CRITICAL, CRITICAL + SETTLED])
    assert code == 0, err
    shown_at_once = out.split("Shown at once (critical):")[1].split("held for the settle window")[0]
    assert "RT-MSCC" in shown_at_once and "LAB-CA-CRISIS" in shown_at_once


def test_demo_fails_when_nothing_is_shown_after_the_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, _, err = _run_demo(monkeypatch, tmp_path, [CRITICAL])
    assert code == 1
    assert "no info or warning alert" in err and "SYS-AR-START" in err


def test_settle_shorter_than_the_stacks_window_is_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--settle sets the client's wait only: with the stack holding warnings longer, demo says so and does not
    count their absence as a failure."""
    code, out, err = _run_demo(monkeypatch, tmp_path, [CRITICAL], settle=0, window=30)
    assert code == 0, err
    assert "the stack holds info and warning decisions 30 s" in out and "will not be shown yet" in out


def test_settle_has_a_help_text_saying_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        st.main(["demo", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--settle SECONDS how long demo waits" in text
    assert "does not change the server's window" in text and "ALERT_SETTLE_SECONDS" in text


# --- 5. one service of `up` at a time ------------------------------------------------------------------------


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.fixture
def supervised(monkeypatch: pytest.MonkeyPatch) -> Any:
    running = st.RunningStack(urls={"scoring": "http://127.0.0.1:1", "notification": "http://127.0.0.1:2"})

    def start_service(name: str) -> subprocess.Popen[bytes]:
        running.procs[name] = _sleeper()
        return running.procs[name]

    monkeypatch.setattr(running, "start_service", start_service)  # before any process: nothing left if it fails
    running.procs = {"scoring": _sleeper(), "notification": _sleeper()}
    rebuilt: list[str] = []

    def rebuild(name: str) -> tuple[int, str]:
        assert running.procs[name].poll() is not None  # the service is stopped while its state is rebuilt
        rebuilt.append(name)
        return 0, "rebuild done"

    out = io.StringIO()
    sup = supervisor.Supervisor(running, wait_ready=lambda name: None, run_rebuild=rebuild, out=out)
    yield sup, rebuilt, out
    running.stop(timeout=5)


def test_a_service_that_exits_is_reported_and_the_others_keep_running(supervised: Any) -> None:
    sup, _, out = supervised
    sup.stack.procs["scoring"].kill()
    sup.stack.procs["scoring"].wait()
    assert sup.check() == ["scoring"]
    assert sup.check() == []  # said once
    assert "scoring exited" in out.getvalue() and "./osteocds restart scoring" in out.getvalue()
    assert sup.running("notification")
    ok, message = sup.handle("restart", "scoring")
    assert ok, message
    assert sup.running("scoring") and sup.check() == []


def test_restart_stop_start_and_rebuild_one_service(supervised: Any) -> None:
    sup, rebuilt, _ = supervised
    first = sup.stack.procs["scoring"]
    ok, message = sup.handle("restart", "scoring")
    assert ok and "scoring stopped" in message and "scoring started" in message
    assert first.poll() is not None and sup.running("scoring") and sup.stack.procs["scoring"] is not first
    ok, message = sup.handle("stop", "notification")
    assert ok and not sup.running("notification") and sup.check() == []  # stopped on request: not "exited"
    assert "stopped on request" in sup.handle("status", "")[1]
    ok, message = sup.handle("start", "notification")
    assert ok and sup.running("notification")
    ok, message = sup.handle("rebuild", "scoring")
    assert ok and rebuilt == ["scoring"] and "rebuild done" in message and sup.running("scoring")
    assert sup.handle("restart", "nope") == (False, "unknown service 'nope': one of scoring, notification")


def test_up_answers_requests_through_its_control_directory(supervised: Any, tmp_path: Path) -> None:
    sup, _, _ = supervised
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sup.serve_requests(tmp_path)
            stop.wait(0.05)

    t = threading.Thread(target=loop)
    t.start()
    try:
        before = sup.stack.procs["scoring"].pid
        ok, message = supervisor.request("restart", "scoring", timeout=10, control_dir=tmp_path)
        assert ok, message
        assert sup.stack.procs["scoring"].pid != before
        ok, message = supervisor.request("status", "", timeout=10, control_dir=tmp_path)
        assert ok and "scoring" in message and "running" in message
    finally:
        stop.set()
        t.join()
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_restart_and_rebuild_are_commands_of_the_stack() -> None:
    for action in ("restart", "rebuild", "stop", "start"):
        with pytest.raises(SystemExit) as done, contextlib.redirect_stdout(io.StringIO()):
            st.main([action, "--help"])
        assert done.value.code == 0


# --- 6. a Redis state that outlives its broker ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fresh", "recorded", "keys", "reset", "action"),
    [
        (True, None, 0, False, "keep"),  # nothing there
        (True, "embedded:old", 12, False, "flush"),  # the issue: a new in-memory broker, an old state
        (True, None, 12, False, "flush"),  # same, state written before the check existed
        (False, "kafka:b:9092", 12, False, "keep"),  # the broker the state was derived from
        (False, None, 12, False, "keep"),  # cannot tell: kept, and said
        (False, "kafka:other:9092", 12, False, "refuse"),  # another broker's state, on servers you configured
        (False, "kafka:other:9092", 12, True, "flush"),  # --reset-state
    ],
)
def test_the_state_decision(fresh: bool, recorded: str | None, keys: int, reset: bool, action: str) -> None:
    decision = up_infra.decide_redis_state(
        broker_id="embedded:new" if fresh else "kafka:b:9092",
        broker_fresh=fresh,
        recorded_broker=recorded,
        state_keys=keys,
        reset=reset,
    )
    assert decision.action == action
    assert decision.reason
    if action == "refuse":
        assert "--reset-state" in decision.reason and "REDIS_URL" in decision.reason


def test_an_embedded_broker_is_always_new() -> None:
    local = infra.Provisioned("127.0.0.1:9092", "local", {})
    first, fresh = up_infra.broker_identity(local)
    assert fresh and first != up_infra.broker_identity(local)[0]
    assert up_infra.broker_identity(infra.Provisioned("b:9092", "env", {})) == ("kafka:b:9092", False)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
def test_up_deletes_an_old_state_for_a_new_broker_and_only_that() -> None:
    import redis as redis_sync

    with infra.local_redis() as url:
        r = redis_sync.Redis.from_url(url)
        r.set("osteocds:notification:state:demo-1", "{}")
        r.set("osteocds:notification:epoch", "e1")
        r.set("someone-else", "kept")
        decision = up_infra.reconcile_redis_state(url, "embedded:x", broker_fresh=True, reset=False)
        assert decision.action == "flush" and "2 OsteoCDS key(s)" in decision.reason
        assert sorted(r.keys()) == [up_infra.BROKER_KEY.encode(), b"someone-else"]
        # the next start against a persistent broker named here keeps what that broker's services write
        r.set("osteocds:notification:epoch", "e2")
        assert up_infra.reconcile_redis_state(url, "embedded:x", broker_fresh=False, reset=False).action == "keep"
        assert up_infra.reconcile_redis_state(url, "kafka:y", broker_fresh=False, reset=False).action == "refuse"
        assert r.get("osteocds:notification:epoch") == b"e2"
        r.close()
