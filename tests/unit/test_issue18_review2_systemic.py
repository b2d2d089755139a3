"""Issue 18, second independent clinical-safety review of the systemic planner and scoring: an unidentified drug
never holds the order in a hypercalcaemic crisis (1), an entered-in-error naming the original of an amended record
(2), anti-resorptive administrations (3), a same-day renewal then stop (4) and MOL-BIOPSY test names read as results
(5). Pure timelines through apply_event, and the shared rules called directly; no mocks."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from contracts.hospital import TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner.quality import result_kind
from shared.clinical.corrections import resolve
from tests.unit.test_issue18_review_scoring import FLARE, PROGRESSION, reading
from tests.unit.test_issue18_review_scoring import _sres as scoring_sres
from tests.unit.test_issue18_review_systemic import BASE, DENO, ZA, correction, drug, given
from tests.unit.test_issue18_scoring_context import FOCUS, RT_PAIN, flares
from tests.unit.test_issue18_scoring_context import correction as scoring_correction
from tests.unit.test_issue18_scoring_context import drug as scoring_drug
from tests.unit.test_issue18_systemic import biopsy
from tests.unit.test_scoring_scores import run as scoring_run
from tests.unit.test_systemic_rules import env, items, lab, le, met, oligo, run

# ---- (1) SYS-AR-START in a hypercalcaemic crisis: drafted anyway, what is to check named on it ---------------------
#: LAB-CA-CRISIS (L302-306): corrected calcium > 3.5 mmol/L, and the hypercalcaemia SRE scoring derives from it
CRISIS: list[Message] = [
    lab(60, "corrected_calcium", 3.9, "mmol/L"),
    SkeletalEvent.model_validate({**env(61), "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": []}),
]
#: no vitamin D, no dental assessment: prerequisites the emergency waives (L799, L1090, L1098, L1267 "sauf urgence")
NOT_READY: list[Message] = [
    met(),
    le(1, 12),
    lab(2, "creatinine_clearance", 75.0, "mL/min"),
    oligo(3, "multi_metastatic"),
]


def _withdrawn_amendment() -> list[TreatmentEvent]:
    """A zoledronic acid record whose amendment was entered in error (a correction to check)."""
    original = drug(10, ZA, on="2026-06-01")
    amended = correction(original, "amended", 11, on="2026-06-08")
    return [original, amended, correction(amended, "entered-in-error", 12)]


#: what may already be an anti-resorptive (a drug the vocabulary does not list, a withdrawn amendment), and how
#: many corrections to check the plan names
TO_CHECK: list[tuple[str, list[TreatmentEvent], list[str]]] = [
    ("unidentified", [drug(10, "Zorbexil", on="2026-06-01")], []),
    ("correction", _withdrawn_amendment(), ["la correction annulée de acide zolédronique du 08/06/2026"]),
    (
        "both",
        [drug(9, "Zorbexil", on="2026-06-01"), *_withdrawn_amendment()],
        ["la correction annulée de acide zolédronique du 08/06/2026"],
    ),
]


@pytest.mark.parametrize(("case", "extra", "named"), TO_CHECK)
def test_SYS_AR_START_a_crisis_drafts_the_order_and_names_what_is_to_check(
    case: str, extra: list[TreatmentEvent], named: list[str]
) -> None:
    s, _ = run([*NOT_READY, *extra, *CRISIS])
    plan = items(s)
    start, ar = plan["antiresorptive-start"], plan["antiresorptive"]
    assert start.status == "recommended" and start.severity == "warning", case
    assert [(o.drug, o.dose, o.interval) for o in ar.orders] == [(ZA, 4.0, "P1M")], case
    assert ar.status == "recommended" and ar.severity == "warning"
    [order] = ar.orders
    assert order.waived_prerequisites == ["vitamin_d", "dental_assessment"]  # the waiver is unchanged
    # each drug to check keeps its own item, and is named on the start and on the order
    unknown = [k.removeprefix("unidentified-drug:") for k in plan if k.startswith("unidentified-drug:")]
    assert len(unknown) == (case != "correction")
    for name in [f"le médicament non identifié {k.replace('_', ' ')}" for k in unknown] + named:
        assert name in order.instructions_fr, (case, order.instructions_fr)
        assert name in ar.text_fr and name in start.text_fr
    assert "à vérifier" in order.instructions_fr and "un second anti-résorptif" in order.instructions_fr
    assert "first-infusion-paracetamol" in plan
    assert len([k for k in plan if k.startswith("correction-to-check:")]) == len(named)


@pytest.mark.parametrize(("case", "extra", "named"), TO_CHECK)
def test_SYS_AR_START_outside_a_crisis_the_hold_stays(case: str, extra: list[TreatmentEvent], named: list[str]) -> None:
    for timeline in ([*BASE, *extra], [*NOT_READY, *extra]):
        s, _ = run(timeline)
        plan = items(s)
        assert plan["antiresorptive-start"].status == "cannot_decide", case
        assert plan["antiresorptive"].status == "cannot_decide" and plan["antiresorptive"].orders == []


def test_SYS_AR_START_a_crisis_that_is_over_does_not_lift_the_hold() -> None:
    """A crisis value followed by a normal corrected calcium is history (no emergency): the hold stays."""
    s, _ = run([*NOT_READY, drug(10, "Zorbexil", on="2026-06-01"), *CRISIS])
    s, _ = run([lab(90, "corrected_calcium", 2.4, "mmol/L")], s)
    plan = items(s)
    assert plan["antiresorptive-start"].status == "cannot_decide" and plan["antiresorptive"].orders == []


# ---- (2) an entered-in-error naming the original of an amended record withdraws the version in force --------------
def _kind(e: TreatmentEvent) -> str:
    return e.treatment.kind


def _chain() -> dict[str, TreatmentEvent]:
    """original -> first (amends original) -> second (amends first), and an error naming each."""
    original = drug(10, ZA, on="2026-06-01")
    first = correction(original, "amended", 11, on="2026-06-08")
    second = correction(first, "amended", 12, on="2026-06-15")
    return {
        "original": original,
        "first": first,
        "second": second,
        "error:original": correction(original, "entered-in-error", 13),
        "error:first": correction(first, "entered-in-error", 13),
        "error:second": correction(second, "entered-in-error", 13),
    }


@pytest.mark.parametrize(
    ("records", "kept", "to_check"),
    [
        # the error names the root after one amendment: the amendment in force is withdrawn, and to check
        (["original", "first", "error:original"], [], ["first"]),
        # it names the amendment in force: the same (unchanged)
        (["original", "first", "error:first"], [], ["first"]),
        # no amendment: the original is withdrawn, nothing to check (unchanged)
        (["original", "error:original"], [], []),
        # two amendments in a chain: naming the root or the version in force withdraws it
        (["original", "first", "second", "error:original"], [], ["second"]),
        (["original", "first", "second", "error:second"], [], ["second"]),
        # naming a superseded intermediate version: the version in force stays, and is to check
        (["original", "first", "second", "error:first"], ["second"], ["second"]),
    ],
)
def test_corrections_resolve_an_error_naming_any_version_of_a_chain(
    records: list[str], kept: list[str], to_check: list[str]
) -> None:
    chain = _chain()
    for order in itertools.permutations([chain[k] for k in records]):
        found = resolve(order, _kind)
        assert [x.event_id for x in found.kept] == [chain[k].event_id for k in kept], order
        assert [x.event_id for x in found.to_check] == [chain[k].event_id for k in to_check], order


def test_corrections_resolve_a_new_version_after_the_error_counts_again() -> None:
    chain = _chain()
    later = correction(chain["original"], "amended", 20, on="2026-06-22")
    found = resolve([chain["original"], chain["first"], chain["error:original"], later], _kind)
    assert [x.event_id for x in found.kept] == [later.event_id] and found.to_check == []


def test_systemic_an_error_naming_the_original_withdraws_the_amended_denosumab() -> None:
    original = drug(10, DENO, on="2026-06-01")
    amended = correction(original, "amended", 11, on="2026-06-08")
    error = correction(original, "entered-in-error", 12)
    for order in itertools.permutations([original, amended, error]):
        s, _ = run([*BASE, *order])
        plan = items(s)
        assert plan["antiresorptive-start"].status == "cannot_decide", order  # no longer "done" (under way)
        assert f"correction-to-check:{amended.event_id}" in plan
        assert plan["antiresorptive"].orders == [] and "denosumab-stop" not in plan


def test_systemic_an_error_naming_the_original_withdraws_an_amended_chemotherapy() -> None:
    original = drug(10, "cisplatine", on="2026-10-01")
    amended = correction(original, "amended", 11, on="2026-10-02")
    s, _ = run([*BASE, original, amended])
    assert "nephrotoxicity" in items(s)
    s, _ = run([correction(original, "entered-in-error", 12)], s)
    plan = items(s)
    assert "nephrotoxicity" not in plan
    assert [o.drug for o in plan["antiresorptive"].orders] == [ZA]  # not an anti-resorptive: no hold


def test_systemic_an_error_naming_a_superseded_version_leaves_the_treatment_and_asks_to_check() -> None:
    chain = _chain()
    s, _ = run([*BASE, *(chain[k] for k in ("original", "first", "second", "error:first"))])
    plan = items(s)
    assert plan["antiresorptive-start"].status == "done"
    assert "acide zolédronique depuis le 15/06/2026" in plan["antiresorptive-start"].text_fr
    check = plan[f"correction-to-check:{chain['second'].event_id}"]
    assert check.status == "to_do" and check.severity == "warning"
    assert "version antérieure" in check.text_fr and "15/06/2026" in check.text_fr
    assert check.missing == [
        "whether zoledronic acid recorded on 2026-06-15 is right (an earlier, superseded version was entered in error)"
    ]


def test_scoring_an_error_naming_the_original_withdraws_the_amended_radiotherapy_for_pain() -> None:
    amended = scoring_correction(RT_PAIN, "amended", 50, on="2026-10-03")
    error = scoring_correction(RT_PAIN, "entered-in-error", 60)
    assert scoring_sres([RT_PAIN, amended]) == ["radiotherapy_for_pain"]
    for order in itertools.permutations([RT_PAIN, amended, error]):
        assert scoring_sres(list(order)) == [], order


def test_scoring_an_error_naming_the_original_withdraws_the_amended_drug_start() -> None:
    start = scoring_drug(0, "osimertinib", on="2026-09-01")
    amended = scoring_correction(start, "amended", 5, on="2026-09-02")
    _, out = scoring_run([start, amended, FOCUS])
    assert [f.title for f in flares(out)] == [FLARE]
    _, out = scoring_run([start, amended, scoring_correction(start, "entered-in-error", 6), FOCUS])
    assert flares(out) == []


# ---- (3) an anti-resorptive given (drug administration) is under way for its dosing interval ---------------------
def _plan(*events: Message, now: datetime | None = None) -> dict[str, PlanItem]:
    s, _ = run([*BASE, *events])
    return items(s) if now is None else items(s, now)


@pytest.mark.parametrize(
    ("name", "on", "under_way", "ordered"),
    [
        ("Xgeva 120 mg", "2026-10-15", DENO, [DENO]),
        ("denosumab", "2026-10-03", DENO, [DENO]),
        ("zoledronic acid", "2026-10-15", ZA, [ZA]),
        ("Zometa 4 mg", "2026-10-03", ZA, [ZA]),
        # more than its interval (one month, multi-metastatic) before today (02/11/2026): no longer under way
        ("Xgeva 120 mg", "2026-09-20", None, [ZA]),
        ("zoledronic acid", "2026-09-20", None, [ZA]),
    ],
)
def test_SYS_AR_START_an_antiresorptive_administration_is_under_way_for_its_interval(
    name: str, on: str, under_way: str | None, ordered: list[str]
) -> None:
    plan = _plan(given(10, name, on=on))
    start = plan["antiresorptive-start"]
    assert [o.drug for o in plan["antiresorptive"].orders] == ordered
    if under_way is None:
        assert start.status == "recommended"
        return
    assert start.status == "done" and start.title == "Anti-résorptif en cours"
    assert f"depuis le {date.fromisoformat(on):%d/%m/%Y}" in start.text_fr
    assert "first-infusion-paracetamol" not in plan  # zoledronic acid was given: not a first infusion


def test_SYS_AR_START_the_interval_is_the_texts_schedule() -> None:
    # L1210 "120 mg mensuel" (never spaced, L1140-1142); L1182 "mensuellement", L1132 "trimestriel"
    assert (r.DENOSUMAB_INTERVAL_MONTHS, r.ZA_MONTHLY_INTERVAL_MONTHS, r.ZA_SPACED_INTERVAL_MONTHS) == (1, 1, 3)
    # oligometastatic: zoledronic acid every 3 months (L1132): an infusion two months ago is still under way
    s, _ = run([*BASE, oligo(4, "oligometastatic"), given(10, "zoledronic acid", on="2026-09-01")])
    assert items(s)["antiresorptive-start"].status == "done"
    # ... and no longer once its 3 months are over
    assert items(s, datetime(2026, 12, 2, 9, 0, tzinfo=UTC))["antiresorptive-start"].status == "recommended"


def test_SYS_AR_START_zoledronic_acid_is_not_drafted_two_weeks_after_denosumab() -> None:
    plan = _plan(given(10, "Xgeva 120 mg", on="2026-10-19"))
    assert ZA not in {o.drug for o in plan["antiresorptive"].orders}
    assert "first-infusion-paracetamol" not in plan


def test_SYS_REVIEW_2Y_monthly_administrations_are_exposure() -> None:
    """Zoledronic acid given monthly from 01/09/2024: 2 years of exposure on 01/09/2026 (L1238, L1200-1202)."""
    days = [date(2024 + (8 + i) // 12, (8 + i) % 12 + 1, 1) for i in range(27)]  # 01/09/2024 .. 01/11/2026
    plan = _plan(*(given(10 + i, "zoledronic acid", on=d.isoformat()) for i, d in enumerate(days)))
    review = plan["review-2-years"]
    assert review.severity == "warning" and review.title == "Réévaluation de l'anti-résorptif le 01/09/2026"
    assert plan["antiresorptive-start"].status == "done"


def test_SYS_DENO_STOP_a_zoledronic_acid_infusion_given_is_the_relay() -> None:
    stop = [drug(10, DENO, on="2026-01-05"), drug(11, DENO, "stopped", on="2026-10-01")]
    assert _plan(*stop)["denosumab-stop"].status == "recommended"
    relay = _plan(*stop, given(12, "acide zolédronique", on="2026-10-20"))["denosumab-stop"]
    assert relay.status == "done" and relay.severity == "info"


def test_an_administration_never_overrides_a_recorded_stop() -> None:
    plan = _plan(given(10, "Xgeva 120 mg", on="2026-10-15"), drug(11, DENO, "stopped", on="2026-10-25"))
    assert plan["antiresorptive-start"].status != "done"
    assert plan["denosumab-stop"].status == "recommended"


def test_a_prescription_under_way_is_not_ended_by_its_administration_interval() -> None:
    plan = _plan(drug(10, DENO, on="2025-06-01"), given(11, "Xgeva", on="2026-08-01"))
    assert plan["antiresorptive-start"].status == "done" and "01/06/2025" in plan["antiresorptive-start"].text_fr
    assert "denosumab-stop" not in plan


# ---- (4) a same-day renewal then stop: the recorded order decides (SYS-DENO-STOP L1249-1253, IMG-FLARE) -----------
@pytest.mark.parametrize(
    ("minutes", "stopped"),
    [
        ((20, 25), True),  # renewal recorded, then the stop: the stop is the last word
        ((25, 20), False),  # stop recorded, then the renewal: a re-prescription
        ((20, 20), False),  # recorded at the same time: the order cannot tell, a re-prescription
    ],
)
def test_SYS_DENO_STOP_the_recorded_order_of_a_same_day_start_and_stop(minutes: tuple[int, int], stopped: bool) -> None:
    renewal, stop = minutes
    plan = _plan(
        drug(10, DENO, on="2025-03-01"), drug(renewal, DENO, on="2026-10-01"), drug(stop, DENO, "stopped", "2026-10-01")
    )
    assert ("denosumab-stop" in plan) is stopped
    assert (plan["antiresorptive-start"].status == "done") is not stopped
    assert (DENO in {o.drug for o in plan["antiresorptive"].orders}) is not stopped


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # renewed, then stopped, the same day: stopped before the focus
        (
            [
                ("osimertinib", "started", "2026-01-05"),
                ("Tagrisso", "started", "2026-10-01"),
                ("osimertinib", "stopped", "2026-10-01"),
            ],
            None,
        ),
        # stopped, then renewed: still under way since January (unchanged)
        (
            [
                ("osimertinib", "started", "2026-01-05"),
                ("osimertinib", "stopped", "2026-10-01"),
                ("Tagrisso", "started", "2026-10-01"),
            ],
            (PROGRESSION, ["osimertinib 2026-01-05"]),
        ),
    ],
)
def test_IMG_FLARE_the_recorded_order_of_a_same_day_start_and_stop(
    events: list[tuple[str, str, str]], expected: tuple[str, list[str]] | None
) -> None:
    assert reading(*events) == expected


# ---- (5) MOL-BIOPSY: the name of a test is not its result -------------------------------------------------------
#: the review's wordings (t_mol.py, t_mol2.py): (wording, marker, kind); every kind but "done" is a missing result
WORDINGS: list[tuple[str, str, str]] = [
    ("Recherche de mutation EGFR à réaliser sur un nouveau prélèvement", "EGFR", "not_done"),
    ("Mutation EGFR : à prévoir", "EGFR", "not_done"),
    ("Recherche de mutation à programmer", "EGFR", "not_done"),
    ("Mutation : N/A", "EGFR", "not_done"),
    ("Mutation EGFR : non communiqué", "EGFR", "not_done"),
    ("Mutation EGFR : résultat ultérieur", "EGFR", "pending"),
    ("Recherche de mutations sur ADN circulant proposée", "EGFR", "not_done"),
    ("Mutation EGFR : ?", "EGFR", "unrecognised"),
    ("Recherche de fusion ALK : nouveau prélèvement nécessaire", "ALK", "unrecognised"),
    ("Expression PD-L1 : à compléter", "PD-L1", "not_done"),
    ("Mutation EGFR : pas fait", "EGFR", "not_done"),
    ("Statut mutationnel EGFR : inconnu", "EGFR", "not_done"),
    ("Mutation KRAS : non renseigné", "KRAS", "not_done"),
    ("Mutation EGFR sur biopsie antérieure", "EGFR", "unrecognised"),
    ("Réarrangement ALK : recherche abandonnée", "ALK", "not_done"),
    ("EGFR: L858R détectée; T790M non recherchée", "EGFR", "done"),
    ("Mutation EGFR exon 19 (à confirmer)", "EGFR", "qualified"),
    ("Mutation EGFR : résultat à confirmer sur nouveau prélèvement", "EGFR", "qualified"),
    ("Absence de mutation EGFR", "EGFR", "done"),
    ("PD-L1 TPS 50 %", "PD-L1", "done"),
    ("PD-L1 : 0 %", "PD-L1", "done"),
    ("Mutation EGFR : ADN extrait, séquençage non effectué", "EGFR", "not_done"),
    ("Recherche de mutation : échantillon envoyé à la plateforme", "EGFR", "pending"),
    ("mutation EGFR : test refusé par le patient", "EGFR", "not_done"),
    ("Recherche ALK (IHC) : en cours de relecture", "ALK", "pending"),
    ("à réaliser", "EGFR", "not_done"),
    ("non renseigné", "EGFR", "not_done"),
    ("inconnu", "EGFR", "not_done"),
    ("à prévoir", "EGFR", "not_done"),
    ("refusé", "EGFR", "not_done"),
    ("recherche de mutation à réaliser", "EGFR", "not_done"),
    ("statut mutationnel inconnu", "EGFR", "not_done"),
    ("mutation : non renseigné", "KRAS", "not_done"),
    ("réarrangement : à réaliser", "ALK", "not_done"),
    ("fusion non recherchable (ARN dégradé)", "ROS1", "failed"),
    ("expression non réalisée faute de matériel", "PD-L1", "not_done"),
    ("expression : à compléter", "PD-L1", "not_done"),
    ("translocation : recherche abandonnée", "ALK", "not_done"),
    ("mutation : ininterprétable", "EGFR", "failed"),
    ("exon 20 : non couvert par le panel", "EGFR", "failed"),
    ("statut mutationnel non connu", "EGFR", "not_done"),
    ("recherche de mutation non réalisable", "EGFR", "failed"),
    ("mutation recherchée sur ADN circulant : à venir", "EGFR", "pending"),
    ("L858R : présence non exclue", "EGFR", "qualified"),
    # test names alone are not results
    ("Mutation EGFR", "EGFR", "unrecognised"),
    ("Recherche de réarrangement ALK", "ALK", "unrecognised"),
    ("Expression PD-L1", "PD-L1", "unrecognised"),
    ("Translocation ROS1", "ROS1", "unrecognised"),
    ("translocation", "ALK", "unrecognised"),  # was read as done (tests/unit/test_issue18_systemic.py)
    ("Recherche de fusion", "ALK", "unrecognised"),
    # results stay results
    ("EGFR muté", "EGFR", "done"),
    ("Mutation EGFR détectée (délétion exon 19)", "EGFR", "done"),
    ("Présence de la mutation L858R", "EGFR", "done"),
    ("Délétion exon 19", "EGFR", "done"),
    ("EGFR sauvage", "EGFR", "done"),
    ("négatif", "EGFR", "done"),
    ("Pas de mutation détectée", "EGFR", "done"),
    ("Mutation : non", "EGFR", "done"),
    ("Fusion EML4-ALK détectée", "ALK", "done"),
    ("Réarrangement présent", "ALK", "done"),
    ("ALK réarrangé", "ALK", "done"),
    ("Absence de réarrangement", "ALK", "done"),
    ("G12C", "KRAS", "done"),
    # one clause with a result and one with a test not done: a positive result counts; a negative one does not
    ("L858R détectée, T790M : à prévoir", "EGFR", "done"),
    ("EGFR: L858R détectée ; T790M non recherchée ; contrôle interne non valide", "EGFR", "failed"),
    ("L858R détectée sous réserve ; T790M non recherchée", "EGFR", "qualified"),
    ("IHC négative, FISH en attente", "ALK", "pending"),
    ("NGS non fait, IHC ALK négative", "ALK", "not_done"),
    ("L858R non détectée ; T790M non recherchée", "EGFR", "not_done"),
]


@pytest.mark.parametrize(("raw", "marker", "kind"), WORDINGS)
def test_MOL_BIOPSY_test_names_are_not_results(raw: str, marker: str, kind: str) -> None:
    assert result_kind(raw, marker) == kind


def test_MOL_BIOPSY_a_report_of_tests_still_to_do_is_missing_results() -> None:
    results = {
        "EGFR": "EGFR: L858R détectée; T790M non recherchée",
        "ALK": "Réarrangement ALK : recherche abandonnée",
        "KRAS": "Mutation KRAS : non renseigné",
        "PD-L1": "Expression PD-L1 : à compléter",
    }
    s, _ = run([met(), le(1, 12), biopsy(results)])
    item = items(s)["bone-biopsy"]
    assert item.status == "to_do"
    assert item.missing == [
        "ALK result (not done: Réarrangement ALK : recherche abandonnée)",
        "KRAS result (not done: Mutation KRAS : non renseigné)",
        "PD-L1 result (not done: Expression PD-L1 : à compléter)",
    ]
    assert "EGFR: L858R détectée; T790M non recherchée" in item.text_fr
