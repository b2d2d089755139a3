"""The form of a treatment received (hospital.treatment-events.v1): a radiotherapy course (cord dose), a surgery, a
systemic drug started or stopped, a drug administration, a metabolic radiotherapy, dental care. Pure, no I/O."""

from __future__ import annotations

from services.lab_normalisation.forms.choices import VERTEBRAL_LEVELS, _correction
from services.lab_normalisation.forms.model import Form, Option, Question, _opts

_RT, _SURG, _SYS, _ADM, _MET, _DENT = (
    ("radiotherapy",),
    ("surgery",),
    ("systemic_drug",),
    ("drug_administration",),
    ("metabolic_radiotherapy",),
    ("dental",),
)


def _k(kind: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    return ("kind", kind)


TREATMENT_EVENT = Form(
    "treatment-event",
    "Évènement de traitement",
    "Un traitement reçu : radiothérapie (dose à la moelle), chirurgie, traitement systémique débuté ou arrêté, "
    "administration d'un médicament, radiothérapie métabolique, soins dentaires.",
    (
        Question(
            "kind",
            "Type de traitement",
            "choice",
            "treatment.kind",
            required=True,
            options=_opts(
                ("radiotherapy", "Radiothérapie"),
                ("surgery", "Chirurgie"),
                ("systemic_drug", "Traitement systémique (début, arrêt)"),
                ("drug_administration", "Administration d'un médicament"),
                ("metabolic_radiotherapy", "Radiothérapie métabolique"),
                ("dental", "Soins dentaires"),
            ),
        ),
        # radiotherapy course
        Question("rt.site", "Site irradié", "string", "treatment.site", required=True, when=_k(_RT), max_length=64),
        Question(
            "rt.vertebral_level",
            "Niveau(x) vertébral(aux), ex. T8 ou T7-T9",
            "string",
            "treatment.vertebral_level",
            when=_k(_RT),
            max_length=64,
            spinal_levels=True,
        ),
        Question("rt.lesion_id", "Lésion", "string", "treatment.lesion_id", when=_k(_RT), max_length=64),
        Question(
            "rt.total_dose_gy",
            "Dose totale (Gy)",
            "decimal",
            "treatment.total_dose_gy",
            required=True,
            minimum=0,
            maximum=100,
            unit="Gy",
            when=_k(_RT),
        ),
        Question(
            "rt.fractions",
            "Fractions",
            "integer",
            "treatment.fractions",
            required=True,
            minimum=1,
            maximum=50,
            when=_k(_RT),
        ),
        Question("rt.on", "Première séance", "date", "treatment.on", required=True, when=_k(_RT)),
        # a course under way: its last fraction is planned (RT-DRUG "after" windows count from it)
        Question(
            "rt.end_on", "Dernière séance", "date", "treatment.end_on", when=_k(_RT), not_before="rt.on", future=True
        ),
        Question(
            "rt.cord_dmax_gy",
            "Dmax moelle (Gy)",
            "decimal",
            "treatment.cord_dmax_gy",
            minimum=0,
            maximum=100,
            unit="Gy",
            when=_k(_RT),
        ),
        Question(
            "rt.intent",
            "Intention",
            "choice",
            "treatment.intent",
            options=_opts(
                ("pain", "Antalgique"),
                ("preventive", "Préventive"),
                ("cord_compression", "Compression médullaire"),
                ("postoperative", "Post-opératoire"),
                ("ablative", "Ablative"),
            ),
            when=_k(_RT),
        ),
        Question(
            "rt.technique",
            "Technique",
            "choice",
            "treatment.technique",
            options=_opts(("conventional", "Conventionnelle"), ("sbrt", "Stéréotaxique")),
            when=_k(_RT),
        ),
        # surgery
        Question(
            "surgery.site", "Site opéré", "string", "treatment.site", required=True, when=_k(_SURG), max_length=64
        ),
        Question(
            "surgery.procedure",
            "Intervention",
            "choice",
            "treatment.procedure",
            required=True,
            options=_opts(
                ("prophylactic_fixation", "Fixation prophylactique"),
                ("fracture_fixation", "Ostéosynthèse d'une fracture"),
                ("decompression", "Décompression"),
                ("resection", "Résection"),
                ("other", "Autre"),
            ),
            when=_k(_SURG),
        ),
        Question("surgery.on", "Date", "date", "treatment.on", required=True, when=_k(_SURG)),
        Question("surgery.lesion_id", "Lésion", "string", "treatment.lesion_id", when=_k(_SURG), max_length=64),
        Question(
            "surgery.vertebral_level",
            "Niveau vertébral",
            "choice",
            "treatment.vertebral_level",
            options=tuple(Option(o.code, o.display) for o in VERTEBRAL_LEVELS),
            when=_k(_SURG),
        ),
        # systemic drug started / stopped
        Question(
            "systemic.drug",
            "Médicament (DCI ou nom commercial)",
            "string",
            "treatment.drug",
            required=True,
            when=_k(_SYS),
            max_length=64,
        ),
        Question("systemic.atc_code", "Code ATC", "string", "treatment.atc_code", when=_k(_SYS)),
        Question(
            "systemic.action",
            "Début ou arrêt",
            "choice",
            "treatment.action",
            required=True,
            options=_opts(("started", "Début"), ("stopped", "Arrêt")),
            when=_k(_SYS),
        ),
        Question("systemic.on", "Date", "date", "treatment.on", required=True, when=_k(_SYS)),
        # drug administration
        Question(
            "administration.drug",
            "Médicament (DCI ou nom commercial)",
            "string",
            "treatment.drug",
            required=True,
            when=_k(_ADM),
            max_length=64,
        ),
        Question("administration.atc_code", "Code ATC", "string", "treatment.atc_code", when=_k(_ADM)),
        Question(
            "administration.on", "Date de la (dernière) prise", "date", "treatment.on", required=True, when=_k(_ADM)
        ),
        Question(
            "administration.daily_dose_mg",
            "Dose quotidienne (mg)",
            "decimal",
            "treatment.daily_dose_mg",
            minimum=0,
            maximum=10000,
            unit="mg",
            when=_k(_ADM),
        ),
        Question("administration.ongoing", "Toujours en cours", "boolean", "treatment.ongoing", when=_k(_ADM)),
        # metabolic radiotherapy
        Question(
            "metabolic.agent",
            "Agent (ex. radium-223)",
            "string",
            "treatment.agent",
            required=True,
            when=_k(_MET),
            max_length=64,
        ),
        Question("metabolic.on", "Date", "date", "treatment.on", required=True, when=_k(_MET)),
        # dental care
        Question(
            "dental.action",
            "Acte dentaire",
            "choice",
            "treatment.action",
            required=True,
            options=_opts(
                ("assessment", "Bilan"), ("extraction", "Extraction"), ("jaw_bone_exposure", "Exposition osseuse")
            ),
            when=_k(_DENT),
        ),
        Question("dental.on", "Date", "date", "treatment.on", required=True, when=_k(_DENT)),
        Question(
            "dental.orthopantomogram",
            "Panoramique dentaire fait",
            "boolean",
            "treatment.orthopantomogram",
            when=_k(_DENT),
        ),
        Question(
            "dental.cleared",
            "Accord du dentiste pour débuter",
            "boolean",
            "treatment.cleared_for_antiresorptive",
            when=_k(_DENT),
        ),
        *_correction("treatment_event", "évènement"),
    ),
    ("hospital.treatment-events.v1",),
)
