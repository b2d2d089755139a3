"""RT-MSCC (L1397-1402, L1566-1568, Tableau 5)."""

from __future__ import annotations

from datetime import date

import pytest

from services.radiotherapy_planner.rules import cord_compression_plan


@pytest.mark.parametrize(
    ("operated", "le", "setting", "first_scheme", "window", "missing"),
    [
        (date(2026, 11, 20), None, "adjuvant", "30 Gy en 10 fractions", (date(2026, 12, 4), date(2026, 12, 11)), False),
        (None, 12.0, "exclusive_urgent", "30 Gy en 10 fractions", None, True),  # surgical opinion missing
        (None, 3.0, "exclusive_urgent", "30 Gy en 10 fractions", None, True),
        (None, 2.9, "exclusive_urgent", "8 Gy en 1 fraction", None, True),  # poor prognosis: single fraction
        (None, None, "exclusive_urgent", "30 Gy en 10 fractions", None, True),
    ],
)
def test_cord_compression_plan(
    operated: date | None,
    le: float | None,
    setting: str,
    first_scheme: str,
    window: tuple[date, date] | None,
    missing: bool,
) -> None:
    plan = cord_compression_plan(operated, le)
    assert plan.setting == setting
    assert plan.schemes[0] == first_scheme
    assert "20 Gy en 5 fractions" in plan.schemes
    assert plan.start_between == window
    assert bool(plan.missing) is missing
