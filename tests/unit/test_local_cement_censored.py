"""Issue 12, IR-CEMENT haemostasis (L2626-2628: "Plaquettes > 50 000/mm3 et le TP > 50", strict): a censored platelet
count or prothrombin (TP) is an interval. The prerequisite is met only when the whole interval is above the limit,
unmet only when it is wholly at or below it; otherwise the check cannot decide, names the reported value with its
comparator and asks for an exact value, and the procedure is not ready. Table-driven."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, Comparator
from contracts.plan import PlanItem
from services.radiotherapy_planner.rules import cementoplasty as cem
from tests.unit.test_local_plan_domain import TODAY, env, items, lab, request, run, vertebra

PROC = date(2026, 6, 10)


@pytest.mark.parametrize(
    ("value", "comparator", "status"),
    [
        (80.0, None, "done"),
        (50.0, ">", "done"),  # > 50 meets "> 50" whatever it is
        (50.0, ">=", "cannot_decide"),  # may be exactly 50: not > 50
        (30.0, ">", "cannot_decide"),  # 31 or 300
        (20.0, "<", "to_do"),  # below the limit whatever it is
        (50.0, "<=", "to_do"),
        (80.0, "<", "cannot_decide"),
        (50.0, None, "to_do"),
    ],
)
def test_ir_cement_haemostasis_on_a_censored_result(value: float, comparator: Comparator | None, status: str) -> None:
    for which in (0, 1):  # platelets (G/L) and TP (%), the same limit of 50
        labs = [cem.LabValue(90.0, PROC), cem.LabValue(90.0, PROC)]
        labs[which] = cem.LabValue(value, PROC, comparator)
        check = cem.haemostasis_labs(labs[0], labs[1], PROC)[which]
        assert check.status == status
        unit = "G/L" if which == 0 else "%"
        reported = f"{comparator + ' ' if comparator else ''}{value:g} {unit}"
        assert reported in check.detail_fr  # the comparator is always shown with the value
        if status == "cannot_decide":
            assert check.missing == f"{check.name}: exact value ({reported} is censored, measure again)"
            assert "valeur exacte" in check.detail_fr


def _cement(platelets: tuple[float, Comparator | None], tp: tuple[float, Comparator | None]) -> PlanItem:
    def censored(analyte: str, value: float, comparator: Comparator | None, unit: str) -> NormalisedLab:
        return lab(analyte, value, unit).model_copy(update={"comparator": comparator})

    _, out = run(
        [
            ClinicalAssessment.model_validate(
                env(pain={"resistant_to_analgesics": True, "intensity": "functional"}, life_expectancy_months=8)
            ),
            vertebra("l3", "L3", pathological_fracture=False),
            censored("platelets", *platelets, "G/L"),
            censored("prothrombin_pct", *tp, "%"),
            request("l3", "cementoplasty", planned_on=(TODAY + timedelta(days=3)).isoformat()),
        ]
    )
    return items(out)["l3:cement"]


def test_ir_cement_a_censored_platelet_count_that_settles_nothing_keeps_the_procedure_not_ready() -> None:
    cement = _cement((30.0, ">"), (80.0, None))
    assert cement.status == "to_do" and "pas prête" in cement.title
    checks = {c.name: c for c in cement.checks}
    assert checks["platelets"].status == "cannot_decide" and "> 30 G/L" in checks["platelets"].detail_fr
    assert "platelets: exact value (> 30 G/L is censored, measure again)" in cement.missing
    used = next(i for i in cement.inputs if i.name == "platelets")
    assert (used.value, used.comparator) == (30.0, ">")


def test_ir_cement_censored_results_above_the_limits_are_met() -> None:
    cement = _cement((100.0, ">"), (50.0, ">"))
    checks = {c.name: c.status for c in cement.checks}
    assert checks["platelets"] == "done" and checks["prothrombin"] == "done"
    assert not [m for m in cement.missing if "censored" in m]
