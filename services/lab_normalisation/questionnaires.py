"""Clinician entry (issue 23): the forms, described once in Python. From this one description come the FHIR R4
Questionnaires the intake serves (`questionnaire`), which the French forms page renders as they are (so the page and
the Questionnaire cannot drift), and the reading of a QuestionnaireResponse (`questionnaires_map.read_response`).

Each answer option of a Mirels or SINS item carries its points (extension `POINTS_URL`, one per score): the tables
of SCORE-MIRELS (Tableau 3, L1308-1372) and SCORE-SINS (L1375-1392, Fisher 2010), which the page adds up live.
LOINC codes only where one exists and was checked: ECOG 89247-1, pain severity 0-10 72514-3. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

BASE: Final = "https://osteocds.example.org/fhir"
#: a score's points for an answer option: extension with `score` (code) and `points` (integer)
POINTS_URL: Final = f"{BASE}/StructureDefinition/score-points"
#: the contract field an item fills (documentation for integrators; the mapping uses the description itself)
TARGET_URL: Final = f"{BASE}/StructureDefinition/contract-field"
LOINC: Final = "http://loinc.org"
MAX_OCCURS_URL: Final = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
VERSION: Final = "1"

QuestionType = Literal["choice", "decimal", "integer", "boolean", "date", "dateTime", "string"]


@dataclass(frozen=True)
class Option:
    code: str
    display: str
    #: (score, points): SCORE-MIRELS / SCORE-SINS points of this answer
    points: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Question:
    link_id: str
    text: str
    type: QuestionType
    #: where the answer goes: "<part>.<field>" at the top level, "<field>" inside a group
    target: str
    required: bool = False
    options: tuple[Option, ...] = ()
    loinc: tuple[str, str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    #: enabled only when the item `when[0]` has one of the answers `when[1]` (codes; "true"/"false" for booleans)
    when: tuple[str, tuple[str, ...]] | None = None
    #: the answer is multiplied by this before it is stored (a percentage entered, a fraction in the contract)
    scale: float = 1.0
    repeats: bool = False
    #: the score item this question is (SCORE-MIRELS / SCORE-SINS), shown by the page
    score_item: tuple[str, str] | None = None
    max_length: int | None = None
    #: a date that may be after today (a plan); every other date is of a fact already there (review HAZ-23-R03)
    future: bool = False
    #: the linkId of the date (same level) this one may not precede: a course's last fraction (review HAZ-23-R03)
    not_before: str | None = None
    #: free text naming vertebral levels, as the radiotherapy planner reads them (review HAZ-23-R04)
    spinal_levels: bool = False


@dataclass(frozen=True)
class Group:
    link_id: str
    text: str
    target: str
    questions: tuple[Question, ...]
    repeats: bool = False
    when: tuple[str, tuple[str, ...]] | None = None
    #: at most this many instances (questionnaire-maxOccurs; review HAZ-23-R05)
    max_occurs: int | None = None
    #: the linkId whose answer no two instances may share (one pain per lesion; review HAZ-23-R04)
    unique: str | None = None


Item = Question | Group


@dataclass(frozen=True)
class Form:
    id: str
    title: str
    description: str
    items: tuple[Item, ...]
    #: the topics it publishes on (documentation)
    publishes: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        return f"{BASE}/Questionnaire/{self.id}"

    def questions(self) -> dict[str, Question]:
        """Every question by linkId (those inside groups too)."""
        out: dict[str, Question] = {}
        for item in self.items:
            for q in item.questions if isinstance(item, Group) else (item,):
                out[q.link_id] = q
        return out


#: UCUM code -> what the page shows
UNIT_DISPLAY: Final = {"mo": "mois", "Gy": "Gy", "%": "%", "cm": "cm", "mg": "mg"}


def option_system(q: Question) -> str:
    """The code system of a choice question's answer options (a coding of another system is not an option)."""
    return f"{BASE}/CodeSystem/{q.link_id.split('.')[-1]}"


def _opts(*pairs: tuple[str, str]) -> tuple[Option, ...]:
    return tuple(Option(code, display) for code, display in pairs)


# ---- SCORE-MIRELS (Tableau 3, L1308-1372) and SCORE-SINS (L1375-1392) tables, as answer options ------------------
#: Tableau 3 site: membre supérieur 1, membre inférieur 2, région trochantérienne 3 (the femoral neck belongs to the
#: peritrochanteric region of Mirels' table, as services/scoring reads it); other sites are not long bones: no Mirels.
SITES: Final = (
    Option("humerus", "Humérus", (("mirels", 1),)),
    Option("radius_ulna", "Radius / ulna", (("mirels", 1),)),
    Option("other_upper_limb", "Autre os du membre supérieur", (("mirels", 1),)),
    Option("femur_trochanteric", "Fémur, région trochantérienne", (("mirels", 3),)),
    Option("femur_neck", "Col du fémur", (("mirels", 3),)),
    Option("femur_shaft", "Diaphyse fémorale", (("mirels", 2),)),
    Option("tibia_fibula", "Tibia / fibula", (("mirels", 2),)),
    Option("other_lower_limb", "Autre os du membre inférieur", (("mirels", 2),)),
    Option("spine", "Rachis (vertèbre)"),
    Option("sacrum", "Sacrum"),
    Option("pelvis", "Bassin"),
    Option("acetabulum", "Acétabulum"),
    Option("rib", "Côte"),
    Option("sternum", "Sternum"),
    Option("scapula", "Scapula"),
    Option("clavicle", "Clavicule"),
    Option("skull", "Crâne"),
)
LONG_BONES: Final = tuple(o.code for o in SITES if o.points)
#: Tableau 3 type: condensante 1, mixte 2, lytique 3; SINS bone lesion: lytic 2, mixed 1, blastic 0
LESION_TYPES: Final = (
    Option("lytic", "Lytique", (("mirels", 3), ("sins", 2))),
    Option("mixed", "Mixte", (("mirels", 2), ("sins", 1))),
    Option("blastic", "Condensante (blastique)", (("mirels", 1), ("sins", 0))),
)
#: Tableau 3 pain: légère 1, modérée 2, handicapante 3 (a painless lesion takes the lowest item, as scoring does)
PAIN_INTENSITY: Final = (
    Option("none", "Aucune", (("mirels", 1),)),
    Option("mild", "Légère", (("mirels", 1),)),
    Option("moderate", "Modérée", (("mirels", 2),)),
    Option("functional", "Handicapante (fonctionnelle)", (("mirels", 3),)),
)
#: SINS pain: mechanical 3, occasional non-mechanical 1, none 0 (neuropathic pain counts as non-mechanical)
PAIN_CHARACTER: Final = (
    Option("mechanical", "Mécanique", (("sins", 3),)),
    Option("non_mechanical", "Non mécanique (occasionnelle)", (("sins", 1),)),
    Option("neuropathic", "Neuropathique", (("sins", 1),)),
    Option("none", "Aucune", (("sins", 0),)),
)
ALIGNMENT: Final = (
    Option("subluxation_translation", "Subluxation ou translation", (("sins", 4),)),
    Option("de_novo_deformity", "Déformation de novo (cyphose, scoliose)", (("sins", 2),)),
    Option("normal", "Normal", (("sins", 0),)),
)
COLLAPSE: Final = (
    Option("gt_50", "Tassement > 50 %", (("sins", 3),)),
    Option("lt_50", "Tassement < 50 %", (("sins", 2),)),
    Option("none_body_involved_gt_50", "Pas de tassement, corps atteint > 50 %", (("sins", 1),)),
    Option("none", "Aucun de ces cas", (("sins", 0),)),
)
POSTEROLATERAL: Final = (
    Option("bilateral", "Bilatérale", (("sins", 3),)),
    Option("unilateral", "Unilatérale", (("sins", 1),)),
    Option("none", "Aucune", (("sins", 0),)),
)


def sins_location_points(level: str) -> int | None:
    """SINS location (L1375-1392): junctional (occiput-C2, C7-T2, T11-L1, L5-S1) 3, mobile (C3-C6, L2-L4) 2,
    semi-rigid (T3-T10) 1, rigid (S2-S5) 0; the coccyx is outside SINS (None)."""
    region, n = level[0], int(level[1:]) if level[1:].isdigit() else 0
    if level == "Co" or n == 0:
        return None
    if (region == "C" and (n <= 2 or n == 7)) or (region == "T" and (n <= 2 or n >= 11)):
        return 3
    if (region == "L" and n in (1, 5)) or (region == "S" and n == 1):
        return 3
    if region == "C" or region == "L":
        return 2
    return 1 if region == "T" else 0


LEVELS: Final = (
    ([f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)])
    + [f"S{i}" for i in range(1, 6)]
    + ["Co"]
)
VERTEBRAL_LEVELS: Final = tuple(
    Option(lv, lv if lv != "Co" else "Coccyx", (("sins", p),) if (p := sins_location_points(lv)) is not None else ())
    for lv in LEVELS
)

MODALITIES: Final = _opts(
    ("xray", "Radiographie"),
    ("ct", "Scanner"),
    ("mri", "IRM"),
    ("bone_scan", "Scintigraphie osseuse"),
    ("fdg_pet", "TEP au FDG"),
    ("naf_pet", "TEP au NaF"),
)
FINDING_STATUS: Final = _opts(
    ("confirmed", "Métastase confirmée"), ("suspected", "Suspecte (non confirmée)"), ("resolved", "Disparue")
)
RECORD_STATUS: Final = _opts(
    ("final", "Nouvelle saisie"),
    ("amended", "Correction d'une saisie"),
    ("entered-in-error", "Saisie erronée (à retirer)"),
)
CORRECTED: Final = ("amended", "entered-in-error")
#: size bounds, not clinical ones (review HAZ-23-R05): ClinicalAssessment.lesion_pain's own cap; earlier courses on
#: one segment (LocalTreatmentRequest.previous_courses has none; RT-REIRR weighs each)
LESION_PAIN_MAX: Final = 100
PREVIOUS_COURSES_MAX: Final = 10


def _correction(part: str, what: str) -> tuple[Question, Question]:
    """The contracts' correction fields: record_status, and the event_id of the entry corrected."""
    return (
        Question("record_status", "Nature de la saisie", "choice", f"{part}.record_status", options=RECORD_STATUS),
        Question(
            "corrects",
            f"Identifiant de la saisie corrigée ({what})",
            "string",
            f"{part}.corrects",
            when=("record_status", CORRECTED),
            max_length=64,
        ),
    )


LESION_FINDING = Form(
    "lesion-finding",
    "Lésion osseuse : constatation d'imagerie (Mirels, SINS)",
    "Une lésion osseuse décrite sur un examen d'imagerie, avec les items du score de Mirels (os longs) et du SINS "
    "(rachis), et la douleur de cette lésion.",
    (
        Question("lesion_id", "Identifiant de la lésion", "string", "finding.lesion_id", required=True, max_length=64),
        Question("examined_at", "Date et heure de l'examen", "dateTime", "meta.examined_at", required=True),
        Question("modality", "Examen", "choice", "finding.modality", required=True, options=MODALITIES),
        Question(
            "skeletal_site",
            "Site",
            "choice",
            "finding.skeletal_site",
            required=True,
            options=SITES,
            score_item=("mirels", "site"),
        ),
        Question(
            "vertebral_level",
            "Niveau vertébral",
            "choice",
            "finding.vertebral_level",
            required=True,
            options=VERTEBRAL_LEVELS,
            when=("skeletal_site", ("spine",)),
            score_item=("sins", "location"),
        ),
        Question("status", "Statut de la lésion", "choice", "finding.status", options=FINDING_STATUS),
        Question(
            "lesion_type",
            "Type de lésion",
            "choice",
            "finding.lesion_type",
            options=LESION_TYPES,
            score_item=("mirels", "lesion_type"),
        ),
        Question(
            "cortical_pct",
            "Part de la corticale atteinte (%)",
            "decimal",
            "finding.cortical_involvement_fraction",
            minimum=0,
            maximum=100,
            unit="%",
            scale=0.01,
            when=("skeletal_site", LONG_BONES),
            score_item=("mirels", "size"),
        ),
        Question(
            "pain_intensity",
            "Douleur de cette lésion : intensité (Mirels)",
            "choice",
            "pain.intensity",
            options=PAIN_INTENSITY,
            score_item=("mirels", "pain"),
        ),
        Question(
            "pain_character",
            "Douleur de cette lésion : caractère (SINS)",
            "choice",
            "pain.character",
            options=PAIN_CHARACTER,
            score_item=("sins", "pain"),
        ),
        Question(
            "pain_nrs",
            "Douleur de cette lésion : EN 0-10",
            "integer",
            "pain.nrs",
            minimum=0,
            maximum=10,
            loinc=("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
        ),
        Question(
            "alignment",
            "Alignement",
            "choice",
            "finding.alignment",
            options=ALIGNMENT,
            when=("skeletal_site", ("spine",)),
            score_item=("sins", "alignment"),
        ),
        Question(
            "vertebral_collapse",
            "Tassement vertébral",
            "choice",
            "finding.vertebral_collapse",
            options=COLLAPSE,
            when=("skeletal_site", ("spine",)),
            score_item=("sins", "vertebral_collapse"),
        ),
        Question(
            "posterolateral",
            "Atteinte postérolatérale (pédicule, facette, articulation costovertébrale)",
            "choice",
            "finding.posterolateral_involvement",
            options=POSTEROLATERAL,
            when=("skeletal_site", ("spine",)),
            score_item=("sins", "posterolateral_involvement"),
        ),
        Question(
            "axial_osteolysis_pct",
            "Scanner : ostéolyse corticale dans le plan axial (%)",
            "decimal",
            "finding.axial_cortical_osteolysis_pct",
            minimum=0,
            maximum=100,
            unit="%",
            when=("skeletal_site", LONG_BONES),
        ),
        Question(
            "circumferential_osteolysis_pct",
            "Scanner : ostéolyse corticale circonférentielle (%)",
            "decimal",
            "finding.circumferential_cortical_osteolysis_pct",
            minimum=0,
            maximum=100,
            unit="%",
            when=("skeletal_site", LONG_BONES),
        ),
        Question("epidural_extension", "Épidurite", "boolean", "finding.epidural_extension"),
        Question("cord_compression", "Compression médullaire", "boolean", "finding.cord_compression"),
        Question("pathological_fracture", "Fracture pathologique", "boolean", "finding.pathological_fracture"),
        Question("size_cm", "Taille (cm)", "decimal", "finding.size_cm", minimum=0, maximum=50, unit="cm"),
        *_correction("finding", "constatation"),
    ),
    ("hospital.imaging-findings.v1", "hospital.clinical-assessments.v1"),
)

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

FORMS: Final = {
    f.id: f for f in (LESION_FINDING, ASSESSMENT, SURGICAL_OPINION, LOCAL_TREATMENT_REQUEST, TREATMENT_EVENT)
}


# ---- FHIR R4 Questionnaire ------------------------------------------------------------------------------------------
def _coding(q: Question, o: Option) -> dict[str, str]:
    return {"system": option_system(q), "code": o.code, "display": o.display}


def _enable_when(when: tuple[str, tuple[str, ...]] | None, questions: dict[str, Question]) -> dict[str, Any]:
    """enableWhen; an answerCoding is the option's whole coding (review HAZ-23-R04: a form engine compares the
    system too)."""
    if when is None:
        return {}
    link, codes = when
    on = questions[link]
    by_code = {o.code: o for o in on.options}
    conditions = [
        {"question": link, "operator": "=", "answerBoolean": code == "true"}
        if on.type == "boolean"
        else {"question": link, "operator": "=", "answerCoding": _coding(on, by_code[code])}
        for code in codes
    ]
    return {"enableWhen": conditions, **({"enableBehavior": "any"} if len(conditions) > 1 else {})}


def _question(q: Question, questions: dict[str, Question]) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": q.link_id, "text": q.text, "type": q.type}
    if q.loinc is not None:
        out["code"] = [{"system": LOINC, "code": q.loinc[0], "display": q.loinc[1]}]
    ext: list[dict[str, Any]] = [{"url": TARGET_URL, "valueString": q.target}]
    if q.minimum is not None:
        kind = "valueInteger" if q.type == "integer" else "valueDecimal"
        ext.append({"url": "http://hl7.org/fhir/StructureDefinition/minValue", kind: q.minimum})
    if q.maximum is not None:
        kind = "valueInteger" if q.type == "integer" else "valueDecimal"
        ext.append({"url": "http://hl7.org/fhir/StructureDefinition/maxValue", kind: q.maximum})
    if q.unit is not None:
        ext.append(
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                "valueCoding": {
                    "system": "http://unitsofmeasure.org",
                    "code": q.unit,
                    "display": UNIT_DISPLAY.get(q.unit, q.unit),
                },
            }
        )
    out["extension"] = ext
    if q.required:
        out["required"] = True
    if q.repeats:
        out["repeats"] = True
    if q.max_length is not None:
        out["maxLength"] = q.max_length
    out |= _enable_when(q.when, questions)
    if q.options:
        out["answerOption"] = [
            {
                "valueCoding": _coding(q, o),
                **(
                    {
                        "extension": [
                            {
                                "url": POINTS_URL,
                                "extension": [
                                    {"url": "score", "valueCode": score},
                                    {"url": "points", "valueInteger": points},
                                ],
                            }
                            for score, points in o.points
                        ]
                    }
                    if o.points
                    else {}
                ),
            }
            for o in q.options
        ]
    if q.score_item is not None:
        out["extension"].append(
            {"url": f"{BASE}/StructureDefinition/score-item", "valueString": ":".join(q.score_item)}
        )
    return out


def questionnaire(form: Form) -> dict[str, Any]:
    """The form as a FHIR R4 Questionnaire (JSON), served as is and rendered as is by the forms page."""
    questions = form.questions()
    items: list[dict[str, Any]] = []
    for item in form.items:
        if isinstance(item, Group):
            items.append(
                {
                    "linkId": item.link_id,
                    "text": item.text,
                    "type": "group",
                    "extension": [
                        {"url": TARGET_URL, "valueString": item.target},
                        *(
                            [{"url": MAX_OCCURS_URL, "valueInteger": item.max_occurs}]
                            if item.max_occurs is not None
                            else []
                        ),
                    ],
                    **({"repeats": True} if item.repeats else {}),
                    **_enable_when(item.when, questions),
                    "item": [_question(q, questions) for q in item.questions],
                }
            )
        else:
            items.append(_question(item, questions))
    return {
        "resourceType": "Questionnaire",
        "id": form.id,
        "url": form.url,
        "version": VERSION,
        "name": form.id.title().replace("-", ""),  # R4 que-0: a machine name (review)
        "title": form.title,
        "status": "active",
        "subjectType": ["Patient"],
        "language": "fr-FR",
        "description": form.description,
        "item": items,
    }


def bundle() -> dict[str, Any]:
    """Every Questionnaire, as the searchset of GET /fhir/Questionnaire."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(FORMS),
        "entry": [{"fullUrl": f.url, "resource": questionnaire(f)} for f in FORMS.values()],
    }
