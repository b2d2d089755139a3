"""French clinician-facing texts of the QUAL-PATHWAY and MOL-BIOPSY plan sections, written for OsteoCDS."""

from __future__ import annotations

from contracts.care import PathwayStep
from services.systemic_planner.fr import fr_date

# ---- QUAL-PATHWAY and MOL-BIOPSY ---------------------------------------------------------------------------------
PATHWAY_FR = {
    "multidisciplinary_decision": "Décision en réunion pluridisciplinaire, transmise au médecin traitant",
    "patient_information": "Information du patient et des proches, documents remis",
    "smoking_cessation": "Aide à l'arrêt du tabac",
    "pain_management": "Prise en charge de la douleur",
    "palliative_supportive_care": "Soins palliatifs et soins de support",
    "psychologist": "Psychologue (patient et proches)",
    "social_worker": "Assistante sociale",
    "occupational_exposure": "Recherche d'une exposition professionnelle (déclaration, réparation)",
    "oncogenetics": "Consultation d'oncogénétique si plusieurs cancers dans la famille",
    "clinical_trial": "Proposition d'un essai clinique",
}
_PATHWAY_STATUS_FR = {"done": "fait", "to_do": "à faire", "declined": "refusé", "not_applicable": "sans objet"}


def pathway_line(name: str, step: PathwayStep) -> str:
    return f"{PATHWAY_FR[name]} : {_PATHWAY_STATUS_FR[step.status]} le {fr_date(step.on)}."


def pathway_not_waivable(name: str, step: PathwayStep) -> str:
    return (
        f"{PATHWAY_FR[name]} : noté « sans objet » le {fr_date(step.on)}, mais le référentiel le prévoit de façon "
        "systématique pour tout patient : à proposer ou à réaliser (un refus du patient est enregistré comme tel)."
    )


def pathway_not_declinable(name: str, step: PathwayStep) -> str:
    return (
        f"{PATHWAY_FR[name]} : noté « refusé » le {fr_date(step.on)}, mais la discussion pluridisciplinaire de la "
        "prise en charge incombe à l'équipe soignante et ne dépend pas de l'accord du patient : à organiser (le "
        "refus d'un traitement proposé s'enregistre sur ce traitement)."
    )


def pathway_text(todo: list[str]) -> str:
    if not todo:
        return "Tous les éléments du parcours de soins ont été proposés (faits, refusés ou sans objet)."
    return "Parcours de soins : reste à proposer ou vérifier : " + "; ".join(PATHWAY_FR[n] for n in todo) + "."


def biopsy_planned_text(tki_resistance: bool) -> str:
    text = (
        "Prélever à la périphérie de la lésion (zone entre tumeur et os), environ deux carottes de 1 cm au trocart "
        "14 G. Fixer rapidement au formol tamponné au moins 6 heures ; si une décalcification est nécessaire, "
        "l'EDTA ou l'acide formique seulement, après fixation complète, jamais un acide fort (l'ADN serait "
        "détruit et la biologie moléculaire impossible). Une biopsie par cassette."
    )
    if tki_resistance:
        text += " Biopsie de résistance à un inhibiteur de tyrosine kinase : rechercher les mutations de résistance."
    return text


BIOPSY_STRONG_ACID_TEXT = (
    "La biopsie osseuse a été décalcifiée par un acide fort : l'ADN est le plus souvent dégradé et les analyses "
    "moléculaires risquent d'échouer. Discuter une nouvelle biopsie décalcifiée à l'EDTA ou à l'acide formique."
)

_HISTOLOGY_FR = {
    "adenocarcinoma": "adénocarcinome",
    "squamous_cell": "carcinome épidermoïde",
    "large_cell": "carcinome à grandes cellules",
    "nsclc_nos": "carcinome non à petites cellules sans autre précision",
    "small_cell": "carcinome à petites cellules",
    "other": "autre histologie",
}


def biopsy_unknown_histology_text(histology: str | None) -> str:
    if histology is None:
        return "Histologie de la biopsie osseuse non renseignée : les tests moléculaires attendus en dépendent."
    return (
        f"Biopsie osseuse : {_HISTOLOGY_FR[histology]}. Le référentiel ne fixe les tests moléculaires que pour "
        "l'adénocarcinome et le carcinome épidermoïde ; pour un carcinome indifférencié, l'immunohistochimie "
        "(CK7, TTF1, p40, bleu alcian) aide à trancher. Décision en réunion pluridisciplinaire."
    )


def biopsy_reported_title(histology: str | None, tests: bool) -> str:
    name = _HISTOLOGY_FR.get(histology or "", "histologie inconnue")
    return f"Biopsie osseuse ({name}) : " + ("tests moléculaires attendus" if tests else "pas de test moléculaire")


#: issue 18: molecular results that are not results, as said to clinicians (MOL-BIOPSY)
UNUSABLE_FR = {
    "failed": "Analyse non aboutie, à refaire (nouvelle biopsie si le matériel ou l'ADN est insuffisant)",
    "not_done": "Analyse non réalisée",
    "pending": "Résultat en attente",
    "qualified": "Résultat rendu sous réserve (qualité, cellularité ou sensibilité insuffisante), à confirmer",
    "unrecognised": "Résultat non reconnu, à vérifier sur le compte rendu",
}


def biopsy_reported_text(
    expected: tuple[str, ...],
    done: list[tuple[str, str]],
    by_kind: dict[str, list[tuple[str, str]]],
    missing: list[str],
) -> str:
    """`done`: (marker, reported result) of the usable results; `by_kind`: the others by kind (UNUSABLE_FR)."""
    if not expected:
        return "Carcinome épidermoïde : aucune recherche moléculaire n'est recommandée à ce jour."
    text = (
        "Adénocarcinome : tous les biomarqueurs recommandés pour la tumeur primitive s'appliquent à la métastase "
        "osseuse, en priorité EGFR, ALK et KRAS ; PD-L1 en immunohistochimie est fiable sur l'os."
    )
    if done:
        text += " Résultats : " + "; ".join(f"{m} : {v}" for m, v in done) + "."
    for kind, said in UNUSABLE_FR.items():
        if by_kind.get(kind):
            text += f" {said} : " + ", ".join(f"{m} ({v})" for m, v in by_kind[kind]) + "."
    if missing:
        text += " Manquent : " + ", ".join(missing) + "."
    return text
