"""French clinician-facing texts of the systemic-treatment planner, written for OsteoCDS."""

from __future__ import annotations

from datetime import date, datetime

from contracts.plan import Check
from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date
from services.systemic_planner.inputs import LifeExpectancy

DRUG_FR = {
    "zoledronic_acid": "acide zolédronique",
    "denosumab": "dénosumab",
    "pamidronate": "pamidronate",
    "ibandronate": "ibandronate",
}


def survival(le: LifeExpectancy) -> str:
    """A life-expectancy estimate, e.g. "estimation du 01/11/2026 : 12 mois". What remains of it now is in the item's
    inputs (life_expectancy_remaining), not in the text, so that time passing alone changes no published text."""
    if le.fact is None:
        return "espérance de vie non estimée"
    return f"estimation du {fr_date(le.fact.occurred_at)} : {le.fact.value:g} mois"


def ar_start(
    d: r.ArStartDecision,
    on_ar: dict[str, date],
    review_stop: date | None,
    le: LifeExpectancy,
    relay: date | None = None,
) -> tuple[str, str, str, str]:
    """(status, severity, title, text) of the SYS-AR-START item."""
    if d.outcome == "stopped_after_review":
        assert review_stop is not None
        text = (
            f"Anti-résorptif arrêté le {fr_date(review_stop)}, après au moins 2 ans de traitement : les événements "
            "osseux antérieurs à cet arrêt ne justifient pas de le reprendre. Un nouvel événement osseux ferait "
            "rediscuter la reprise."
        )
        if relay is not None:
            text += (
                f" L'acide zolédronique débuté le {fr_date(relay)} est le relais de fin de séquence du dénosumab "
                f"(prévention de l'effet rebond), pas une reprise du traitement ; poursuivi au-delà de "
                f"{r.DENO_RELAY_WINDOW_MONTHS} mois après l'arrêt du dénosumab, il serait compté comme une reprise."
            )
        return ("not_indicated", "info", "Anti-résorptif arrêté après la réévaluation des 2 ans", text)
    if d.outcome == "already_treated":
        drugs = ", ".join(f"{DRUG_FR.get(k, k)} depuis le {fr_date(v)}" for k, v in sorted(on_ar.items()))
        return "done", "info", "Anti-résorptif en cours", f"Traitement anti-résorptif en cours : {drugs}."
    if d.outcome == "start" and d.trigger == "sre":
        return (
            "recommended",
            "warning",
            "Débuter un traitement anti-résorptif (après événement osseux)",
            "Un événement osseux (SRE) est survenu : un anti-résorptif (acide zolédronique ou dénosumab) est "
            "indiqué quelle que soit la survie attendue, pour limiter la douleur, l'hypercalcémie et un nouvel "
            "événement. Vérifier au préalable vitamine D, fonction rénale et état bucco-dentaire, sauf urgence.",
        )
    if d.outcome == "start":
        return (
            "recommended",
            "info",
            "Débuter un traitement anti-résorptif (métastase osseuse, espérance de vie > 3 mois)",
            "Métastase osseuse confirmée et espérance de vie restante supérieure à 3 mois (l'estimation, moins le "
            "temps écoulé depuis) : proposer un anti-résorptif (acide zolédronique ou dénosumab) dès maintenant, "
            "après bilan vitamine D, rénal et dentaire.",
        )
    if d.outcome == "no_trigger":  # an anti-resorptive was once given (else no item); review R30-SYS
        return (
            "not_indicated",
            "info",
            "Anti-résorptif : pas d'indication à débuter",
            "Ni métastase osseuse confirmée ni événement osseux connus à ce jour : aucune indication à débuter un "
            "anti-résorptif (un traitement antérieur n'est plus en cours). Une métastase osseuse confirmée ou un "
            "événement osseux ferait reconsidérer son début.",
        )
    future = " Une estimation datée dans le futur est ignorée (date à vérifier)." if le.future_ignored else ""
    if d.outcome == "insufficient_data" and le.status == "stale":
        return (
            "cannot_decide",
            "info",
            "Anti-résorptif : espérance de vie à estimer de nouveau",
            f"Métastase osseuse confirmée, mais la dernière estimation de l'espérance de vie ({survival(le)}) est "
            "trop ancienne pour situer le patient par rapport au seuil de 3 mois : l'estimer de nouveau." + future,
        )
    if d.outcome == "insufficient_data":
        return (
            "cannot_decide",
            "info",
            "Anti-résorptif : décision impossible, données manquantes",
            "Métastase osseuse confirmée, mais sans estimation clinique de l'espérance de vie : l'indication d'un "
            "anti-résorptif (seuil : > 3 mois) ne peut pas être posée." + future,
        )
    return (
        "not_indicated",
        "info",
        "Anti-résorptif non indiqué à ce stade",
        f"Espérance de vie restante de 3 mois ou moins ({survival(le)}, moins le temps écoulé depuis) et aucun "
        "événement osseux : l'anti-résorptif n'est pas indiqué d'emblée ; il le deviendrait après un événement "
        "osseux." + future,
    )


def held_start_text(reasons: str, indication: str) -> str:
    """Issue 18 review: the start is indicated but held until what may already be an anti-resorptive is checked."""
    return (
        f"Proposition de début en attente : vérifier d'abord {reasons}. S'il s'agit déjà d'un anti-résorptif "
        f"(bisphosphonate ou dénosumab), en débuter un second serait une erreur. Indication retenue : {indication}"
    )


def emergency_start_text(reasons: str, indication: str) -> str:
    """Second review: in a hypercalcaemic crisis the start does not wait for the check (L302-306, "sauf urgence")."""
    return (
        f"{indication} Urgence hypercalcémique en cours : le début n'attend pas la vérification des traitements en "
        f"cours. À vérifier dès que possible, avant l'administration si on le peut : {reasons}. S'il s'agit déjà "
        "d'un anti-résorptif (bisphosphonate ou dénosumab), ne pas en administrer un second."
    )


def to_check_on_order(reasons: str) -> str:
    """Second review: what the emergency order says of the treatments not yet checked."""
    return (
        f"Prescrit sans attendre la vérification des traitements en cours ; à vérifier dès que possible : {reasons}. "
        "S'il s'agit déjà d'un anti-résorptif, ne pas administrer un second anti-résorptif."
    )


def held_order_for_identity_text(reasons: str) -> str:
    return (
        f"Aucune prescription n'est proposée tant que ces traitements ne sont pas vérifiés ({reasons}) : un "
        "anti-résorptif déjà en cours, un médicament néphrotoxique ou un ITK changent la molécule, la dose ou "
        "l'indication."
    )


def unidentified_text(name: str, atc: str | None, since: date, conflict: bool) -> str:
    code = f" (code ATC {atc})" if atc else ""
    why = (
        "son nom et son code ATC désignent des médicaments différents"
        if conflict
        else "ni son nom ni son code ATC ne sont reconnus (médicament absent du référentiel d'OsteoCDS, ou plusieurs "
        "substances sur une même ligne, à enregistrer séparément)"
    )
    return (
        f"{name}{code}, en cours ou administré depuis le {fr_date(since)}, n'est pas identifié : {why}. Il n'est "
        "donc compté ni comme anti-résorptif, ni comme néphrotoxique, ni comme ITK, ni comme traitement "
        "anticancéreux. Vérifier de quoi il s'agit et l'enregistrer sous sa DCI (avec un code ATC concordant)."
    )


def correction_text(names: str, on: date) -> str:
    return (
        f"L'enregistrement de {names} du {fr_date(on)} avait été corrigé, puis la version corrigée a été déclarée "
        "saisie par erreur. L'enregistrement d'origine n'est pas repris automatiquement : vérifier si ce "
        "traitement a été administré, et l'enregistrer de nouveau s'il l'a été."
    )


def correction_reason(names: str, on: date, in_force: bool) -> str:
    """What is to check, in a sentence naming several (Hold)."""
    if in_force:
        return f"l'enregistrement de {names} du {fr_date(on)} (une version antérieure déclarée saisie par erreur)"
    return f"la correction annulée de {names} du {fr_date(on)}"


def superseded_error_text(names: str, on: date) -> str:
    """Second review: an entered-in-error names a version of a drug record already replaced by a later one."""
    return (
        f"Une version antérieure, déjà remplacée, de l'enregistrement de {names} a été déclarée saisie par erreur. "
        f"La version en vigueur ({names} du {fr_date(on)}) reste prise en compte : vérifier qu'elle est exacte, ou "
        "la déclarer elle-même saisie par erreur si ce traitement n'a pas eu lieu."
    )


def ar_start_change(d: r.ArStartDecision) -> str | None:
    if d.outcome == "stopped_after_review":
        return "Un nouvel événement osseux après l'arrêt ferait reconsidérer l'anti-résorptif."
    if d.outcome == "insufficient_data":
        return "Une espérance de vie estimée > 3 mois, ou tout événement osseux, ferait débuter le traitement."
    if d.outcome == "not_indicated":
        return "Un événement osseux, ou une espérance de vie réévaluée > 3 mois, ferait débuter le traitement."
    if d.outcome == "no_trigger":
        return (
            "Un événement osseux, ou une métastase osseuse confirmée avec une espérance de vie > 3 mois, ferait "
            "débuter le traitement."
        )
    return None


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


def stale_renal_order_text(stale: tuple[str, ...]) -> str:
    return (
        f"La clairance connue repose sur des données trop anciennes ({', '.join(stale)}) : ni molécule ni dose ne "
        "sont proposées. Mesurer de nouveau la créatinine et le poids avant toute prescription."
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


def held_order_text(holding: tuple[str, ...]) -> str:
    names = ", ".join(CHECK_FR.get(h, h) for h in holding)
    return f"Aucune prescription tant que ces prérequis ne sont pas remplis (hors urgence) : {names}."


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


def deno_instructions(supplements: str) -> str:
    return "120 mg en sous-cutané une fois par mois ; respecter la régularité des injections (carnet de suivi) ; " + (
        supplements
    )


ZA_INSTRUCTIONS = (
    "Perfusion IV de 20 à 30 minutes (jamais moins de 15 minutes), bonne hydratation le jour et le "
    "lendemain de la perfusion."
)


def censored_renal_text(crcl: str, question: str, sources: list[str] | None = None) -> str:
    """Issue 12: a censored clearance that does not settle a threshold of the renal rules."""
    origin = f" (calculée à partir de : {'; '.join(sources)})" if sources else ""
    return (
        f"Données insuffisantes : clairance de la créatinine {crcl} mL/min{origin}, une borne et non une valeur "
        f"exacte ; elle ne permet pas de dire {question}. Aucune prescription n'est proposée sur cette donnée : "
        "doser de nouveau la créatininémie (valeur exacte)."
    )


def deno_low_crcl_title(crcl: str, on_deno: bool = False) -> str:
    if on_deno:
        return f"Clairance {crcl} mL/min sous dénosumab : avis spécialisé, ne pas l'arrêter sans plan (rebond)"
    return f"Clairance {crcl} mL/min : avis spécialisé avant tout anti-résorptif"


#: SYS-DENO-STOP (L1249-1255): any stop of denosumab names the rebound
DENO_REBOUND = (
    "L'arrêt du dénosumab expose à un effet rebond (reprise rapide du remodelage osseux, faute d'inertie du "
    "traitement), habituellement prévenu par une ou plusieurs perfusions d'acide zolédronique (SYS-DENO-STOP)"
)


def deno_low_crcl_text(crcl: str, on_za: bool, on_deno: bool) -> str:
    stop = "Arrêter l'acide zolédronique en cours. " if on_za else ""
    text = (
        f"{stop}Clairance de la créatinine {crcl} mL/min (< 30) : l'acide zolédronique est contre-indiqué. Le "
        "dénosumab ne demande pas d'adaptation rénale (son administration n'est pas limitée par le débit de "
        "filtration glomérulaire), mais à ce stade une ostéodystrophie rénale à os adynamique est possible, et un "
        "anti-résorptif y est délétère : aucune prescription n'est pré-remplie ; demander un avis spécialisé "
        "(néphrologie, rhumatologie) qui décidera."
    )
    if on_deno:
        text += (
            " Dénosumab en cours : ne pas l'interrompre sans cet avis, à obtenir avant la prochaine injection. "
            + DENO_REBOUND
            + ", ici contre-indiqué sous 30 mL/min : la poursuite (risque d'os adynamique) ou l'arrêt (risque de "
            "rebond, relais à définir) se décide avec le spécialiste."
        )
    return text


def deno_text(good_response: bool, hold_supplements: bool = False) -> str:
    text = (
        "Dénosumab 120 mg SC mensuel, sans adaptation à la fonction rénale ; veiller à l'observance (carnet de "
        "suivi). Tenir compte des corticoïdes, anti-angiogéniques (bévacizumab) et d'une radiothérapie "
        "de la tête et du cou."
    )
    if good_response:
        text += " Malgré la bonne réponse, l'espacement du dénosumab n'est pas validé."
    if hold_supplements:
        text += " Calcium et vitamine D suspendus pendant l'hypercalcémie."
    return text


def za_title(dose: float, sched: r.Schedule) -> str:
    rhythm = {
        "za_3_monthly_2_years": "tous les 3 mois pendant 2 ans",
        "monthly": "mensuel",
        "za_spaced_3_monthly": "espacé tous les 3 mois",
    }[sched]
    return f"Acide zolédronique {dose:g} mg IV {rhythm}"


def za_text(dose: float, band: str, sched: r.Schedule, initial: bool, initial_unknown: bool = False) -> str:
    basis = "clairance initiale" if initial else "clairance"
    text = f"Acide zolédronique {dose:g} mg ({basis} {band}, Tableau 2). "
    if initial_unknown:
        text += "Clairance initiale (avant la première perfusion) inconnue : dose établie sur la clairance actuelle. "
    text += {
        "za_3_monthly_2_years": "Situation oligométastatique : une perfusion tous les 3 mois pendant 2 ans, puis "
        "envisager l'arrêt sur avis spécialisé. ",
        "monthly": "Situation plurimétastatique : une perfusion par mois (le dénosumab 120 mg SC mensuel est "
        "l'alternative). ",
        "za_spaced_3_monthly": "Réponse oncologique complète ou bonne : les perfusions peuvent être espacées tous "
        "les 3 mois. ",
    }[sched]
    return text + "Perfusion de 20 à 30 minutes avec une bonne hydratation le jour et le lendemain."


def schedule_change(sched: r.Schedule) -> str:
    if sched == "monthly":
        return " ; une réponse complète ou bonne permettrait d'espacer tous les 3 mois."
    return ""


def za_schedule_unknown(dose: float, band: str) -> str:
    return (
        f"Dose d'acide zolédronique : {dose:g} mg (clairance {band}). Le rythme dépend du statut "
        "oligométastatique (trimestriel 2 ans) ou plurimétastatique (mensuel), qui n'est pas établi."
    )


FLU_TEXT = (
    "Lors de la première perfusion d'acide zolédronique, prévenir le syndrome pseudo-grippal (environ 20 % des "
    "cas) par paracétamol 1 g trois fois par jour le jour de la perfusion et le lendemain. Ce syndrome n'est "
    "pas une allergie et ne se reproduit habituellement pas."
)


def review_text(
    since: date, due: date, overdue: bool, earlier_since: date | None = None, interrupted: bool = False
) -> str:
    head = "Réévaluation due : " if overdue else "À prévoir : "
    text = (
        f"{head}après 2 ans de traitement anti-résorptif cumulé (débuté le {fr_date(since)}), réévaluer le statut "
        f"osseux le {fr_date(due)} avec un avis spécialisé : nouveaux événements osseux, risque fracturaire, "
        "remontée des CTX, face aux risques d'hypocalcémie et d'ostéonécrose de la mâchoire (plus fréquente après "
        "24 mois ; tabac et alcool l'aggravent)."
    )
    if interrupted:
        text += (
            " Seules les périodes sous traitement sont additionnées ; les interruptions de moins de "
            f"{r.AR_FRESH_COUNT_GAP_MONTHS} mois ne remettent pas le compte à zéro."
        )
    if earlier_since is not None:
        text += (
            f" Un traitement anti-résorptif antérieur (premier début le {fr_date(earlier_since)}), suivi d'une "
            f"interruption de {r.AR_FRESH_COUNT_GAP_MONTHS} mois ou plus, n'entre pas dans ce compte ; en tenir "
            "compte dans l'évaluation du risque d'ostéonécrose."
        )
    return text


def deno_stop_text(stopped: date, low_crcl: bool) -> str:
    text = (
        f"Dénosumab arrêté le {fr_date(stopped)} : prévoir une ou plusieurs perfusions d'acide zolédronique pour "
        "éviter l'effet rebond de la résorption osseuse, selon un plan établi avec un spécialiste "
        "(onco-rhumatologue), avec surveillance des CTX."
    )
    if low_crcl:
        text += (
            " Attention : clairance < 30 mL/min, l'acide zolédronique est contre-indiqué : le risque de rebond "
            "reste entier ; avis spécialisé (onco-rhumatologie, néphrologie) pour un autre relais."
        )
    return text


def nephrotox_text(chemo: list[str]) -> str:
    return (
        f"Association de {', '.join(chemo)} et d'un bisphosphonate : néphrotoxicité cumulative. Surveiller la "
        "fonction rénale avant chaque cure et chaque perfusion."
    )


def severe_renal_text(chemo: bool, tkis: list[str]) -> str:
    text = "Clairance < 30 mL/min : le bisphosphonate est le plus souvent arrêté."
    if chemo:
        text += " Réduire les doses de chimiothérapie."
    if tkis:
        text += f" {', '.join(tkis)} : ITK déconseillé en insuffisance rénale sévère."
    return text


ONJ_TEXT = (
    "Exposition osseuse maxillo-faciale persistant plus de 8 semaines malgré un traitement adapté, sous ou "
    "après anti-résorptif, sans irradiation crânio-faciale : ostéonécrose de la mâchoire. Adresser le patient "
    "à un centre spécialisé."
)
ONJ_ORDER_TEXT = (
    "Ostéonécrose de la mâchoire confirmée ou probable sous ou après anti-résorptif : aucune prescription "
    "d'anti-résorptif n'est proposée ; le patient est adressé à un centre spécialisé, qui décide de la suite."
)


def onj_order_text(on_deno: bool) -> str:
    if not on_deno:
        return ONJ_ORDER_TEXT
    return (
        ONJ_ORDER_TEXT + " Dénosumab en cours : " + DENO_REBOUND[0].lower() + DENO_REBOUND[1:] + " ; le relais "
        "éventuel se décide avec le centre spécialisé et l'onco-rhumatologue."
    )


def jaw_exposure_text(weeks: float, reassess: date) -> str:
    return (
        f"Os exposé dans la région maxillo-faciale depuis {weeks:g} semaine(s), sous ou après anti-résorptif : ce "
        "n'est pas encore une ostéonécrose (il faut plus de 8 semaines malgré un traitement adapté), mais un avis "
        f"dentaire ou stomatologique rapide est nécessaire. Réévaluer au plus tard le {fr_date(reassess)}."
    )


def ctx_missing(since: date | None) -> str:
    after = f" depuis le {fr_date(since)}" if since else ""
    return f"Aucun CTX sérique{after} : le doser (à jeun, avant 9 h) pour suivre la résorption osseuse."


def ctx_not_interpretable(at: datetime, notes: list[str]) -> str:
    why = f" ({' '.join(notes)})" if notes else ""
    return f"CTX sérique du {fr_date(at)} non interprétable{why} : le refaire à jeun, avant 9 h."


def ctx_stale(value: str, at: datetime, days: int) -> str:
    return f"Dernier CTX sérique ({value} pg/mL le {fr_date(at)}) de plus de {days} jours : le redoser."


def ctx_text(value: str, at: datetime, previous: tuple[str, datetime, bool | None] | None) -> str:
    """`value`s as reported (a censored one with its comparator); the trend is None when a bound leaves it open."""
    text = f"CTX sérique {value} pg/mL le {fr_date(at)}"
    if previous is not None:
        prev_value, prev_at, rising = previous
        trend = {True: "en hausse", False: "sans hausse", None: "évolution indéterminée (résultat censuré)"}[rising]
        text += f", {trend} par rapport au {fr_date(prev_at)} ({prev_value} pg/mL)"
    return text + "."


ONJ_UNKNOWN_TEXT = (
    "Exposition osseuse maxillo-faciale de plus de 8 semaines sous ou après anti-résorptif : "
    "ostéonécrose de la mâchoire probable, mais l'absence d'irradiation crânio-faciale (condition de la "
    "définition) n'est pas renseignée. Préciser, et adresser à un centre spécialisé ; pas de prescription "
    "d'anti-résorptif en attendant."
)


def onco_text(anticancer: list[str], urgent: bool) -> str:
    text = (
        "Les métastases osseuses ne modifient ni le choix ni la dose de la chimiothérapie et ne contre-indiquent "
        "pas l'immunothérapie."
    )
    if urgent:
        text += (
            " Un geste local urgent est nécessaire ou en cours : le traitement systémique ne doit pas le "
            "retarder (attention au nadir, à l'hémostase et aux anti-angiogéniques)."
        )
    return text
