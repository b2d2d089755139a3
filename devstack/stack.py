"""`osteocds`: run the whole system locally.

osteocds up      start broker (embedded, or Apache Kafka with --kafka apache, unless KAFKA_BOOTSTRAP_SERVERS), Redis,
                 a local OIDC issuer and the five services
osteocds demo    publish sample patient events to a running stack and print the alerts
osteocds token   print an access token of the local issuer: --role clinician|integration|ops --user NAME
osteocds restart|rebuild|stop|start SERVICE, osteocds status
                 one service of the running `up`, with the settings `up` gave it (through .run/control/)
osteocds env     the running `up`'s settings as shell exports, for a command run by hand against it
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contracts.topics import (
    LAB_NORMALISATION,
    NOTIFICATION,
    RADIOTHERAPY_PLANNER,
    SCORING,
    SYSTEMIC_PLANNER,
)
from devstack import infra, issuer
from devstack.supervisor import CLEAN_EXIT, CONTROL_DIR, Supervisor, request
from devstack.up_infra import SECURED_WORKDIR, broker_identity, identity, reconcile_redis_state, up_infrastructure
from shared.web.auth import ROLES

ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = ROOT / ".run" / "stack.json"

#: service name -> (python module, default HTTP port)
SERVICE_MODULES: dict[str, tuple[str, int]] = {
    LAB_NORMALISATION: ("services.lab_normalisation", 8101),
    SCORING: ("services.scoring", 8102),
    SYSTEMIC_PLANNER: ("services.systemic_planner", 8103),
    RADIOTHERAPY_PLANNER: ("services.radiotherapy_planner", 8104),
    NOTIFICATION: ("services.notification", 8105),
}


#: lab-normalisation's MLLP listener (HL7 v2 over TCP); 2575 is the port registered for HL7
MLLP_PORT = 2575
#: notification's default settle window (ALERT_SETTLE_SECONDS): info and warning decisions are held this long
DEFAULT_SETTLE_S = 30.0


@dataclass
class RunningStack:
    urls: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    mllp_port: int = MLLP_PORT
    log_dir: Path | None = None
    #: issue 22, the secured mode: each service's own settings on top of `env` (its Kafka principal, Redis user)
    own_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def service_env(self, name: str) -> dict[str, str]:
        """One service's environment: the common one and its own (credentials of the secured mode)."""
        return {**self.env, **self.own_env.get(name, {})}

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        """(Re)start one service with the settings it was first given: environment, HTTP port, MLLP port, log."""
        port = int(self.urls[name].rsplit(":", 1)[1])
        append = name in self.procs  # a restart adds to the service's log
        self.procs[name] = _spawn(name, self.service_env(name), port, self.mllp_port, self.log_dir, append)
        return self.procs[name]

    def service_command(self, name: str, *args: str) -> list[str]:
        return [sys.executable, "-m", SERVICE_MODULES[name][0], *args]

    def stop(self, timeout: float = 20) -> dict[str, int]:
        """SIGTERM every service (they drain and commit), then wait; returns the exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes


def service_env(bootstrap: str, redis_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "REDIS_", "HTTP_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"})
    # issue 24: MLLP is TLS with client certificates unless plaintext is asked for, on loopback only: the dev stack's
    env.setdefault("MLLP_PLAINTEXT", "true")
    env.update(extra)
    return env


def spawn_services(
    bootstrap: str,
    redis_url: str,
    extra_env: dict[str, str],
    ports: dict[str, int] | None = None,
    log_dir: Path | None = None,
    wait_ready: float = 60,
    mllp_port: int | None = None,
    own_env: dict[str, dict[str, str]] | None = None,
) -> RunningStack:
    """Start the five services as separate processes and wait until each answers /readyz. With `ports`
    given (tests), lab-normalisation's MLLP listener also gets a free port unless `mllp_port` says which.
    `own_env`: settings of one service only (the secured mode's credentials, devstack/secure.py)."""
    env = service_env(bootstrap, redis_url, extra_env)
    mllp = mllp_port or (infra.free_port() if ports is not None else int(os.environ.get("MLLP_PORT", MLLP_PORT)))
    stack = RunningStack(urls={}, env=env, mllp_port=mllp, log_dir=log_dir, own_env=dict(own_env or {}))
    for name, (_, default_port) in SERVICE_MODULES.items():
        port = (ports or {}).get(name, default_port)
        stack.urls[name] = f"http://127.0.0.1:{port}"
        stack.start_service(name)
    try:
        wait_until_ready(stack, wait_ready)
    except BaseException:
        stack.stop()
        raise
    return stack


def _spawn(
    name: str, env: dict[str, str], port: int, mllp: int, log_dir: Path | None, append: bool = False
) -> subprocess.Popen[bytes]:
    mode = "ab" if append else "wb"
    out = open(log_dir / f"{name}.log", mode) if log_dir else None  # noqa: SIM115 - lives with the process
    own = {"MLLP_PORT": str(mllp)} if name == LAB_NORMALISATION else {}
    return subprocess.Popen(
        [sys.executable, "-m", SERVICE_MODULES[name][0]],
        cwd=ROOT,
        env={**env, "HTTP_PORT": str(port), **own},
        stdout=out or None,
        stderr=subprocess.STDOUT if out else None,
    )


def wait_until_ready(stack: RunningStack, timeout: float) -> None:
    """Wait until each service answers /readyz 200; on a timeout, say which checks failed and why (the body of the
    last /readyz, no patient data) and the end of the service's log, if it has one."""
    deadline = time.monotonic() + timeout
    pending = dict(stack.urls)
    last: dict[str, str] = {}
    with httpx.Client(timeout=2) as client:
        while pending:
            for name, url in list(pending.items()):
                proc = stack.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode} during start-up{_log_tail(stack, name)}"
                    )
                try:
                    response = client.get(f"{url}/readyz")
                except httpx.HTTPError as e:
                    last[name] = f"/readyz not answering ({type(e).__name__})"
                    continue
                if response.status_code == 200:
                    del pending[name]
                else:
                    last[name] = f"/readyz {response.status_code}: {response.text[:500]}"
            if time.monotonic() > deadline:
                why = "".join(
                    f"\n  {name}: {last.get(name, 'never asked')}{_log_tail(stack, name)}" for name in pending
                )
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}{why}")
            time.sleep(0.1)


def _log_tail(stack: RunningStack, name: str, lines: int = 15) -> str:
    if stack.log_dir is None:
        return ""
    try:
        tail = (stack.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n    log: " + "\n    log: ".join(tail) if tail else ""


def _up_running() -> dict[str, object] | None:
    """The running `up`'s record (.run/stack.json), when its process is alive."""
    if not STATE_FILE.exists():
        return None
    st: dict[str, object] = json.loads(STATE_FILE.read_text())
    pid = st.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return st


def cmd_control(args: argparse.Namespace) -> int:
    if _up_running() is None:
        print("No running `./osteocds up` found (.run/stack.json): start it first.", file=sys.stderr)
        return 2
    timeout = {"rebuild": 600.0, "status": 10.0}.get(args.cmd, 120.0)
    ok, message = request(args.cmd, getattr(args, "service", ""), timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def up_record(
    kafka: infra.Provisioned, redis_url: str, urls: dict[str, str], oidc: dict[str, str], settle: float
) -> dict[str, object]:
    """What `up` writes to .run/stack.json for the commands run against it (`demo`, `env`, the control commands)."""
    return {
        "pid": os.getpid(),
        "kafka": kafka.url,
        "redis": redis_url,
        "urls": urls,
        "kafka_settings": kafka.settings,
        "kafka_kind": kafka.kind,
        # issue 22: what a command run by hand against this `up` needs (`./osteocds env`); no secret
        "service_settings": {
            **{k: v for k, v in kafka.settings.items() if not k.endswith(("_PASSWORD", "_SECRET"))},
            **oidc,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.url,
            "REDIS_URL": redis_url,
        },
        "issuer": oidc.get("OIDC_ISSUER"),
        "settle_seconds": settle,
    }


def cmd_env(args: argparse.Namespace) -> int:
    """Print the running `up`'s broker, Redis and identity settings as shell exports, for a command run by hand
    against it (`eval $(./osteocds env)` then `python -m services.scoring rebuild`; issue 22: against the embedded
    broker a producer needs KAFKA_ENABLE_IDEMPOTENCE=false)."""
    st = _up_running()
    if st is None:
        print("No running `./osteocds up` found (.run/stack.json): start it first.", file=sys.stderr)
        return 2
    settings = st.get("service_settings")
    if not isinstance(settings, dict):  # an `up` of an older version
        settings = {
            **dict(st.get("kafka_settings") or {}),  # type: ignore[call-overload]
            "KAFKA_BOOTSTRAP_SERVERS": st["kafka"],
            "REDIS_URL": st["redis"],
        }
    for key, value in sorted(settings.items()):
        print(f"export {key}={shlex.quote(str(value))}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    if args.kafka:  # issue 22: the engine of infra.kafka(); OSTEOCDS_KAFKA=apache does the same
        os.environ["OSTEOCDS_KAFKA"] = args.kafka
    if args.secured:  # issue 22: the secured mode runs on Apache Kafka
        os.environ["OSTEOCDS_KAFKA"] = "apache"
    base = args.base_port
    ports = {name: base + 1 + i for i, name in enumerate(SERVICE_MODULES)} if base else None
    print("OsteoCDS: starting infrastructure...", flush=True)
    with (
        up_infrastructure(args.secured, kafka_port=0 if base else None) as (kafka, redis, own, bus),
        identity(base or issuer.DEFAULT_PORT) as (oidc, oidc_label),
    ):
        print(f"  Kafka  {kafka.url}  ({kafka.kind})")
        if kafka.cluster is not None:
            c = kafka.cluster
            print(
                f"         {len(c.nodes)} Apache Kafka broker(s), KRaft, started in {c.started_s:.1f} s; data and "
                f"logs in {c.workdir.relative_to(ROOT) if c.workdir.is_relative_to(ROOT) else c.workdir}"
            )
        print(f"  Redis  {redis.url}  ({redis.kind})")
        print(f"  OIDC   {oidc_label}")
        if args.secured:  # a new TLS-only Redis, which no user may scan: the services rebuild from the broker
            print(
                "  Secured TLS + SASL/SCRAM + ACLs, one principal and Redis user per service; refusals in "
                f"{SECURED_WORKDIR.relative_to(ROOT)}/node-*/kafka-authorizer.log"
            )
            print("  State  a new Redis (TLS only, ACL users): each service rebuilds its state from the broker")
        else:
            broker_id, fresh = broker_identity(kafka)
            decision = reconcile_redis_state(redis.url, broker_id, fresh, args.reset_state)
            if decision.action == "refuse":
                print(f"osteocds: not starting: {decision.reason}", file=sys.stderr)
                return 2
            print(f"  State  {decision.reason}", flush=True)
        stack = spawn_services(kafka.url, redis.url, {**kafka.settings, **oidc}, ports=ports, own_env=own)
        settle = float(os.environ.get("ALERT_SETTLE_SECONDS", DEFAULT_SETTLE_S))
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(
            json.dumps({**up_record(kafka, redis.url, stack.urls, oidc, settle), "bus_settings": bus})
        )
        print("OsteoCDS is up (HTTP: every route but /healthz, /readyz and the page shell needs a bearer token):")
        for name, url in stack.urls.items():
            extra = ", /alerts, /cds-services, page /ui/patients/<id>" if name == NOTIFICATION else ""
            print(f"  {name:<22} {url}  (/healthz /readyz /metrics{extra})")
        print(f"  {'HL7 v2 over MLLP':<22} 127.0.0.1:{stack.mllp_port}  (lab-normalisation; MLLP_PORT)")
        print(f"Alerts: info and warning decisions are held {settle:g} s (ALERT_SETTLE_SECONDS), critical ones never.")
        print("Token:   ./osteocds token --role clinician --user clinician-1")
        print("One service: ./osteocds restart|rebuild|stop|start <service>   (./osteocds status)")
        print("Try it:  ./osteocds demo        Stop: Ctrl-C", flush=True)
        stop = {"now": False}

        def on_signal(*_: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        def ready(name: str) -> None:
            wait_until_ready(RunningStack(urls={name: stack.urls[name]}, procs={name: stack.procs[name]}), 60)

        def rebuild(name: str) -> tuple[int, str]:
            port = stack.urls[name].rsplit(":", 1)[1]
            done = subprocess.run(
                stack.service_command(name, "rebuild"),
                cwd=ROOT,
                env={**stack.service_env(name), "HTTP_PORT": port},
                capture_output=True,
                check=False,
            )
            tail = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()[-3:]
            return done.returncode, " | ".join(tail)

        supervisor = Supervisor(stack, ready, rebuild, out=sys.stderr)
        for stale in CONTROL_DIR.glob("*") if CONTROL_DIR.is_dir() else []:
            stale.unlink(missing_ok=True)
        try:
            while not stop["now"]:
                supervisor.check()
                supervisor.serve_requests()
                time.sleep(0.5)
        finally:
            print("\nstopping services...", flush=True)
            codes = stack.stop()
            STATE_FILE.unlink(missing_ok=True)
            print(
                "stopped: " + ", ".join(f"{n}={'ok' if c in CLEAN_EXIT else c}" for n, c in codes.items()), flush=True
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    from devstack.demo import cmd_demo, cmd_token  # demo reads this module's STATE_FILE: imported at call time

    parser = argparse.ArgumentParser(
        prog="osteocds", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start broker, Redis, the local issuer and the five services")
    up.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="issuer on this port, the services on the next five, broker and MLLP on free ports "
        "(default: issuer 8100, services 8101-8105, broker 9092 when free, MLLP 2575)",
    )
    up.add_argument(
        "--kafka",
        choices=("tansu", "apache"),
        default=None,
        help="the broker: tansu (embedded, in memory; the default) or apache (a local 3-broker Apache Kafka cluster, "
        "KRaft, fetched from Maven Central once, data kept in .run/kafka/up; OSTEOCDS_KAFKA_NODES=1 for one). "
        "Default: OSTEOCDS_KAFKA, else tansu",
    )
    up.add_argument(
        "--secured",
        action="store_true",
        help="issue 22: the production transport on Apache Kafka (implies --kafka apache): TLS, SASL/SCRAM-SHA-512 and "
        "the ACLs of deploy/kafka-setup.sh, a TLS-only Redis with one ACL user per service, each service its own "
        "credentials (devstack/secure.py; data and secrets in .run/kafka/up-secured)",
    )
    up.add_argument(
        "--reset-state",
        action="store_true",
        help="delete the OsteoCDS keys (osteocds:*) of the Redis DB before starting (a broker's topics are kept)",
    )
    up.set_defaults(fn=cmd_up)
    for action, text in (
        ("restart", "restart one service of the running `up` with the settings it gave it"),
        (
            "rebuild",
            "stop one service, rebuild its Redis state from Kafka (python -m services.<name> rebuild), start it",
        ),
        ("stop", "stop one service of the running `up` (the others keep running)"),
        ("start", "start a stopped or exited service of the running `up`"),
    ):
        one = sub.add_parser(action, help=text, description=text)
        one.add_argument("service", choices=list(SERVICE_MODULES))
        one.set_defaults(fn=cmd_control)
    sub.add_parser("status", help="the services of the running `up`").set_defaults(fn=cmd_control)
    sub.add_parser(
        "env",
        help="print the running `up`'s settings as shell exports, for a command run by hand against it "
        "(eval $(./osteocds env); python -m services.scoring rebuild)",
    ).set_defaults(fn=cmd_env)
    demo = sub.add_parser("demo", help="publish sample events and show the alerts")
    demo.add_argument("--patient", help="pseudonymous patient ID to use (default: demo-<random>)")
    demo.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long demo waits for the held info and warning alerts (default: the settle window the running "
        "stack was started with, ALERT_SETTLE_SECONDS of `up`, 30 s unless set). It does not change the "
        "server's window: for a shorter one start `ALERT_SETTLE_SECONDS=5 ./osteocds up`",
    )
    demo.set_defaults(fn=cmd_demo)
    token = sub.add_parser("token", help="print an access token of the local issuer")
    token.add_argument("--role", action="append", choices=ROLES, required=True, help="repeat for several roles")
    token.add_argument("--user", required=True, help="the token's subject (who acts)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds (default 8 h)")
    token.set_defaults(fn=cmd_token)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
