"""French clinician-facing texts of the scoring service, written for OsteoCDS (not quoted from the guideline)."""

from __future__ import annotations

from datetime import date

from services.scoring import rules as r


def crisis_text(value: float) -> str:
    return (
        f"Calcémie corrigée à {value:.2f} mmol/L (seuil de crise : > 3,5 mmol/L). Situation pouvant engager le "
        "pronostic vital : prise en charge en urgence. Cette hypercalcémie compte comme événement osseux (SRE)."
    )


def unconfirmed_crisis_text(measured: float) -> str:
    return (
        f"Calcémie totale mesurée à {measured:.2f} mmol/L, au-dessus du seuil de crise, sans albuminémie "
        "contemporaine : la calcémie corrigée ne peut être calculée. Doser l'albumine en urgence."
    )


def _points(scored: r.Scored) -> str:
    return ", ".join(f"{i.name} {i.points if i.points is not None else '?'}" for i in scored.items)


def mirels_text(lesion: str, m: r.Scored, decision: str | None, life_expectancy: float | None, ct: bool | None) -> str:
    if m.total is None:
        return (
            f"Score de Mirels incomplet pour {lesion} ({_points(m)}) : il manque {', '.join(m.missing)}. "
            "Aucune conclusion n'est tirée d'un score partiel."
        )
    head = f"Score de Mirels {m.total}/12 pour {lesion} ({_points(m)}). "
    ct_note = ""
    if ct:
        ct_note = (
            " Au scanner, ostéolyse corticale > 30 % en axial et > 50 % en circonférence : discuter une "
            "chirurgie de consolidation première."
        )
    if decision is None:
        return head + ct_note.strip()
    if decision == "low":
        advice = "Risque fracturaire faible : radiothérapie seule et surveillance."
    elif decision == "rcp":
        advice = (
            "Score intermédiaire : discuter la conduite à tenir en RCP-OOS (chirurgien, radiologue "
            "interventionnel, rhumatologue, radiothérapeute)."
        )
    elif decision == "fixation":
        advice = (
            f"Risque fracturaire élevé avec une espérance de vie estimée à {life_expectancy:g} mois : avis "
            "chirurgical pour fixation prophylactique première, puis radiothérapie post-opératoire."
        )
    elif decision == "high_short_survival":
        advice = (
            f"Risque fracturaire élevé mais espérance de vie estimée à {life_expectancy:g} mois (≤ 3 mois) : "
            "la fixation prophylactique n'est pas recommandée d'emblée ; discuter en RCP-OOS "
            "(radiothérapie antalgique)."
        )
    else:
        advice = (
            "Risque fracturaire élevé : l'indication de fixation prophylactique dépend de l'espérance de vie "
            "(> 3 mois), non renseignée. Estimer l'espérance de vie."
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


def oligo_text(status: r.OligoStatus) -> str:
    names = {
        "sites_1_to_3": "1 à 3 sites",
        "metastases_1_to_5": "1 à 5 métastases",
        "each_under_5_cm": "chacune < 5 cm",
        "primary_controlled": "primitif contrôlé ou stable",
    }
    parts = [f"{names[c.name]} : {'oui' if c.met else 'non' if c.met is False else 'inconnu'}" for c in status.criteria]
    verdict = {
        "oligometastatic": "Statut oligométastatique",
        "multi_metastatic": "Statut plurimétastatique",
        "undetermined": "Statut oligométastatique indéterminé",
    }[status.status]
    why = ""
    if status.failing:
        why = f" Critère(s) non rempli(s) : {', '.join(names[f] for f in status.failing)}."
    elif status.missing:
        why = f" Donnée(s) manquante(s) : {', '.join(names[f] for f in status.missing)}."
    return (
        f"{verdict} ({'; '.join(parts)}).{why} Seules les lésions osseuses connues d'OsteoCDS sont comptées ; "
        "les métastases extra-osseuses doivent être vérifiées."
    )


def flare_text(lesion: str, modality: str, drug: str, started: date, flare: bool, egfr: bool) -> str:
    if flare:
        text = (
            f"Nouveau foyer ({lesion}, {modality}) moins de 6 mois après le début de {drug} "
            f"({started:%d/%m/%Y}) : possible phénomène de flare (reconstruction osseuse sous traitement "
            "efficace). Ce n'est pas à lui seul un signe de progression : ne pas arrêter le traitement sur ce "
            "seul argument ; confronter à la clinique, aux radiographies et aux marqueurs."
        )
        return text + (" Situation classique sous ITK de l'EGFR." if egfr else "")
    return (
        f"Nouveau foyer ({lesion}, {modality}) plus de 6 mois après le début de {drug} ({started:%d/%m/%Y}) : "
        "au-delà de ce délai, l'apparition de nouveaux foyers est en faveur d'une progression ; à discuter."
    )


def isolated_text(lesion: str, modalities: str) -> str:
    return (
        f"Lésion osseuse unique ({lesion}) vue seulement en {modalities} : réaliser une imagerie ciblée "
        "(scanner ou IRM), puis demander un avis spécialisé (diagnostics différentiels fréquents)."
    )
