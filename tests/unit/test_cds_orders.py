"""CDS Hooks `order-sign` / `order-select` (issue 19): the pure order checker (services/notification/orders.py) driven
by the guideline's tables, the request and card shapes against the CDS Hooks 2.0 specification's own examples
(tests/samples/cds_order_*.json), and a suggestion applied to the draft."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import guideline
from contracts.base import InputUsed
from contracts.clinical import Alert, NormalisedLab
from contracts.examples import EXAMPLES
from contracts.local import LocalTreatmentPlan
from contracts.plan import Check, PlanItem, TreatmentPlan
from contracts.rules import RULESET_VERSION, cite
from services.notification import cds, orders
from services.notification.domain import PatientAlerts
from services.notification.orders_drafts import apply_suggestion, drafts
from services.notification.orders_facts import Clearance, OrderFacts, Value, facts
from services.notification.orders_rules import NEPHROTOXIC_WITH_BISPHOSPHONATES, TABLEAU_6_NO_WINDOW, za_band
from services.radiotherapy_planner.rules import drugs as rt_drugs
from services.systemic_planner import rules as planner_rules
from services.systemic_planner.domain import build_plan
from services.systemic_planner.dosing import denosumab_order
from shared.clinical.fhir_orders import medication_request
from tests import cds_spec
from tests.unit import test_local_plan_domain as lp
from tests.unit import test_systemic_rules as sr

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
PATIENT = "pt-ord-19"
LINKS = orders.Links(
    page=lambda p: f"https://cds.example.org/ui/patients/{p}",
    passage=lambda r: f"https://cds.example.org/cds-services/guideline/{r}",
)
SAMPLES = Path(__file__).parents[1] / "samples"
GUIDELINE = guideline.TEXT

#: Tableau 2 (L1159-1178) as the guideline prints it: "Clairance à la créatinine initiale (ml/min)" -> "Dose recommandée
#: d'Acide zolédronique"; and L1155-1156: "contre-indiqué en cas de clairance < 30 ml/mn".
TABLEAU_2 = ("> 60 4,0 mg", "50-60 3,5 mg", "40-49 3,3 mg", "30-39 3,0 mg")


def tableau_2_rows() -> list[tuple[float, float, float]]:
    """(lowest clearance, highest clearance, dose) of each printed row; a range "40-49" holds every value up to the
    next row's lower bound (49.9 is in it: the bands are half-open)."""
    rows = []
    for row in TABLEAU_2:
        m = re.fullmatch(r"(?:> (\d+)|(\d+)-(\d+)) (\d),(\d) mg", row)
        assert m is not None, row
        dose = float(f"{m.group(4)}.{m.group(5)}")
        if m.group(1):
            rows.append((float(m.group(1)) + 0.1, 250.0, dose))
        else:
            lo, hi = float(m.group(2)), float(m.group(3))
            rows.append((lo, hi if hi == 60 else hi + 0.9, dose))
    return rows


def edges() -> list[tuple[float, float]]:
    return [(crcl, dose) for lo, hi, dose in tableau_2_rows() for crcl in (lo, (lo + hi) / 2, hi)]


def value(v: float, comparator: Any = None, age: timedelta = timedelta(days=2)) -> Value:
    return Value("creatinine_clearance", v, "mL/min", T0 - age, comparator, uuid.uuid4())


def known(crcl: Value | None, **kw: Any) -> OrderFacts:
    clearance = Clearance(crcl) if crcl is not None else Clearance(None, ("clairance",))
    return OrderFacts(now=T0, crcl=clearance, plan_received=True, **kw)


def medication(drug: str, atc: str | None, dose: float | None, unit: str = "mg", rid: str = "mr-1") -> dict[str, Any]:
    dosage: dict[str, Any] = {
        "text": f"{drug} en perfusion",
        "timing": {"repeat": {"frequency": 1, "period": 4, "periodUnit": "wk"}},
    }
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": unit, "system": orders.UCUM, "code": unit}}]
    coding = [{"system": "http://www.whocc.no/atc", "code": atc, "display": drug}] if atc else []
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": {"coding": coding, "text": drug},
        "dosageInstruction": [dosage],
    }


def za(dose: float | None, rid: str = "mr-za") -> dict[str, Any]:
    return medication("acide zolédronique", "M05BA08", dose, rid=rid)


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def run(b: dict[str, Any], f: OrderFacts, selections: list[str] | None = None) -> list[dict[str, Any]]:
    found = orders.cards(b, f, PATIENT, LINKS, selections)
    cds_spec.CardsResponse.model_validate({"cards": found})  # every card has the specification's shape
    return found


def dose_of(resource: dict[str, Any]) -> float:
    return float(resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"])


def rule_of(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


# ---- Tableau 2 -------------------------------------------------------------------------------------------------
def test_the_printed_tableau_2_is_the_guideline_s() -> None:
    if not GUIDELINE.exists():
        pytest.skip("the guideline's text is not in this checkout")
    text = GUIDELINE.read_text(encoding="utf-8").splitlines()[1158:1178]
    assert all(any(line.strip() == row for line in text) for row in TABLEAU_2)


@pytest.mark.parametrize(("crcl", "expected"), edges())
def test_a_wrong_zoledronic_acid_dose_gets_the_tableau_2_dose_as_an_update(crcl: float, expected: float) -> None:
    wrong = 4.0 if expected != 4.0 else 3.0
    draft = bundle(za(wrong))
    [card] = run(draft, known(value(crcl)))
    assert (card["indicator"], rule_of(card)) == ("warning", "SYS-ZA-DOSE")
    [suggestion] = card["suggestions"]
    [action] = suggestion["actions"]
    assert action["type"] == "update"
    corrected = MedicationRequest.model_validate(action["resource"])  # valid FHIR R4
    assert corrected.id == "mr-za"
    assert dose_of(action["resource"]) == expected
    # applied as a CDS client does, the corrected draft passes the same check
    assert run(apply_suggestion(draft, suggestion), known(value(crcl))) == []


@pytest.mark.parametrize(("crcl", "expected"), edges())
def test_the_right_dose_gets_no_card_and_no_dose_gets_one(crcl: float, expected: float) -> None:
    assert run(bundle(za(expected)), known(value(crcl))) == []
    in_grams = medication("acide zolédronique", "M05BA08", expected / 1000, unit="g")
    assert run(bundle(in_grams), known(value(crcl))) == []  # the same dose written in g
    [card] = run(bundle(za(None)), known(value(crcl)))
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == expected


@pytest.mark.parametrize("crcl", [29.9, 15.0, 0.5])
def test_zoledronic_acid_below_30_is_contraindicated_with_a_delete(crcl: float) -> None:
    draft = bundle(za(3.0), medication("paracétamol", "N02BE01", 1000, rid="mr-para"))
    [card] = run(draft, known(value(crcl)))
    assert (card["indicator"], rule_of(card)) == ("critical", "SYS-ZA-DOSE")
    [action] = card["suggestions"][0]["actions"]
    assert action == {"type": "delete", "description": action["description"], "resourceId": "MedicationRequest/mr-za"}
    left = apply_suggestion(draft, card["suggestions"][0])
    assert [e["resource"]["id"] for e in left["entry"]] == ["mr-para"]


def test_tableau_2_is_the_systemic_planner_s_on_every_band_and_edge() -> None:
    """The table is written once more here (notification may not import a planner): both must agree everywhere."""
    for crcl in [x / 10 for x in range(0, 1500)]:
        for comparator in (None, "<", "<=", ">", ">="):
            ours = za_band(crcl, comparator)
            theirs = planner_rules.zoledronic_acid_dose_bounded(crcl, comparator)
            assert (ours is None) == (theirs is None), (crcl, comparator)
            if ours is not None and theirs is not None:
                assert ours.dose_mg == theirs.dose_mg, (crcl, comparator)


def test_the_dose_follows_the_initial_clearance_when_the_plan_used_it() -> None:
    initial = Value("initial_creatinine_clearance", 45.0, "mL/min", T0 - timedelta(days=200))
    [card] = run(bundle(za(4.0)), known(value(75.0), initial_crcl=initial))
    band = za_band(45.0, None)
    assert band is not None and dose_of(card["suggestions"][0]["actions"][0]["resource"]) == band.dose_mg
    assert "Clairance initiale" in card["detail"] and "Clairance de la créatinine" in card["detail"]


# ---- insufficient data: never a guessed dose ---------------------------------------------------------------------
def test_a_missing_or_stale_clearance_says_what_is_missing_and_suggests_nothing() -> None:
    stale = value(45.0, age=timedelta(days=31))
    for clearance in (Clearance(None, ("clairance",)), Clearance(None, ("recent creatinine",), stale=stale)):
        [card] = run(bundle(za(3.3)), OrderFacts(now=T0, crcl=clearance, plan_received=True))
        assert card["indicator"] == "warning" and "suggestions" not in card
        assert "données insuffisantes" in card["summary"] and "**Données manquantes :**" in card["detail"]
    [card] = run(bundle(za(3.3)), OrderFacts(now=T0, crcl=Clearance(None, ("x",), stale=stale), plan_received=True))
    assert "45 mL/min" in card["detail"]  # the stale value shown with its date, never used


def test_a_censored_clearance_spanning_two_bands_gives_no_dose() -> None:
    [card] = run(bundle(za(4.0)), known(value(45.0, ">")))
    assert "suggestions" not in card and "censurée" in card["summary"]
    assert run(bundle(za(4.0)), known(value(65.0, ">"))) == []  # "> 65" lies wholly in "> 60": 4 mg is right


def test_facts_come_from_the_published_lab_and_age_out() -> None:
    lab = NormalisedLab.model_validate(
        {
            **EXAMPLES["osteocds.labs.normalised.v1"],
            "analyte": "creatinine_clearance",
            "value": 42.0,
            "unit": "mL/min",
            "occurred_at": (T0 - timedelta(days=3)).isoformat(),
        }
    )
    state = PatientAlerts(labs={"creatinine_clearance": lab})
    got = facts(state, T0)
    assert got.crcl.value is not None and got.crcl.value.value == 42.0
    old = facts(state, T0 + timedelta(days=28))
    assert old.crcl.value is None and old.crcl.stale is not None and old.crcl.missing
    assert facts(None, T0).crcl.value is None


# ---- denosumab, prerequisites, crisis --------------------------------------------------------------------------
@pytest.mark.parametrize(("crcl", "indicator"), [(29.9, "warning"), (30.0, None), (12.0, "warning"), (80.0, None)])
def test_denosumab_below_30(crcl: float, indicator: str | None) -> None:
    found = run(bundle(medication("XGEVA", "M05BX04", 120, rid="mr-deno")), known(value(crcl)))
    assert [(c["indicator"], rule_of(c)) for c in found] == ([(indicator, "SYS-DENO")] if indicator else [])


def prerequisites(*statuses: tuple[str, str]) -> PlanItem:
    return PlanItem(
        key="prerequisites",
        rule_id="SYS-AR-PREREQ",
        status="to_do",
        severity="warning",
        title="Prérequis",
        text_fr="Prérequis avant anti-résorptif.",
        citation=cite("SYS-AR-PREREQ"),
        checks=[Check(name=n, status=s, detail_fr=f"Contrôle {n}.") for n, s in statuses],
    )


def crisis() -> Alert:
    return Alert(
        event_id=uuid.uuid4(),
        patient_id=PATIENT,
        occurred_at=T0,
        recorded_at=T0,
        source="notification",
        recommendation_id=uuid.uuid4(),
        rule_id="LAB-CA-CRISIS",
        ruleset_version=RULESET_VERSION,
        severity="critical",
        title="Crise aiguë hypercalcémique",
        text_fr="Calcémie corrigée > 3,5 mmol/L.",
        citation=cite("LAB-CA-CRISIS"),
        inputs=[InputUsed(name="corrected_calcium", value=3.71, unit="mmol/L", occurred_at=T0)],
        produced_by="scoring",
    )


def test_an_anti_resorptive_with_unmet_prerequisites_or_during_a_crisis() -> None:
    unmet = prerequisites(("vitamin_d", "to_do"), ("dental_assessment", "done"), ("extraction_healing", "pending"))
    draft = bundle(medication("XGEVA", "M05BX04", 120, rid="mr-deno"))
    [card] = run(draft, known(value(70.0), prerequisites=unmet))
    assert (card["indicator"], rule_of(card)) == ("warning", "SYS-AR-PREREQ")
    # the planner's check texts name their checks by code: the card reads them in French (issue 19)
    assert "Contrôle vitamine D." in card["detail"] and "vitamin_d" not in card["detail"]
    assert "extraction_healing" not in card["detail"]
    assert "bilan bucco-dentaire." not in card["detail"].split("Restent à faire")[-1]  # done: not listed
    [card] = run(draft, known(value(70.0), prerequisites=unmet, crisis=crisis()))
    assert card["indicator"] == "info" and "crise" in card["summary"].lower()
    assert "3,7 mmol/L" in card["detail"]  # the calcium it used, with its unit
    assert run(draft, known(value(70.0), prerequisites=prerequisites(("vitamin_d", "done")))) == []
    on_treatment = prerequisites(("vitamin_d", "to_do"), ("dental_review_6_months", "pending"))
    assert run(draft, known(value(70.0), prerequisites=on_treatment)) == []  # a renewal: not "avant mise en route"
    [card] = run(draft, OrderFacts(now=T0, crcl=Clearance(value(70.0))))  # no plan received: unknown, said so
    assert "plan de traitement osseux non reçu" in card["summary"]


# ---- radiotherapy, cementoplasty --------------------------------------------------------------------------------
def local_item(key: str, rule_id: str, title: str, status: str = "to_do", text: str = "Texte.") -> PlanItem:
    return PlanItem(
        key=key,
        rule_id=rule_id,
        status=status,
        severity="warning",
        title=title,
        text_fr=text,
        citation=cite(rule_id),
    )


def test_an_anticancer_drug_while_radiotherapy_is_planned() -> None:
    rt = local_item("T8:rt-scheme", "RT-FRACT-PALL", "Radiothérapie palliative — T8 : 8 Gy", "recommended")
    gem = bundle(medication("gemcitabine", "L01BC05", 1800, rid="mr-gem"))
    [card] = run(gem, known(value(70.0), radiotherapy=(rt,)))
    assert (card["indicator"], rule_of(card)) == ("warning", "RT-DRUG") and "T8" in card["summary"]
    window = local_item(
        "T8:drug:gemcitabine", "RT-DRUG", "gemcitabine et RT", text="Radiothérapie possible à partir du 02/01/2027."
    )
    [card] = run(gem, known(value(70.0), radiotherapy=(rt,), windows=(window,)))
    assert "02/01/2027" in card["detail"]
    assert run(gem, known(value(70.0))) == []  # no radiotherapy planned


@pytest.mark.parametrize(
    ("drug", "atc", "dose", "per", "said", "indicator"),
    [
        ("clopidogrel", "B01AC04", 75, 1, "cinq jours", "warning"),
        ("apixaban", "B01AF02", 5, 2, "48 h", "warning"),
        ("aspirine", "B01AC06", 75, 1, "peut être poursuivie", "info"),
        ("aspirine", "B01AC06", 250, 1, "sinon, arrêt cinq jours", "warning"),
    ],
)
def test_an_antithrombotic_before_a_cementoplasty(
    drug: str, atc: str, dose: float, per: int, said: str, indicator: str
) -> None:
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    order = medication(drug, atc, dose, rid="mr-at")
    order["dosageInstruction"][0]["timing"] = {"repeat": {"frequency": per, "period": 1, "periodUnit": "d"}}
    [card] = run(bundle(order), known(value(70.0), cementoplasty=(cement,)))
    assert (card["indicator"], rule_of(card)) == (indicator, "IR-CEMENT") and said in card["detail"]
    assert run(bundle(order), known(value(70.0))) == []


# ---- shapes: the specification's own examples, source URL, links, order-select ----------------------------------
def spec_request(name: str, hook: str) -> dict[str, Any]:
    doc = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    assert doc["source"].startswith("https://cds-hooks.org/hooks/")
    return {"hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": hook, **doc["example"]}


@pytest.mark.parametrize(
    ("name", "hook"), [("cds_order_sign_r4.json", "order-sign"), ("cds_order_select_r4.json", "order-select")]
)
def test_the_specification_examples_are_read_and_answered(name: str, hook: str) -> None:
    request = cds.OrderHookRequest.model_validate(spec_request(name, hook))
    read = drafts(request.context.draftOrders, request.context.selections)
    assert [d.ref for d in read] == ["MedicationRequest/smart-MedicationRequest-103"]  # the NutritionOrder is skipped
    # amoxicillin / clavulanate: a combination, unknown, and no rule here concerns either substance
    assert read[0].identity is None or not read[0].identity.known
    assert run(request.context.draftOrders, known(None), request.context.selections) == []
    # the same request with our drug in it: a card of the specification's shape
    ctx = request.context.draftOrders
    ctx = {**ctx, "entry": [*ctx["entry"], {"resource": za(4.0)}]}
    selections = [*(request.context.selections or []), "MedicationRequest/mr-za"] if hook == "order-select" else None
    [card] = run(ctx, known(value(45.0)), selections)
    assert card["source"]["url"] == "https://cds.example.org/cds-services/guideline/SYS-ZA-DOSE"
    assert card["links"] == [
        {"label": card["links"][0]["label"], "url": f"https://cds.example.org/ui/patients/{PATIENT}", "type": "smart"}
    ]
    assert {r["code"] for r in card["overrideReasons"]} == {r["code"] for r in cds.override_reasons()}
    assert "45 mL/min" in card["detail"] and "Règle SYS-ZA-DOSE" in card["detail"]


def test_order_select_checks_only_the_selected_drafts() -> None:
    b = bundle(za(4.0, rid="a"), za(4.0, rid="b"))
    assert len([c for c in run(b, known(value(45.0))) if rule_of(c) == "SYS-ZA-DOSE"]) == 2
    [card] = [c for c in run(b, known(value(45.0)), ["MedicationRequest/b"]) if rule_of(c) == "SYS-ZA-DOSE"]
    assert card["suggestions"][0]["actions"][0]["resource"]["id"] == "b"
    paracetamol = medication("paracétamol", "N02BE01", 1000, rid="p")
    assert run(bundle(za(4.0, rid="a"), paracetamol), known(value(45.0)), ["MedicationRequest/p"]) == []


def test_the_discovery_lists_the_order_services_next_to_patient_view() -> None:
    found = cds_spec.Discovery.model_validate(cds.discovery())
    assert [(s.hook, s.id) for s in found.services] == [
        ("patient-view", cds.SERVICE_ID),
        ("order-sign", cds.ORDER_SIGN_ID),
        ("order-select", cds.ORDER_SELECT_ID),
    ]


def test_a_draft_that_is_not_valid_fhir_is_said_so_never_dosed() -> None:
    bad = za(3.0)
    bad["dosageInstruction"][0]["doseAndRate"] = {"doseQuantity": {"value": 3.0, "unit": "mg"}}  # an object
    [card] = run(bundle(bad), known(value(45.0)))
    assert "non conforme" in card["summary"] and "suggestions" not in card


def test_the_same_draft_on_the_same_data_is_the_same_card() -> None:
    a = run(bundle(za(4.0)), known(value(45.0)))
    b = run(bundle(za(4.0)), known(value(45.0)))
    c = run(bundle(za(4.0)), known(value(47.0)))
    assert a[0]["uuid"] == b[0]["uuid"] != c[0]["uuid"]


def test_a_plan_example_gives_facts_without_guessing() -> None:
    plan = TreatmentPlan.model_validate(EXAMPLES["osteocds.plans.v1"])
    got = facts(PatientAlerts(plan=plan), T0)
    assert got.plan_received and got.crcl.value is None and got.crcl.missing


# ---- the systemic planner's real plan: the keys and checks the order checks read ---------------------------------
def planner_state(crcl: float, prerequisites_met: bool) -> PatientAlerts:
    clearance = sr.lab(2, "creatinine_clearance", crcl, "mL/min")
    events = [sr.met(), sr.le(1, 12), clearance, sr.oligo(3, "multi_metastatic")]
    s, _ = sr.run([*events, *(sr.ready() if prerequisites_met else [])])
    plan = TreatmentPlan(
        event_id=uuid.uuid4(),
        patient_id=PATIENT,
        occurred_at=sr.NOW,
        recorded_at=sr.NOW,
        source="systemic-planner",
        version=1,
        ruleset_version=RULESET_VERSION,
        items=build_plan(s, sr.as_of(sr.NOW)),
    )
    return PatientAlerts(plan=plan, labs={"creatinine_clearance": clearance})


@pytest.mark.parametrize("crcl", [35.0, 45.0, 55.0, 75.0])
def test_the_order_check_and_the_systemic_plan_give_the_same_dose(crcl: float) -> None:
    state = planner_state(crcl, prerequisites_met=True)
    assert state.plan is not None
    [planned] = [o for i in state.plan.items for o in i.orders if o.drug == "zoledronic_acid"]
    f = facts(state, sr.NOW)
    assert run(bundle(za(planned.dose)), f) == []  # the plan's own dose signs without a card
    [card] = run(bundle(za(planned.dose + 0.5)), f)
    assert dose_of(card["suggestions"][0]["actions"][0]["resource"]) == planned.dose


def test_the_systemic_plan_s_unmet_prerequisites_reach_the_order_check() -> None:
    state = planner_state(75.0, prerequisites_met=False)
    [card] = run(bundle(za(4.0)), facts(state, sr.NOW))
    assert rule_of(card) == "SYS-AR-PREREQ" and card["indicator"] == "warning"
    assert "orthopantomogramme" in card["detail"]


# ---- the radiotherapy planner's real local plan: radiotherapy windows and cementoplasty ---------------------------
def local_state(*events: Any) -> PatientAlerts:
    _, out = lp.run(list(events))
    plans = [o for o in out if isinstance(o, LocalTreatmentPlan)]
    return PatientAlerts(local_plan=plans[-1])


def test_a_gemcitabine_order_gets_the_radiotherapy_planner_s_window() -> None:
    state = local_state(
        lp.vertebra("hum", "T1"),
        lp.drug("gemcitabine", lp.TODAY - timedelta(days=10)),
        lp.request("hum", "palliative_rt", planned_on=lp.TODAY.isoformat()),
    )
    f = facts(state, lp.NOW)
    assert f.radiotherapy and f.windows
    [card] = run(bundle(medication("gemcitabine", "L01BC05", 1800, rid="mr-gem")), f)
    earliest = lp.TODAY + timedelta(days=18)  # Tableau 6: 4 weeks after the last dose
    assert (card["indicator"], rule_of(card)) == ("warning", "RT-DRUG") and f"{earliest:%d/%m/%Y}" in card["detail"]
    # a drug the planner has no window for yet (not under way): the dates and window are said to be checked
    [card] = run(bundle(medication("doxorubicine", "L01DB01", 50, rid="mr-dox")), f)
    assert "fenêtre du Tableau 6" in card["detail"] and "**Données manquantes :**" in card["detail"]


def test_an_apixaban_order_while_the_planner_has_a_cementoplasty_to_do() -> None:
    state = local_state(
        lp.vertebra("l3", "L3", pathological_fracture=False),
        lp.request("l3", "cementoplasty", planned_on=(lp.TODAY + timedelta(days=7)).isoformat()),
    )
    f = facts(state, lp.NOW)
    assert f.cementoplasty
    [card] = run(bundle(medication("apixaban", "B01AF02", 5, rid="mr-apix")), f)
    assert (card["indicator"], rule_of(card)) == ("warning", "IR-CEMENT") and "48 h avant le geste" in card["detail"]
    assert "L3" in card["summary"]


def test_a_dose_range_is_replaced_by_the_corrected_dose() -> None:
    order = za(None)
    order["dosageInstruction"][0]["doseAndRate"] = [
        {"doseRange": {"low": {"value": 3, "unit": "mg"}, "high": {"value": 4, "unit": "mg"}}}
    ]
    [card] = run(bundle(order), known(value(45.0)))
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["dosageInstruction"][0]["doseAndRate"] == [
        {"doseQuantity": {"value": 3.3, "unit": "mg", "system": orders.UCUM, "code": "mg"}}
    ]
    MedicationRequest.model_validate(resource)


ENGLISH = re.compile(r"\b(missing|clearance|weight|dose in|dated|recent|exact|the|of|and|drug|order)\b")


def test_the_cards_a_clinician_reads_have_no_identifier_nor_english() -> None:
    """Issue 19: French clinical wording on every card (summary, detail, labels), from the real plans' scenarios and
    every insufficient-data path."""
    stale = value(45.0, age=timedelta(days=40))
    uncomputable = NormalisedLab.model_validate(
        {
            **EXAMPLES["osteocds.labs.normalised.v1"],
            "analyte": "creatinine_clearance",
            "value": None,
            "unit": "mL/min",
            "missing": ["weight", "age (birth date)", "sex"],
        }
    )
    scenarios = [
        (bundle(za(4.0)), facts(planner_state(45.0, prerequisites_met=True), sr.NOW)),
        (bundle(za(4.0)), facts(planner_state(75.0, prerequisites_met=False), sr.NOW)),
        (bundle(za(3.0)), facts(PatientAlerts(labs={"creatinine_clearance": uncomputable}), T0)),
        (bundle(za(3.0)), OrderFacts(now=T0, crcl=Clearance(None, ("x",), stale=stale), plan_received=True)),
        (bundle(za(3.0), medication("XGEVA", "M05BX04", 120, rid="d")), known(value(25.0, "<"))),
        (bundle(za(3.0)), known(value(45.0, ">"))),
        (bundle(medication("XGEVA", "M05BX04", 120, rid="d")), OrderFacts(now=T0, crcl=Clearance(value(70.0)))),
        (
            bundle(medication("gemcitabine", "L01BC05", 1800), medication("doxorubicine", None, 50, rid="x")),
            facts(
                local_state(
                    lp.vertebra("hum", "T1"),
                    lp.drug("gemcitabine", lp.TODAY - timedelta(days=10)),
                    lp.request("hum", "palliative_rt", planned_on=lp.TODAY.isoformat()),
                ),
                lp.NOW,
            ),
        ),
    ]
    cement = local_state(
        lp.vertebra("l3", "L3", pathological_fracture=False),
        lp.request("l3", "cementoplasty", planned_on=(lp.TODAY + timedelta(days=7)).isoformat()),
    )
    aspirin = medication("aspirine", "B01AC06", 250, rid="asp")
    aspirin["dosageInstruction"][0]["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    scenarios.append((bundle(aspirin, medication("clopidogrel", "B01AC04", 75, rid="c")), facts(cement, lp.NOW)))
    seen = 0
    for b, f in scenarios:
        for card in run(b, f):
            texts = [card["summary"], card["detail"], *(s["label"] for s in card.get("suggestions", []))]
            texts += [a["description"] for s in card.get("suggestions", []) for a in s["actions"]]
            for text in texts:
                assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text
                assert not ENGLISH.search(text), (ENGLISH.search(text), text)
            seen += 1
    assert seen >= 11


# ---- review RB (issue 19): attempts to break the order checks against the guideline's text ------------------------
def every(
    drug: str, atc: str | None, dose: float | None, period: float, unit: str, rid: str = "mr-x"
) -> dict[str, Any]:
    order = medication(drug, atc, dose, rid=rid)
    order["dosageInstruction"][0]["timing"] = {"repeat": {"frequency": 1, "period": period, "periodUnit": unit}}
    return order


@pytest.mark.parametrize(("period", "unit"), [(1, "d"), (1, "wk"), (3, "wk")])
def test_zoledronic_acid_more_often_than_monthly_is_flagged_and_the_suggestion_fixes_it(
    period: float, unit: str
) -> None:
    """Tableau 2 is the dose "à administrer mensuellement" (L1182): 4 mg every day signed without a card before."""
    draft = bundle(every("acide zolédronique", "M05BA08", 4.0, period, unit, rid="mr-za"))
    [card] = run(draft, known(value(75.0)))  # the dose is right: the rhythm is SYS-SCHEDULE's (L1130-1142)
    assert (card["indicator"], rule_of(card)) == ("warning", "SYS-SCHEDULE") and "mensuel" in card["detail"]
    [action] = card["suggestions"][0]["actions"]
    MedicationRequest.model_validate(action["resource"])
    assert run(apply_suggestion(draft, card["suggestions"][0]), known(value(75.0))) == []  # applied: nothing left
    # a wrong dose and a wrong rhythm: one card, one suggestion fixing both (two updates of one draft would undo
    # each other)
    draft = bundle(every("acide zolédronique", "M05BA08", 4.0, period, unit, rid="mr-za"))
    [card] = run(draft, known(value(45.0)))
    assert run(apply_suggestion(draft, card["suggestions"][0]), known(value(45.0))) == []


@pytest.mark.parametrize(("period", "unit"), [(1, "mo"), (4, "wk"), (3, "mo"), (12, "wk")])
def test_zoledronic_acid_monthly_or_every_three_months_is_the_text_s_rhythm(period: float, unit: str) -> None:
    """Monthly (L1182, L1136) or spaced to every three months (L1132, L1139-1140): no card."""
    assert run(bundle(every("acide zolédronique", "M05BA08", 4.0, period, unit)), known(value(75.0))) == []


@pytest.mark.parametrize("name", ["Aclasta 5 mg/100 ml", "ACLASTA", "Reclast"])
def test_the_osteoporosis_zoledronic_acid_is_not_corrected_to_an_oncology_dose(name: str) -> None:
    """Tableau 2 gives the dose of Zometa® 4 mg (L1153, L1168-1170); Aclasta® (Reclast® in the US) is the 5 mg yearly
    osteoporosis product: "Aclasta 4 mg" is no product. The card says so and suggests no dose kept on that name."""
    order = every(name, "M05BA08", 5.0, 1, "a", rid="mr-acl")
    [card] = run(bundle(order), known(value(75.0)))
    assert (card["indicator"], rule_of(card)) == ("warning", "SYS-ZA-DOSE")
    assert "Zometa" in card["detail"] and "ostéoporose" in card["detail"] and "suggestions" not in card
    [card] = run(bundle(order), known(value(25.0)))  # below 30: still contraindicated, still removable
    assert card["indicator"] == "critical" and card["suggestions"][0]["actions"][0]["type"] == "delete"


@pytest.mark.parametrize("name", ["Prolia 60 mg", "PROLIA", "Obodence", "Stoboclo"])
def test_the_osteoporosis_denosumab_is_not_the_oncology_one(name: str) -> None:
    """Denosumab in bone metastases is Xgeva® 120 mg monthly (L1210); Prolia® and its biosimilars are 60 mg every
    6 months (osteoporosis)."""
    [card] = run(bundle(every(name, "M05BX04", 60, 6, "mo", rid="mr-pro")), known(value(75.0)))
    assert (card["indicator"], rule_of(card)) == ("warning", "SYS-DENO")
    assert "Xgeva" in card["detail"] and "120 mg" in card["detail"] and "suggestions" not in card


@pytest.mark.parametrize(
    ("name", "dose", "period", "unit"),
    [("XGEVA", 60, 4, "wk"), ("dénosumab", 120, 3, "mo"), ("Wyost", 120, 1, "wk"), ("Xgeva", None, 4, "wk")],
)
def test_denosumab_at_another_dose_or_rhythm_gets_120_mg_monthly(
    name: str, dose: float | None, period: float, unit: str
) -> None:
    """L1210: "la dose est de 120 mg mensuel par voie sous-cutanée"; L1140-1141: no data to space denosumab."""
    draft = bundle(every(name, "M05BX04", dose, period, unit, rid="mr-deno"))
    [card] = run(draft, known(value(75.0)))
    rule = "SYS-DENO" if dose != 120 else "SYS-SCHEDULE"  # the dose, else the rhythm (L1136, L1140-1142)
    assert (card["indicator"], rule_of(card)) == ("warning", rule) and "120 mg" in card["summary"]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert dose_of(resource) == 120 and MedicationRequest.model_validate(resource).id == "mr-deno"
    assert run(apply_suggestion(draft, card["suggestions"][0]), known(value(75.0))) == []
    assert run(bundle(every(name, "M05BX04", 120, 4, "wk")), known(value(75.0))) == []  # the text's own order


@pytest.mark.parametrize(
    ("doses", "indicator"),
    [((100, 100), "warning"), ((75, 75), "info"), ((80, 80), "warning"), ((159,), "info"), ((160,), "warning")],
)
def test_the_aspirin_daily_dose_counts_every_dosage_line(doses: tuple[float, ...], indicator: str) -> None:
    """L2638: "L'aspirine à une dose inférieure à 160 mg par jour peut être poursuivie": 100 mg morning and evening
    is 200 mg/day, not 100 (only the first dosage line was read)."""
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    order = every("aspirine", "B01AC06", doses[0], 1, "d", rid="asp")
    for extra in doses[1:]:
        line = copy.deepcopy(order["dosageInstruction"][0])
        line["doseAndRate"][0]["doseQuantity"]["value"] = extra
        order["dosageInstruction"].append(line)
    [card] = run(bundle(order), known(value(70.0), cementoplasty=(cement,)))
    assert card["indicator"] == indicator
    assert f"{sum(doses):g} mg/j" in card["detail"]


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "stopped", "completed"])
def test_a_draft_no_longer_to_sign_gets_no_card(status: str) -> None:
    order = za(4.0)
    order["status"] = status
    assert run(bundle(order), known(value(45.0))) == []
    assert len(run(bundle(order, za(4.0, rid="live")), known(value(45.0)))) == 1


def test_a_draft_whose_names_disagree_is_to_check_never_silently_passed() -> None:
    """A text naming zoledronic acid with a coding naming denosumab (or a brand with another drug's ATC code): the
    drug is not known, so no rule may be assumed, but nor may the draft sign as if it concerned none."""
    both = za(4.0)
    both["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "M05BX04", "display": "Xgeva"}],
        "text": "acide zolédronique",
    }
    for order in (both, medication("Xgeva", "M05BA08", 120)):
        [card] = run(bundle(order), known(value(25.0)))
        assert card["indicator"] == "warning" and "à vérifier" in card["summary"]
        assert "suggestions" not in card


@pytest.mark.parametrize(
    ("display", "system"),
    [
        ("zoledronic acid 4 MG in 100 ML Injection", "http://www.nlm.nih.gov/research/umls/rxnorm"),
        ("Zoledronic Acid 4 MG/5 ML Injectable Solution", "http://www.nlm.nih.gov/research/umls/rxnorm"),
    ],
)
def test_a_draft_named_as_an_rxnorm_clinical_drug_is_identified(display: str, system: str) -> None:
    order = za(4.0)
    order["medicationCodeableConcept"] = {"coding": [{"system": system, "code": "1657981", "display": display}]}
    [card] = run(bundle(order), known(value(45.0)))
    assert rule_of(card) == "SYS-ZA-DOSE" and dose_of(card["suggestions"][0]["actions"][0]["resource"]) == 3.3


def calcium_lab(v: float, at: datetime) -> NormalisedLab:
    return NormalisedLab.model_validate(
        {
            **EXAMPLES["osteocds.labs.normalised.v1"],
            "analyte": "corrected_calcium",
            "result_id": f"ca:{v}:{at.isoformat()}",
            "value": v,
            "unit": "mmol/L",
            "occurred_at": at.isoformat(),
            "recorded_at": at.isoformat(),
        }
    )


def test_a_crisis_alert_that_is_no_longer_current_waives_nothing() -> None:
    """LAB-CA-CRISIS (L304-306): scoring keeps an ended episode's alert as it is; only a crisis still under way (the
    newest corrected calcium > 3,5 mmol/L, measured within scoring's 72 h) is the emergency that waives the
    prerequisites (« sauf urgence », L799, L1090, L1267)."""
    alert = crisis().model_copy(update={"status": "acknowledged", "occurred_at": T0 - timedelta(days=3)})
    alerts = {str(alert.recommendation_id): alert}
    plan = TreatmentPlan.model_validate(EXAMPLES["osteocds.plans.v1"])
    current = facts(PatientAlerts(alerts=alerts, plan=plan, labs={"corrected_calcium": calcium_lab(3.7, T0)}), T0)
    assert current.crisis is not None
    for newest in (calcium_lab(2.45, T0), calcium_lab(3.7, T0 - timedelta(hours=73))):
        ended = facts(PatientAlerts(alerts=alerts, plan=plan, labs={"corrected_calcium": newest}), T0)
        assert ended.crisis is None
    assert facts(PatientAlerts(alerts=alerts, plan=plan), T0).crisis is None  # no calcium known: no emergency assumed


@pytest.mark.parametrize("drug", ["enoxaparine", "Lovenox 4000 UI", "tinzaparine", "Fragmine"])
def test_a_low_molecular_weight_heparin_before_a_cementoplasty_stops_the_day_before(drug: str) -> None:
    """L2630: "relais par des héparines de bas poids moléculaire et arrêt la veille du geste"."""
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    [card] = run(bundle(medication(drug, None, 40, rid="lmwh")), known(value(70.0), cementoplasty=(cement,)))
    assert "la veille du geste" in card["detail"] and "ne donne pas de délai" not in card["detail"]


def test_drafts_without_an_id_are_told_apart_and_get_no_ambiguous_update() -> None:
    """An `update` names its draft by type and id (CDS Hooks 2.0): without an id it would replace every id-less
    draft; and two such drafts got one card uuid."""
    a, b = za(4.0), za(3.0)
    del a["id"], b["id"]
    found = [c for c in run(bundle(a, b), known(value(45.0))) if rule_of(c) == "SYS-ZA-DOSE"]
    assert len(found) == 2 and found[0]["uuid"] != found[1]["uuid"]
    assert all("suggestions" not in c for c in found) and all("3,3 mg" in c["summary"] for c in found)


@pytest.mark.parametrize("unit", ["mL/s", "mL/min/1.73m2"])
def test_a_clearance_in_another_unit_is_not_read_as_ml_per_min(unit: str) -> None:
    lab = NormalisedLab.model_validate(
        {
            **EXAMPLES["osteocds.labs.normalised.v1"],
            "analyte": "creatinine_clearance",
            "value": 0.75,
            "unit": unit,
            "occurred_at": (T0 - timedelta(days=1)).isoformat(),
        }
    )
    found = run(bundle(za(3.0)), facts(PatientAlerts(labs={"creatinine_clearance": lab}), T0))
    [card] = [c for c in found if rule_of(c) == "SYS-ZA-DOSE"]
    assert card["indicator"] == "warning" and "suggestions" not in card and "données insuffisantes" in card["summary"]


@pytest.mark.parametrize(("crcl", "dose"), [(60.04, 3.5), (29.96, 3.0), (39.96, 3.3), (49.97, 3.5)])
def test_a_clearance_near_a_band_edge_is_not_shown_on_the_other_side(crcl: float, dose: float) -> None:
    """60.04 is "> 60" (4 mg) but was shown "60 mL/min" beside 4 mg; 29.96 was "30 mL/min (< 30 mL/min)"."""
    [card] = run(bundle(za(dose)), known(value(crcl)))
    shown_as = re.search(r"clairance (\d+(?:,\d+)?) mL/min", card["summary"])
    assert shown_as is not None
    assert float(shown_as.group(1).replace(",", ".")) not in (30.0, 40.0, 50.0, 60.0), card["summary"]


@pytest.mark.parametrize("crcl", [35.0, 45.0, 55.0, 75.0])
def test_the_plan_s_own_fhir_orders_sign_without_a_dose_or_rhythm_card(crcl: float) -> None:
    """The patient-view suggestions (the systemic plan's MedicationRequests, P1M / P3M, denosumab 120 mg P1M) are
    what the order checks then see at signature: accepted as proposed, they are never flagged."""
    state = planner_state(crcl, prerequisites_met=True)
    assert state.plan is not None
    orders_ = [(i.key, o) for i in state.plan.items for o in i.orders if o.drug == "zoledronic_acid"]
    orders_.append(("antiresorptive", denosumab_order("cholécalciférol")))
    for key, order in orders_:
        resource = medication_request(state.plan, order, key).model_dump(mode="json", exclude_none=True)
        found = run(bundle(resource), facts(state, sr.NOW))
        assert [rule_of(c) for c in found if rule_of(c) in ("SYS-ZA-DOSE", "SYS-DENO")] == [], found


@pytest.mark.parametrize(("drug", "atc"), [("carboplatine", "L01XA02"), ("pemetrexed", "L01BA04"), ("Taxotere", None)])
def test_a_drug_tableau_6_finds_compatible_is_not_a_window_to_check(drug: str, atc: str | None) -> None:
    """Tableau 6 (L2264-2312): carboplatin, cisplatin, vinorelbine, paclitaxel, etoposide, pemetrexed, docetaxel are
    "Compatible — Pas de fenêtre" with a palliative radiotherapy (L1974-1976): an information, not a warning that the
    window is unknown."""
    rt = local_item("T8:rt-scheme", "RT-FRACT-PALL", "Radiothérapie palliative — T8 : 8 Gy", "recommended")
    [card] = run(bundle(medication(drug, atc, 500, rid="mr-chemo")), known(value(70.0), radiotherapy=(rt,)))
    assert (card["indicator"], rule_of(card)) == ("info", "RT-DRUG") and "pas de fenêtre" in card["detail"]
    assert "**Données manquantes :**" not in card["detail"]


def test_tableau_6_compatible_drugs_are_the_radiotherapy_planner_s() -> None:
    assert TABLEAU_6_NO_WINDOW == rt_drugs.NO_WINDOW


def test_an_aspirin_dose_up_to_three_times_a_day_counts_at_its_most() -> None:
    """75 mg once to three times a day (frequencyMax 3) may be 225 mg/j: not "< 160 mg par jour" (L2638)."""
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    order = every("aspirine", "B01AC06", 75, 1, "d", rid="asp")
    order["dosageInstruction"][0]["timing"]["repeat"]["frequencyMax"] = 3
    [card] = run(bundle(order), known(value(70.0), cementoplasty=(cement,)))
    assert card["indicator"] == "warning" and "225 mg/j" in card["detail"]


def test_a_suggestion_uuid_names_the_patient_as_its_card_does() -> None:
    """Two patients with a draft of the same id: their suggestions are not the same one in the feedback's log."""
    a = orders.cards(bundle(za(4.0)), known(value(45.0)), "pt-a", LINKS)
    b = orders.cards(bundle(za(4.0)), known(value(45.0)), "pt-b", LINKS)
    again = orders.cards(bundle(za(4.0)), known(value(45.0)), "pt-a", LINKS)
    assert a[0]["suggestions"][0]["uuid"] != b[0]["suggestions"][0]["uuid"]
    assert a[0]["suggestions"][0]["uuid"] == again[0]["suggestions"][0]["uuid"]


def test_the_review_s_new_cards_have_no_identifier_nor_english() -> None:
    """The cards added by the review (rhythm, osteoporosis forms, denosumab dose, names that disagree, Tableau 6
    compatible, LMWH before a cementoplasty) in the clinician's French."""
    rt = local_item("T8:rt-scheme", "RT-FRACT-PALL", "Radiothérapie palliative — T8 : 8 Gy", "recommended")
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    both = za(4.0, rid="both")
    both["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "M05BX04", "display": "Xgeva"}],
        "text": "acide zolédronique",
    }
    draft = bundle(
        every("acide zolédronique", "M05BA08", 4.0, 1, "wk", rid="za-wk"),
        every("Aclasta", "M05BA08", 5.0, 1, "a", rid="acl"),
        every("Prolia", "M05BX04", 60, 6, "mo", rid="pro"),
        every("XGEVA", "M05BX04", 60, 3, "mo", rid="xg"),
        both,
        medication("carboplatine", "L01XA02", 500, rid="carbo"),
        medication("enoxaparine", None, 40, rid="lmwh"),
    )
    found = run(draft, known(value(45.0), radiotherapy=(rt,), cementoplasty=(cement,)))
    checks = {rule_of(c) for c in found}
    assert {"SYS-ZA-DOSE", "SYS-DENO", "RT-DRUG", "IR-CEMENT"} <= checks and len(found) >= 7
    for card in found:
        texts = [card["summary"], card["detail"], *(s["label"] for s in card.get("suggestions", []))]
        texts += [a["description"] for s in card.get("suggestions", []) for a in s["actions"]]
        for text in texts:
            assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), text
            assert not ENGLISH.search(text), (ENGLISH.search(text), text)


@pytest.mark.parametrize("selected", [None, ["MedicationRequest/deno"], ["MedicationRequest/za"]])
def test_two_anti_resorptives_in_one_order_set_are_said(selected: list[str] | None) -> None:
    """SYS-SCHEDULE: "acide zoledronique ou dénosumab mensuel" (L1136): one anti-resorptive, not both. One card for
    the pair (order-sign), on the selected draft when the other is elsewhere in the set (order-select)."""
    draft = bundle(za(4.0, rid="za"), every("XGEVA", "M05BX04", 120, 4, "wk", rid="deno"))
    found = run(draft, known(value(75.0)), selected)
    [card] = [c for c in found if rule_of(c) == "SYS-SCHEDULE"]
    assert card["indicator"] == "warning" and "dénosumab" in card["summary"] and "zolédronique" in card["summary"]
    # the same anti-resorptive twice: two monthly infusions at once (L1182), said once too
    [card] = run(bundle(za(4.0, rid="za"), za(4.0, rid="za2")), known(value(75.0)))
    assert rule_of(card) == "SYS-SCHEDULE" and "Deux prescriptions d'acide zolédronique" in card["summary"]


@settings(max_examples=300, deadline=None)
@given(
    drug=st.sampled_from([("acide zolédronique", "M05BA08"), ("XGEVA", "M05BX04"), ("Zometa 4 mg/5 ml", None)]),
    dose=st.one_of(st.none(), st.sampled_from([0.5, 3.0, 3.3, 3.5, 4.0, 5.0, 60.0, 120.0, 4000.0])),
    unit=st.sampled_from(["mg", "g", "ug"]),
    period=st.sampled_from([(1, "d"), (1, "wk"), (3, "wk"), (4, "wk"), (1, "mo"), (3, "mo"), (6, "mo")]),
    lines=st.integers(min_value=1, max_value=2),
    crcl=st.floats(min_value=5, max_value=140, allow_nan=False),
)
def test_an_accepted_suggestion_is_never_flagged_again(
    drug: tuple[str, str | None], dose: float | None, unit: str, period: tuple[int, str], lines: int, crcl: float
) -> None:
    """Review RB: whatever the draft, the order it becomes once a suggestion is applied as a CDS client does passes
    the same checks (no card with a suggestion is left: the corrected order is not itself corrected again)."""
    order = every(drug[0], drug[1], dose, period[0], period[1], rid="mr-p")
    if dose is not None:
        order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update({"unit": unit, "code": unit})
    order["dosageInstruction"] *= lines
    draft = bundle(order)
    for card in run(draft, known(value(crcl))):
        for suggestion in card.get("suggestions", []):
            after = apply_suggestion(draft, suggestion)
            left = [c for c in run(after, known(value(crcl))) if c.get("suggestions")]
            assert left == [], (card["summary"], [c["summary"] for c in left])


def test_a_long_summary_keeps_its_message_and_stays_under_140() -> None:
    """CDS Hooks 2.0: summary is a "<140-character" sentence. Many lesions cut the summary at 140, dropping its end
    ("fenêtre du Tableau 6 à vérifier", "à vérifier"): the lesions are shortened instead."""
    rts = tuple(
        local_item(f"{v}:rt", "RT-FRACT-PALL", f"Radiothérapie palliative — vertèbre {v} : 8 Gy", "recommended")
        for v in [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    )
    cements = tuple(
        local_item(f"L{i}:cement", "IR-CEMENT", f"Cimentoplastie — vertèbre L{i} : pas prête") for i in range(1, 6)
    )
    draft = bundle(
        medication("doxorubicine", "L01DB01", 50, rid="dox"), medication("clopidogrel", "B01AC04", 75, rid="c")
    )
    found = run(draft, known(value(70.0), radiotherapy=rts, cementoplasty=cements))
    assert len(found) == 2
    for card in found:
        assert len(card["summary"]) < 140, card["summary"]
    summaries = sorted(c["summary"] for c in found)
    assert summaries[1].endswith("fenêtre du Tableau 6 à vérifier") and "…" in summaries[1]


@pytest.mark.parametrize("name", ["aspirine 75 mg + clopidogrel 75 mg", "Kardégic (+ clopidogrel)"])
def test_two_substances_on_one_line_are_to_check_not_silent(name: str) -> None:
    """A combination line was unknown, hence no card, even with a cementoplasty planned (IR-CEMENT, L2626-2640): its
    substances are now named and the line is to check (each to prescribe on its own line to be checked)."""
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    [card] = run(bundle(medication(name, None, 75, rid="combo")), known(value(70.0), cementoplasty=(cement,)))
    assert (card["indicator"], rule_of(card)) == ("warning", "IR-CEMENT")
    assert "aspirine" in card["summary"] and "clopidogrel" in card["summary"] and "à vérifier" in card["summary"]


def service_request(text: str, rid: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"text": text},
    }


@pytest.mark.parametrize(
    ("procedure", "drug", "atc", "rule"),
    [
        ("Vertébroplastie L3", "apixaban", "B01AF02", "IR-CEMENT"),
        ("Cimentoplastie percutanée", "clopidogrel", "B01AC04", "IR-CEMENT"),
        ("Radiothérapie antalgique T8 8 Gy", "gemcitabine", "L01BC05", "RT-DRUG"),
    ],
)
def test_a_procedure_ordered_in_the_same_order_set_is_planned_for_the_checks(
    procedure: str, drug: str, atc: str, rule: str
) -> None:
    """The moment of ordering: a cementoplasty (L2626-2640) or a radiotherapy (Tableau 6) ordered beside the drug
    was unseen while the local plan had none yet."""
    draft = bundle(service_request(procedure, "sr-1"), medication(drug, atc, 75, rid="mr-d"))
    [card] = run(draft, known(value(70.0)))
    assert (card["indicator"], rule_of(card)) == ("warning", rule) and "cette ordonnance" in card["summary"]
    assert run(bundle(medication(drug, atc, 75, rid="mr-d")), known(value(70.0))) == []
    # order-select: the drug selected, the procedure elsewhere in the set
    assert len(run(draft, known(value(70.0)), ["MedicationRequest/mr-d"])) == 1


_NAMES = [
    ("acide zolédronique", "M05BA08"),
    ("Aclasta", None),
    ("XGEVA", "M05BX04"),
    ("Prolia", None),
    ("Xgeva", "M05BA08"),
    ("aspirine 75 mg + clopidogrel 75 mg", None),
    ("Kardégic 160 mg", None),
    ("enoxaparine", None),
    ("gemcitabine", "L01BC05"),
    ("carboplatine", None),
    ("zoledronic acid 4 MG in 100 ML Injection", None),
    ("amoxicilline", None),
    (None, "M05BA08"),
]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(_NAMES),
            st.one_of(st.none(), st.floats(min_value=0.01, max_value=5000, allow_nan=False)),
            st.sampled_from(["mg", "g", "mg/kg", "mL"]),
            st.sampled_from([(1, "d"), (2, "d"), (1, "wk"), (1, "mo"), (3, "mo"), None]),
            st.sampled_from(["draft", "active", "cancelled", "entered-in-error"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    ),
    crcl=st.one_of(st.none(), st.floats(min_value=1, max_value=150, allow_nan=False)),
    comparator=st.sampled_from([None, "<", ">"]),
    planned=st.booleans(),
    procedure=st.sampled_from([None, "Vertébroplastie L3", "Radiothérapie T8"]),
)
def test_any_order_set_gets_cards_of_the_specification_s_shape(
    lines: list[Any], crcl: float | None, comparator: Any, planned: bool, procedure: str | None
) -> None:
    """Review RB: whatever the drafts (names, codes, units, rhythms, statuses, ids) and the facts, the checker answers
    cards of the CDS Hooks 2.0 shape (run() validates them), summaries under 140, uuids unique, never a crash."""
    resources = []
    for i, ((name, atc), dose, unit, timing, status, has_id) in enumerate(lines):
        order = medication(name or "", atc, dose, unit=unit, rid=f"mr-{i}")
        if name is None:
            order["medicationCodeableConcept"] = {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]}
        if timing is None:
            del order["dosageInstruction"][0]["timing"]
        else:
            repeat = {"frequency": 1, "period": timing[0], "periodUnit": timing[1]}
            order["dosageInstruction"][0]["timing"]["repeat"] = repeat
        order["status"] = status
        if not has_id:
            del order["id"]
        resources.append(order)
    if procedure is not None:
        resources.append(service_request(procedure, "sr"))
    rt = local_item("T8:rt-scheme", "RT-FRACT-PALL", "Radiothérapie palliative — T8 : 8 Gy", "recommended")
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    facts_ = known(
        value(crcl, comparator) if crcl is not None else None,
        radiotherapy=(rt,) if planned else (),
        cementoplasty=(cement,) if planned else (),
    )
    found = run(bundle(*resources), facts_)
    assert all(len(c["summary"]) < 140 for c in found)
    assert len({c["uuid"] for c in found}) == len(found)


@pytest.mark.parametrize(("code", "per_day"), [("QD", 1.0), ("BID", 2.0), ("TID", 3.0), ("Q8H", 3.0), ("WK", 1 / 7)])
def test_a_timing_given_by_its_code_is_read(code: str, per_day: float) -> None:
    """FHIR Timing.code (GTS abbreviations: QD, BID, Q8H, WK...) without a repeat: zoledronic acid "QD" escaped the
    monthly rhythm (L1182), aspirin 100 mg "BID" its daily dose (L2638)."""
    gts = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
    timing = {"code": {"coding": [{"system": gts, "code": code}]}}
    order = za(4.0)
    order["dosageInstruction"][0]["timing"] = timing
    [card] = run(bundle(order), known(value(75.0)))
    assert rule_of(card) == "SYS-SCHEDULE"
    cement = local_item("L2:cement", "IR-CEMENT", "Cimentoplastie — L2 : pas prête")
    aspirin = medication("aspirine", "B01AC06", 100, rid="asp")
    aspirin["dosageInstruction"][0]["timing"] = timing
    [card] = run(bundle(aspirin), known(value(70.0), cementoplasty=(cement,)))
    assert card["indicator"] == ("info" if 100 * per_day < 160 else "warning")
    assert f"{_num_fr(100 * per_day)} mg/j" in card["detail"]


def _num_fr(x: float) -> str:
    return f"{round(x, 1):.1f}".rstrip("0").rstrip(".").replace(".", ",")


@pytest.mark.parametrize("selected", [None, ["MedicationRequest/za"], ["MedicationRequest/chemo"]])
def test_a_bisphosphonate_with_platinum_or_pemetrexed_in_one_order_set_is_said(selected: list[str] | None) -> None:
    """SYS-RENAL-TOX (L770-772): "utilisation concomitante des sels de platine, du pemetrexed et des biphosphonates
    ... néphrotoxicité cumulative": one card for the set, on the selected draft for order-select."""
    draft = bundle(za(4.0, rid="za"), medication("cisplatine", "L01XA01", 75, rid="chemo"))
    [card] = [c for c in run(draft, known(value(75.0)), selected) if rule_of(c) == "SYS-RENAL-TOX"]
    assert card["indicator"] == "warning" and "néphrotoxicité" in card["summary"].lower()
    assert "cisplatine" in card["detail"]
    denosumab = bundle(every("XGEVA", "M05BX04", 120, 4, "wk", rid="d"), medication("pemetrexed", "L01BA04", 500))
    assert [c for c in run(denosumab, known(value(75.0))) if rule_of(c) == "SYS-RENAL-TOX"] == []  # not renal


def test_nephrotoxic_chemotherapies_are_the_systemic_planner_s() -> None:
    assert NEPHROTOXIC_WITH_BISPHOSPHONATES == planner_rules.NEPHROTOXIC_CHEMO
