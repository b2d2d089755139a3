"""French clinician-facing texts of the scoring service, written for OsteoCDS (not quoted from the guideline)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.hospital import Comparator
from services.scoring import rules as r


def _ca(value: float, comparator: Comparator | None = None) -> str:
    """A calcium as reported: a censored one keeps its comparator ("> 3.60"), never shown as exact (issue 12)."""
    text = r.shown(value, r.CRISIS_CORRECTED_CALCIUM_MMOL_L)
    return text if comparator is None else f"{comparator} {text}"


def _threshold_fr() -> str:
    """The crisis threshold as written in French ("3,5"), from the rule's constant: a text never names another
    threshold than the one the rule compares with (issue 21: an impact candidate moving it changes its texts)."""
    return f"{r.CRISIS_CORRECTED_CALCIUM_MMOL_L:g}".replace(".", ",")


#: how a censored source of a corrected calcium is named in a text
SOURCE_NAMES_FR = {"total_calcium": "calcémie totale", "albumin": "albuminémie", "ionised_calcium": "calcium ionisé"}


def calcium_shown(value: float, comparator: Comparator | None = None) -> str:
    return _ca(value, comparator)


def crisis_text(value: float, comparator: Comparator | None = None) -> str:
    bound = (
        " (résultat censuré : au-dessus du seuil quelle que soit sa valeur exacte)" if comparator is not None else ""
    )
    return (
        f"Calcémie corrigée {_ca(value, comparator)} mmol/L{bound} (seuil de crise : > {_threshold_fr()} mmol/L). "
        "Situation pouvant engager le pronostic vital : prise en charge en urgence. Cette hypercalcémie compte comme "
        "événement osseux (SRE)."
    )


def unconfirmed_crisis_text(measured: float, comparator: Comparator | None = None) -> str:
    return (
        f"Calcémie totale mesurée {_ca(measured, comparator)} mmol/L, au-dessus du seuil de crise, sans albuminémie "
        "contemporaine : la calcémie corrigée ne peut être calculée. Doser l'albumine en urgence."
    )


def censored_calcium_title(reported: str) -> str:
    return f"Calcémie censurée ({reported}) : crise hypercalcémique ni affirmée ni exclue"


def censored_calcium_text(reported: str, corrected: str | None) -> str:
    """LAB-CA-CRISIS with a censored result whose bound does not settle the > 3,5 mmol/L threshold (issue 12)."""
    computed = (
        f"la calcémie corrigée qui en découle est seulement bornée ({corrected} mmol/L)"
        if corrected is not None
        else "la calcémie corrigée ne peut pas être bornée"
    )
    return (
        f"Données insuffisantes : le laboratoire a rendu {reported}, une borne et non une valeur exacte ; {computed}, "
        f"ce qui ne permet de dire ni qu'elle dépasse {_threshold_fr()} mmol/L ni qu'elle reste en dessous. "
        "Aucune alerte de crise "
        "n'est émise sur cette donnée incertaine. Doser une calcémie totale exacte (avec l'albuminémie) pour "
        "trancher."
    )


def late_crisis_text(value: float, at: datetime, newer: float, newer_at: datetime) -> str:
    return (
        f"Une calcémie corrigée de crise ({_ca(value)} mmol/L, prélevée le {at:%d/%m/%Y à %H:%M}) est connue alors "
        f"qu'une valeur plus récente, non critique, l'est aussi ({_ca(newer)} mmol/L, prélevée le "
        f"{newer_at:%d/%m/%Y à %H:%M}). "
        "Elle ne décrit plus l'état actuel : pas d'alerte de crise ni de conduite d'urgence sur cette seule valeur. "
        "L'épisode est enregistré comme événement osseux passé (SRE historique). Vérifier que la valeur récente "
        "correspond bien au patient et à la situation clinique."
    )


def stale_crisis_text(value: float, at: datetime, window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return (
        f"La calcémie corrigée la plus récente est une valeur de crise ({_ca(value)} mmol/L) mais elle date du "
        f"{at:%d/%m/%Y à %H:%M}, il y a plus de {hours:g} h : elle ne suffit pas à décider d'une urgence actuelle. "
        "Recontrôler la calcémie et l'albuminémie sans délai."
    )


def future_value_text(at: datetime) -> str:
    return (
        f"Une calcémie corrigée est datée du {at:%d/%m/%Y à %H:%M}, dans le futur : elle est ignorée pour toute "
        "décision (ni crise, ni valeur la plus récente). Faire corriger la date du prélèvement à la source."
    )


def _points(scored: r.Scored) -> str:
    return ", ".join(f"{i.name} {i.points if i.points is not None else '?'}" for i in scored.items)


@dataclass(frozen=True)
class Survival:
    """A life-expectancy estimate and what remains of it now (months)."""

    estimate: float
    estimated_at: datetime
    remaining: float

    def fr(self) -> str:
        return (
            f"espérance de vie (estimation du {self.estimated_at:%d/%m/%Y} : {self.estimate:g} mois, soit "
            f"~{self.remaining:.1f} mois restants)"
        )


PATIENT_PAIN_NOTE = "La douleur propre à cette lésion n'est pas renseignée (la douleur globale ne la remplace pas). "


def stale_pain_note(at: datetime, days: int) -> str:
    return (
        f"La douleur de cette lésion, évaluée le {at:%d/%m/%Y}, n'est plus actuelle (plus de {days} jours, ou datée "
        "dans le futur) : la réévaluer ; elle est comptée comme manquante. "
    )


def mirels_text(
    lesion: str,
    m: r.Scored,
    lo: int,
    hi: int,
    decision: str | None,
    survival: Survival | None,
    ct: bool,
    pain_note: str | None = None,
) -> str:
    if m.total is not None:
        head = f"Score de Mirels {m.total}/12 pour {lesion} ({_points(m)}). "
    elif decision is not None and decision != "doubt":
        bound = f"d'au moins {lo}/12" if lo >= 9 else f"d'au plus {hi}/12"
        head = (
            f"Score de Mirels incomplet pour {lesion} ({_points(m)}), il manque {', '.join(m.missing)} : score "
            f"{bound} quelle que soit la valeur manquante, ce qui suffit à décider. "
        )
    else:
        head = (
            f"Score de Mirels incomplet pour {lesion} ({_points(m)}) : il manque {', '.join(m.missing)}. Score entre "
            f"{lo} et {hi}/12 : la conduite à tenir dépend de la valeur manquante. "
        )
    # L1340-1346, for a decision of fixation first only (the caller decides)
    ct_note = (
        " Au scanner, ostéolyse corticale > 30 % en axial et > 50 % en circonférence : discuter une "
        "chirurgie de consolidation première."
        if ct
        else ""
    )
    if pain_note is not None:
        head += pain_note
    if decision is None:
        return head.strip() + ct_note
    le = survival.fr() if survival is not None else "espérance de vie non connue"
    if decision == "low":
        advice = "Risque fracturaire faible : radiothérapie seule et surveillance."
    elif decision == "rcp":
        advice = (
            "Score intermédiaire : discuter la conduite à tenir en RCP-OOS (chirurgien, radiologue "
            "interventionnel, rhumatologue, radiothérapeute)."
        )
    elif decision == "doubt":
        advice = (
            f"En cas de doute, discuter la conduite à tenir en RCP-OOS (chirurgien, radiologue interventionnel, "
            f"rhumatologue, radiothérapeute), et renseigner {', '.join(m.missing)} pour lever le doute."
        )
    elif decision == "fixation":
        advice = (
            f"Risque fracturaire élevé, {le} : avis chirurgical pour fixation prophylactique première, puis "
            "radiothérapie post-opératoire."
        )
    elif decision == "short_survival":
        advice = (
            f"Risque fracturaire élevé mais {le}, soit 3 mois ou moins : la fixation prophylactique première n'est "
            "pas indiquée. Discuter en RCP-OOS une radiothérapie (schéma fractionné préféré en cas de risque "
            "fracturaire) et, selon l'état général, une stabilisation plus simple ; antalgie."
        )
    elif decision == "no_surgery":
        advice = (
            f"Risque fracturaire élevé mais {le}, soit moins de 6 semaines : pas de chirurgie, qui n'apporterait "
            "pas de bénéfice. Antalgie efficace, éventuellement radiothérapie."
        )
    else:
        advice = (
            "Risque fracturaire élevé : la fixation prophylactique première n'est indiquée qu'avec une espérance de "
            "vie > 3 mois, non renseignée ou trop ancienne ici. Estimer (à nouveau) l'espérance de vie."
        )
    return head + advice + ct_note


def sins_text(where: str, scored: r.Scored, band: str | None, decision: bool = False) -> str:
    labels = {"stable": "stable", "potentially_unstable": "potentiellement instable", "unstable": "instable"}
    if scored.total is None:
        text = (
            f"SINS incomplet en {where} ({_points(scored)}) : il manque {', '.join(scored.missing)}. "
            f"Score d'au moins {scored.known_points}/18."
        )
        return text + (" Cela suffit à justifier un avis chirurgical." if decision else "")
    text = f"SINS {scored.total}/18 en {where} ({_points(scored)}) : lésion {labels[band or 'stable']}."
    if decision:
        text += (
            " Avis chirurgical urgent (décompression et/ou stabilisation)."
            if scored.total >= 13
            else " Avis chirurgical nécessaire."
        )
    return text


def oligo_text(status: r.OligoStatus, extra_known: bool = True, not_current: list[str] | None = None) -> str:
    names = {
        "sites_1_to_3": "1 à 3 sites atteints",
        "metastases_1_to_5": "1 à 5 métastases",
        "each_under_5_cm": "chacune < 5 cm",
        "primary_controlled": "primitif contrôlé ou stable",
        "extra_osseous_stable": "maladie extra-osseuse stable",
    }
    parts = [
        f"{names[c.name]} : {'oui' if c.met else 'non' if c.met is False else 'indéterminé'}"
        + (f" ({c.value})" if c.value is not None and not isinstance(c.value, bool) else "")
        for c in status.criteria
    ]
    verdict = {
        "oligometastatic": "Statut oligométastatique",
        "multi_metastatic": "Statut plurimétastatique",
        "undetermined": "Statut oligométastatique indéterminé",
    }[status.status]
    why = ""
    if status.failing:
        why = f" Critère(s) non rempli(s) : {', '.join(names[f] for f in status.failing)}."
    elif status.missing:
        why = f" Critère(s) indéterminé(s) : {', '.join(names[f] for f in status.missing)}."
    counting = (
        " Sont comptés chaque site osseux et chaque organe extra-osseux atteints, et toutes les métastases "
        "osseuses et extra-osseuses ; une lésion osseuse suspecte non confirmée élargit la fourchette."
    )
    if not extra_known:
        counting += " Les métastases extra-osseuses (nombre, sites, stabilité) ne sont pas renseignées."
    stale = {"primary_controlled": "contrôle du primitif", "extra_osseous": "maladie extra-osseuse"}
    if not_current:
        counting += (
            f" Donnée(s) de bilan non actuelle(s) (trop ancienne(s) ou datée(s) dans le futur), non utilisée(s) : "
            f"{', '.join(stale[n] for n in not_current)} ; réévaluer."
        )
    return f"{verdict} ({'; '.join(parts)}).{why}{counting}"


def flare_text(lesion: str, modality: str, reading: r.FlareReading, egfr: bool) -> str:
    drug = reading.treatment
    since = f"{drug.drug} ({drug.on:%d/%m/%Y})" if drug else ""
    if reading.reading == "flare" and drug is not None:
        text = (
            f"Nouveau foyer ({lesion}, {modality}) moins de 6 mois après le début du traitement anticancéreux "
            f"{since} : possible phénomène de flare (reconstruction osseuse sous traitement efficace). Ce n'est pas "
            "à lui seul un signe de progression : ne pas arrêter le traitement sur ce seul argument ; confronter à "
            "la clinique, aux radiographies et aux marqueurs."
        )
        return text + (" Situation classique sous ITK de l'EGFR." if egfr else "")
    if reading.reading == "unknown":
        unknown = ", ".join(f"{x.drug} ({x.on:%d/%m/%Y})" for x in reading.unknown_drugs)
        before = f" Dernier traitement anticancéreux connu : {since}." if drug else ""
        return (
            f"Nouveau foyer ({lesion}, {modality}) : {unknown} a débuté moins de 6 mois avant, mais sa classe est "
            "inconnue d'OsteoCDS (anticancéreux ou non). Impossible de dire s'il s'agit d'un possible flare ou d'une "
            f"progression.{before} Préciser la nature du traitement."
        )
    return (
        f"Nouveau foyer ({lesion}, {modality}) plus de 6 mois après le début du traitement anticancéreux {since} : "
        "au-delà de ce délai, l'apparition de nouveaux foyers est en faveur d'une progression ; à discuter. Les "
        "traitements de support (vitamine D, calcium, corticoïdes, antalgiques...) et les anti-résorptifs ne "
        "comptent pas comme traitement efficace."
    )


def isolated_text(lesion: str, modalities: str) -> str:
    return (
        f"Lésion osseuse unique ({lesion}), non confirmée, vue en {modalities} : réaliser une imagerie ciblée "
        "(scanner ou IRM), puis demander un avis spécialisé (diagnostics différentiels fréquents). Tant qu'elle "
        "n'est pas confirmée, elle n'est ni comptée comme métastase ni comme événement osseux."
    )


def _future_records(dates: list[datetime]) -> tuple[str, str, bool]:
    """ "un enregistrement daté" or the plural, their times, and whether there is one (HAZ-27-FUTURE-HIDES texts)."""
    one = len(dates) <= 1
    when = ", ".join(f"{at:%d/%m/%Y à %H:%M}" for at in sorted(dates))
    return ("un enregistrement daté" if one else "des enregistrements datés"), when, one


def to_verify_text(dates: list[datetime]) -> str:
    """HAZ-27-FUTURE-HIDES: a decision made from the current data alone, which a record dated in the future
    contradicts (services/scoring/as_of.py)."""
    records, when, one = _future_records(dates)
    return (
        f"À vérifier : {records} du {when}, dans le futur "
        f"pour l'horloge du service, {'contredit' if one else 'contredisent'} cette décision, prise sur les seules "
        "données actuelles. Vérifier la date de cet enregistrement (horloge de la source) et son contenu."
    )


def rests_on_future_text(dates: list[datetime]) -> str:
    """HAZ-27-FUTURE-HIDES (review R29-SC): an emergency kept although the current data alone do not give it: it
    rests on a record dated in the future (services/scoring/as_of.py)."""
    records, when, _ = _future_records(dates)
    return (
        f"À vérifier : cette décision repose sur {records} du "
        f"{when}, dans le futur pour l'horloge du service ; les seules données actuelles ne la donnent pas. Maintenue "
        "par prudence : vérifier la date de cet enregistrement (horloge de la source) et son contenu."
    )
