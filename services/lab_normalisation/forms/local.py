"""The forms of local treatment: a surgeon's opinion on operability (RT-MSCC, SURG-LE) and a request for local
treatment (hospital.local-treatment-requests.v1) with the earlier courses on the segment (RT-REIRR). Pure, no I/O."""

from __future__ import annotations

from services.lab_normalisation.forms.choices import PREVIOUS_COURSES_MAX, _correction
from services.lab_normalisation.forms.model import Form, Group, Question, _opts

SURGICAL_OPINION = Form(
    "surgical-opinion",
    "Avis chirurgical",
    "L'avis d'un chirurgien sur l'opérabilité, pour une lésion ou pour le patient (RT-MSCC, SURG-LE).",
    (
        Question("operable", "Opérable", "boolean", "opinion.operable", required=True),
        Question("on", "Date de l'avis", "date", "opinion.on", required=True),
        Question("lesion_id", "Lésion concernée (vide : le patient)", "string", "opinion.lesion_id", max_length=64),
        *_correction("assessment", "avis"),
    ),
    ("hospital.clinical-assessments.v1",),
)

_COURSE = (
    Question("previous.on", "Première séance", "date", "on", required=True),
    Question("previous.end_on", "Dernière séance", "date", "end_on", not_before="previous.on"),
    Question(
        "previous.total_dose_gy", "Dose totale (Gy)", "decimal", "total_dose_gy", minimum=0, maximum=100, unit="Gy"
    ),
    Question("previous.fractions", "Fractions", "integer", "fractions", required=True, minimum=1, maximum=50),
    Question("previous.cord_dmax_gy", "Dmax moelle (Gy)", "decimal", "cord_dmax_gy", minimum=0, maximum=100, unit="Gy"),
)

LOCAL_TREATMENT_REQUEST = Form(
    "local-treatment-request",
    "Demande de traitement local",
    "Une demande de décision de traitement local pour une lésion : radiothérapie, SBRT, réirradiation, "
    "cimentoplastie ou chirurgie. Une demande de même identifiant remplace la précédente ; « annulée » la retire.",
    (
        Question("request_id", "Identifiant de la demande", "string", "request.request_id", required=True),
        Question("lesion_id", "Lésion", "string", "request.lesion_id", required=True, max_length=64),
        Question(
            "modality",
            "Modalité",
            "choice",
            "request.modality",
            required=True,
            options=_opts(
                ("palliative_rt", "Radiothérapie palliative"),
                ("sbrt", "Radiothérapie stéréotaxique (SBRT)"),
                ("reirradiation", "Réirradiation"),
                ("cementoplasty", "Cimentoplastie"),
                ("surgery", "Chirurgie"),
            ),
        ),
        Question(
            "intent",
            "Intention",
            "choice",
            "request.intent",
            options=_opts(
                ("pain", "Antalgique"),
                ("fracture_risk", "Risque fracturaire"),
                ("cord_compression", "Compression médullaire"),
                ("postoperative", "Post-opératoire"),
                ("ablative_oligometastatic", "Ablative (oligométastatique)"),
                ("stabilisation", "Stabilisation"),
            ),
        ),
        Question(
            "total_dose_gy",
            "Dose totale proposée (Gy)",
            "decimal",
            "request.total_dose_gy",
            minimum=0,
            maximum=100,
            unit="Gy",
        ),
        Question("fractions", "Fractions proposées", "integer", "request.fractions", minimum=1, maximum=50),
        Question(
            "planned_cord_dmax_gy",
            "Dmax moelle prévue (Gy)",
            "decimal",
            "request.planned_cord_dmax_gy",
            minimum=0,
            maximum=100,
            unit="Gy",
        ),
        Question(
            "adjacent_vertebrae",
            "Vertèbres pathologiques adjacentes dans le volume",
            "integer",
            "request.adjacent_vertebrae",
            minimum=1,
            maximum=33,
        ),
        Group(
            "previous",
            "Irradiations antérieures de ce segment",
            "request.previous_courses",
            _COURSE,
            repeats=True,
            max_occurs=PREVIOUS_COURSES_MAX,
        ),
        Question(
            "cord_dose_excludes_conventional",
            "La dose déjà reçue par la moelle exclut une radiothérapie conventionnelle",
            "boolean",
            "request.cord_dose_excludes_conventional",
        ),
        Question(
            "other_techniques_excluded",
            "Chirurgie et radiothérapie jugées inefficaces ou non indiquées",
            "boolean",
            "request.other_techniques_excluded",
        ),
        Question("planned_on", "Date prévue", "date", "request.planned_on", future=True),
        Question("urgent", "Urgence clinique", "boolean", "request.urgent"),
        Question(
            "status",
            "Statut de la demande",
            "choice",
            "request.status",
            options=_opts(("active", "Active"), ("cancelled", "Annulée")),
        ),
    ),
    ("hospital.local-treatment-requests.v1",),
)
