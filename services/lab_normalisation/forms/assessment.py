"""The form of a clinical assessment (hospital.clinical-assessments.v1): performance status, life expectancy, pain, and
the facts the rules read as booleans (neurological deficit, frailty...). Pure, no I/O."""

from __future__ import annotations

from typing import Final

from services.lab_normalisation.forms.choices import LESION_PAIN_MAX, PAIN_CHARACTER, PAIN_INTENSITY, _correction
from services.lab_normalisation.forms.model import Form, Group, Question, _opts

_BOOLEANS_ASSESSMENT: Final = (
    ("neurological_deficit", "Déficit neurologique"),
    ("primary_controlled", "Tumeur primitive contrôlée"),
    ("frail", "Patient âgé ou fragile, état général altéré"),
    ("hard_to_move", "Patient difficilement mobilisable"),
    ("mri_contraindicated", "IRM contre-indiquée"),
    ("opioid_complications", "Complication ou mauvaise tolérance des opioïdes"),
    ("diffuse_pain", "Douleur diffuse, non localisée"),
    ("radiculopathy", "Radiculopathie"),
    ("active_infection", "Infection générale ou au point de ponction"),
    ("cement_allergy", "Allergie au ciment"),
    ("severe_coagulation_disorder", "Trouble sévère de la coagulation"),
)

ASSESSMENT = Form(
    "assessment",
    "Évaluation clinique",
    "État général (ECOG), douleur globale et par lésion, espérance de vie estimée, neurologie, maladie "
    "extra-osseuse. Un champ laissé vide ne change pas ce qui est connu.",
    (
        Question(
            "ecog",
            "ECOG (0-4)",
            "integer",
            "assessment.ecog",
            minimum=0,
            maximum=4,
            loinc=("89247-1", "ECOG Performance Status score"),
        ),
        Question(
            "life_expectancy_months",
            "Espérance de vie estimée (mois)",
            "decimal",
            "assessment.life_expectancy_months",
            minimum=0,
            maximum=240,
            unit="mo",
        ),
        Group(
            "pain",
            "Douleur globale du patient (jamais prise pour la douleur d'une lésion)",
            "assessment.pain",
            (
                Question("pain.intensity", "Intensité", "choice", "intensity", options=PAIN_INTENSITY),
                Question("pain.character", "Caractère", "choice", "character", options=PAIN_CHARACTER),
                Question(
                    "pain.nrs",
                    "EN 0-10",
                    "integer",
                    "nrs",
                    minimum=0,
                    maximum=10,
                    loinc=("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
                ),
                Question("pain.resistant", "Résistante aux antalgiques", "boolean", "resistant_to_analgesics"),
            ),
        ),
        Group(
            "lesion_pain",
            "Douleur par lésion (Mirels, SINS)",
            "assessment.lesion_pain",
            (
                Question(
                    "lesion_pain.lesion_id",
                    "Identifiant de la lésion",
                    "string",
                    "lesion_id",
                    required=True,
                    max_length=64,
                ),
                Question(
                    "lesion_pain.intensity",
                    "Intensité (Mirels)",
                    "choice",
                    "intensity",
                    options=PAIN_INTENSITY,
                    score_item=("mirels", "pain"),
                ),
                Question(
                    "lesion_pain.character",
                    "Caractère (SINS)",
                    "choice",
                    "character",
                    options=PAIN_CHARACTER,
                    score_item=("sins", "pain"),
                ),
                Question(
                    "lesion_pain.nrs",
                    "EN 0-10",
                    "integer",
                    "nrs",
                    minimum=0,
                    maximum=10,
                    loinc=("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
                ),
                Question("lesion_pain.resistant", "Résistante aux antalgiques", "boolean", "resistant_to_analgesics"),
            ),
            repeats=True,
            max_occurs=LESION_PAIN_MAX,
            unique="lesion_pain.lesion_id",
        ),
        Group(
            "extra_osseous",
            "Métastases extra-osseuses",
            "assessment.extra_osseous_metastases",
            (
                Question("extra_osseous.count", "Nombre (0 : aucune)", "integer", "count", required=True, minimum=0),
                Question("extra_osseous.sites", "Organes atteints", "string", "sites", repeats=True, max_length=64),
                Question("extra_osseous.stable", "Maladie extra-osseuse stable", "boolean", "stable"),
                Question(
                    "extra_osseous.largest_size_cm",
                    "Taille de la plus grande (cm)",
                    "decimal",
                    "largest_size_cm",
                    minimum=0,
                    maximum=50,
                ),
            ),
        ),
        Question(
            "oncological_response",
            "Réponse oncologique",
            "choice",
            "assessment.oncological_response",
            options=_opts(
                ("complete", "Complète"),
                ("good", "Bonne"),
                ("partial", "Partielle"),
                ("stable", "Stable"),
                ("progression", "Progression"),
            ),
        ),
        *(Question(name, text, "boolean", f"assessment.{name}") for name, text in _BOOLEANS_ASSESSMENT),
        *_correction("assessment", "évaluation"),
    ),
    ("hospital.clinical-assessments.v1",),
)
