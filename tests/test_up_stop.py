"""`./osteocds up` stopped with Ctrl-C: a terminal sends SIGINT to its whole foreground process group. The broker and
Redis that `up` starts run in their own session (devstack/infra.py OWN_SESSION), so they are still there while `up`
stops the services, which drain and commit; `up` stops them after. Before, the embedded broker died with the
services, which then logged "consumer loop failed; offsets not committed" (CRITICAL) at every stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from devstack.stack import ROOT

#: what `up` does with its infrastructure, in a process group of its own as a terminal's foreground job: start the
#: embedded broker and a Redis, wait for Ctrl-C, then (where `up` stops the services) look whether both still answer
JOB = textwrap.dedent(
    """
    import signal, time
    from devstack import infra
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    with infra.local_tansu() as kafka, infra.local_redis() as redis_url:
        ports = [int(kafka.rsplit(":", 1)[1]), int(redis_url.rsplit(":", 1)[1].split("/")[0])]
        print("READY", *ports, flush=True)
        while not stop:
            time.sleep(0.05)
        time.sleep(0.5)  # the broker and Redis had the time to act on a SIGINT of their own
        print("AFTER", *[infra.port_open("127.0.0.1", p) for p in ports], flush=True)
    print("DOWN", *[infra.port_open("127.0.0.1", p) for p in ports], flush=True)
    """
)


def test_ctrl_c_leaves_the_broker_and_redis_up_until_the_services_are_stopped() -> None:
    job = subprocess.Popen(
        [sys.executable, "-c", JOB], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert job.stdout is not None
        ready = job.stdout.readline().split()
        assert ready[0] == "READY", ready
        os.killpg(job.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        out, _ = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert lines["AFTER"] == ["True", "True"], out  # both answered while the services would drain
    assert lines["DOWN"] == ["False", "False"], out  # and were stopped after them
