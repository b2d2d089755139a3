"""`python -m services.<name> [run | rebuild]`: one command line for every service (issue 20). Pure standard library
at import time: `--help` prints the usage and exits 0 before anything is imported, configured or started."""

from __future__ import annotations

import argparse
import importlib
import sys

_COMMON_SETTINGS = "KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, OIDC_ISSUER / OIDC_JWKS_URL, LOG_LEVEL..."


def parser(module: str, description: str, settings: str) -> argparse.ArgumentParser:
    epilog = (
        f'Settings come from environment variables (README, "Settings"): {settings}, {_COMMON_SETTINGS} '
        "Under `./osteocds up` the stack sets them."
    )
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=description, epilog=epilog)
    commands = p.add_subparsers(dest="command", metavar="{run,rebuild}", title="commands")
    commands.add_parser("run", help="serve HTTP and consume its topics until SIGTERM (the default)")
    commands.add_parser(
        "rebuild",
        help="replay its topics up to the committed offsets, rewrite its state in Redis, publish the outputs "
        "missing from its topics, print a JSON report and exit (run it with the service stopped)",
    )
    return p


def service_main(
    module: str, description: str, settings: str, settings_class: str, argv: list[str] | None = None
) -> None:
    """Parse the command line, then import the service (`<module>.app.build`, `<module>.settings.<settings_class>`)
    and serve it, or rebuild its state."""
    command = parser(module, description, settings).parse_args(argv).command or "run"
    from shared.web.http import run

    build = importlib.import_module(f"{module}.app").build
    settings_type = getattr(importlib.import_module(f"{module}.settings"), settings_class)
    sys.argv[1:] = ["rebuild"] if command == "rebuild" else []  # what `run` reads
    run(settings_type(), build)
