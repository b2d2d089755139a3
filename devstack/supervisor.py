"""Keeps the services of `./osteocds up` running one by one, and the control requests that act on one of them
(`./osteocds restart|rebuild|stop|start <service>`, `status`) through files in `.run/control/` (issue 20)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from devstack.stack import RunningStack

#: where `up` reads control requests (the project's run folder)
CONTROL_DIR = Path(__file__).resolve().parents[1] / ".run" / "control"

# --- one service of the running `up`: restart, rebuild, stop, start ------------------------------------------

CONTROL_ACTIONS = ("restart", "rebuild", "stop", "start", "status")
CLEAN_EXIT = {0, -signal.SIGTERM, -signal.SIGINT}  # uvicorn re-raises the signal it handled after a graceful stop


@dataclass
class Supervisor:
    """Keeps `up`'s services running one by one: a service that exits is reported and the others go on; a
    service is stopped, started, restarted or rebuilt on request with the settings `up` gave it."""

    stack: RunningStack
    #: waits until the named service answers /readyz (raises if it exits or times out)
    wait_ready: Callable[[str], None]
    #: runs the service's `rebuild` command with its settings; returns (exit code, output tail)
    run_rebuild: Callable[[str], tuple[int, str]]
    out: TextIO = sys.stderr
    #: stopped on request: not reported as exited
    stopped: set[str] = field(default_factory=set)
    #: exited on their own and already reported
    reported: set[str] = field(default_factory=set)

    def running(self, name: str) -> bool:
        proc = self.stack.procs.get(name)
        return proc is not None and proc.poll() is None

    def check(self) -> list[str]:
        """Report each service that has exited on its own since the last check; the others keep running."""
        new = [
            n
            for n, p in self.stack.procs.items()
            if p.poll() is not None and n not in self.stopped and n not in self.reported
        ]
        for name in new:
            self.reported.add(name)
            code = self.stack.procs[name].returncode
            print(
                f"osteocds: {name} exited (code {code}); the other services keep running. "
                f"Start it again: ./osteocds restart {name}   (or rebuild its state: ./osteocds rebuild {name})",
                file=self.out,
                flush=True,
            )
        return new

    def _stop(self, name: str, timeout: float = 20) -> int | None:
        proc = self.stack.procs[name]
        self.stopped.add(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def _start(self, name: str) -> str:
        self.stack.start_service(name)
        self.stopped.discard(name)
        self.reported.discard(name)
        try:
            self.wait_ready(name)
        except (RuntimeError, TimeoutError) as e:
            return f"{name} started but is not ready: {e}"
        return ""

    def status(self) -> str:
        lines = []
        for name, proc in self.stack.procs.items():
            state = (
                f"running (pid {proc.pid})"
                if proc.poll() is None
                else "stopped on request"
                if name in self.stopped
                else f"exited (code {proc.returncode})"
            )
            lines.append(f"{name:<22} {self.stack.urls.get(name, ''):<24} {state}")
        return "\n".join(lines)

    def handle(self, action: str, name: str) -> tuple[bool, str]:
        """Carry out one request; (done, what happened)."""
        if action == "status":
            return True, self.status()
        if action not in CONTROL_ACTIONS:
            return False, f"unknown action {action!r}: one of {', '.join(CONTROL_ACTIONS)}"
        if name not in self.stack.procs:
            return False, f"unknown service {name!r}: one of {', '.join(self.stack.procs)}"
        if action == "stop":
            if not self.running(name):
                self.stopped.add(name)
                return True, f"{name} was not running"
            code = self._stop(name)
            return True, f"{name} stopped ({'clean' if code in CLEAN_EXIT else f'exit code {code}'})"
        if action == "start" and self.running(name):
            return True, f"{name} is already running"
        notes: list[str] = []
        if action in ("restart", "rebuild") and self.running(name):
            code = self._stop(name)
            notes.append(f"{name} stopped ({'clean' if code in CLEAN_EXIT else f'exit code {code}'})")
        ok = True
        if action == "rebuild":
            self.stopped.add(name)
            code, tail = self.run_rebuild(name)
            ok = code == 0
            notes.append(f"rebuilt its state from Kafka: {tail}" if ok else f"rebuild FAILED (exit {code}): {tail}")
        problem = self._start(name)
        if problem:
            return False, "; ".join([*notes, problem])
        proc = self.stack.procs[name]
        notes.append(f"{name} started (pid {proc.pid}, {self.stack.urls[name]})")
        return ok, "; ".join(notes)

    def serve_requests(self, control_dir: Path = CONTROL_DIR) -> int:
        """Answer the requests waiting in `control_dir` (written by `request`); returns how many."""
        if not control_dir.is_dir():
            return 0
        handled = 0
        for req in sorted(control_dir.glob("*.req"), key=lambda p: p.stat().st_mtime):
            try:
                doc = json.loads(req.read_text())
                ok, message = self.handle(str(doc.get("action")), str(doc.get("service", "")))
            except (OSError, ValueError) as e:
                doc, ok, message = {}, False, f"unreadable request: {e}"
            req.unlink(missing_ok=True)
            if doc.get("action") != "status":
                print(f"osteocds: {message}", file=self.out, flush=True)
            res = req.with_suffix(".tmp")
            res.write_text(json.dumps({"ok": ok, "message": message}))
            res.rename(req.with_suffix(".res"))
            handled += 1
        return handled


def request(action: str, service: str, timeout: float, control_dir: Path = CONTROL_DIR) -> tuple[bool, str]:
    """Ask the running `up` to act on one service and wait for its answer."""
    control_dir.mkdir(parents=True, exist_ok=True)
    rid = uuid.uuid4().hex
    tmp = control_dir / f"{rid}.new"
    tmp.write_text(json.dumps({"action": action, "service": service}))
    tmp.rename(control_dir / f"{rid}.req")
    res = control_dir / f"{rid}.res"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if res.exists():
            doc = json.loads(res.read_text())
            res.unlink(missing_ok=True)
            return bool(doc["ok"]), str(doc["message"])
        time.sleep(0.1)
    (control_dir / f"{rid}.req").unlink(missing_ok=True)
    return False, f"no answer from `up` after {timeout:g} s"
