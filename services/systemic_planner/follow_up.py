"""Under and after an anti-resorptive: SYS-REVIEW-2Y and SYS-DENO-STOP with serum CTX (2.4, L1198-1255), SYS-ONJ
(2.3, L1106-1120), and SYS-ONCO (Chimiothérapie..., L637-776). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from contracts.base import InputUsed
from contracts.plan import PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts_follow_up as t
from services.systemic_planner.disease import LifeExpectancy
from services.systemic_planner.drug_replay import DrugHistory
from services.systemic_planner.fr import fr_date
from services.systemic_planner.items import item
from services.systemic_planner.labs import sre_is_current
from services.systemic_planner.state import LabFact, SystemicState
from services.systemic_planner.treatments import dental
from shared.clinical import censored
from shared.clinical.facts import Fact
from shared.clinical.life_expectancy import DAYS_PER_MONTH, surgery_excluded

#: SYS-ONCO: an SRE calling for an urgent local procedure is "under way" for 3 weeks (chemotherapy and RT resume
#: 3 weeks after surgery, SURG-LE L2940-2955); no urgent procedure below exactly 6 weeks of expected survival left
#: (L2804-2808: shared/clinical/life_expectancy.py `surgery_excluded`, as in scoring and the radiotherapy planner).
URGENT_PROCEDURE_WINDOW = timedelta(weeks=3)


@dataclass(frozen=True)
class CtxReading:
    """Serum CTX for the review and the denosumab stop (LAB-CTX: fasting, before 09:00)."""

    text_fr: str
    inputs: list[InputUsed]
    missing: list[str]


def ctx_reading(s: SystemicState, at: r.AsOf, since: date | None = None) -> CtxReading:
    values = [
        v
        for v in s.ctx.values()
        if not v.withdrawn and not at.is_future(v.occurred_at) and (since is None or at.day(v.occurred_at) >= since)
    ]
    values.sort(key=lambda v: (v.occurred_at, v.recorded_at, v.event_id.int))
    want = "serum CTX (fasting, before 09:00)" + (f" after {since.isoformat()}" if since else "")
    if not values:
        return CtxReading(t.ctx_missing(since), [], [want])
    last = values[-1]
    inputs = [last.used("ctx_serum", "pg/mL")]
    if last.interpretation == "not_interpretable" or last.value is None:
        return CtxReading(t.ctx_not_interpretable(last.occurred_at, last.notes), inputs, [want])
    if not at.is_current(last.occurred_at, at.recency.ctx):
        return CtxReading(t.ctx_stale(last.shown(), last.occurred_at, at.recency.ctx.days), inputs, [want])
    good: list[LabFact] = [v for v in values[:-1] if v.interpretation != "not_interpretable" and v.value is not None]
    previous = good[-1] if good else None
    if previous is not None:
        inputs.insert(0, previous.used("ctx_serum_previous", "pg/mL"))
    before = None
    if previous is not None and previous.value is not None:
        # issue 12: a trend only when certain (a censored CTX is an interval; overlapping ones say nothing)
        rising = censored.rises(
            censored.interval(last.value, last.comparator), censored.interval(previous.value, previous.comparator)
        )
        before = (previous.shown(), previous.occurred_at, rising)
    return CtxReading(t.ctx_text(last.shown(), last.occurred_at, before), inputs, [])


def review(s: SystemicState, at: r.AsOf, drugs: DrugHistory) -> PlanItem | None:
    """SYS-REVIEW-2Y (issue 18 review): once 2 years of cumulative anti-resorptive exposure are reached (L1238,
    L1200-1202, L1275), summed over the courses of the current count (a pause does not start it again; a gap of
    r.AR_FRESH_COUNT_GAP_MONTHS does, and the older course is then only named). The deadline is that day."""
    since, due = drugs.ar_course_start, drugs.ar_review_due
    if since is None or due is None:
        return None
    overdue = at.today_ge(due)
    if not overdue:
        at.after_date(due)
    ctx = ctx_reading(s, at)
    first = min((on for d, on in drugs.ever_started.items() if d in r.ANTIRESORPTIVES), default=since)
    months = drugs.ar_exposure_days / DAYS_PER_MONTH
    return item(
        "review-2-years",
        "SYS-REVIEW-2Y",
        "warning" if overdue else "info",
        "warning" if overdue else "info",
        f"Réévaluation de l'anti-résorptif le {fr_date(due)}",
        t.review_text(since, due, overdue, first if first < since else None, drugs.ar_interrupted) + " " + ctx.text_fr,
        inputs=[
            InputUsed(name="antiresorptive_since", value=since.isoformat()),
            InputUsed(name="antiresorptive_exposure", value=round(months, 1), unit="months"),
            *ctx.inputs,
        ],
        missing=ctx.missing if overdue else [],
    )


def denosumab_stop(s: SystemicState, at: r.AsOf, drugs: DrugHistory, low_crcl: bool) -> PlanItem | None:
    stopped = drugs.stopped.get("denosumab")
    if stopped is None:
        return None
    relay = drugs.started_on_or_after("zoledronic_acid", stopped)
    done = relay is not None
    ctx = ctx_reading(s, at, since=stopped)
    return item(
        "denosumab-stop",
        "SYS-DENO-STOP",
        "done" if done else "recommended",
        "info" if done else "warning",
        "Arrêt du dénosumab : prévenir l'effet rebond",
        t.deno_stop_text(stopped, low_crcl) + " " + ctx.text_fr,
        inputs=[InputUsed(name="denosumab_stopped", value=stopped.isoformat()), *ctx.inputs],
        missing=ctx.missing,
        what_would_change_fr="Fait dès qu'une perfusion d'acide zolédronique de relais est enregistrée.",
    )


def osteonecrosis(s: SystemicState, at: r.AsOf, drugs: DrugHistory) -> tuple[list[PlanItem], bool]:
    """SYS-ONJ, from the newest jaw-bone exposure. Returns the item and whether the drug order must stop
    (osteonecrosis confirmed, or probable with the irradiation history unknown)."""
    first_ar = min((since for d, since in drugs.ever_started.items() if d in r.ANTIRESORPTIVES), default=None)
    exposures = [(e, d) for e, d in dental(s, at) if d.action == "jaw_bone_exposure" and d.exposure_weeks is not None]
    if not exposures:
        return [], False
    e, d = exposures[-1]
    assert d.exposure_weeks is not None
    on_ar = first_ar is not None and first_ar <= d.on
    onj = r.is_osteonecrosis_of_the_jaw(d.exposure_weeks, on_ar, d.craniofacial_irradiation)
    used = [InputUsed(name="jaw_bone_exposure_weeks", value=d.exposure_weeks, unit="wk", source_event_id=e.event_id)]
    if onj:
        title, text = "Ostéonécrose de la mâchoire : centre spécialisé", t.ONJ_TEXT
        return [item("osteonecrosis-jaw", "SYS-ONJ", "recommended", "critical", title, text, inputs=used)], True
    if onj is None:
        return [
            item(
                "osteonecrosis-jaw",
                "SYS-ONJ",
                "cannot_decide",
                "critical",
                "Exposition osseuse maxillo-faciale : ostéonécrose possible",
                t.ONJ_UNKNOWN_TEXT,
                inputs=used,
                missing=["cranio-facial irradiation history"],
            )
        ], True
    if on_ar and d.exposure_weeks <= r.ONJ_EXPOSURE_WEEKS:
        # exposed bone for 8 weeks or less: not yet an osteonecrosis by the definition, but a dental referral now
        reassess = d.on + timedelta(weeks=r.ONJ_EXPOSURE_WEEKS - d.exposure_weeks)
        return [
            item(
                "osteonecrosis-jaw",
                "SYS-ONJ",
                "warning",
                "warning",
                "Exposition osseuse de la mâchoire sous anti-résorptif : avis dentaire",
                t.jaw_exposure_text(d.exposure_weeks, reassess),
                inputs=used,
                what_would_change_fr="Une exposition persistant au-delà de 8 semaines malgré un traitement adapté "
                "définit l'ostéonécrose : adresser alors à un centre spécialisé et suspendre l'anti-résorptif.",
            )
        ], False
    return [], False


#: SYS-ONCO: the SREs that may call for an urgent local procedure while under way (issue 25, helper ZI: its memo,
#: domain.py, is keyed on these and their currency)
URGENT_SRES = ("cord_compression", "pathological_fracture")


def oncology(
    s: SystemicState, at: r.AsOf, anticancer: list[str], metastasis: Fact[str] | None, le: LifeExpectancy
) -> PlanItem | None:
    if metastasis is None and not s.sres:
        return None
    recent = [
        f for f in s.sres.values() if f.value in URGENT_SRES and sre_is_current(s, f, at, URGENT_PROCEDURE_WINDOW)
    ]
    short = le.remaining is not None and surgery_excluded(le.remaining)
    urgent = bool(recent) and not short
    if not anticancer and not urgent:
        return None
    return item(
        "oncology",
        "SYS-ONCO",
        "warning" if urgent else "info",
        "warning" if urgent else "info",
        "Traitement systémique et métastases osseuses",
        t.onco_text(anticancer, urgent),
        inputs=[InputUsed(name="active_drug", value=d) for d in anticancer]
        + [f.used(f"sre:{f.value}") for f in recent]
        + ([le.fact.used("life_expectancy", "months")] if short and le.fact is not None else []),
    )
