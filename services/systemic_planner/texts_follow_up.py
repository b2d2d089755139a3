"""French clinician-facing texts of the systemic-treatment planner, written for OsteoCDS: the follow-up
(follow_up.py: SYS-REVIEW-2Y review and CTX, SYS-DENO-STOP, osteonecrosis of the jaw SYS-ONJ, the oncology
referral)."""

from __future__ import annotations

from datetime import date, datetime

from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date


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


ONJ_TEXT = (
    "Exposition osseuse maxillo-faciale persistant plus de 8 semaines malgré un traitement adapté, sous ou "
    "après anti-résorptif, sans irradiation crânio-faciale : ostéonécrose de la mâchoire. Adresser le patient "
    "à un centre spécialisé."
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
