"""IR-CEMENT (L2559-2643): indications, Tableau 8 contraindications, haemostasis thresholds and stop windows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from services.radiotherapy_planner.rules import cementoplasty as cem
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.drugs import identify

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
        # DOAC: 48 h (L2636); with no hour, only whole days after the day of the dose hold (issue 18)
        ("apixaban", 3, None, "done"),
        ("apixaban", 2, None, "to_do"),  # day D to day D+2 can be 25 hours
        ("apixaban", 1, None, "to_do"),
        ("rivaroxaban", 3, None, "done"),
        ("rivaroxaban", 2, None, "to_do"),
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
        # L2588: well-controlled pain is a non-indication whatever else is said (issue 18.5)
        ({"pain_resistant": False, "opioid_complications": False, "stabilisation_alternative": True}, False),
        ({"pain_resistant": False, "opioid_complications": False, "other_techniques_excluded": True}, False),
        ({"pain_resistant": False, "opioid_complications": None, "inoperable": True}, False),
        # an indication, but whether the pain is controlled is unknown: cannot decide
        ({"pain_resistant": None, "opioid_complications": None, "stabilisation_alternative": True}, None),
        ({"pain_resistant": True, "stabilisation_alternative": True}, True),
        # inoperable alone is not "other techniques excluded" while RT remains possible (L2576-2578)
        ({"pain_resistant": None, "opioid_complications": False, "inoperable": True}, None),
        ({"pain_resistant": True, "other_techniques_excluded": True, "inoperable": True}, True),
    ],
)
def test_ir_cement_indications(kw: dict[str, object], indicated: bool | None) -> None:
    args: dict[str, object] = {
        "pain_resistant": None,
        "opioid_complications": None,
        "other_techniques_excluded": None,
        "inoperable": False,
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


def test_ir_cement_inoperable_alone_asks_whether_rt_remains_possible() -> None:
    ind = cem.cement_indication(
        pain_resistant=None,
        opioid_complications=False,
        other_techniques_excluded=None,
        inoperable=True,
        stabilisation_alternative=False,
    )
    assert ind.indicated is None and not ind.reasons
    assert "whether radiotherapy (or re-irradiation) is still possible for this lesion" in ind.missing


@pytest.mark.parametrize(
    ("last_dose_at", "status"),
    [
        (datetime(2026, 6, 8, 23, 0, tzinfo=HOSPITAL_TZ), "to_do"),  # 25 h before the procedure day starts
        (datetime(2026, 6, 8, 0, 1, tzinfo=HOSPITAL_TZ), "to_do"),
        (datetime(2026, 6, 8, 0, 0, tzinfo=HOSPITAL_TZ), "done"),  # exactly 48 h before the day starts
        (datetime(2026, 6, 7, 21, 0, tzinfo=HOSPITAL_TZ), "done"),
    ],
)
def test_ir_cement_doac_window_counts_hours_when_the_time_of_the_dose_is_known(
    last_dose_at: datetime, status: str
) -> None:
    """L2636: DOACs stop 48 h before the procedure; the procedure's hour is not known, so its day's first minute."""
    assert date(2026, 6, 10) == PROC
    use = cem.DrugUse("apixaban", last_dose_at.date(), False, None, "anticoagulant", last_dose_at)
    check = cem.antithrombotic_check(use, PROC, HOSPITAL_TZ)
    assert check is not None and check.status == status


@pytest.mark.parametrize("spelling", ["Clopidogrel", "CLOPIDOGREL", "Plavix", "clopidogrel 75 mg"])
def test_ir_cement_antiplatelet_whatever_its_spelling(spelling: str) -> None:
    """Issue 18.3: 'Clopidogrel' taken yesterday must not read as no antiplatelet (the vocabulary names it)."""
    who = identify(spelling)
    use = cem.DrugUse(who.key, PROC - timedelta(days=1), False, None, who.drug_class)
    check = cem.antithrombotic_check(use, PROC)
    assert check is not None and check.status == "to_do" and "5 jours" in check.detail_fr


def test_ir_cement_unknown_drug_is_a_check_never_no_interaction() -> None:
    check = cem.unknown_drug_check(cem.DrugUse("xyzagrel", PROC - timedelta(days=1), True, None))
    assert check.status == "cannot_decide" and check.missing == "identity of xyzagrel (antiplatelet or anticoagulant?)"
