"""Starting and dosing the anti-resorptive: SYS-AR-START (2.2, L1068-1084), SYS-SCHEDULE, SYS-ZA-DOSE, SYS-DENO,
SYS-ZA-FLU (2.4, L1122-1226) and SYS-RENAL-TOX (L726-742). Pure.

No order is drafted while a prerequisite is unmet (SYS-AR-PREREQ), unless a current emergency waives it, and then
the order lists what was waived; none while a drug under way may already be an anti-resorptive (Hold), unless a
current emergency, and then the order names it as to check; none from a stale clearance; none at CrCl < 30
(specialist advice); none while an osteonecrosis of the jaw is confirmed or probable (SYS-ONJ)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from contracts.base import InputUsed
from contracts.plan import MedicationOrder, PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts_dosing as t
from services.systemic_planner.disease import LifeExpectancy
from services.systemic_planner.drug_checks import CorrectionToCheck, Unidentified
from services.systemic_planner.drug_replay import DrugHistory
from services.systemic_planner.fr import fr_date
from services.systemic_planner.items import item
from services.systemic_planner.labs import Renal
from services.systemic_planner.prerequisites import Prerequisites
from services.systemic_planner.state import LabFact, SystemicState
from shared.clinical.facts import Fact


@dataclass(frozen=True)
class Hold:
    """Issue 18 review: why a start of an anti-resorptive is not proposed with an order yet: a drug under way that
    the vocabulary cannot identify, or a drug record whose amendment was entered in error (either may be an
    anti-resorptive already given)."""

    unidentified: tuple[Unidentified, ...]
    corrections: tuple[CorrectionToCheck, ...]
    #: second review: a current hypercalcaemic crisis (LAB-CA-CRISIS L302-306, life-threatening above 3.5 mmol/L):
    #: the start and its order do not wait ("sauf urgence", L799, L1090, L1098, L1267); what is to check is named on
    #: them instead
    emergency: bool = False

    @property
    def missing(self) -> list[str]:
        return [u.missing for u in self.unidentified] + [c.missing for c in self.corrections]

    @property
    def reasons_fr(self) -> str:
        said = [f"le médicament non identifié {u.name_fr}" for u in self.unidentified]
        said += [t.correction_reason(_names(c), c.on, c.in_force) for c in self.corrections]
        return "; ".join(said)


def unidentified_item(u: Unidentified) -> PlanItem:
    """Issue 18 review: a drug under way (or given recently) that OsteoCDS cannot identify is said so, never
    counted silently as neither anti-resorptive, nephrotoxic, TKI nor cancer treatment."""
    return item(
        f"unidentified-drug:{u.key}",
        "SYS-AR-START",
        "to_do",
        "warning",
        f"Médicament non identifié : {u.name_fr} — anti-résorptif, néphrotoxique ou ITK ? à vérifier",
        t.unidentified_text(u.name_fr, u.atc, u.since, u.conflict),
        inputs=[
            InputUsed(name="unidentified_drug", value=u.key),
            *([InputUsed(name="atc_code", value=u.atc)] if u.atc else []),
        ],
        missing=[u.missing],
        what_would_change_fr="Le médicament enregistré sous sa DCI (et un code ATC concordant) sera pris en compte "
        "dans le plan.",
    )


def _names(c: CorrectionToCheck) -> str:
    return " / ".join(t.DRUG_FR.get(d, d.replace("_", " ")) for d in c.drugs)


def correction_item(c: CorrectionToCheck) -> PlanItem:
    """Issue 18 review: an amended drug record entered in error: the plan does not bring back what it replaced and
    does not act as if nothing had been given. Second review: a version still in force although an earlier,
    superseded one was entered in error is counted, and to check."""
    names = _names(c)
    text, name, change = (
        (
            t.superseded_error_text(names, c.on),
            "version_in_force",
            "Une nouvelle version de l'enregistrement, ou la version en vigueur déclarée elle-même saisie par erreur.",
        )
        if c.in_force
        else (
            t.correction_text(names, c.on),
            "withdrawn_amendment",
            "Un enregistrement corrigé (nouvelle version) ou la confirmation que rien n'a été administré.",
        )
    )
    return item(
        f"correction-to-check:{c.event.event_id}",
        "SYS-AR-START",
        "to_do",
        "warning",
        f"Correction à vérifier : {names} du {fr_date(c.on)}",
        text,
        inputs=[InputUsed(name=name, value=c.on.isoformat(), source_event_id=c.event.event_id)],
        missing=[c.missing],
        what_would_change_fr=change,
    )


def sre_inputs_of(s: SystemicState) -> list[InputUsed]:
    """Every SRE known, in clinical order (SYS-AR-START: each one is an input of the start decision)."""
    return [f.used(f"sre:{f.value}") for f in sorted(s.sres.values(), key=lambda f: f.order())]


def ar_start_item(
    s: SystemicState,
    d: r.ArStartDecision,
    on_ar: dict[str, date],
    drugs: DrugHistory,
    metastasis: Fact[str] | None,
    le: LifeExpectancy,
    hold: Hold | None = None,
    sre_inputs: list[InputUsed] | None = None,
) -> PlanItem:
    """`sre_inputs`: `sre_inputs(s)` when the caller has it already (issue 25: memoised on the SREs)."""
    inputs = list(sre_inputs if sre_inputs is not None else sre_inputs_of(s))
    if metastasis is not None:
        inputs.append(metastasis.used("bone_metastasis_site"))
    if le.fact is not None:
        inputs.append(le.fact.used("life_expectancy", "months"))
        if le.remaining is not None:
            inputs.append(
                InputUsed(
                    name="life_expectancy_remaining",
                    value=round(le.remaining, 2),
                    unit="months",
                    occurred_at=le.fact.occurred_at,
                    source_event_id=le.fact.event_id,
                )
            )
    if drugs.ar_review_stop is not None:
        inputs.append(InputUsed(name="antiresorptive_stopped_after_review", value=drugs.ar_review_stop.isoformat()))
    if drugs.ar_relay is not None:
        inputs.append(InputUsed(name="zoledronic_acid_relay_since", value=drugs.ar_relay.isoformat()))
    if d.outcome == "insufficient_data":
        d = r.ArStartDecision(d.outcome, d.trigger, le.missing or d.missing)
    status, severity, title, text = t.ar_start(d, on_ar, drugs.ar_review_stop, le, drugs.ar_relay)
    change = t.ar_start_change(d)
    missing = list(d.missing)
    if hold is not None and hold.emergency:  # second review: an emergency does not wait (L302-306, L1267)
        severity = "warning"
        text = t.emergency_start_text(hold.reasons_fr, text)
    elif hold is not None:  # issue 18 review: the start is indicated, but not before what may be one is checked
        status, severity = "cannot_decide", "warning"
        title = "Anti-résorptif indiqué : vérifier d'abord les traitements en cours"
        text = t.held_start_text(hold.reasons_fr, text)
        missing += hold.missing
        change = "Une fois le médicament identifié (ou la correction vérifiée), la proposition de début est rétablie."
    return item(
        "antiresorptive-start",
        "SYS-AR-START",
        status,
        severity,
        title,
        text,
        inputs=inputs,
        missing=missing,
        what_would_change_fr=change,
    )


def denosumab_order(supplements: str) -> MedicationOrder:
    """SYS-DENO: 120 mg SC monthly, no renal adjustment."""
    return MedicationOrder(
        drug="denosumab",
        atc="M05BX04",
        dose=120,
        unit="mg",
        route="subcutaneous",
        interval="P1M",
        instructions_fr=t.deno_instructions(supplements),
        rule_ids=["SYS-DENO"],
    )


def _waive(order: MedicationOrder, waived: tuple[str, ...], waiver_fr: str) -> MedicationOrder:
    if not waived:
        return order
    return order.model_copy(
        update={
            "waived_prerequisites": list(waived),
            "instructions_fr": order.instructions_fr + " " + waiver_fr,
            "rule_ids": [*order.rule_ids, "SYS-AR-PREREQ"],
        }
    )


def orders_a_drug(renal: Renal, prereq: Prerequisites | None, hold: Hold | None, onj_blocks: bool) -> bool:
    """`antiresorptive_item` goes past its refusals to the molecule, and only then reads the oligometastatic status
    and the response (SYS-DENO, SYS-ZA-DOSE, SYS-SCHEDULE): no osteonecrosis (SYS-ONJ), no hold (issue 18 review)
    outside an emergency, a current clearance that settles 30 mL/min (issue 12). Issue 25 (helper ZI): its memo is
    keyed on those two facts only then."""
    emergency = prereq is not None and prereq.emergency
    return (
        not onj_blocks
        and (hold is None or emergency)
        and renal.status not in ("unknown", "not_computable", "stale")
        and renal.failure not in ("straddles", "below")
    )


def antiresorptive_item(
    s: SystemicState,
    renal: Renal,
    on_ar: dict[str, date],
    prereq: Prerequisites | None,
    hold_supplements: bool,
    supplements: str,
    onj_blocks: bool,
    at: r.AsOf,
    hold: Hold | None = None,
) -> PlanItem:
    inputs: list[InputUsed] = []
    crcl = renal.crcl
    if crcl is not None:
        inputs.append(crcl.used("creatinine_clearance", "mL/min"))
    if onj_blocks:  # SYS-ONJ: no drug order while an osteonecrosis of the jaw is confirmed or probable
        return item(
            "antiresorptive",
            "SYS-ONJ",
            "warning",
            "critical",
            "Anti-résorptif : pas de prescription (ostéonécrose de la mâchoire)",
            t.onj_order_text("denosumab" in on_ar),
            inputs=inputs,
            what_would_change_fr="La reprise se décide avec le centre spécialisé qui prend en charge l'ostéonécrose.",
        )
    emergency = prereq is not None and prereq.emergency
    if hold is not None and not emergency:  # issue 18 review: no order while a drug under way may be one already
        return item(
            "antiresorptive",
            "SYS-AR-START",
            "cannot_decide",
            "warning",
            "Anti-résorptif : pas de prescription avant vérification des traitements en cours",
            t.held_order_for_identity_text(hold.reasons_fr),
            inputs=inputs,
            missing=hold.missing,
            what_would_change_fr="La molécule et la dose seront proposées une fois ces traitements vérifiés.",
        )
    if renal.status in ("unknown", "not_computable"):
        return item(
            "antiresorptive",
            "SYS-ZA-DOSE",
            "cannot_decide",
            "warning",
            "Anti-résorptif : molécule et dose impossibles à choisir",
            "La fonction rénale (clairance de Cockcroft-Gault) est nécessaire pour choisir entre acide "
            "zolédronique et dénosumab et pour doser l'acide zolédronique.",
            inputs=inputs,
            missing=list(renal.missing),
            what_would_change_fr="Une clairance calculable permettra de proposer la molécule et la dose.",
        )
    if renal.status == "stale":
        return item(
            "antiresorptive",
            "SYS-ZA-DOSE",
            "cannot_decide",
            "warning",
            "Anti-résorptif : fonction rénale à recontrôler",
            t.stale_renal_order_text(renal.stale),
            inputs=inputs,
            missing=list(renal.missing),
            what_would_change_fr="Une créatininémie et un poids récents permettront de proposer molécule et dose.",
        )
    assert crcl is not None and renal.value is not None
    if renal.failure == "straddles":  # issue 12: a censored clearance on both sides of 30 mL/min decides nothing
        return _censored_renal_item(renal, inputs, "si elle est sous 30 mL/min")
    if renal.failure == "below":  # strict and unrounded: 29.96 is below 30 (display rounding only)
        return item(
            "antiresorptive",
            "SYS-DENO",
            "warning",
            "warning",
            t.deno_low_crcl_title(crcl.shown(), "denosumab" in on_ar),
            t.deno_low_crcl_text(crcl.shown(), "zoledronic_acid" in on_ar, "denosumab" in on_ar),
            inputs=inputs,
            what_would_change_fr="Un avis spécialisé décide d'un éventuel anti-résorptif ; l'acide zolédronique "
            "redevient possible si la clairance atteint 30 mL/min.",
        )
    assert orders_a_drug(renal, prereq, hold, onj_blocks)  # the memo's key (domain.py) reads them from here on
    oligo = s.oligometastatic
    if oligo is not None:
        inputs.append(oligo.used("oligometastatic_status"))
    response = s.response
    good = response is not None and response.value in ("complete", "good")
    if response is not None:
        inputs.append(response.used("oncological_response"))
    if "denosumab" in on_ar:
        return item(
            "antiresorptive",
            "SYS-DENO",
            "recommended",
            "info",
            "Dénosumab 120 mg SC mensuel (en cours)",
            t.deno_text(good, hold_supplements),
            inputs=inputs,
            orders=[denosumab_order(supplements)],
            what_would_change_fr="L'espacement n'est pas validé pour le dénosumab ; l'arrêt impose un relais.",
        )
    za_since = on_ar.get("zoledronic_acid")
    computable = {k: v for k, v in s.creatinine_clearance.items() if v.value is not None}
    initial: LabFact | None = None
    if za_since is not None:  # Tableau 2: the dose follows the *initial* clearance (before the first infusion)
        initial = max(
            (v for v in computable.values() if not v.withdrawn and at.day(v.occurred_at) <= za_since),
            key=lambda v: (v.occurred_at, v.recorded_at, v.event_id.int),
            default=None,
        )
    basis = initial or crcl
    assert basis.value is not None
    # issue 12: a censored clearance gives a dose only when its whole interval lies in one band of Tableau 2
    bounded = r.zoledronic_acid_dose_bounded(basis.value, basis.comparator)
    if basis is not crcl:
        inputs.append(basis.used("initial_creatinine_clearance", "mL/min"))
    initial_unknown = za_since is not None and initial is None
    if bounded is not None and bounded.dose_mg is None:
        # an initial clearance < 30 with a current one >= 30: dose on the current one
        bounded, basis, initial_unknown = r.zoledronic_acid_dose_bounded(renal.value, crcl.comparator), crcl, False
    if bounded is None:
        return _censored_renal_item(
            Renal(basis, "current", basis.value), inputs, "dans quelle tranche de dose du Tableau 2 elle se situe"
        )
    dose = bounded
    assert dose.dose_mg is not None
    if oligo is None or oligo.value == "undetermined":
        missing = ["oligometastatic status"] + [f"oligometastatic criterion: {m}" for m in s.oligo_missing]
        return item(
            "antiresorptive",
            "SYS-ZA-DOSE",
            "cannot_decide",
            "info",
            f"Acide zolédronique {dose.dose_mg:g} mg : rythme à préciser",
            t.za_schedule_unknown(dose.dose_mg, dose.band),
            inputs=inputs,
            missing=missing,
            what_would_change_fr=dose.next_band_fr,
        )
    sched = r.schedule(oligo.value == "oligometastatic", good, "zoledronic_acid")
    interval, duration = {
        "za_3_monthly_2_years": ("P3M", "P2Y"),
        "za_spaced_3_monthly": ("P3M", None),
        "monthly": ("P1M", None),
    }[sched]
    order = MedicationOrder(
        drug="zoledronic_acid",
        atc="M05BA08",
        dose=dose.dose_mg,
        unit="mg",
        route="intravenous",
        interval=interval,
        duration=duration,
        instructions_fr=t.ZA_INSTRUCTIONS,
        rule_ids=["SYS-ZA-DOSE", "SYS-SCHEDULE"],
    )
    text = t.za_text(dose.dose_mg, dose.band, sched, basis is not crcl, initial_unknown)
    change = dose.next_band_fr + t.schedule_change(sched)
    if prereq is not None and prereq.holding:  # SYS-AR-PREREQ: no order while a prerequisite is unmet
        return item(
            "antiresorptive",
            "SYS-AR-PREREQ",
            "to_do",
            "warning",
            f"Anti-résorptif en attente des prérequis (acide zolédronique {dose.dose_mg:g} mg prévu)",
            t.held_order_text(prereq.holding) + " " + text,
            inputs=inputs,
            what_would_change_fr="La prescription sera proposée dès que ces prérequis seront remplis ; " + change,
        )
    waived = prereq.waived if prereq is not None else ()
    waiver = prereq.waiver_fr if prereq is not None else ""
    order = _waive(order, waived, waiver)
    if hold is not None:  # second review: a current emergency; what may already be an anti-resorptive is named
        to_check = t.to_check_on_order(hold.reasons_fr)
        order = order.model_copy(update={"instructions_fr": order.instructions_fr + " " + to_check})
        waiver = (waiver + " " if waived else "") + to_check
    return item(
        "antiresorptive",
        "SYS-ZA-DOSE",
        "recommended",
        "warning" if waived or hold is not None else "info",
        t.za_title(dose.dose_mg, sched),
        text + (" " + waiver if waiver and (waived or hold is not None) else ""),
        inputs=inputs,
        orders=[order],
        what_would_change_fr=change,
    )


def _censored_renal_item(renal: Renal, inputs: list[InputUsed], question: str) -> PlanItem:
    """Issue 12: a clearance computed from a censored creatinine (or weight) is a bound; when it does not settle the
    threshold, no molecule, no dose and no order: the exact value is to measure again."""
    assert renal.crcl is not None
    return item(
        "antiresorptive",
        "SYS-ZA-DOSE",
        "cannot_decide",
        "warning",
        f"Anti-résorptif : clairance {renal.crcl.shown()} mL/min censurée, données insuffisantes",
        t.censored_renal_text(renal.crcl.shown(), question, renal.crcl.censored_sources),
        inputs=inputs,
        missing=renal.censored_missing(),
        what_would_change_fr="Une créatininémie exacte (et un poids exact) permettra de proposer molécule et dose.",
    )


def first_infusion() -> PlanItem:
    order = MedicationOrder(
        drug="paracetamol",
        atc="N02BE01",
        dose=1,
        unit="g",
        route="oral",
        interval="PT8H",
        count=6,
        instructions_fr="1 g trois fois par jour le jour de la perfusion et le lendemain",
        rule_ids=["SYS-ZA-FLU"],
    )
    return item(
        "first-infusion-paracetamol",
        "SYS-ZA-FLU",
        "recommended",
        "info",
        "Première perfusion d'acide zolédronique : paracétamol",
        t.FLU_TEXT,
        orders=[order],
    )


def renal_safety(renal: Renal, drugs: DrugHistory, za_planned: bool) -> list[PlanItem]:
    items: list[PlanItem] = []
    chemo = sorted(d for d in drugs.active if d in r.NEPHROTOXIC_CHEMO)
    bisphosphonate = za_planned or any(d in r.BISPHOSPHONATES for d in drugs.active)
    if not (chemo and bisphosphonate) and (renal.crcl is None or renal.failure not in ("straddles", "below")):
        return items  # issue 25 (helper ZI): no item, so no inputs to make (most events)
    inputs = [InputUsed(name="active_drug", value=d) for d in sorted(drugs.active)]
    if renal.crcl is not None:
        inputs.append(renal.crcl.used("creatinine_clearance", "mL/min"))
    if chemo and bisphosphonate:
        items.append(
            item(
                "nephrotoxicity",
                "SYS-RENAL-TOX",
                "warning",
                "warning",
                "Néphrotoxicité cumulative : " + ", ".join(chemo) + " et bisphosphonate",
                t.nephrotox_text(chemo),
                inputs=inputs,
            )
        )
    if renal.failure == "straddles" and renal.crcl is not None:  # issue 12: possible, not certain
        items.append(
            item(
                "severe-renal-failure",
                "SYS-RENAL-TOX",
                "cannot_decide",
                "warning",
                f"Clairance {renal.crcl.shown()} mL/min (résultat censuré) : insuffisance rénale sévère possible",
                t.censored_renal_text(renal.crcl.shown(), "si elle est sous 30 mL/min (insuffisance rénale sévère)"),
                inputs=inputs,
                missing=renal.censored_missing(),
            )
        )
    if renal.failure == "below" and renal.crcl is not None:
        tkis = sorted(d for d in drugs.active if r.is_tki(d, drugs.atc.get(d)))
        items.append(
            item(
                "severe-renal-failure",
                "SYS-RENAL-TOX",
                "warning",
                "warning",
                f"Clairance {renal.crcl.shown()} mL/min (< 30) : adapter les traitements",
                t.severe_renal_text(bool(chemo), tkis),
                inputs=inputs,
            )
        )
    return items


def anticancer(drugs: DrugHistory) -> list[str]:
    """Active cancer treatments from the shared classification (supportive drugs are not cancer treatment)."""
    return sorted(d for d in drugs.active if drugs.identity(d).drug_class == "anticancer")
