"""The systemic-planner aggregate: facts per patient, the plan they imply (pure), and what to publish.

Each event updates the facts; `build_plan()` derives the whole plan from them; `apply_event()` publishes a new
plan version when it changed, and one recommendation per plan item that changed (a changed item withdraws
the one it replaces), so clinicians are notified of the differences only."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.hospital import ClinicalAssessment, DentalCare, ImagingFinding, SystemicDrug, TreatmentEvent
from contracts.plan import Check, MedicationOrder, PlanItem, TreatmentPlan
from contracts.rules import RULESET_VERSION, cite
from services.systemic_planner import rules as r
from services.systemic_planner import texts as t
from shared.dates import add_months
from shared.facts import Fact, earliest, newest
from shared.recommend import caused_by, recommendation, withdrawal

SERVICE = "systemic-planner"


class LabFact(BaseModel):
    value: float | None
    missing: list[str] = Field(default_factory=list)
    withdrawn: bool
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID

    def used(self, name: str, unit: str) -> InputUsed:
        return InputUsed(
            name=name, value=self.value, unit=unit, occurred_at=self.occurred_at, source_event_id=self.event_id
        )


class SystemicState(BaseModel):
    sres: dict[str, Fact[str]] = Field(default_factory=dict)  # SRE event_id -> kind
    first_bone_metastasis: Fact[str] | None = None
    life_expectancy: Fact[float] | None = None
    response: Fact[str] | None = None
    oligometastatic: Fact[str] | None = None  # status band
    oligo_missing: list[str] = Field(default_factory=list)
    creatinine_clearance: dict[str, LabFact] = Field(default_factory=dict)  # by result_id
    vitamin_d: dict[str, LabFact] = Field(default_factory=dict)  # by result_id
    treatments: dict[str, TreatmentEvent] = Field(default_factory=dict)  # by event_id
    #: what was last published: item key -> "rule_id|recommendation ID|content digest"; plan version, digest, ID
    published: dict[str, str] = Field(default_factory=dict)
    plan_version: int = 0
    plan_digest: str = ""
    plan_event: Fact[str] | None = None


# ---- facts ---------------------------------------------------------------------------------------------------
def merge(state: SystemicState, e: Message) -> SystemicState:
    s = state.model_copy(
        update={
            "sres": dict(state.sres),
            "treatments": dict(state.treatments),
            "creatinine_clearance": dict(state.creatinine_clearance),
            "vitamin_d": dict(state.vitamin_d),
        }
    )
    if isinstance(e, SkeletalEvent) and e.status == "withdrawn":  # its source was corrected (LAB-CORRECTION)
        for sre_id in e.supersedes:
            s.sres.pop(str(sre_id), None)
    elif isinstance(e, SkeletalEvent):
        s.sres[str(e.event_id)] = Fact[str].of(e, e.kind)
    elif isinstance(e, ImagingFinding):
        s.first_bone_metastasis = earliest(s.first_bone_metastasis, Fact[str].of(e, e.skeletal_site))
    elif isinstance(e, ClinicalAssessment):
        if e.life_expectancy_months is not None:
            s.life_expectancy = newest(s.life_expectancy, Fact[float].of(e, e.life_expectancy_months))
        if e.oncological_response is not None:
            s.response = newest(s.response, Fact[str].of(e, e.oncological_response))
    elif isinstance(e, TreatmentEvent):
        s.treatments[str(e.event_id)] = e
    # Scores and lab values come from one producer, in order on the patient's partition: a version recorded at
    # the same time as the one held is a re-derivation and replaces it (ties go to the later delivery).
    elif isinstance(e, Score) and e.score == "oligometastatic" and e.band is not None:
        if s.oligometastatic is None or e.recorded_at >= s.oligometastatic.recorded_at:
            s.oligometastatic, s.oligo_missing = Fact[str].of(e, e.band), list(e.missing)
    elif isinstance(e, NormalisedLab) and e.analyte in ("creatinine_clearance", "vitamin_d_25oh"):
        table = s.creatinine_clearance if e.analyte == "creatinine_clearance" else s.vitamin_d
        prev = table.get(e.result_id)
        if prev is None or e.recorded_at >= prev.recorded_at:
            table[e.result_id] = LabFact(
                value=e.value,
                missing=e.missing,
                withdrawn=e.status == "withdrawn",
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                event_id=e.event_id,
            )
    return s


def _latest(table: dict[str, LabFact], before: date | None = None) -> LabFact | None:
    live = [v for v in table.values() if not v.withdrawn and (before is None or v.occurred_at.date() <= before)]
    return max(live, key=lambda v: (v.occurred_at, v.recorded_at, str(v.event_id)), default=None)


@dataclass(frozen=True)
class DrugHistory:
    active: dict[str, date]  # drug -> started on (current course)
    ever_started: dict[str, date]  # drug -> first start
    stopped: dict[str, date]  # drug -> last stop, when its last event is a stop


def _drugs(s: SystemicState) -> DrugHistory:
    events = sorted(
        (e.treatment for e in s.treatments.values() if isinstance(e.treatment, SystemicDrug)),
        key=lambda d: (d.on, d.action == "stopped"),
    )
    active: dict[str, date] = {}
    ever: dict[str, date] = {}
    stopped: dict[str, date] = {}
    for d in events:
        if d.action == "started":
            active.setdefault(d.drug, d.on)
            ever.setdefault(d.drug, d.on)
            stopped.pop(d.drug, None)
        else:
            active.pop(d.drug, None)
            stopped[d.drug] = d.on
    return DrugHistory(active, ever, stopped)


def _dental(s: SystemicState) -> list[tuple[TreatmentEvent, DentalCare]]:
    items = [(e, e.treatment) for e in s.treatments.values() if isinstance(e.treatment, DentalCare)]
    return sorted(items, key=lambda x: (x[1].on, str(x[0].event_id)))


# ---- the plan ------------------------------------------------------------------------------------------------
def _item(key: str, rule_id: str, status: str, severity: str, title: str, text: str, **extra: object) -> PlanItem:
    return PlanItem.model_validate(
        {
            "key": key,
            "rule_id": rule_id,
            "status": status,
            "severity": severity,
            "title": title,
            "text_fr": text,
            "citation": cite(rule_id),
            **extra,
        }
    )


def build_plan(s: SystemicState) -> list[PlanItem]:
    drugs = _drugs(s)
    on_ar = {d: since for d, since in drugs.active.items() if d in r.ANTIRESORPTIVES}
    le = s.life_expectancy
    decision = r.antiresorptive_start(
        has_sre=bool(s.sres),
        bone_metastasis=s.first_bone_metastasis is not None,
        life_expectancy_months=le.value if le else None,
        on_antiresorptive=bool(on_ar),
    )
    items: list[PlanItem] = []
    if decision.outcome == "no_trigger" and not drugs.ever_started.keys() & r.ANTIRESORPTIVES:
        return items
    items.append(_ar_start_item(s, decision, on_ar))
    crcl = _latest(s.creatinine_clearance)
    vit_d = _latest(s.vitamin_d)
    za_planned = False
    if decision.outcome in ("start", "already_treated"):
        emergency = any(f.value == "hypercalcaemia" for f in s.sres.values()) and not on_ar
        items.append(_prerequisites(s, crcl, vit_d, emergency, on_ar))
        items.append(_vitamin_d(vit_d))
        ar = _antiresorptive(s, crcl, on_ar, drugs)
        items.append(ar)
        za_planned = any(o.drug == "zoledronic_acid" for o in ar.orders)  # only this item orders it
        if za_planned and "zoledronic_acid" not in drugs.ever_started:
            items.append(_first_infusion())
        if on_ar:
            items.append(_review(s, min(on_ar.values())))
    deno_stop = _denosumab_stop(drugs, crcl)
    if deno_stop is not None:
        items.append(deno_stop)
    items += _renal_safety(crcl, drugs, za_planned)
    items += _osteonecrosis(s, drugs)
    onco = _oncology(s, drugs)
    if onco is not None:
        items.append(onco)
    return items


def _ar_start_item(s: SystemicState, d: r.ArStartDecision, on_ar: dict[str, date]) -> PlanItem:
    inputs = [f.used(f"sre:{f.value}") for f in sorted(s.sres.values(), key=lambda f: f.order())]
    if s.first_bone_metastasis is not None:
        inputs.append(s.first_bone_metastasis.used("bone_metastasis_site"))
    if s.life_expectancy is not None:
        inputs.append(s.life_expectancy.used("life_expectancy", "months"))
    status, severity, title, text = t.ar_start(d, on_ar)
    return _item(
        "antiresorptive-start",
        "SYS-AR-START",
        status,
        severity,
        title,
        text,
        inputs=inputs,
        missing=list(d.missing),
        what_would_change_fr=t.ar_start_change(d),
    )


def _prerequisites(
    s: SystemicState, crcl: LabFact | None, vit_d: LabFact | None, emergency: bool, on_ar: dict[str, date]
) -> PlanItem:
    checks: list[Check] = []
    inputs: list[InputUsed] = []
    if vit_d is None:
        checks.append(Check(name="vitamin_d", status="to_do", detail_fr="Doser la 25-OH vitamine D."))
    else:
        inputs.append(vit_d.used("vitamin_d_25oh", "ng/mL"))
        ok = vit_d.value is not None and vit_d.value >= 30
        checks.append(
            Check(
                name="vitamin_d",
                status="done" if ok else "pending",
                detail_fr=t.vit_d_check(vit_d.value, vit_d.occurred_at),
            )
        )
    if crcl is None:
        checks.append(
            Check(
                name="renal_function",
                status="to_do",
                detail_fr="Évaluer la fonction rénale (créatinine, poids) : clairance de Cockcroft-Gault.",
            )
        )
    elif crcl.value is None:
        inputs.append(crcl.used("creatinine_clearance", "mL/min"))
        checks.append(
            Check(
                name="renal_function",
                status="cannot_decide",
                detail_fr=f"Clairance non calculable : manque {', '.join(crcl.missing) or 'une donnée'}.",
            )
        )
    else:
        inputs.append(crcl.used("creatinine_clearance", "mL/min"))
        checks.append(
            Check(
                name="renal_function",
                status="done",
                detail_fr=f"Clairance {crcl.value:g} mL/min le {crcl.occurred_at:%d/%m/%Y}.",
            )
        )
    dental = _dental(s)
    assessments = [(e, d) for e, d in dental if d.action == "assessment"]
    with_opg = [(e, d) for e, d in assessments if d.orthopantomogram]
    if with_opg:
        e, d = with_opg[-1]
        inputs.append(InputUsed(name="dental_assessment_with_opg", value=d.on.isoformat(), source_event_id=e.event_id))
        checks.append(
            Check(
                name="dental_assessment",
                status="done",
                detail_fr=f"Bilan bucco-dentaire avec orthopantomogramme le {d.on:%d/%m/%Y}.",
            )
        )
    else:
        checks.append(
            Check(
                name="dental_assessment",
                status="to_do",
                detail_fr="Bilan bucco-dentaire par un spécialiste avec orthopantomogramme.",
            )
        )
    extractions = [(e, d) for e, d in dental if d.action == "extraction"]
    if extractions:
        e, d = extractions[-1]
        lo, hi = r.extraction_window(d.on)
        cleared = any(x.cleared_for_antiresorptive and x.on >= d.on for _, x in dental)
        inputs.append(InputUsed(name="dental_extraction", value=d.on.isoformat(), source_event_id=e.event_id))
        checks.append(
            Check(
                name="extraction_healing",
                status="done" if cleared else "pending",
                detail_fr=t.extraction_check(d.on, lo, hi, cleared),
            )
        )
    if on_ar:
        last = assessments[-1][1].on if assessments else None
        due = add_months(last, r.DENTAL_REVIEW_MONTHS) if last else None
        checks.append(
            Check(name="dental_review_6_months", status="pending" if due else "to_do", detail_fr=t.dental_review(due))
        )
    severe = vit_d is not None and vit_d.value is not None and vit_d.value < 10 and not on_ar
    if emergency:
        checks = [
            Check(
                name=c.name,
                status="waived" if c.status != "done" else "done",
                detail_fr=c.detail_fr + (" (levé : urgence)" if c.status != "done" else ""),
            )
            for c in checks
        ]
    status = "done" if all(c.status in ("done", "waived") for c in checks) else "to_do"
    return _item(
        "prerequisites",
        "SYS-AR-PREREQ",
        "waived" if emergency and status == "done" else status,
        "warning" if severe else "info",
        t.prereq_title(emergency, on_ar),
        t.prereq_text(checks, emergency, severe),
        inputs=inputs,
        checks=checks,
        what_would_change_fr="Chaque bilan réalisé passe la ligne correspondante à « fait ».",
    )


def _cholecalciferol(interval: str, count: int | None, text: str) -> MedicationOrder:
    return MedicationOrder(
        drug="cholecalciferol",
        atc="A11CC05",
        dose=r.VITD_DOSE_IU,
        unit="[iU]",
        route="oral",
        interval=interval,
        count=count,
        instructions_fr=text,
        rule_ids=["SYS-VITD-CORR"],
    )


def _vitamin_d(vit_d: LabFact | None) -> PlanItem:
    if vit_d is None or vit_d.value is None:
        return _item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "cannot_decide",
            "info",
            "Vitamine D : dosage nécessaire",
            "Le schéma de correction dépend du taux de 25-OH vitamine D, non connu : le doser.",
            missing=["25-OH vitamin D"],
        )
    p = r.vitamin_d_correction(vit_d.value)
    orders = []
    if p.loading_weekly_doses:
        orders.append(
            _cholecalciferol(
                "P1W", p.loading_weekly_doses, f"{p.loading_weekly_doses} prises hebdomadaires de 50 000 UI (recharge)"
            )
        )
    orders.append(_cholecalciferol("P1M", None, "50 000 UI per os une fois par mois (entretien)"))
    return _item(
        "vitamin-d",
        "SYS-VITD-CORR",
        "recommended",
        "warning" if p.severe_deficiency else "info",
        t.vit_d_title(p),
        t.vit_d_text(vit_d.value, p),
        inputs=[vit_d.used("vitamin_d_25oh", "ng/mL")],
        orders=orders,
        what_would_change_fr=p.what_would_change_fr,
    )


#: SYS-DENO: 120 mg SC monthly, no renal adjustment
DENOSUMAB_ORDER = MedicationOrder(
    drug="denosumab",
    atc="M05BX04",
    dose=120,
    unit="mg",
    route="subcutaneous",
    interval="P1M",
    instructions_fr=t.DENOSUMAB_INSTRUCTIONS,
    rule_ids=["SYS-DENO"],
)
ZA_INSTRUCTIONS = (
    "Perfusion IV de 20 à 30 minutes (jamais moins de 15 minutes), bonne hydratation le jour et le "
    "lendemain de la perfusion."
)


def _antiresorptive(s: SystemicState, crcl: LabFact | None, on_ar: dict[str, date], drugs: DrugHistory) -> PlanItem:
    inputs: list[InputUsed] = []
    za_since = on_ar.get("zoledronic_acid")
    basis = (_latest(s.creatinine_clearance, before=za_since) if za_since else None) or crcl
    if crcl is not None:
        inputs.append(crcl.used("creatinine_clearance", "mL/min"))
    if crcl is None or crcl.value is None:
        missing = ["creatinine clearance"] + (crcl.missing if crcl else ["creatinine", "weight", "age", "sex"])
        return _item(
            "antiresorptive",
            "SYS-ZA-DOSE",
            "cannot_decide",
            "warning",
            "Anti-résorptif : molécule et dose impossibles à choisir",
            "La fonction rénale (clairance de Cockcroft-Gault) est nécessaire pour choisir entre acide "
            "zolédronique et dénosumab et pour doser l'acide zolédronique.",
            inputs=inputs,
            missing=missing,
            what_would_change_fr="Une clairance calculable permettra de proposer la molécule et la dose.",
        )
    if crcl.value < 30:
        return _item(
            "antiresorptive",
            "SYS-DENO",
            "warning",
            "warning",
            t.deno_low_crcl_title(crcl.value),
            t.deno_low_crcl_text(crcl.value, "zoledronic_acid" in on_ar),
            inputs=inputs,
            orders=[DENOSUMAB_ORDER],
            what_would_change_fr="L'acide zolédronique redevient possible si la clairance atteint 30 mL/min.",
        )
    oligo = s.oligometastatic
    if oligo is not None:
        inputs.append(oligo.used("oligometastatic_status"))
    response = s.response
    good = response is not None and response.value in ("complete", "good")
    if response is not None:
        inputs.append(response.used("oncological_response"))
    if "denosumab" in on_ar:
        return _item(
            "antiresorptive",
            "SYS-DENO",
            "recommended",
            "info",
            "Dénosumab 120 mg SC mensuel (en cours)",
            t.deno_text(good),
            inputs=inputs,
            orders=[DENOSUMAB_ORDER],
            what_would_change_fr="L'espacement n'est pas validé pour le dénosumab ; l'arrêt impose un relais.",
        )
    assert basis is not None and basis.value is not None
    dose = r.zoledronic_acid_dose(basis.value)
    if basis is not crcl:
        inputs.append(basis.used("initial_creatinine_clearance", "mL/min"))
    initial_unknown = za_since is not None and basis is crcl and crcl.occurred_at.date() > za_since
    assert dose.dose_mg is not None
    if oligo is None or oligo.value == "undetermined":
        missing = ["oligometastatic status"] + [f"oligometastatic criterion: {m}" for m in s.oligo_missing]
        return _item(
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
        instructions_fr=ZA_INSTRUCTIONS,
        rule_ids=["SYS-ZA-DOSE", "SYS-SCHEDULE"],
    )
    return _item(
        "antiresorptive",
        "SYS-ZA-DOSE",
        "recommended",
        "info",
        t.za_title(dose.dose_mg, sched),
        t.za_text(dose.dose_mg, dose.band, sched, basis is not crcl, initial_unknown),
        inputs=inputs,
        orders=[order],
        what_would_change_fr=dose.next_band_fr + t.schedule_change(sched),
    )


def _first_infusion() -> PlanItem:
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
    return _item(
        "first-infusion-paracetamol",
        "SYS-ZA-FLU",
        "recommended",
        "info",
        "Première perfusion d'acide zolédronique : paracétamol",
        t.FLU_TEXT,
        orders=[order],
    )


def _review(s: SystemicState, since: date) -> PlanItem:
    due = add_months(since, 12 * r.REVIEW_AFTER_YEARS)
    as_of = max((e.occurred_at.date() for e in s.treatments.values()), default=since)
    overdue = as_of >= due
    return _item(
        "review-2-years",
        "SYS-REVIEW-2Y",
        "warning" if overdue else "info",
        "warning" if overdue else "info",
        f"Réévaluation de l'anti-résorptif le {due:%d/%m/%Y}",
        t.review_text(since, due, overdue),
        inputs=[InputUsed(name="antiresorptive_since", value=since.isoformat())],
    )


def _denosumab_stop(drugs: DrugHistory, crcl: LabFact | None) -> PlanItem | None:
    stopped = drugs.stopped.get("denosumab")
    if stopped is None:
        return None
    relay = drugs.ever_started.get("zoledronic_acid")
    done = "zoledronic_acid" in drugs.active and relay is not None
    low = crcl is not None and crcl.value is not None and crcl.value < 30
    return _item(
        "denosumab-stop",
        "SYS-DENO-STOP",
        "done" if done else "recommended",
        "info" if done else "warning",
        "Arrêt du dénosumab : prévenir l'effet rebond",
        t.deno_stop_text(stopped, low),
        inputs=[InputUsed(name="denosumab_stopped", value=stopped.isoformat())],
        what_would_change_fr="Fait dès qu'une perfusion d'acide zolédronique de relais est enregistrée.",
    )


def _renal_safety(crcl: LabFact | None, drugs: DrugHistory, za_planned: bool) -> list[PlanItem]:
    items: list[PlanItem] = []
    chemo = sorted(d for d in drugs.active if d in r.NEPHROTOXIC_CHEMO)
    bisphosphonate = za_planned or any(d in r.BISPHOSPHONATES for d in drugs.active)
    inputs = [InputUsed(name="active_drug", value=d) for d in sorted(drugs.active)]
    if crcl is not None:
        inputs.append(crcl.used("creatinine_clearance", "mL/min"))
    if chemo and bisphosphonate:
        items.append(
            _item(
                "nephrotoxicity",
                "SYS-RENAL-TOX",
                "warning",
                "warning",
                "Néphrotoxicité cumulative : " + ", ".join(chemo) + " et bisphosphonate",
                t.nephrotox_text(chemo),
                inputs=inputs,
            )
        )
    if crcl is not None and crcl.value is not None and crcl.value < 30:
        tkis = sorted(d for d in drugs.active if d in r.TKIS)
        items.append(
            _item(
                "severe-renal-failure",
                "SYS-RENAL-TOX",
                "warning",
                "warning",
                f"Clairance {crcl.value:g} mL/min (< 30) : adapter les traitements",
                t.severe_renal_text(bool(chemo), tkis),
                inputs=inputs,
            )
        )
    return items


def _osteonecrosis(s: SystemicState, drugs: DrugHistory) -> list[PlanItem]:
    first_ar = min((since for d, since in drugs.ever_started.items() if d in r.ANTIRESORPTIVES), default=None)
    out: list[PlanItem] = []
    for e, d in _dental(s):
        if d.action != "jaw_bone_exposure" or d.exposure_weeks is None:
            continue
        onj = r.is_osteonecrosis_of_the_jaw(
            d.exposure_weeks, first_ar is not None and first_ar <= d.on, d.craniofacial_irradiation
        )
        used = [
            InputUsed(name="jaw_bone_exposure_weeks", value=d.exposure_weeks, unit="wk", source_event_id=e.event_id)
        ]
        if onj:
            out.append(
                _item(
                    "osteonecrosis-jaw",
                    "SYS-ONJ",
                    "recommended",
                    "critical",
                    "Ostéonécrose de la mâchoire : centre spécialisé",
                    t.ONJ_TEXT,
                    inputs=used,
                )
            )
        elif onj is None:
            out.append(
                _item(
                    "osteonecrosis-jaw",
                    "SYS-ONJ",
                    "cannot_decide",
                    "warning",
                    "Exposition osseuse maxillo-faciale : ostéonécrose possible",
                    t.ONJ_UNKNOWN_TEXT,
                    inputs=used,
                    missing=["cranio-facial irradiation history"],
                )
            )
    return out[-1:]


def _oncology(s: SystemicState, drugs: DrugHistory) -> PlanItem | None:
    anticancer = sorted(d for d in drugs.active if d not in r.ANTIRESORPTIVES)
    if s.first_bone_metastasis is None and not s.sres:
        return None
    urgent = any(f.value in ("cord_compression", "pathological_fracture") for f in s.sres.values())
    if not anticancer and not urgent:
        return None
    return _item(
        "oncology",
        "SYS-ONCO",
        "warning" if urgent else "info",
        "warning" if urgent else "info",
        "Traitement systémique et métastases osseuses",
        t.onco_text(anticancer, urgent),
        inputs=[InputUsed(name="active_drug", value=d) for d in anticancer],
    )


# ---- publishing ------------------------------------------------------------------------------------------------
NOTIFY_STATUSES = frozenset({"recommended", "to_do", "cannot_decide", "warning", "waived"})


def decision_content(item: PlanItem) -> str:
    """What a clinician is notified about: the item's decision and text, not its provenance or check details."""
    orders = "".join(o.model_dump_json() for o in item.orders)
    checks = ",".join(f"{c.name}={c.status}" for c in item.checks)
    return "|".join(
        (
            item.key,
            item.rule_id,
            item.status,
            item.severity,
            item.title,
            item.text_fr,
            ",".join(item.missing),
            item.what_would_change_fr or "",
            orders,
            checks,
        )
    )


def _notify(item: PlanItem) -> bool:
    return item.status in NOTIFY_STATUSES and not (item.rule_id == "SYS-ONCO" and item.severity == "info")


def apply_event(state: SystemicState, event: Message) -> tuple[SystemicState, list[Message]]:
    s = merge(state, event)
    items = build_plan(s)
    out: list[Message] = []
    published: dict[str, str] = {}
    decisions = [(item, decision_content(item)) for item in items]
    for item, content in decisions:
        if not _notify(item):
            continue
        digest = hashlib.blake2b(content.encode(), digest_size=8).hexdigest()
        old = s.published.get(item.key)
        if old is not None and old.endswith(f"|{digest}"):
            published[item.key] = old  # unchanged: nothing to notify
            continue
        key = (item.key, content)
        rec = recommendation(
            rule_id=item.rule_id,
            trigger=event,
            produced_by=SERVICE,
            severity=item.severity,
            title=item.title,
            text_fr=item.text_fr,
            inputs=item.inputs,
            missing=item.missing,
            key=key,
        )
        published[item.key] = f"{item.rule_id}|{rec.event_id}|{digest}"
        if old is not None:
            rule_id, rec_id, _ = old.split("|")
            out.append(
                withdrawal(uuid.UUID(rec_id), rule_id, event, SERVICE, "Plan mis à jour : cet élément a changé.")
            )
        out.append(rec)
    for item_key, old in s.published.items():
        if item_key not in published:
            rule_id, rec_id, _ = old.split("|")
            out.append(
                withdrawal(
                    uuid.UUID(rec_id), rule_id, event, SERVICE, "Plan mis à jour : cet élément ne s'applique plus."
                )
            )
    s.published = dict(sorted(published.items()))
    # a new version when a decision changes; newer provenance alone (same decisions) does not make a new version
    digest = hashlib.sha256("\n".join(content for _, content in decisions).encode()).hexdigest()
    if items and digest != s.plan_digest:
        s.plan_version += 1
        s.plan_digest = digest
        s.plan_event = Fact[str].of(event, str(derived_id("plan", event.patient_id, s.plan_version, digest)))
        plan = current_plan(s, event.patient_id, items)
        assert plan is not None
        out.append(plan)
    return s, caused_by(out, event)


def current_plan(s: SystemicState, patient_id: str, items: list[PlanItem] | None = None) -> TreatmentPlan | None:
    """The current plan: rebuilt from the facts (pure), with the version and time it was last published."""
    if s.plan_event is None:
        return None
    return TreatmentPlan(
        event_id=uuid.UUID(s.plan_event.value),
        patient_id=patient_id,
        occurred_at=s.plan_event.occurred_at,
        recorded_at=s.plan_event.recorded_at,
        source=SERVICE,
        version=s.plan_version,
        ruleset_version=RULESET_VERSION,
        items=items if items is not None else build_plan(s),
    )
