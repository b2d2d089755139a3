"""One drug classification for every service (INN, lower case, underscores: the `SystemicDrug.drug` vocabulary).

Why one table: the flare rule (IMG-FLARE) needs "the effective cancer treatment", the systemic planner needs the
anti-resorptives, the local-treatment planner needs antiplatelets and anticoagulants (IR-CEMENT haemostasis) and the
drug–radiotherapy windows (RT-DRUG). A drug absent from the table is *unknown*: callers say so and never assume a class.
"""

from __future__ import annotations

from typing import Final, Literal

DrugClass = Literal["anticancer", "antiresorptive", "supportive", "antiplatelet", "anticoagulant"]

#: EGFR tyrosine-kinase inhibitors (IMG-FLARE: flare described under osimertinib and other EGFR TKIs).
EGFR_TKIS: Final = frozenset(
    {"osimertinib", "gefitinib", "erlotinib", "afatinib", "dacomitinib", "lazertinib", "amivantamab"}
)
#: Other tyrosine-kinase (and BRAF/MEK/KRAS) inhibitors used in lung cancer (RT-DRUG: precaution, RCP opinion).
OTHER_TKIS: Final = frozenset(
    {
        "crizotinib",
        "alectinib",
        "brigatinib",
        "ceritinib",
        "lorlatinib",
        "entrectinib",
        "repotrectinib",
        "capmatinib",
        "tepotinib",
        "selpercatinib",
        "pralsetinib",
        "dabrafenib",
        "trametinib",
        "encorafenib",
        "binimetinib",
        "sotorasib",
        "adagrasib",
        "larotrectinib",
    }
)
TKIS: Final = EGFR_TKIS | OTHER_TKIS
_OTHER_TARGETED: Final = OTHER_TKIS | {"trastuzumab_deruxtecan"}
IMMUNOTHERAPIES: Final = frozenset(
    {"pembrolizumab", "nivolumab", "atezolizumab", "durvalumab", "cemiplimab", "ipilimumab", "tremelimumab"}
)
_CHEMOTHERAPIES: Final = frozenset(
    {
        "cisplatin",
        "carboplatin",
        "pemetrexed",
        "paclitaxel",
        "nab_paclitaxel",
        "docetaxel",
        "gemcitabine",
        "vinorelbine",
        "etoposide",
        "irinotecan",
        "topotecan",
        "lurbinectedin",
        "doxorubicin",
        "bleomycin",
    }
)
_ANTIANGIOGENICS: Final = frozenset({"bevacizumab", "ramucirumab", "nintedanib"})
ANTICANCER: Final = EGFR_TKIS | _OTHER_TARGETED | IMMUNOTHERAPIES | _CHEMOTHERAPIES | _ANTIANGIOGENICS

BISPHOSPHONATES: Final = frozenset({"zoledronic_acid", "pamidronate", "ibandronate", "clodronate"})
ANTIRESORPTIVES: Final = BISPHOSPHONATES | {"denosumab"}

SUPPORTIVE: Final = frozenset(
    {
        "cholecalciferol",
        "ergocalciferol",
        "calcifediol",
        "calcium",
        "calcium_carbonate",
        "dexamethasone",
        "prednisone",
        "prednisolone",
        "methylprednisolone",
        "morphine",
        "oxycodone",
        "paracetamol",
        "ondansetron",
        "filgrastim",
        "pegfilgrastim",
        "epoetin_alfa",
    }
)
CORTICOSTEROIDS: Final = frozenset({"dexamethasone", "prednisone", "prednisolone", "methylprednisolone"})
ANTIPLATELETS: Final = frozenset(
    {"aspirin", "clopidogrel", "prasugrel", "ticagrelor", "ticlopidine", "dipyridamole", "cilostazol"}
)
ANTICOAGULANTS: Final = frozenset(
    {
        "warfarin",
        "acenocoumarol",
        "fluindione",
        "apixaban",
        "rivaroxaban",
        "edoxaban",
        "dabigatran",
        "heparin",
        "enoxaparin",
        "tinzaparin",
        "dalteparin",
        "fondaparinux",
    }
)

DRUG_CLASSES: Final[dict[str, DrugClass]] = {
    **dict.fromkeys(ANTICANCER, "anticancer"),
    **dict.fromkeys(ANTIRESORPTIVES, "antiresorptive"),
    **dict.fromkeys(SUPPORTIVE, "supportive"),
    **dict.fromkeys(ANTIPLATELETS, "antiplatelet"),
    **dict.fromkeys(ANTICOAGULANTS, "anticoagulant"),
}


def drug_class(drug: str) -> DrugClass | None:
    """The class of a drug, or None when the table does not know it (never guessed)."""
    return DRUG_CLASSES.get(drug.strip().lower().replace(" ", "_").replace("-", "_"))
