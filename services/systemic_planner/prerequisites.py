"""Before and under an anti-resorptive: SYS-AR-PREREQ (vitamin D, renal function, mouth) and SYS-VITD-CORR
(vitamin D and calcium, held during a hypercalcaemia). Guideline: Traitement osseux systémique, 1. and 2.3
(L779-868, L1086-1120, L1267-1273). Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from contracts.base import InputUsed
from contracts.hospital import DentalCare, TreatmentEvent
from contracts.plan import Check, MedicationOrder, PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts_prerequisites as t
from services.systemic_planner.fr import fr_date
from services.systemic_planner.items import item
from services.systemic_planner.labs import Calcium, Renal, VitaminD, future_dated
from services.systemic_planner.memo import memo
from services.systemic_planner.state import LabFact, SystemicState
from shared.clinical.dates import add_months

#: the prerequisites that hold an order until met, unless a current emergency waives them (L799, L1090, L1098,
#: L1267: "sauf urgence"). Renal function is never waived: the molecule and the dose depend on it.
HOLDING = ("vitamin_d", "dental_assessment", "extraction_healing")


@dataclass(frozen=True)
class Prerequisites:
    item: PlanItem
    #: unmet prerequisites that hold the anti-resorptive order (check names); empty when met or waived
    holding: tuple[str, ...]
    #: unmet prerequisites waived (by a current emergency; or the vitamin D deficiency while supplements are held
    #: for a hypercalcaemia), to be stated on the order
    waived: tuple[str, ...]
    emergency: bool
    #: what the order says of the waived prerequisites (French), empty when none
    waiver_fr: str = ""


def _vitamin_d_check(v: VitaminD, ca: Calcium, at: r.AsOf) -> tuple[Check, list[InputUsed]]:
    if v.fact is None or v.fact.value is None:
        return Check(name="vitamin_d", status="to_do", detail_fr="Doser la 25-OH vitamine D."), []
    used = [v.fact.used("vitamin_d_25oh", "ng/mL")]
    if v.status == "stale":
        days = at.recency.vitamin_d.days
        return Check(name="vitamin_d", status="to_do", detail_fr=t.vit_d_stale(v.fact.occurred_at, days)), used
    if v.status == "censored":  # issue 12: a bound spanning two bands decides nothing; the exact level is to measure
        return Check(
            name="vitamin_d", status="to_do", detail_fr=t.vit_d_censored(v.fact.shown(), v.fact.occurred_at)
        ), used
    if v.deficiency_uncorrected:
        detail = t.vit_d_deficiency_check(
            v.fact.shown(), v.fact.occurred_at, v.loading_ends, ca.hold_supplements, v.loading_stopped
        )
        return Check(name="vitamin_d", status="pending", detail_fr=detail), used
    assert v.decided_value is not None
    return Check(
        name="vitamin_d",
        status="done",
        detail_fr=t.vit_d_check(
            v.fact.shown(), v.decided_value, v.fact.occurred_at, v.loading_ends, ca.hold_supplements
        ),
    ), used


def _renal_check(renal: Renal, at: r.AsOf) -> tuple[Check, list[InputUsed]]:
    crcl = renal.crcl
    used = [] if crcl is None else [crcl.used("creatinine_clearance", "mL/min")]
    if renal.status == "unknown":
        detail = "Évaluer la fonction rénale (créatinine, poids) : clairance de Cockcroft-Gault."
        return Check(name="renal_function", status="to_do", detail_fr=detail), used
    assert crcl is not None
    if renal.status == "not_computable":
        detail = f"Clairance non calculable : manque {', '.join(crcl.missing) or 'une donnée'}."
        return Check(name="renal_function", status="cannot_decide", detail_fr=detail), used
    if renal.status == "stale":
        return Check(name="renal_function", status="to_do", detail_fr=t.renal_stale(renal.stale, at.recency)), used
    assert renal.value is not None  # current
    detail = f"Clairance {crcl.shown()} mL/min le {fr_date(crcl.occurred_at)}."
    # issue 12: a censored clearance that settles neither the < 30 threshold nor the Tableau 2 band
    if renal.failure == "straddles" or r.zoledronic_acid_dose_bounded(renal.value, crcl.comparator) is None:
        detail += " Résultat censuré : " + "; ".join(renal.censored_missing()) + "."
        return Check(name="renal_function", status="cannot_decide", detail_fr=detail), used
    return Check(name="renal_function", status="done", detail_fr=detail), used


def _future_said(
    found: tuple[Check, list[InputUsed]], table: dict[str, LabFact], at: r.AsOf
) -> tuple[Check, list[InputUsed]]:
    """The check, saying that a value dated in the future is left out (it never hides the newest real value)."""
    check, used = found
    if future_dated(table, at):
        check = check.model_copy(update={"detail_fr": check.detail_fr + t.FUTURE_IGNORED})
    return check, used


def prerequisites(
    s: SystemicState,
    at: r.AsOf,
    renal: Renal,
    v: VitaminD,
    ca: Calcium,
    on_ar: dict[str, date],
    events: list[tuple[TreatmentEvent, DentalCare]],
    crisis_known: bool,
) -> Prerequisites:
    """SYS-AR-PREREQ. `events`: the dental events (treatments.dental); `crisis_known`: a hypercalcaemia SRE is held. Of
    `s` it reads the vitamin D and creatinine clearance tables only (domain.py keys its memo on those)."""
    checks: list[Check] = []
    inputs: list[InputUsed] = []
    # issue 25: each check memoised on what it reads (memo.py)
    vit_d_check = memo(
        "vitamin_d_check", at, (v, ca, s.vitamin_d), lambda: _future_said(_vitamin_d_check(v, ca, at), s.vitamin_d, at)
    )
    crcl = s.creatinine_clearance
    renal_check = memo("renal_check", at, (renal, crcl), lambda: _future_said(_renal_check(renal, at), crcl, at))
    for check, used in (vit_d_check, renal_check):
        checks.append(check)
        inputs += used
    assessments = [(e, d) for e, d in events if d.action == "assessment"]
    with_opg = [(e, d) for e, d in assessments if d.orthopantomogram]
    if with_opg:
        e, d = with_opg[-1]
        inputs.append(InputUsed(name="dental_assessment_with_opg", value=d.on.isoformat(), source_event_id=e.event_id))
        valid_until = add_months(d.on, r.DENTAL_REVIEW_MONTHS)
        if on_ar or at.today_le(valid_until):  # before the start, an assessment must be recent (SYS-AR-PREREQ)
            if not on_ar:
                at.after_date(valid_until + timedelta(days=1))
            detail = f"Bilan bucco-dentaire avec orthopantomogramme le {fr_date(d.on)}."
            checks.append(Check(name="dental_assessment", status="done", detail_fr=detail))
        else:
            detail = t.dental_assessment_old(d.on, r.DENTAL_REVIEW_MONTHS)
            checks.append(Check(name="dental_assessment", status="to_do", detail_fr=detail))
    else:
        detail = "Bilan bucco-dentaire par un spécialiste avec orthopantomogramme."
        checks.append(Check(name="dental_assessment", status="to_do", detail_fr=detail))
    extractions = [(e, d) for e, d in events if d.action == "extraction"]
    if extractions:
        e, d = extractions[-1]
        lo, hi = r.extraction_window(d.on)
        cleared = next((x.on for _, x in events if x.cleared_for_antiresorptive and x.on >= d.on), None)
        healed = cleared is not None and at.today_ge(lo)
        if cleared is not None and not healed:
            at.after_date(lo)
        inputs.append(InputUsed(name="dental_extraction", value=d.on.isoformat(), source_event_id=e.event_id))
        checks.append(
            Check(
                name="extraction_healing",
                status="done" if healed else "pending",
                detail_fr=t.extraction_check(d.on, lo, hi, cleared),
            )
        )
    if on_ar:
        last = assessments[-1][1].on if assessments else None
        due = add_months(last, r.DENTAL_REVIEW_MONTHS) if last else None
        overdue = due is not None and at.today_gt(due)
        if due is not None and not overdue:
            at.after_date(due + timedelta(days=1))
        checks.append(
            Check(
                name="dental_review_6_months",
                status="to_do" if overdue or due is None else "pending",
                detail_fr=t.dental_review(due, overdue),
            )
        )
    emergency = ca.emergency and not on_ar
    unmet = tuple(c.name for c in checks if c.name in HOLDING and c.status != "done") if not on_ar else ()
    # SYS-AR-PREREQ L795-799 / SYS-VITD-CORR: while vitamin D and calcium are held for a hypercalcaemia, the deficiency
    # cannot be corrected, and the deep hypocalcaemia it exposes to on starting is not present while calcium is high:
    # it does not hold the anti-resorptive (else each would wait for the other), and the order says so.
    hyper = (
        ("vitamin_d",)
        if not emergency and ca.hold_supplements and v.deficiency_uncorrected and "vitamin_d" in unmet
        else ()
    )
    waived = unmet if emergency else hyper
    holding = () if emergency else tuple(u for u in unmet if u not in hyper)
    reason = t.WAIVED_EMERGENCY if emergency else t.WAIVED_HYPERCALCAEMIA
    checks = [
        Check(name=c.name, status="waived", detail_fr=c.detail_fr + reason) if c.name in waived else c for c in checks
    ]
    # a hypercalcaemia that is not current (a late value older than a newer normal one, or too old) is no emergency
    historical = bool(holding) and not emergency and crisis_known
    severe = (
        v.fact is not None
        and v.fact.value is not None
        and r.severe_vitamin_d_deficiency(v.fact.value, v.fact.comparator)  # < 10 for certain (issue 12)
        and not on_ar
    )
    status = "done" if all(c.status in ("done", "waived") for c in checks) else "to_do"
    if waived:
        inputs += list(ca.inputs)
    prereq = item(
        "prerequisites",
        "SYS-AR-PREREQ",
        "waived" if waived and status == "done" else status,
        "warning" if severe or holding or hyper else "info",
        t.prereq_title(emergency, on_ar),
        t.prereq_text(checks, emergency, severe, list(holding), bool(hyper))
        + (t.HISTORICAL_CRISIS if historical else ""),
        inputs=inputs,
        checks=checks,
        what_would_change_fr="Chaque bilan réalisé passe la ligne correspondante à « fait » ; l'anti-résorptif "
        "est proposé quand la vitamine D, l'état bucco-dentaire et la cicatrisation sont en ordre.",
    )
    waiver = t.waived_on_order(waived) if emergency else t.waived_hypercalcaemia_on_order() if hyper else ""
    return Prerequisites(prereq, holding, waived, emergency, waiver)


# ---- SYS-VITD-CORR -----------------------------------------------------------------------------------------------
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


def calcium_known(ca: Calcium, at: r.AsOf) -> bool:
    """A corrected calcium recent enough (and not high: the caller checks hold_supplements first) for calcium intake
    advice."""
    return (
        ca.latest is not None
        and ca.uncertain is None  # issue 12: a censored value that may be high is not a known normal calcium
        and at.is_current(ca.latest.occurred_at, at.recency.calcium_for_supplements)
    )


def supplements_fr(v: VitaminD, ca: Calcium, at: r.AsOf) -> str:
    """What the denosumab order says of calcium and vitamin D."""
    if ca.hold_supplements:
        return "calcium et vitamine D suspendus tant que la calcémie corrigée n'est pas normale."
    if ca.uncertain is not None:
        return f"calcium et vitamine D après dosage d'une calcémie exacte ({ca.uncertain} : résultat censuré)."
    value = v.decided_value if v.status == "current" else None
    vit_d = (
        "vitamine D non supplémentée (taux au-dessus des valeurs recommandées)"
        if value is not None and value > r.VITD_RECOMMENDED_MAX_NG_ML
        else "supplémentation en vitamine D"
    )
    calcium = "apports calciques" if calcium_known(ca, at) else "apports calciques après dosage de la calcémie corrigée"
    return f"{vit_d} ; {calcium}."


def vitamin_d_item(v: VitaminD, ca: Calcium, at: r.AsOf) -> PlanItem:
    value = v.decided_value if v.status == "current" else None
    if value is not None and value > r.VITD_RECOMMENDED_MAX_NG_ML and v.fact is not None:
        # Tableau 1 (L829-831): 30 to 70 ng/mL recommended, > 150 possible intoxication: no supplement order
        intoxication = value > r.VITD_INTOXICATION_NG_ML
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "warning",
            "critical" if intoxication else "warning",
            "Vitamine D : intoxication possible" if intoxication else "Vitamine D au-dessus des taux recommandés",
            t.vit_d_high_text(v.fact.shown(), v.fact.occurred_at, intoxication, ca.hold_supplements),
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL"), *ca.inputs],
            what_would_change_fr=t.vit_d_high_change(),
        )
    if ca.hold_supplements:
        # no vitamin D loading, no calcium supplement or intake advice during a hypercalcaemia (LAB-CA-CRISIS)
        inputs = list(ca.inputs) + ([] if v.fact is None else [v.fact.used("vitamin_d_25oh", "ng/mL")])
        hours = int(at.recency.calcium.total_seconds() // 3600)
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "warning",
            "warning",
            "Vitamine D et calcium suspendus : hypercalcémie",
            t.vit_d_held_text(ca.latest.shown(".2f") if ca.latest else None, ca.current, hours),
            inputs=inputs,
            missing=[] if ca.current else [f"corrected calcium measured within {hours} hours"],
            what_would_change_fr=t.vit_d_held_change(),
        )
    if ca.uncertain is not None:
        # issue 12: a censored corrected calcium that may be above normal: no loading and no calcium advice on it
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "cannot_decide",
            "warning",
            "Vitamine D et calcium : calcémie censurée, données insuffisantes",
            t.calcium_censored_text(ca.uncertain),
            inputs=list(ca.inputs) + ([] if v.fact is None else [v.fact.used("vitamin_d_25oh", "ng/mL")]),
            missing=[f"exact value: {ca.uncertain} is censored, measure again"],
            what_would_change_fr=t.vit_d_held_change(),
        )
    if v.fact is None or v.fact.value is None:
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "cannot_decide",
            "info",
            "Vitamine D : dosage nécessaire",
            "Le schéma de correction dépend du taux de 25-OH vitamine D, non connu : le doser.",
            missing=["25-OH vitamin D"],
        )
    if v.status == "stale":
        days = at.recency.vitamin_d.days
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "cannot_decide",
            "info",
            "Vitamine D : à redoser",
            t.vit_d_stale(v.fact.occurred_at, days) + " Le schéma de correction se décide sur un taux récent.",
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL")],
            missing=[f"25-OH vitamin D measured within {days} days"],
            what_would_change_fr="Un dosage récent permettra de proposer la recharge ou l'entretien.",
        )
    if v.status == "censored":  # issue 12: the bound spans two bands of the scheme: no order from it
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "cannot_decide",
            "warning",
            f"Vitamine D {v.fact.shown()} ng/mL (résultat censuré) : données insuffisantes",
            t.vit_d_censored(v.fact.shown(), v.fact.occurred_at) + " Le schéma de correction n'est pas choisi sur une "
            "borne.",
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL")],
            missing=[f"exact value: 25-OH vitamin D {v.fact.shown()} ng/mL is censored, measure again"],
            what_would_change_fr="Un dosage exact permettra de proposer la recharge ou l'entretien.",
        )
    assert v.decided_value is not None
    p = replace(r.vitamin_d_correction(v.decided_value), severe_deficiency=v.severe)
    # calcium intake advice only on a recent corrected calcium (not high: held above); else it is to measure
    known = calcium_known(ca, at)
    days = at.recency.calcium_for_supplements.days
    calcium_missing = [] if known else [f"corrected calcium measured within {days} days"]
    calcium_inputs = list(ca.inputs) if known else []
    orders = []
    maintenance = _cholecalciferol("P1M", None, "50 000 UI per os une fois par mois (entretien)")
    if v.loading_since is not None and v.loading_stopped is not None:
        # issue 18 review: stopped before its weeks (L851, L855): not complete, the whole scheme is proposed again
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "recommended",
            "warning" if p.loading_weekly_doses == 8 else "info",
            "Vitamine D : recharge interrompue avant son terme, à reprendre",
            t.vit_d_interrupted_text(v.fact.shown(), v.loading_since, v.loading_stopped, v.loading_weeks, known, days),
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL"), *calcium_inputs],
            missing=calcium_missing,
            orders=[
                _cholecalciferol(
                    "P1W",
                    p.loading_weekly_doses,
                    f"{p.loading_weekly_doses} prises hebdomadaires de 50 000 UI (recharge)",
                ),
                maintenance,
            ],
            what_would_change_fr="Une recharge menée à son terme (reprise enregistrée puis poursuivie) la dira "
            "faite ; un nouveau dosage dira si la correction a suffi.",
        )
    if v.loading_since is not None and v.loading_ends is not None:  # the loading on this level is given already
        under_way = at.today_lt(v.loading_ends)
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "recommended",
            "info",
            "Vitamine D : recharge en cours" if under_way else "Vitamine D : recharge faite, entretien mensuel",
            t.vit_d_loading_text(v.fact.shown(), v.loading_since, v.loading_ends, under_way, known, days),
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL"), *calcium_inputs],
            missing=calcium_missing,
            orders=[maintenance],
            what_would_change_fr="Un nouveau dosage (environ 3 mois après la correction) dira si elle a suffi.",
        )
    if p.loading_weekly_doses:
        orders.append(
            _cholecalciferol(
                "P1W", p.loading_weekly_doses, f"{p.loading_weekly_doses} prises hebdomadaires de 50 000 UI (recharge)"
            )
        )
    orders.append(maintenance)
    return item(
        "vitamin-d",
        "SYS-VITD-CORR",
        "recommended",
        "warning" if p.severe_deficiency else "info",
        t.vit_d_title(p),
        t.vit_d_text(v.fact.shown(), p, known, days),
        inputs=[v.fact.used("vitamin_d_25oh", "ng/mL"), *calcium_inputs],
        missing=calcium_missing,
        orders=orders,
        what_would_change_fr=p.what_would_change_fr,
    )
