"""Issue 18, independent clinical-safety review of the systemic planner: unidentified drugs (1), a same-day
re-prescription (2), MOL-BIOPSY wordings (3), SYS-REVIEW-2Y on cumulative exposure (4), treatment correction
chains (5), a stray stop (6), the denosumab relay after a review stop (7), an interrupted vitamin D loading (8) and
QUAL-PATHWAY's multidisciplinary decision (10). Pure timelines through apply_event; no mocks."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.care import CareEvent
from contracts.hospital import TreatmentEvent
from services.systemic_planner.domain import build_plan
from services.systemic_planner.quality import result_kind
from shared.clinical.corrections import resolve
from shared.clinical.treatments import effective_treatments
from tests.unit.test_issue18_systemic import biopsy
from tests.unit.test_systemic_rules import LOADED, NOW, T0, as_of, dental, env, items, lab, le, met, oligo, ready, run

BASE: list[Message] = [
    met(),
    le(1, 12),
    lab(2, "creatinine_clearance", 75.0, "mL/min"),
    oligo(3, "multi_metastatic"),
    *ready(),
]
ZA, DENO = "zoledronic_acid", "denosumab"


def drug(minutes: int, name: str, action: str = "started", on: str = "2026-10-01", **extra: Any) -> TreatmentEvent:
    body = {"kind": "systemic_drug", "drug": name, "action": action, "on": on, **extra}
    return TreatmentEvent.model_validate({**env(minutes), "treatment": body})


def given(minutes: int, name: str, on: str, **extra: Any) -> TreatmentEvent:
    body = {"kind": "drug_administration", "drug": name, "on": on, **extra}
    return TreatmentEvent.model_validate({**env(minutes), "treatment": body})


def course(*events: tuple[str, str, str]) -> list[TreatmentEvent]:
    """Drug events (name, action, on) recorded one minute apart, in this order."""
    return [drug(10 + i, name, action, on) for i, (name, action, on) in enumerate(events)]


def correction(of: TreatmentEvent, status: str, minutes: int, **treatment: Any) -> TreatmentEvent:
    body = {**of.treatment.model_dump(mode="json"), **treatment}
    return TreatmentEvent.model_validate(
        {**env(minutes), "treatment": body, "record_status": status, "corrects": of.event_id}
    )


# ---- (1) a drug the vocabulary cannot identify is said so, and holds the anti-resorptive start ---------------
@pytest.mark.parametrize(
    ("name", "atc", "shown"),
    [
        ("Zometa", "M05BX04", "zometa"),  # name (zoledronic acid) and code (denosumab) disagree
        ("Jubereq", None, "jubereq"),  # a denosumab biosimilar the vocabulary does not list
        ("Ostemorex", None, "ostemorex"),  # a brand the vocabulary does not list
        ("Produit Y 4 mg", None, "produit y"),
    ],
)
def test_an_active_unidentified_drug_is_an_item_and_holds_the_antiresorptive_start(
    name: str, atc: str | None, shown: str
) -> None:
    extra = {"atc_code": atc} if atc else {}
    s, _ = run([*BASE, drug(10, name, on="2026-06-01", **extra)])
    plan = items(s)
    key = f"unidentified-drug:{shown.replace(' ', '_')}"
    unknown = plan[key]
    identity = f"identity of {shown} (anti-resorptive? nephrotoxic? TKI?)"
    assert unknown.status == "to_do" and unknown.severity == "warning"
    assert unknown.title == f"Médicament non identifié : {shown} — anti-résorptif, néphrotoxique ou ITK ? à vérifier"
    assert unknown.missing == [identity]
    start = plan["antiresorptive-start"]
    assert start.status == "cannot_decide" and identity in start.missing and shown in start.text_fr
    assert plan["antiresorptive"].orders == [] and plan["antiresorptive"].status == "cannot_decide"
    assert "first-infusion-paracetamol" not in plan


def test_an_unidentified_drug_stopped_is_no_longer_an_item_and_the_start_is_proposed() -> None:
    s, _ = run([*BASE, drug(10, "Jubereq", on="2026-06-01"), drug(11, "Jubereq", "stopped", on="2026-07-01")])
    plan = items(s)
    assert not [k for k in plan if k.startswith("unidentified-drug:")]
    assert plan["antiresorptive-start"].status == "recommended" and plan["antiresorptive"].orders


@pytest.mark.parametrize(("on", "listed"), [("2026-10-15", True), ("2026-03-01", False)])
def test_an_unidentified_drug_administered_recently_is_an_item(on: str, listed: bool) -> None:
    s, _ = run([*BASE, given(10, "Denoxify", on=on)])
    plan = items(s)
    assert ("unidentified-drug:denoxify" in plan) is listed
    assert (plan["antiresorptive-start"].status == "cannot_decide") is listed


def test_an_unidentified_drug_beside_a_known_antiresorptive_is_named_without_changing_it() -> None:
    s, _ = run([*BASE, drug(10, DENO, on="2026-06-01"), drug(11, "Ostemorex", on="2026-06-01")])
    plan = items(s)
    assert plan["unidentified-drug:ostemorex"].status == "to_do"
    assert plan["antiresorptive-start"].status == "done"


# ---- (2) the same drug stopped and started the same day: a re-prescription, still under way --------------------
def test_a_same_day_stop_and_restart_of_denosumab_is_a_represcription() -> None:
    s, _ = run([*BASE, *course((DENO, "started", "2025-03-01"), (DENO, "stopped", "2026-10-01"))])
    s, _ = run([drug(20, DENO, on="2026-10-01")], s)
    plan = items(s)
    assert plan["antiresorptive-start"].status == "done"
    assert "dénosumab depuis le 01/03/2025" in plan["antiresorptive-start"].text_fr
    assert "denosumab-stop" not in plan and [o.drug for o in plan["antiresorptive"].orders] == [DENO]


def test_a_same_day_stop_and_restart_of_zoledronic_acid_keeps_the_review_count() -> None:
    s, _ = run(
        [*BASE, *course((ZA, "started", "2024-06-01"), (ZA, "stopped", "2026-10-01"), (ZA, "started", "2026-10-01"))]
    )
    plan = items(s)
    assert plan["antiresorptive-start"].status == "done"
    review = plan["review-2-years"]
    assert review.severity == "warning" and "01/06/2026" in review.title


def test_a_one_day_course_of_a_drug_not_under_way_is_given_and_over() -> None:
    """Started and stopped the same day while not under way before: one administration (e.g. one infusion)."""
    s, _ = run([*BASE, *course((ZA, "started", "2026-09-01"), (ZA, "stopped", "2026-09-01"))])
    plan = items(s)
    assert plan["antiresorptive-start"].status == "recommended"


# ---- (4) SYS-REVIEW-2Y: cumulative exposure; a fresh count only after a long gap -------------------------------
@pytest.mark.parametrize(
    ("events", "since", "due", "overdue"),
    [
        # 22 months, a 6-week interruption (dental care), restarted: 2 years of exposure reached on 27/02/2026
        (
            [(ZA, "started", "2024-01-10"), (ZA, "stopped", "2025-11-15"), (ZA, "started", "2026-01-02")],
            "2024-01-10",
            "27/02/2026",
            True,
        ),
        # a one-day gap changes nothing but that day
        (
            [(ZA, "started", "2024-01-10"), (ZA, "stopped", "2026-01-01"), (ZA, "started", "2026-01-02")],
            "2024-01-10",
            "11/01/2026",
            True,
        ),
        # two courses of different anti-resorptives 7 months apart: one count
        (
            [(ZA, "started", "2024-01-10"), (ZA, "stopped", "2024-06-01"), (DENO, "started", "2025-01-15")],
            "2024-01-10",
            "26/08/2026",
            True,
        ),
        # 2 months, a 4-month gap, restarted: the 2 months count
        (
            [(ZA, "started", "2025-03-01"), (ZA, "stopped", "2025-05-01"), (ZA, "started", "2025-09-01")],
            "2025-03-01",
            "02/07/2027",
            False,
        ),
        # a gap of 12 months or more: a fresh count
        (
            [(ZA, "started", "2023-01-10"), (ZA, "stopped", "2025-01-10"), (ZA, "started", "2026-01-10")],
            "2026-01-10",
            "10/01/2028",
            False,
        ),
    ],
)
def test_sys_review_2y_counts_cumulative_exposure(
    events: list[tuple[str, str, str]], since: str, due: str, overdue: bool
) -> None:
    s, _ = run([*BASE, *course(*events)])
    review = items(s)["review-2-years"]
    assert due in review.title, review.title
    assert {i.name: i.value for i in review.inputs}["antiresorptive_since"] == since
    assert review.severity == ("warning" if overdue else "info")


def test_sys_review_2y_deadline_is_when_cumulative_exposure_reaches_24_months() -> None:
    s, _ = run(
        [*BASE, *course((ZA, "started", "2025-03-01"), (ZA, "stopped", "2025-05-01"), (ZA, "started", "2025-09-01"))]
    )
    at = as_of(NOW)
    build_plan(s, at)
    assert at.start_of(date(2027, 7, 2)) in at.deadlines
    assert items(s, datetime(2027, 7, 1, 9, 0, tzinfo=UTC))["review-2-years"].severity == "info"
    assert items(s, datetime(2027, 7, 2, 9, 0, tzinfo=UTC))["review-2-years"].severity == "warning"


def test_sys_review_2y_a_stop_after_24_months_of_cumulative_exposure_is_a_review_stop() -> None:
    """13 + 12 months with a 2-month gap: 25 months of exposure; the stop is the deliberate one of the review."""
    s, _ = run(
        [
            *BASE,
            *course(
                (ZA, "started", "2023-06-01"),
                (ZA, "stopped", "2024-07-01"),
                (ZA, "started", "2024-09-01"),
                (ZA, "stopped", "2025-09-01"),
            ),
        ]
    )
    assert items(s)["antiresorptive-start"].status == "not_indicated"


# ---- (6) a stray stop of a drug not under way closes nothing ----------------------------------------------------
def test_a_stray_stop_does_not_make_a_short_course_a_review_stop() -> None:
    s, _ = run(
        [*BASE, *course((ZA, "started", "2023-01-10"), (ZA, "stopped", "2023-06-01"), (ZA, "stopped", "2025-03-01"))]
    )
    start = items(s)["antiresorptive-start"]
    assert start.status == "recommended"
    assert "antiresorptive_stopped_after_review" not in {i.name for i in start.inputs}


def test_a_stop_of_denosumab_with_no_start_known_still_asks_for_the_relay() -> None:
    s, _ = run([*BASE, drug(10, DENO, "stopped", on="2026-10-01")])
    assert items(s)["denosumab-stop"].status == "recommended"


# ---- (7) the zoledronic acid relay after a denosumab review stop is no restart ----------------------------------
REVIEW_STOP = [(DENO, "started", "2024-03-01"), (DENO, "stopped", "2026-06-01")]


@pytest.mark.parametrize(
    "relay",
    [
        [(ZA, "started", "2026-06-29"), (ZA, "stopped", "2026-06-29")],  # one infusion 4 weeks later
        [(ZA, "started", "2026-06-01"), (ZA, "stopped", "2026-06-01")],  # the day of the stop
        [(ZA, "started", "2026-06-29"), (ZA, "stopped", "2026-09-29")],  # several infusions over 3 months
        [(ZA, "started", "2026-06-29")],  # under way
    ],
)
def test_the_zoledronic_acid_relay_keeps_the_review_stop(relay: list[tuple[str, str, str]]) -> None:
    s, _ = run([*BASE, *course(*REVIEW_STOP, *relay)])
    plan = items(s)
    start = plan["antiresorptive-start"]
    assert start.status == "not_indicated" and "01/06/2026" in start.text_fr
    assert "antiresorptive" not in plan and "first-infusion-paracetamol" not in plan
    assert plan["denosumab-stop"].status == "done"


def test_zoledronic_acid_still_under_way_after_the_relay_window_is_a_restart() -> None:
    s, _ = run([*BASE, *course(*REVIEW_STOP, (ZA, "started", "2026-06-29"))])
    at = as_of(NOW)
    build_plan(s, at)
    assert at.start_of(date(2026, 12, 1)) in at.deadlines
    later = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert items(s, later)["antiresorptive-start"].status == "done"


def test_zoledronic_acid_started_long_after_a_denosumab_review_stop_is_a_restart() -> None:
    """Denosumab stopped at its review on 01/12/2025; zoledronic acid 7 months later: a treatment again."""
    stop = [(DENO, "started", "2023-09-01"), (DENO, "stopped", "2025-12-01")]
    s, _ = run([*BASE, *course(*stop, (ZA, "started", "2026-07-01"))])
    plan = items(s)
    assert plan["antiresorptive-start"].status == "done" and plan["review-2-years"].severity == "warning"


# ---- (8) a vitamin D loading stopped before its weeks is not complete --------------------------------------------
def _deficient(*extra: TreatmentEvent) -> list[Message]:
    return [
        met(),
        le(1, 12),
        lab(2, "creatinine_clearance", 75.0, "mL/min", weighed_minutes=2),
        oligo(3, "multi_metastatic"),
        lab(50, "vitamin_d_25oh", 12.0, "ng/mL"),
        dental(51, action="assessment", orthopantomogram=True, on="2026-10-28"),
        lab(52, "corrected_calcium", 2.3, "mmol/L"),
        drug(60, "cholecalciferol", on="2026-11-01"),
        *extra,
    ]


@pytest.mark.parametrize(
    ("stop", "complete"),
    [(None, True), ("2026-11-08", False), ("2026-12-26", False), ("2026-12-27", True)],
)
def test_sys_vitd_corr_a_loading_stopped_before_8_weeks_is_not_complete(stop: str | None, complete: bool) -> None:
    extra = [drug(61, "cholecalciferol", "stopped", on=stop)] if stop else []
    s, _ = run(_deficient(*extra), now=LOADED)
    plan = items(s, LOADED)
    check = next(c for c in plan["prerequisites"].checks if c.name == "vitamin_d")
    assert (check.status == "done") is complete
    vit_d = plan["vitamin-d"]
    if complete:
        assert vit_d.title == "Vitamine D : recharge faite, entretien mensuel"
    else:
        assert "interrompue" in vit_d.title and [o.count for o in vit_d.orders] == [8, None]
        assert f"arrêtée le {date.fromisoformat(stop or ''):%d/%m/%Y}" in vit_d.text_fr


def test_sys_vitd_corr_a_loading_restarted_after_an_interruption_counts_from_the_restart() -> None:
    restart = drug(62, "cholecalciferol", on="2026-11-15")
    s, _ = run(_deficient(drug(61, "cholecalciferol", "stopped", on="2026-11-08"), restart), now=LOADED)
    vit_d = items(s, LOADED)["vitamin-d"]
    assert vit_d.title == "Vitamine D : recharge en cours" and "10/01/2027" in vit_d.text_fr


def test_sys_vitd_corr_a_maintenance_renewed_as_the_loading_the_day_of_the_level_counts() -> None:
    """Monthly maintenance since September, renewed (stopped and started again) on the day of a low level: the
    renewal is the loading prescribed on that level, under way until 27/12/2026."""
    events = [drug(58, "cholecalciferol", on="2026-09-01"), drug(59, "cholecalciferol", "stopped", on="2026-11-01")]
    s, _ = run([*_deficient()[:-1], *events, drug(60, "cholecalciferol", on="2026-11-01")])
    vit_d = items(s)["vitamin-d"]
    assert vit_d.title == "Vitamine D : recharge en cours" and "27/12/2026" in vit_d.text_fr


# ---- (10) QUAL-PATHWAY: the multidisciplinary decision is the team's, never declined -----------------------------
def _step(minutes: int, name: str, status: str) -> CareEvent:
    return CareEvent.model_validate(
        {**env(minutes), "event": {"kind": "pathway_step", "item": name, "status": status, "on": "2026-11-01"}}
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [("multidisciplinary_decision", "to_do"), ("patient_information", "declined"), ("psychologist", "declined")],
)
def test_qual_pathway_declined_is_not_done_for_the_multidisciplinary_decision(name: str, expected: str) -> None:
    s, _ = run([met(), le(1, 12), _step(2, name, "declined")])
    pathway = items(s)["care-pathway"]
    check = next(c for c in pathway.checks if c.name == name)
    assert check.status == expected
    if expected == "to_do":
        assert "pluridisciplinaire" in check.detail_fr and "équipe" in check.detail_fr
        assert pathway.title.endswith("0/10 éléments traités")


# ---- (5) treatment corrections: one version per record --------------------------------------------------------
def test_two_amendments_of_the_same_record_the_newest_counts() -> None:
    original = drug(10, ZA, on="2026-06-01")
    to_deno = correction(original, "amended", 11, drug=DENO)
    back_to_za = correction(original, "amended", 12, drug=ZA)
    stop = drug(13, ZA, "stopped", on="2026-10-01")
    for order in itertools.permutations([original, to_deno, back_to_za, stop]):
        s, _ = run([*BASE, *order])
        plan = items(s)
        assert plan["antiresorptive-start"].status == "recommended", order
        assert DENO not in {o.drug for o in plan["antiresorptive"].orders}


def test_an_amendment_entered_in_error_does_not_bring_back_the_original_and_is_to_check() -> None:
    original = drug(10, ZA, on="2026-06-01")
    amended = correction(original, "amended", 11, on="2026-06-08")
    error = correction(amended, "entered-in-error", 12)
    s, _ = run([*BASE, original, amended, error])
    plan = items(s)
    check = plan[f"correction-to-check:{amended.event_id}"]
    assert check.status == "to_do" and check.severity == "warning"
    assert "acide zolédronique" in check.text_fr and "08/06/2026" in check.text_fr
    start = plan["antiresorptive-start"]
    assert start.status == "cannot_decide" and plan["antiresorptive"].orders == []


def test_an_entered_in_error_of_a_superseded_version_keeps_the_version_in_force_to_check() -> None:
    """Second review: the version in force still counts, and is to check (the hospital may have meant the record)."""
    original = drug(10, ZA, on="2026-06-01")
    first = correction(original, "amended", 11, on="2026-06-08")
    second = correction(original, "amended", 12, on="2026-06-15")
    error = correction(first, "entered-in-error", 13)
    for order in itertools.permutations([original, first, second, error]):
        kept = effective_treatments(order)
        assert [e.event_id for e in kept] == [second.event_id]
        assert [e.event_id for e in resolve(order, lambda e: e.treatment.kind).to_check] == [second.event_id]


def test_resolve_names_the_withdrawn_amendment() -> None:
    original = drug(10, ZA, on="2026-06-01")
    amended = correction(original, "amended", 11, on="2026-06-08")
    error = correction(amended, "entered-in-error", 12)
    later = correction(original, "amended", 13, on="2026-06-22")  # a new version after the error: it counts
    for order in itertools.permutations([original, amended, error]):
        r = resolve(order, lambda e: e.treatment.kind)
        assert r.kept == [] and [x.event_id for x in r.to_check] == [amended.event_id]
    r = resolve([original, amended, error, later], lambda e: e.treatment.kind)
    assert [x.event_id for x in r.kept] == [later.event_id] and r.to_check == []


# ---- (3) MOL-BIOPSY: a result never obtained is never done --------------------------------------------------------
#: the review's wordings (mol.py, mol2.py), with what each is; marker EGFR unless said
NOT_DONE: list[tuple[str, str]] = [
    ("Absence de résultat (ADN insuffisant)", "failed"),
    ("pas de résultat interprétable", "not_done"),
    ("Résultat non interprétable", "failed"),
    ("ADN de qualité insuffisante", "failed"),
    ("Quantité d'ADN insuffisante", "failed"),
    ("Taux de cellules tumorales < 10 %", "unrecognised"),
    ("cellularité tumorale insuffisante (5 %)", "failed"),
    ("cellularité < 20%", "unrecognised"),
    ("Pourcentage de cellules tumorales insuffisant", "failed"),
    ("Not assessable", "failed"),
    ("Not analysable", "failed"),
    ("unable to determine", "failed"),
    ("Undetermined", "failed"),
    ("could not be assessed", "failed"),
    ("no result", "not_done"),
    ("test not performed: low tumour content", "not_done"),
    ("Low tumour content (10%)", "failed"),
    ("DNA quantity too low", "failed"),
    ("poor DNA quality", "failed"),
    ("Échantillon inadéquat", "failed"),
    ("prélèvement inadapté", "failed"),
    ("inadequate", "failed"),
    ("Inadequate sample", "failed"),
    ("QC failure", "failed"),
    ("QC fail", "failed"),
    ("NGS: échec de séquençage", "failed"),
    ("echec du sequencage", "failed"),
    ("sequencing failed", "failed"),
    ("library failure", "failed"),
    ("no call", "failed"),
    ("No amplification", "unrecognised"),
    ("absence d'amplification", "unrecognised"),
    ("pas d'amplification", "unrecognised"),
    ("non amplifiable", "failed"),
    ("Non amplifié", "unrecognised"),
    ("ADN dégradé (décalcification acide)", "failed"),
    ("décalcifié à l'acide, analyse impossible", "failed"),
    ("Non techniqué", "not_done"),
    ("non testé", "not_done"),
    ("Non recherché", "not_done"),
    ("non fait", "not_done"),
    ("à faire", "not_done"),
    ("en attente de résultat", "pending"),
    ("Prévu", "pending"),
    ("demande envoyée", "pending"),
    ("envoyé à la plateforme", "pending"),
    ("sent out", "pending"),
    ("send-out", "pending"),
    ("résultat à venir", "pending"),
    ("to follow", "pending"),
    ("TBD", "pending"),
    ("N/A", "not_done"),
    ("NA", "not_done"),
    ("ND", "unrecognised"),
    ("Non déterminé", "failed"),
    ("indéterminé", "failed"),
    ("Non évaluable (0 cellule tumorale)", "failed"),
    ("Mutation non recherchée", "not_done"),
    ("EGFR non analysé", "not_done"),
    ("absence de cellules tumorales", "failed"),
    ("0% cellules tumorales", "failed"),
    ("pas de tumeur sur le bloc", "failed"),
    ("bloc épuisé", "not_done"),
    ("matériel épuisé", "not_done"),
    ("Tissue exhausted", "not_done"),
    ("Tissu insuffisant pour analyse", "failed"),
    ("analyse non contributive", "failed"),
    ("Non contributive", "failed"),
    ("Résultat ininterprétable", "failed"),
    ("Failed QC (DNA)", "failed"),
    ("Absence de mutation détectable sous réserve d'un taux de cellules tumorales faible (5%)", "qualified"),
    ("négatif (sensibilité limitée : 5 % de cellules tumorales)", "qualified"),
    ("Pas de mutation détectée mais cellularité insuffisante", "failed"),
    ("Aucune mutation identifiée ; contrôle qualité non satisfaisant", "qualified"),
    ("wild type (low confidence)", "qualified"),
    ("pas de réarrangement mis en évidence (FISH non interprétable)", "failed"),
    ("IHC ALK non interprétable, FISH en cours", "failed"),
    ("IHC négative, FISH en attente", "pending"),
    ("Negative by IHC; NGS pending", "pending"),
    ("ALK IHC 0, confirmation en cours", "pending"),
    ("PD-L1 : en cours", "pending"),
    ("Absence", "unrecognised"),
    ("Pas de", "unrecognised"),
    ("TPS", "unrecognised"),
    ("Cancelled", "not_done"),
    ("annulé", "not_done"),
    ("Annulée", "not_done"),
    ("retiré", "unrecognised"),
    ("erreur", "unrecognised"),
    ("error", "unrecognised"),
    ("Échec: recommencer", "failed"),
    ("refait", "unrecognised"),
    ("Non réalisé (patient décédé)", "not_done"),
    ("ininterprétable", "failed"),
    ("résultat douteux", "failed"),
    ("equivocal", "failed"),
    ("borderline", "qualified"),
    ("subclonal", "unrecognised"),
    ("Statut EGFR inconnu", "not_done"),  # second review: a status not known is no result
    ("unknown", "not_done"),
    ("inconnu", "not_done"),
    ("Voir CR", "unrecognised"),
    ("cf compte-rendu", "unrecognised"),
    ("?", "none"),
    ("-", "none"),
    ("0", "unrecognised"),
    ("+", "unrecognised"),
    ("Mutation non détectée – limite de détection non atteinte", "qualified"),
    ("Limit of detection not reached", "failed"),
    ("below limit of detection", "unrecognised"),
    ("sous le seuil de détection", "unrecognised"),
    ("absence de tumeur", "failed"),
    ("no tumor", "failed"),
    ("Tumeur absente du prélèvement", "failed"),
    ("Non contrib.", "failed"),
    ("NC", "unrecognised"),
    ("N.C.", "unrecognised"),
    ("non contrib", "failed"),
    ("Ininterp.", "failed"),
    ("Insuff.", "failed"),
    # mol2.py
    ("mutation non testée", "not_done"),
    ("Recherche de mutation non effectuée", "not_done"),
    ("mutation non analysée", "not_done"),
    ("mutations non évaluées", "not_done"),
    ("Délétion exon 19 : non recherchée", "not_done"),
    ("réarrangement non recherché", "not_done"),
    ("fusion non recherchée", "not_done"),
    ("Recherche de réarrangement ALK non faite", "not_done"),
    ("ADN non amplifiable", "failed"),
    ("Absence d'amplification (échantillon)", "unrecognised"),
    ("pas de signal", "failed"),
    ("absence de signal FISH", "failed"),
    ("Absence de signal d'hybridation", "failed"),
    ("contrôle qualité non satisfaisant", "failed"),
    ("QC non conforme", "failed"),
    ("Mauvaise qualité de l'ADN", "failed"),
    ("Taux de cellules tumorales : 5 %", "unrecognised"),
    ("Cellules tumorales 0%", "failed"),
    ("Pas de cellule tumorale", "failed"),
    ("pas de tumeur", "failed"),
    ("Couverture insuffisante", "failed"),
    ("low coverage exon 19", "failed"),
    ("exons 18-21 non couverts", "failed"),
    ("Hotspot non couvert", "failed"),
    ("NGS non fait, IHC ALK négative", "not_done"),
    ("EGFR: voir biologie moléculaire sur biopsie initiale", "unrecognised"),
    ("Pas d'ADN", "failed"),
    ("pas d'ARN exploitable", "failed"),
    ("pas de résultat pour l'exon 20", "not_done"),
    ("Non recherché sur prélèvement osseux (décalcification)", "not_done"),
    ("deletion not assessable", "failed"),
    ("absence de cellules", "failed"),
    ("non conclusive", "failed"),
    ("Absence de mutation (technique peu sensible, 8 % de cellules)", "qualified"),
    ("Ininterpretable", "failed"),
    ("ALK: IHC 0 / FISH non faite", "not_done"),
    ("Non interprétable en raison de la décalcification acide", "failed"),
    ("no tumour", "failed"),
    ("positive control failed", "failed"),
    ("Négatif, mais contrôle interne non valide", "failed"),
    ("sample rejected", "failed"),
    ("pas de bloc disponible", "not_done"),
    ("bloc non disponible", "not_done"),
]
DONE: list[tuple[str, str]] = [
    ("présence", "EGFR"),
    ("1+", "ALK"),
    ("Mutation : non", "EGFR"),
    ("TPS 5 %", "PD-L1"),
    ("5 % des cellules tumorales marquées", "PD-L1"),
    ("absence d'amplification de MET", "TKI resistance mutations"),
    ("amplification de MET", "TKI resistance mutations"),
    ("absence d'altération", "KRAS"),
    ("pas de marquage", "ALK"),
]


@pytest.mark.parametrize(("raw", "kind"), NOT_DONE)
def test_mol_biopsy_the_reviews_wordings(raw: str, kind: str) -> None:
    assert result_kind(raw, "EGFR") == kind


@pytest.mark.parametrize(("raw", "marker"), DONE)
def test_mol_biopsy_real_results_stay_done(raw: str, marker: str) -> None:
    assert result_kind(raw, marker) == "done"


@pytest.mark.parametrize(
    ("raw", "pd_l1", "other"),
    [
        ("<1%", "done", "unrecognised"),
        ("50 %", "done", "unrecognised"),
        ("Taux de cellules tumorales : 5 %", "unrecognised", "unrecognised"),
        ("cellularité 40 %", "unrecognised", "unrecognised"),
    ],
)
def test_mol_biopsy_a_percentage_is_a_result_for_pd_l1_only(raw: str, pd_l1: str, other: str) -> None:
    assert (result_kind(raw, "PD-L1"), result_kind(raw, "KRAS")) == (pd_l1, other)


def test_mol_biopsy_the_reviews_report_is_four_missing_results() -> None:
    results = {
        "EGFR": "Mutation non recherchée",
        "ALK": "ADN non amplifiable",
        "KRAS": "Négatif, mais contrôle interne non valide",
        "PD-L1": "Taux de cellules tumorales : 5 %",
    }
    s, _ = run([met(), le(1, 12), biopsy(results)])
    item = items(s)["bone-biopsy"]
    assert item.status == "to_do"
    assert item.missing == [
        "EGFR result (not done: Mutation non recherchée)",
        "ALK result (last test failed: ADN non amplifiable)",
        "KRAS result (last test failed: Négatif, mais contrôle interne non valide)",
        "PD-L1 result (unrecognised result, to check: Taux de cellules tumorales : 5 %)",
    ]
    assert "Résultats :" not in item.text_fr


def test_mol_biopsy_a_qualified_result_is_to_confirm() -> None:
    results = {"EGFR": "wild type (low confidence)", "ALK": "négatif", "KRAS": "G12C", "PD-L1": "TPS 50 %"}
    s, _ = run([met(), le(1, 12), biopsy(results)])
    item = items(s)["bone-biopsy"]
    assert item.missing == ["EGFR result (qualified result, to confirm: wild type (low confidence))"]
    assert "sous réserve" in item.text_fr


_ = (T0, timedelta, uuid)  # shared helpers kept for the reader's timelines
