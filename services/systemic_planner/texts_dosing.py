"""French clinician-facing texts of the systemic-treatment planner, written for OsteoCDS: starting and dosing the
anti-resorptives (dosing.py: SYS-AR-START, denosumab SYS-DENO, zoledronic acid SYS-ZA-DOSE and SYS-SCHEDULE,
renal safety SYS-RENAL-TOX, the drug identity and corrections to check, the orders held or drafted, SYS-ONJ's
order)."""

from __future__ import annotations

from datetime import date

from services.systemic_planner import rules as r
from services.systemic_planner.disease import LifeExpectancy
from services.systemic_planner.fr import fr_date
from services.systemic_planner.texts_prerequisites import CHECK_FR

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


def stale_renal_order_text(stale: tuple[str, ...]) -> str:
    return (
        f"La clairance connue repose sur des données trop anciennes ({', '.join(stale)}) : ni molécule ni dose ne "
        "sont proposées. Mesurer de nouveau la créatinine et le poids avant toute prescription."
    )


def held_order_text(holding: tuple[str, ...]) -> str:
    names = ", ".join(CHECK_FR.get(h, h) for h in holding)
    return f"Aucune prescription tant que ces prérequis ne sont pas remplis (hors urgence) : {names}."


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
