"""French clinician-facing texts of the systemic-treatment planner, written for OsteoCDS: the prerequisites of an
anti-resorptive and the supplements (prerequisites.py: SYS-AR-PREREQ dental state, vitamin D SYS-VITD-CORR,
calcium, renal function to measure again)."""

from __future__ import annotations

from datetime import date, datetime

from contracts.plan import Check
from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date


def vit_d_check(shown: str, value: float, at: datetime, loading_ends: date | None, held: bool) -> str:
    """`shown`: the level as reported (a censored one with its comparator); `value`: a value of its band."""
    if value >= 30:
        state = "correcte"
    elif value >= r.VITD_DEFICIENCY_NG_ML:
        state = "insuffisance ; recharge différée (hypercalcémie)" if held else "insuffisance, recharge en parallèle"
    else:
        state = f"carence corrigée (recharge terminée le {fr_date(loading_ends)})" if loading_ends else "corrigée"
    return f"25-OH vitamine D {shown} ng/mL le {fr_date(at)} : {state}."


def vit_d_censored(shown: str, at: datetime) -> str:
    """Issue 12: a censored 25-OH vitamin D whose bound spans two bands of the scheme (L849-855, Tableau 1)."""
    return (
        f"25-OH vitamine D {shown} ng/mL le {fr_date(at)} : résultat censuré (une borne, pas une valeur exacte) qui "
        "ne situe pas le taux dans une seule tranche (< 20, 20 à 30, 30 à 70, > 70 ng/mL) : données insuffisantes, "
        "doser une valeur exacte."
    )


def calcium_censored_text(reported: str) -> str:
    """Issue 12: a censored corrected calcium that may or may not be above normal."""
    return (
        f"Données insuffisantes : {reported} est un résultat censuré (une borne) qui ne dit pas si la calcémie "
        f"corrigée dépasse la normale ({r.CALCIUM_UPPER_NORMAL_MMOL_L:.2f} mmol/L). Ni recharge en vitamine D ni "
        "conseil calcique sur cette donnée : doser une calcémie totale exacte avec l'albuminémie."
    )


def vit_d_deficiency_check(
    value: str, at: datetime, loading_ends: date | None, held: bool, stopped: date | None = None
) -> str:
    head = f"25-OH vitamine D {value} ng/mL le {fr_date(at)} : carence (< 20 ng/mL) à corriger avant de débuter"
    if held:
        return head + " ; correction différée tant que la calcémie corrigée n'est pas normale."
    if stopped is not None:
        return head + f" ; recharge arrêtée le {fr_date(stopped)} avant ses 8 semaines : non faite, à reprendre."
    if loading_ends is not None:
        return head + f" ; recharge en cours, terminée le {fr_date(loading_ends)}."
    return head + " : recharge de 8 semaines (voir vitamine D)."


def vit_d_stale(at: datetime, days: int) -> str:
    return f"25-OH vitamine D du {fr_date(at)}, datant de plus de {days} jours : à redoser."


def renal_stale(stale: tuple[str, ...], recency: r.Recency) -> str:
    return (
        f"Données de la clairance trop anciennes ({', '.join(stale)} ; au-delà de {recency.creatinine.days} jours "
        f"pour la créatinine, {recency.weight.days} jours pour le poids) : à mesurer de nouveau."
    )


def extraction_check(on: date, lo: date, hi: date, cleared: date | None) -> str:
    if cleared is not None:
        return (
            f"Extraction du {fr_date(on)} : accord du dentiste le {fr_date(cleared)} ; début possible à partir du "
            f"{fr_date(lo)} (au moins 3 semaines après l'extraction)."
        )
    return (
        f"Extraction du {fr_date(on)} : débuter après cicatrisation et accord du dentiste, au plus tôt 3 semaines "
        f"à 1 mois après (entre le {fr_date(lo)} et le {fr_date(hi)})."
    )


def dental_assessment_old(on: date, months: int) -> str:
    return (
        f"Bilan bucco-dentaire du {fr_date(on)}, datant de plus de {months} mois : à refaire avec un "
        "orthopantomogramme avant de débuter."
    )


def dental_review(due: date | None, overdue: bool = False) -> str:
    if due is None:
        return "Suivi bucco-dentaire semestriel : aucun bilan enregistré, en programmer un."
    if overdue:
        return f"Suivi bucco-dentaire semestriel : contrôle en retard (prévu avant le {fr_date(due)}), le programmer."
    return f"Suivi bucco-dentaire semestriel : prochain contrôle avant le {fr_date(due)}."


def prereq_title(emergency: bool, on_ar: dict[str, date]) -> str:
    if emergency:
        return "Prérequis de l'anti-résorptif levés (urgence hypercalcémique en cours)"
    return "Suivi sous anti-résorptif" if on_ar else "Prérequis avant anti-résorptif"


CHECK_FR = {
    "vitamin_d": "vitamine D",
    "renal_function": "fonction rénale",
    "dental_assessment": "bilan bucco-dentaire avec orthopantomogramme",
    "extraction_healing": "cicatrisation après extraction",
    "dental_review_6_months": "suivi dentaire semestriel",
}
STATUS_FR = {
    "done": "fait",
    "to_do": "à faire",
    "pending": "en cours",
    "waived": "levé",
    "cannot_decide": "données manquantes",
}


def prereq_text(
    checks: list[Check], emergency: bool, severe: bool, holding: list[str], vit_d_waived: bool = False
) -> str:
    lines = "; ".join(f"{CHECK_FR.get(c.name, c.name)} : {STATUS_FR[c.status]}" for c in checks)
    text = f"Bilan avant et sous anti-résorptif : {lines} (détail dans le plan)."
    if emergency:
        text = (
            "Urgence en cours (crise hypercalcémique actuelle) : l'anti-résorptif peut être débuté sans attendre "
            "le bilan, qui reste à compléter ; la prescription indique les prérequis levés. " + text
        )
    elif holding:
        text += (
            " Pas de prescription d'anti-résorptif tant que ces prérequis ne sont pas remplis : "
            + ", ".join(CHECK_FR.get(h, h) for h in holding)
            + "."
        )
    if vit_d_waived:
        text += (
            " Carence en vitamine D non corrigée, mais sa correction est suspendue pendant l'hypercalcémie : elle "
            "ne retient pas l'anti-résorptif (le risque d'hypocalcémie n'existe pas tant que la calcémie est "
            "élevée) ; surveiller la calcémie et corriger la vitamine D dès qu'elle est normale."
        )
    if severe:
        text += (
            " Carence sévère en vitamine D : risque d'hypocalcémie profonde et prolongée si l'anti-résorptif "
            "est débuté avant correction."
        )
    return text


WAIVED_EMERGENCY = " (levé : urgence hypercalcémique)"
WAIVED_HYPERCALCAEMIA = (
    " (levé : correction impossible pendant l'hypercalcémie, et pas de risque d'hypocalcémie tant que la calcémie "
    "est élevée)"
)


def waived_hypercalcaemia_on_order() -> str:
    return (
        "Carence en vitamine D non corrigée : prérequis levé, car sa correction est suspendue pendant "
        "l'hypercalcémie et le risque d'hypocalcémie n'existe pas tant que la calcémie est élevée ; surveiller la "
        "calcémie et corriger la vitamine D dès sa normalisation."
    )


FUTURE_IGNORED = " Un résultat daté dans le futur est ignoré (date à vérifier)."
HISTORICAL_CRISIS = (
    " L'hypercalcémie connue n'est pas actuelle (une calcémie plus récente est normale, ou elle est trop "
    "ancienne) : ce n'est pas une urgence, aucun prérequis n'est levé à ce titre."
)


def waived_on_order(waived: tuple[str, ...]) -> str:
    names = ", ".join(CHECK_FR.get(h, h) for h in waived)
    return f"Prescrit en urgence (crise hypercalcémique en cours) ; prérequis non remplis, levés : {names}."


def vit_d_held_text(value: str | None, current: bool, hours: int) -> str:
    head = (
        f"Calcémie corrigée {value} mmol/L, au-dessus de la normale"
        if value is not None
        else "Hypercalcémie signalée (événement osseux), sans calcémie normale depuis"
    )
    text = (
        f"{head} : pas de recharge en vitamine D, ni supplément calcique, ni conseil d'apport calcique "
        "tant que la calcémie n'est pas revenue à la normale (la vitamine D et le calcium aggraveraient "
        "l'hypercalcémie)."
    )
    if not current:
        text += f" La dernière calcémie date de plus de {hours} heures : la recontrôler."
    return text


def vit_d_held_change() -> str:
    return (
        f"Une calcémie corrigée normale (≤ {r.CALCIUM_UPPER_NORMAL_MMOL_L:.2f} mmol/L) permettra de proposer la "
        "correction de la vitamine D et les apports calciques."
    )


def calcium_advice(known: bool, days: int) -> str:
    """SYS-VITD-CORR calcium intake (L863-865), only on a recent corrected calcium that is not high."""
    if known:
        lo, hi = r.CALCIUM_INTAKE_MG_DAY
        return f"Apports calciques totaux {lo}-{hi} mg/j."
    return (
        f"Calcémie corrigée à doser (aucune valeur depuis {days} jours) avant tout conseil d'apport ou de "
        "supplément calcique."
    )


def vit_d_loading_text(value: str, since: date, ends: date, under_way: bool, known: bool, days: int) -> str:
    state = f"en cours jusqu'au {fr_date(ends)}" if under_way else f"terminée le {fr_date(ends)}"
    return (
        f"25-OH vitamine D {value} ng/mL : recharge en cholécalciférol débutée le {fr_date(since)}, {state} ; "
        "puis entretien à 50 000 UI par mois. " + calcium_advice(known, days)
    )


def vit_d_interrupted_text(value: str, since: date, stopped: date, weeks: int, known: bool, days: int) -> str:
    """SYS-VITD-CORR (L849-855): a loading stopped before its weekly doses were all given is not a correction."""
    return (
        f"25-OH vitamine D {value} ng/mL : recharge en cholécalciférol débutée le {fr_date(since)}, arrêtée le "
        f"{fr_date(stopped)}, avant la fin de ses {weeks} semaines ({weeks} prises hebdomadaires de 50 000 UI) : "
        "la carence n'est pas considérée comme corrigée. Reprendre le schéma complet (sauf raison d'arrêt à "
        "vérifier, par exemple une hypercalcémie), puis entretien à 50 000 UI par mois. " + calcium_advice(known, days)
    )


def vit_d_high_text(value: str, at: datetime, intoxication: bool, hypercalcaemia: bool) -> str:
    text = f"25-OH vitamine D {value} ng/mL le {fr_date(at)}, "
    if intoxication:
        text += (
            f"au-dessus de {r.VITD_INTOXICATION_NG_ML:g} ng/mL : intoxication à la vitamine D possible (Tableau 1). "
            "Aucune vitamine D ni calcium ; vérifier les apports en cours, doser la calcémie corrigée et demander un "
            "avis spécialisé."
        )
    else:
        text += (
            f"au-dessus des taux recommandés (30 à {r.VITD_RECOMMENDED_MAX_NG_ML:g} ng/mL, Tableau 1) : pas de "
            "supplémentation en vitamine D (ni recharge ni entretien) ; vérifier les apports en cours et redoser."
        )
    if hypercalcaemia:
        text += " Hypercalcémie associée : calcium suspendu également."
    return text


def vit_d_high_change() -> str:
    return (
        f"Un taux redescendu dans les valeurs recommandées (≤ {r.VITD_RECOMMENDED_MAX_NG_ML:g} ng/mL) permettra de "
        "proposer l'entretien mensuel."
    )


def vit_d_title(p: r.VitaminDPlan) -> str:
    if p.loading_weekly_doses:
        return f"Vitamine D : recharge, {p.loading_weekly_doses} prises hebdomadaires de 50 000 UI"
    return "Vitamine D : entretien mensuel 50 000 UI"


def vit_d_text(value: str, p: r.VitaminDPlan, calcium_known: bool = True, days: int = 30) -> str:
    head = f"25-OH vitamine D {value} ng/mL. "
    if p.loading_weekly_doses:
        head += (
            f"Recharge : {p.loading_weekly_doses} prises de 50 000 UI de cholécalciférol, une par semaine, "
            "puis entretien. "
        )
    head += "Entretien sous anti-résorptif : 50 000 UI par mois. " + calcium_advice(calcium_known, days)
    if p.severe_deficiency:
        head += " Carence sévère : risque d'hypocalcémie à l'introduction de l'anti-résorptif."
    return head
