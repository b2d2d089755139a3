"""A bench killed by SIGTERM stops what it started (devstack/infra.py `exit_on_sigterm`): the broker, Redis and the
services run in their own sessions, so without it they outlived the killed script (found running a pipeline bench
under `timeout`, session 35)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys, time
from devstack import infra
infra.exit_on_sigterm()
with infra.redis(prefer_docker=False) as redis:
    print(redis.url, flush=True)
    time.sleep(120)
"""


def _redis_alive(port: str) -> bool:
    out = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{port}"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def test_a_script_killed_by_sigterm_stops_the_redis_it_started() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "OSTEOCDS_REDIS")}  # a Redis of its own
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert _redis_alive(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _redis_alive(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _redis_alive(port)
    finally:
        if proc.poll() is None:
            proc.kill()
