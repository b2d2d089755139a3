"""Issue 19, the clinicians' page in French: the vocabulary (services/notification/vocabulary.py) and the view
(services/notification/web.py `view`) the page renders. Table-driven rounding against each rule's precision, the
defects the issue saw, a property that rounding never moves a value across a rule's threshold, and coverage of every
code the contracts and the services' `missing` texts can send to the page."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.base import InputUsed, Severity
from contracts.clinical import Alert, Analyte, NormalisedLab, Score
from contracts.examples import EXAMPLES
from contracts.hospital import SkeletalSite
from contracts.lifecycle import OVERRIDE_REASONS, AlertStatus, OverrideReasonCode
from contracts.local import LocalTreatmentPlan
from contracts.plan import Check, ItemStatus, TreatmentPlan
from contracts.topics import ALERTS, LABS_NORMALISED, LOCAL_PLANS, PLANS, SCORES
from services.notification import vocabulary as v
from services.notification.domain import PatientAlerts
from services.notification.web import critical_ranks, lab_view, view
from services.scoring import rules as scoring_rules

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "of", "shown"),
    [
        # the issue's raw floats: corrected calcium to the hundredth (LAB-CA-CORR L316, LAB-CA-CRISIS L306)
        (3.5999999999999996, "corrected_calcium", "3,60"),
        (3.3, "total_calcium", "3,30"),
        # ... clearance in whole mL/min (SYS-ZA-DOSE Tableau 2, L1153-1184)
        (76.63122356935904, "creatinine_clearance", "77"),
        (54.2, "creatinine_clearance", "54"),
        # never rounded onto a threshold it is not on: CrCl < 30 contraindicated, bands 40 / 50 / > 60
        (29.6, "creatinine_clearance", "29,6"),
        (49.7, "creatinine_clearance", "49,7"),
        (60.4, "creatinine_clearance", "60,4"),
        (30.0, "creatinine_clearance", "30"),
        (3.504, "corrected_calcium", "3,504"),
        (3.496, "corrected_calcium", "3,496"),
        (3.5, "corrected_calcium", "3,50"),
        # 25-OH vitamin D in whole ng/mL, classes 10 / 20 / 30 (LAB-VITD L819-836, SYS-VITD-CORR)
        (34.0, "vitamin_d_25oh", "34"),
        (29.8, "vitamin_d_25oh", "29,8"),
        (88.42, "creatinine", "88"),
        (28.0, "albumin", "28"),
        (2.8, None, "2,8"),
        (71.0, "body_weight", "71"),
        ("2026-03-02", None, "02/03/2026"),
        ("2026-03-02T06:40:00Z", None, "02/03/2026 à 07:40"),  # the hospital's zone (Europe/Paris by default)
    ],
)
def test_values_are_rounded_to_the_rule_precision(value: float | str, of: str | None, shown: str) -> None:
    assert v.value(value, of) == shown


@given(
    st.sampled_from([k for k, p in v.PRECISION.items() if p.thresholds]),
    st.floats(min_value=0, max_value=400, allow_nan=False, allow_infinity=False),
)
def test_rounding_never_moves_a_value_across_a_threshold(of: str, value: float) -> None:
    precision = v.PRECISION[of]
    back = float(v.number(value, precision).replace(",", "."))
    for t in precision.thresholds:
        assert (value > t) == (back > t) and (value < t) == (back < t) and (value == t) == (back == t)
    assert abs(back - value) <= 0.5 * 10**-precision.decimals + 1e-9


@pytest.mark.parametrize(
    ("raw", "french"),
    [
        ("umol/L", "µmol/L"),
        ("mL/min", "mL/min"),
        ("[iU]", "UI"),
        ("months", "mois"),
    ],
)
def test_units_in_french_typography(raw: str, french: str) -> None:
    assert v.unit(raw) == french


@pytest.mark.parametrize(
    ("fn", "code", "forbidden"),
    [
        # the exact defects issue 19 lists
        (v.missing, "surgical opinion (operable or not)", "surgical"),
        (v.name, "sites_1_to_3", "sites_1_to_3"),
        (v.name, "vitamin_d", "vitamin_d"),
        (v.name, "renal_function", "renal_function"),
        (v.name, "corrected_calcium", "corrected_calcium"),
        (v.name, "creatinine_clearance", "creatinine_clearance"),
        (v.name, "location", "location"),
        (v.value, "semi_rigid", "semi_rigid"),
        (v.value, True, "True"),
        (v.value, False, "False"),
        (v.override_reason, "clinical-judgement", "clinical-judgement"),
        (lambda b: v.BANDS[b], "undetermined", "undetermined"),
        (lambda s: v.site(s, "T8"), "spine", "spine"),
        (v.missing, "albumin drawn within 48 h of the calcium", "drawn"),
        (v.missing, "weight measured within 90 days", "weight"),
        (v.missing, "date of the last fraction of the course of 2026-03-02", "2026-03-02"),
        (v.name, "pain_intensity:T8-a", "pain_intensity"),
        (v.name, "criterion:cumulative_cord_eqd2", "cumulative"),
        (v.missing, "oligometastatic criterion: sites_1_to_3", "sites_1_to_3"),
        (v.missing, "oligometastatic status", "status"),
        (v.missing, "exact value: 25-OH vitamin D 34.5 ng/mL is censored, measure again", "vitamin D"),
        (v.missing, "weight to measure again (last measured 2026-01-02, over 90 days before the creatinine)", "weight"),
        (v.missing, "creatinine clearance", "clearance"),
        (v.name, "radiotherapy:cord_compression:spine", "spine"),
        (v.missing, "pain (patient-level pain is not a lesion's pain)", "pain"),
        (v.missing, "pain (to reassess: the last one, 6, dated 2026-11-02, is not current)", "reassess"),
    ],
)
def test_the_issue_defects_are_french(fn: Any, code: Any, forbidden: str) -> None:
    text = fn(code)
    assert forbidden not in text and "non traduit" not in text and text


def test_the_mirels_size_is_a_share_of_the_cortex() -> None:
    assert v.component("mirels", "size", 0.4) == "40 % de la corticale"
    assert v.component("mirels", "size", 1 / 3 + 0.001) == "33,4 % de la corticale"
    assert v.component("sins", "location", "semi_rigid") == "semi-rigide"


def test_a_done_or_waived_check_is_never_an_empty_box() -> None:
    for status in get_args(Check.model_fields["status"].annotation):
        shown = v.CHECK_STATUSES[status]
        assert (shown.mark == "☐") == (status == "to_do"), status


@pytest.mark.parametrize(
    ("table", "codes"),
    [
        (v.ANALYTES, get_args(Analyte)),
        (v.SKELETAL_SITES, get_args(SkeletalSite)),
        (v.ITEM_STATUSES, get_args(ItemStatus)),
        (v.ALERT_STATUSES, get_args(AlertStatus)),
        (v.SEVERITIES, get_args(Severity)),
        (OVERRIDE_REASONS, get_args(OverrideReasonCode)),
        (
            v.BANDS,
            ("stable", "potentially_unstable", "unstable", "oligometastatic", "multi_metastatic", "undetermined"),
        ),
        (v.NAMES, tuple(scoring_rules.SINS_ITEM_MAX) + tuple(scoring_rules.MIRELS_ITEM_MAX)),
        (
            v.VALUES,
            tuple(scoring_rules.SINS_LOCATION_POINTS)
            + tuple(scoring_rules.SINS_PAIN)
            + tuple(scoring_rules.SINS_LESION)
            + tuple(scoring_rules.SINS_ALIGNMENT)
            + tuple(scoring_rules.SINS_COLLAPSE)
            + tuple(scoring_rules.SINS_POSTEROLATERAL)
            + tuple(scoring_rules.MIRELS_PAIN),
        ),
    ],
)
def test_every_contract_code_has_a_french_label(table: dict[Any, str], codes: tuple[str, ...]) -> None:
    assert [c for c in codes if c not in table] == []


def _missing_literals() -> list[str]:
    """Every literal a service puts in a `missing` list (missing.append("..."), missing=["..."])."""
    found: list[str] = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        if "notification" in path.parts:  # its order cards write French already
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "append"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "missing"
            ):
                found += [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if isinstance(node, ast.keyword) and node.arg == "missing":
                given = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
                found += [e.value for e in given if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return found


def test_every_missing_text_of_the_services_is_translated() -> None:
    literals = _missing_literals()
    assert len(literals) > 20  # the scan found the services' texts
    assert [m for m in literals if "non traduit" in v.missing(m)] == []


def _input_names() -> set[str]:
    """Every literal name a service gives the data it used (InputUsed(name=...), inp(name=...), fact.used("..."))
    or a score component, a check or a criterion."""
    names: set[str] = set()
    for path in sorted((ROOT / "services").rglob("*.py")):
        if "notification" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if called not in {"InputUsed", "inp", "used", "ScoreComponent", "Check", "Item", "Criterion", "_item"}:
                continue
            args = [k.value for k in node.keywords if k.arg == "name"]
            if called in {"used", "Item", "Criterion", "_item"} and node.args:
                args.append(node.args[0])
            names |= {a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return names


def test_every_input_name_of_the_services_is_translated() -> None:
    names = _input_names()
    assert len(names) > 50  # the scan found the services' names
    assert sorted(n for n in names if "non traduit" in v.name(n)) == []


IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
RAW_FLOAT = re.compile(r"\d+[.,]\d{3,}")


def _strings(x: Any) -> list[str]:
    if isinstance(x, dict):
        return [s for k, val in x.items() if k != "passage" for s in _strings(val)]
    if isinstance(x, list):
        return [s for e in x for s in _strings(e)]
    return [x] if isinstance(x, str) else []


def test_the_view_display_fields_carry_no_code_and_no_raw_float() -> None:
    """The examples of every record the page shows, with the issue's raw floats: the `display` fields are French."""
    alert = Alert.model_validate(EXAMPLES[ALERTS.name])
    alert = alert.model_copy(
        update={
            "status": "overridden",
            "overridden_by": "dr-x",
            "override_reason": "clinical-judgement",
            "inputs": [i.model_copy(update={"value": 3.5999999999999996}) for i in alert.inputs],
            "missing": ["surgical opinion (operable or not)"],
        }
    )
    lab = NormalisedLab.model_validate(
        EXAMPLES[LABS_NORMALISED.name]
        | {"analyte": "creatinine_clearance", "value": 76.63122356935904, "unit": "mL/min"}
    )
    score = Score.model_validate(EXAMPLES[SCORES.name])
    local = LocalTreatmentPlan.model_validate(EXAMPLES[LOCAL_PLANS.name])
    state = PatientAlerts(
        alerts={str(alert.recommendation_id): alert},
        plan=TreatmentPlan.model_validate(EXAMPLES[PLANS.name]),
        local_plan=local,
        scores={"sins:L1-body": score},
        labs={"creatinine_clearance": lab},
    )
    page = view(state, "p-1")
    displayed = _strings([a["display"] for a in page["alerts"]])
    displayed += _strings([i["display"] for i in page["plan"]["items"]])
    displayed += _strings([s["display"] for s in page["local_plan"]["sections"]])
    displayed += _strings([s["display"] for s in page["scores"]] + [x["display"] for x in page["labs"]])
    assert displayed
    assert [s for s in displayed if IDENTIFIER.search(s) or RAW_FLOAT.search(s) or "non traduit" in s] == []
    assert "3,60 mmol/L" in page["alerts"][0]["display"]["used"][0]["value"]
    assert page["labs"][0]["display"]["value"] == "77 mL/min"
    assert "Décision clinique" in page["alerts"][0]["display"]["override_reason"]
    assert page["local_plan"]["sections"][0]["display"]["site"] == "rachis, T8"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # a service's French text: decimal commas before a unit, no more decimals than the unit's rule
        ("Calcémie corrigée 3.60 mmol/L", "Calcémie corrigée 3,60 mmol/L"),
        ("Clairance 73.7822 mL/min le 05/12/2026.", "Clairance 74 mL/min le 05/12/2026."),
        ("Clairance 29.61 mL/min", "Clairance 29,61 mL/min"),
        ("Clairance 29.6123 mL/min", "Clairance 29,6 mL/min"),  # not "30": CrCl < 30 (L1155-1156)
        ("seuil > 3,5 mmol/L", "seuil > 3,5 mmol/L"),
        ("créatinine 88 umol/L", "créatinine 88 µmol/L"),
        ("Score (site 3, lesion_type 2)", "Score (site 3, type de lésion 2)"),
        (
            "Mirels incomplet pour femur-R (site 3, size ?, lesion_type 3, pain 2) : il manque size.",
            "Mirels incomplet pour femur-R (site 3, taille ?, type de lésion 3, douleur 2) : il manque taille.",
        ),
        (
            "SINS 11/18 en L1 (location 3, bone_lesion 2, alignment 0)",
            "SINS 11/18 en L1 (localisation 3, type de lésion osseuse 2, alignement 0)",
        ),
        ("1 à 3 sites (pelvis, femur_neck)", "1 à 3 sites (bassin, col du fémur)"),
        ("section 2.4 Modalités", "section 2.4 Modalités"),
        ("femur-R (ct)", "femur-R (scanner)"),  # not a value: left as written
    ],
)
def test_service_texts_in_french_typography(text: str, shown: str) -> None:
    assert v.prose(text) == shown


def test_the_cds_card_detail_is_french() -> None:
    """The issue saw `cord_compression : True` on a patient-view card: the card's detail uses the vocabulary too."""
    from services.notification import cds

    alert = Alert.model_validate(EXAMPLES[ALERTS.name]).model_copy(
        update={
            "rule_id": "RT-MSCC",
            "status": "active",
            "inputs": [InputUsed(name="cord_compression", value=True)],
            "missing": ["surgical opinion (operable or not)"],
        }
    )
    [card] = cds.cards(PatientAlerts(alerts={str(alert.recommendation_id): alert}))
    assert "- Compression médullaire : oui" in card["detail"] and "avis chirurgical (opérable ou non)" in card["detail"]
    assert "cord_compression" not in card["detail"] and "True" not in card["detail"]


def _critical(rule_id: str, minutes_ago: int, escalation: int = 0) -> Alert:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return Alert.model_validate(EXAMPLES[ALERTS.name]).model_copy(
        update={
            "recommendation_id": uuid.uuid4(),
            "rule_id": rule_id,
            "severity": "critical",
            "status": "active",
            "raised_at": at,
            "escalation_level": escalation,
        }
    )


@pytest.mark.parametrize(
    ("alerts", "first"),
    [
        # a threat to life outranks an older critical alert (LAB-CA-CRISIS L300-306, RT-MSCC L1290-1292)
        ([_critical("SYS-ONJ", 60), _critical("LAB-CA-CRISIS", 1)], "LAB-CA-CRISIS"),
        ([_critical("SYS-ONJ", 60), _critical("RT-MSCC", 1)], "RT-MSCC"),
        # between two vital ones, the more escalated, then the older
        ([_critical("LAB-CA-CRISIS", 1, escalation=2), _critical("RT-MSCC", 30, escalation=1)], "LAB-CA-CRISIS"),
        ([_critical("LAB-CA-CRISIS", 5), _critical("RT-MSCC", 30)], "RT-MSCC"),
        # between two non-vital ones, the more escalated
        ([_critical("SYS-ONJ", 60), _critical("SYS-RENAL-TOX", 1, escalation=1)], "SYS-RENAL-TOX"),
    ],
)
def test_critical_alerts_are_ranked(alerts: list[Alert], first: str) -> None:
    ranks = critical_ranks(alerts)
    [top] = [a for a in alerts if ranks[str(a.recommendation_id)]["rank"] == 1]
    assert top.rule_id == first
    assert sorted(r["rank"] for r in ranks.values()) == list(range(1, len(alerts) + 1))
    assert all(r["of"] == len(alerts) and r["why"] for r in ranks.values())


# ---- review RD (issue 19 "The page") ------------------------------------------------------------------------------
def _lab(**kw: Any) -> NormalisedLab:
    return NormalisedLab.model_validate({**EXAMPLES[LABS_NORMALISED.name], "event_id": str(uuid.uuid4()), **kw})


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "original", "original_unit", "threshold"),
    [
        # LAB-VITD Tableau 1 (L819-836): insufficiency "25 à < 75" nmol/L, recommended "75 à 175"
        ("vitamin_d_25oh", 29.99, "ng/mL", 74.96, "nmol/L", "75 nmol/L"),
        # LAB-CA-CRISIS (L306): a crisis above 3,5 mmol/L; the lab's own value, in the same unit
        ("total_calcium", 3.504, "mmol/L", 3.5041, "mmol/L", "3,5 mmol/L"),
    ],
)
def test_the_lab_original_value_is_never_rounded_onto_a_threshold(
    analyte: str, value: float, unit: str, original: float, original_unit: str, threshold: str
) -> None:
    """HAZ-19-PAGE-R03: the conversion column showed the laboratory's value at one decimal whatever its rule
    ("75 nmol/L → 29,99 ng/mL", "3,5 mmol/L → 3,504 mmol/L"): the value the lab sent, read on a threshold."""
    lab = _lab(analyte=analyte, value=value, unit=unit, original_value=original, original_unit=original_unit)
    before = lab_view(lab)["display"]["conversion"].split(" → ")[0]
    bound, shown = float(threshold.split(" ")[0].replace(",", ".")), float(before.split(" ")[0].replace(",", "."))
    assert before != threshold and (shown < bound) == (original < bound), before  # on the side the lab's value is


def test_a_datum_from_a_lab_result_keeps_its_sample_time() -> None:
    """HAZ-19-PAGE-R04: a datum a rule used, taken from a laboratory result but sent without its own time, was shown
    without a sample time ("—") although the result has one: the time is the result's."""
    lab = _lab(analyte="total_calcium", value=3.3, unit="mmol/L")
    alert = Alert.model_validate(
        {
            **EXAMPLES[ALERTS.name],
            "inputs": [InputUsed(name="total_calcium", value=3.3, unit="mmol/L", source_event_id=lab.event_id)],
        }
    )
    shown = view(PatientAlerts(labs={"total_calcium": lab}, alerts={str(alert.recommendation_id): alert}), "pt")
    shown_alert = next(a for a in shown["alerts"] if a["recommendation_id"] == str(alert.recommendation_id))
    [row] = shown_alert["display"]["used"]
    assert row["at"] == v.when(lab.occurred_at) and row["at"]


@pytest.mark.parametrize("raw", [float("nan"), float("inf"), float("-inf")])
def test_a_value_that_is_not_a_number_is_never_shown_raw(raw: float) -> None:
    """HAZ-19-PAGE-R05: a non-finite value (a failed computation) was shown "nan" / "inf": English, and "inf" reads
    as a number; it is a value that could not be computed, said so in French."""
    shown = v.value(raw, "corrected_calcium", "mmol/L")
    assert shown == "non calculable" and v.number(raw) == "non calculable"


def test_a_plan_datum_from_a_lab_result_keeps_its_sample_time() -> None:
    """HAZ-19-PAGE-R04, the plans too: a dose band's clearance (SYS-ZA-DOSE Tableau 2, L1153-1184) taken from a result
    sent without its own time showed no sample time."""
    lab = _lab(analyte="creatinine_clearance", value=54.2, unit="mL/min")
    plan = TreatmentPlan.model_validate(EXAMPLES[PLANS.name])
    item = plan.items[0].model_copy(
        update={
            "inputs": [InputUsed(name="creatinine_clearance", value=54.2, unit="mL/min", source_event_id=lab.event_id)]
        }
    )
    plan = plan.model_copy(update={"items": [item]})
    shown = view(PatientAlerts(labs={"creatinine_clearance": lab}, plan=plan), "pt")
    [row] = shown["plan"]["items"][0]["display"]["used"]
    assert row["at"] == v.when(lab.occurred_at) and row["at"]
