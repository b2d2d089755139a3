"""IR-CEMENT (L2559-2643): indications, Tableau 8 contraindications, haemostasis thresholds and stop windows."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.radiotherapy_planner.rules import cementoplasty as cem

PROC = date(2026, 6, 10)


@pytest.mark.parametrize(
    ("platelets", "tp", "statuses"),
    [
        (50.0, 60.0, ("to_do", "done")),  # > 50 000/mm3 strictly
        (50.1, 60.0, ("done", "done")),
        (120.0, 50.0, ("done", "to_do")),  # TP > 50 % strictly
        (120.0, 50.1, ("done", "done")),
        (None, 60.0, ("cannot_decide", "done")),  # unknown is never ready
    ],
)
def test_ir_cement_platelet_and_prothrombin_limits(
    platelets: float | None, tp: float, statuses: tuple[str, str]
) -> None:
    checks = cem.haemostasis_labs(
        None if platelets is None else cem.LabValue(platelets, PROC), cem.LabValue(tp, PROC), PROC
    )
    assert tuple(c.status for c in checks) == statuses


@pytest.mark.parametrize(("age_days", "status"), [(7, "done"), (8, "to_do")])
def test_ir_cement_haemostasis_results_must_be_current(age_days: int, status: str) -> None:
    old = PROC - timedelta(days=age_days)
    [plt, _] = cem.haemostasis_labs(cem.LabValue(150.0, old), cem.LabValue(90.0, PROC), PROC)
    assert plt.status == status


@pytest.mark.parametrize(
    ("drug", "days_before", "dose", "status"),
    [
        ("clopidogrel", 5, None, "done"),  # stop 5 days before
        ("clopidogrel", 4, None, "to_do"),
        ("apixaban", 2, None, "done"),  # DOAC: 48 h
        ("apixaban", 1, None, "to_do"),
        ("rivaroxaban", 2, None, "done"),
        ("dabigatran", 1, None, "to_do"),
        ("aspirin", 0, 159.0, "done"),  # < 160 mg/day may continue
        ("aspirin", 4, 160.0, "to_do"),  # otherwise stop 5 days before
        ("aspirin", 5, 300.0, "done"),
        ("aspirin", 5, None, "cannot_decide"),  # dose unknown
        ("ticagrelor", 10, None, "cannot_decide"),  # the text gives no window
    ],
)
def test_ir_cement_stop_windows(drug: str, days_before: int, dose: float | None, status: str) -> None:
    use = cem.DrugUse(drug, PROC - timedelta(days=days_before), drug == "aspirin" and days_before == 0, dose)
    check = cem.antithrombotic_check(use, PROC)
    assert check is not None and check.status == status


def test_ir_cement_ongoing_clopidogrel_says_what_to_stop_and_when() -> None:
    check = cem.antithrombotic_check(cem.DrugUse("clopidogrel", PROC - timedelta(days=1), True, None), PROC)
    assert check is not None and check.status == "to_do"
    assert "05/06/2026" in check.detail_fr and "5 jours" in check.detail_fr


def test_ir_cement_unknown_procedure_date_is_not_ready() -> None:
    check = cem.antithrombotic_check(cem.DrugUse("clopidogrel", PROC, True, None), None)
    assert check is not None and check.status == "to_do" and check.missing == "planned procedure date"


@pytest.mark.parametrize(
    ("kw", "indicated"),
    [
        ({"pain_resistant": True}, True),
        ({"pain_resistant": False, "opioid_complications": True}, True),
        ({"pain_resistant": False, "opioid_complications": False}, False),  # well-controlled pain: non-indication
        ({"pain_resistant": None, "opioid_complications": None}, None),
        ({"pain_resistant": None, "opioid_complications": None, "stabilisation_alternative": True}, True),
    ],
)
def test_ir_cement_indications(kw: dict[str, object], indicated: bool | None) -> None:
    args: dict[str, object] = {
        "pain_resistant": None,
        "opioid_complications": None,
        "other_techniques_excluded": False,
        "stabilisation_alternative": False,
    }
    args.update(kw)
    assert cem.cement_indication(**args).indicated is indicated  # type: ignore[arg-type]


def test_ir_cement_tableau_8_contraindications() -> None:
    cis = cem.cement_contraindications(
        fracture=True,
        painful=False,
        unstable=False,
        diffuse_pain=False,
        infection=True,
        severe_coagulation_disorder=None,
        cement_allergy=False,
        posterior_wall="extensive_or_retropulsed",
        radiculopathy=False,
        epidural_extension=True,
        joint_opening=False,
        spine=True,
    )
    present = {(c.name, c.absolute) for c in cis if c.present}
    assert present == {
        ("asymptomatic_stable_fracture", True),
        ("infection", True),
        ("posterior_wall", False),
        ("canal_extension_or_epiduritis", False),
    }
    assert [c.name for c in cis if c.present is None] == ["severe_coagulation_disorder"]
