"""Before and under an anti-resorptive: SYS-AR-PREREQ (vitamin D, renal function, mouth) and SYS-VITD-CORR
(vitamin D and calcium, held during a hypercalcaemia). Guideline: Traitement osseux systémique, 1. and 2.3
(L779-868, L1086-1120, L1267-1273). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from contracts.base import InputUsed
from contracts.plan import Check, MedicationOrder, PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts as t
from services.systemic_planner.inputs import Calcium, Renal, SystemicState, VitaminD, dental, future_dated, item
from shared.dates import add_months

#: the prerequisites that hold an order until met, unless a current emergency waives them (L799, L1090, L1098,
#: L1267: "sauf urgence"). Renal function is never waived: the molecule and the dose depend on it.
HOLDING = ("vitamin_d", "dental_assessment", "extraction_healing")


@dataclass(frozen=True)
class Prerequisites:
    item: PlanItem
    #: unmet prerequisites that hold the anti-resorptive order (check names); empty when met or waived
    holding: tuple[str, ...]
    #: unmet prerequisites waived by a current emergency (to be stated on the order)
    waived: tuple[str, ...]
    emergency: bool


def _vitamin_d_check(v: VitaminD, ca: Calcium, at: r.AsOf) -> tuple[Check, list[InputUsed]]:
    if v.fact is None or v.fact.value is None:
        return Check(name="vitamin_d", status="to_do", detail_fr="Doser la 25-OH vitamine D."), []
    used = [v.fact.used("vitamin_d_25oh", "ng/mL")]
    if v.status == "stale":
        days = at.recency.vitamin_d.days
        return Check(name="vitamin_d", status="to_do", detail_fr=t.vit_d_stale(v.fact.occurred_at, days)), used
    if v.deficiency_uncorrected:
        detail = t.vit_d_deficiency_check(v.fact.value, v.fact.occurred_at, v.loading_ends, ca.hold_supplements)
        return Check(name="vitamin_d", status="pending", detail_fr=detail), used
    return Check(
        name="vitamin_d",
        status="done",
        detail_fr=t.vit_d_check(v.fact.value, v.fact.occurred_at, v.loading_ends, ca.hold_supplements),
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
    detail = f"Clairance {crcl.value:g} mL/min le {crcl.occurred_at:%d/%m/%Y}."
    return Check(name="renal_function", status="done", detail_fr=detail), used


def prerequisites(
    s: SystemicState, at: r.AsOf, renal: Renal, v: VitaminD, ca: Calcium, on_ar: dict[str, date]
) -> Prerequisites:
    checks: list[Check] = []
    inputs: list[InputUsed] = []
    for check, used in (_vitamin_d_check(v, ca, at), _renal_check(renal, at)):
        table = s.vitamin_d if check.name == "vitamin_d" else s.creatinine_clearance
        if future_dated(table, at):  # ignored, and said so (it never hides the newest real value)
            check = check.model_copy(update={"detail_fr": check.detail_fr + t.FUTURE_IGNORED})
        checks.append(check)
        inputs += used
    events = dental(s, at)
    assessments = [(e, d) for e, d in events if d.action == "assessment"]
    with_opg = [(e, d) for e, d in assessments if d.orthopantomogram]
    if with_opg:
        e, d = with_opg[-1]
        inputs.append(InputUsed(name="dental_assessment_with_opg", value=d.on.isoformat(), source_event_id=e.event_id))
        valid_until = add_months(d.on, r.DENTAL_REVIEW_MONTHS)
        if on_ar or at.today <= valid_until:  # before the start, an assessment must be recent (SYS-AR-PREREQ)
            if not on_ar:
                at.after_date(valid_until + timedelta(days=1))
            detail = f"Bilan bucco-dentaire avec orthopantomogramme le {d.on:%d/%m/%Y}."
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
        healed = cleared is not None and at.today >= lo
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
        overdue = due is not None and at.today > due
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
    if emergency:
        checks = [
            Check(name=c.name, status="waived", detail_fr=c.detail_fr + " (levé : urgence hypercalcémique)")
            if c.name in unmet
            else c
            for c in checks
        ]
    # a hypercalcaemia that is not current (a late value older than a newer normal one, or too old) waives nothing
    historical = bool(unmet) and not emergency and any(f.value == "hypercalcaemia" for f in s.sres.values())
    severe = v.fact is not None and v.fact.value is not None and v.fact.value < 10 and not on_ar
    status = "done" if all(c.status in ("done", "waived") for c in checks) else "to_do"
    if emergency:
        inputs += list(ca.inputs)
    prereq = item(
        "prerequisites",
        "SYS-AR-PREREQ",
        "waived" if emergency and status == "done" and unmet else status,
        "warning" if severe or (unmet and not emergency) else "info",
        t.prereq_title(emergency, on_ar),
        t.prereq_text(checks, emergency, severe, [] if emergency else list(unmet))
        + (t.HISTORICAL_CRISIS if historical else ""),
        inputs=inputs,
        checks=checks,
        what_would_change_fr="Chaque bilan réalisé passe la ligne correspondante à « fait » ; l'anti-résorptif "
        "est proposé quand la vitamine D, l'état bucco-dentaire et la cicatrisation sont en ordre.",
    )
    return Prerequisites(prereq, () if emergency else unmet, unmet if emergency else (), emergency)


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


def vitamin_d_item(v: VitaminD, ca: Calcium, at: r.AsOf) -> PlanItem:
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
            t.vit_d_held_text(ca.latest.value if ca.latest else None, ca.current, hours),
            inputs=inputs,
            missing=[] if ca.current else [f"corrected calcium measured within {hours} hours"],
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
    p = r.vitamin_d_correction(v.fact.value)
    orders = []
    maintenance = _cholecalciferol("P1M", None, "50 000 UI per os une fois par mois (entretien)")
    if v.loading_since is not None and v.loading_ends is not None:  # the loading on this level is given already
        under_way = at.today < v.loading_ends
        return item(
            "vitamin-d",
            "SYS-VITD-CORR",
            "recommended",
            "info",
            "Vitamine D : recharge en cours" if under_way else "Vitamine D : recharge faite, entretien mensuel",
            t.vit_d_loading_text(v.fact.value, v.loading_since, v.loading_ends, under_way),
            inputs=[v.fact.used("vitamin_d_25oh", "ng/mL")],
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
        t.vit_d_text(v.fact.value, p),
        inputs=[v.fact.used("vitamin_d_25oh", "ng/mL")],
        orders=orders,
        what_would_change_fr=p.what_would_change_fr,
    )
