"""The answer lists the forms share: the SCORE-MIRELS (Tableau 3, L1308-1372) and SCORE-SINS (L1375-1392, Fisher 2010)
tables as answer options with their points (the page adds them up live), the vertebral levels, modalities, statuses
and the correction fields of every contract. Pure, no I/O."""

from __future__ import annotations

from typing import Final

from services.lab_normalisation.forms.model import Option, Question, _opts

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
