"""`python -m services.scoring [run | rebuild]`: the scoring service (see --help)."""

from __future__ import annotations

from shared.web.cli import service_main

if __name__ == "__main__":
    service_main(
        "services.scoring",
        "OsteoCDS scoring. Scores each patient's skeletal-related-event risk and decides emergencies from"
        " current data.",
        "HTTP_PORT (8102)",
        "ScoringSettings",
    )
