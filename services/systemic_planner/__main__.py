"""`python -m services.systemic_planner [run | rebuild]`: the systemic-planner service (see --help)."""

from __future__ import annotations

from shared.web.cli import service_main

if __name__ == "__main__":
    service_main(
        "services.systemic_planner",
        "OsteoCDS systemic-planner. Plans bone-targeted systemic treatment:"
        " what holds an order, dosing, follow-up and reviews.",
        "HTTP_PORT (8103)",
        "SystemicSettings",
    )
