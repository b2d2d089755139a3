"""`python -m services.radiotherapy_planner [run | rebuild]`: the radiotherapy-planner service (see --help)."""

from __future__ import annotations

from shared.web.cli import service_main

if __name__ == "__main__":
    service_main(
        "services.radiotherapy_planner",
        "OsteoCDS radiotherapy-planner. Plans the local treatment of each bone lesion"
        " (radiotherapy, surgery, cementoplasty).",
        "HTTP_PORT (8104)",
        "RadiotherapySettings",
    )
