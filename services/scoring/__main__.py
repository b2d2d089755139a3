"""`python -m services.scoring [run | rebuild]`: the scoring service (see --help).

Arguments are parsed before anything is imported or started: `--help` prints the usage and exits 0."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "OsteoCDS scoring. Scores each patient's skeletal-related-event risk and decides emergencies from current data."
)
EPILOG = (
    'Settings come from environment variables (README, "Settings"): '
    "HTTP_PORT (8102), "
    "KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, OIDC_ISSUER / OIDC_JWKS_URL, LOG_LEVEL..."
    " Under `./osteocds up` the stack sets them."
)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.scoring", description=DESCRIPTION, epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", metavar="{run,rebuild}", title="commands")
    commands.add_parser("run", help="serve HTTP and consume its topics until SIGTERM (the default)")
    commands.add_parser(
        "rebuild",
        help="replay its topics up to the committed offsets, rewrite its state in Redis, publish the outputs "
        "missing from its topics, print a JSON report and exit (run it with the service stopped)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    command = parse(argv).command or "run"
    from services.scoring.app import build
    from services.scoring.settings import ScoringSettings
    from shared.web.http import run

    sys.argv[1:] = ["rebuild"] if command == "rebuild" else []  # what `run` reads
    run(ScoringSettings(), build)


if __name__ == "__main__":
    main()
