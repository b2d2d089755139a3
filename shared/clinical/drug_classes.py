"""The drug classes of the one vocabulary (issue 18.3): which INN (lower case, underscores) is in which class.

Why one table: the flare rule (IMG-FLARE) needs "the effective cancer treatment", the systemic planner needs the
anti-resorptives, the local-treatment planner needs antiplatelets and anticoagulants (IR-CEMENT haemostasis) and the
drug–radiotherapy windows (RT-DRUG). A drug absent from the table is *unknown*: callers say so and never assume a class.
How a name or an ATC code a hospital sends is read into these INNs: shared/clinical/drugs.py (`identify`).
"""

from __future__ import annotations

from typing import Final, Literal

#: "other": placed by its ATC code outside every group the rules read (ramipril C09AA05): known, concerns no rule.
DrugClass = Literal["anticancer", "antiresorptive", "supportive", "antiplatelet", "anticoagulant", "other"]

#: EGFR tyrosine-kinase inhibitors (IMG-FLARE: flare described under osimertinib and other EGFR TKIs).
EGFR_TKIS: Final = frozenset({"osimertinib", "gefitinib", "erlotinib", "afatinib", "dacomitinib", "lazertinib"})
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
#: Targeted therapies that are not kinase inhibitors (antibodies, conjugates): RT-DRUG precaution, L2153.
TARGETED_ANTIBODIES: Final = frozenset({"trastuzumab_deruxtecan", "amivantamab"})
_OTHER_TARGETED: Final = OTHER_TKIS | TARGETED_ANTIBODIES
#: Tableau 6 names five (L2316-2324); the other anti-PD-(L)1 and anti-CTLA-4 antibodies are the same class.
IMMUNOTHERAPIES: Final = frozenset(
    {
        "pembrolizumab",
        "nivolumab",
        "atezolizumab",
        "durvalumab",
        "cemiplimab",
        "ipilimumab",
        "tremelimumab",
        "avelumab",
        "dostarlimab",
        "tislelizumab",
        "toripalimab",
        "sintilimab",
        "camrelizumab",
        "sugemalimab",
        "serplulimab",
        "retifanlimab",
    }
)
_CHEMOTHERAPIES: Final = frozenset(
    {
        "cisplatin",
        "carboplatin",
        "oxaliplatin",
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
#: Anti-angiogenics (RT-DRUG wash-out, L1966-1967; IR-CEMENT: named before a procedure, L747-748).
ANTIANGIOGENICS: Final = frozenset({"bevacizumab", "ramucirumab", "nintedanib"})
#: Cytotoxic chemotherapies (IR-CEMENT: the nadir is to be known before a procedure, L747-748).
CHEMOTHERAPIES: Final = _CHEMOTHERAPIES
ANTICANCER: Final = EGFR_TKIS | _OTHER_TARGETED | IMMUNOTHERAPIES | _CHEMOTHERAPIES | ANTIANGIOGENICS

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
        "nadroparin",
        "fondaparinux",
    }
)

#: Common co-medications that no rule here reads (not anticancer, anti-resorptive, antiplatelet or anticoagulant):
#: known, so they never hold a decision as "unidentified" (issue 18 second review). NSAIDs are left out on purpose
#: (haemostasis, kidneys): they stay unknown, to check.
UNRELATED: Final = frozenset(
    {
        "amlodipine",
        "ramipril",
        "perindopril",
        "lisinopril",
        "enalapril",
        "losartan",
        "valsartan",
        "irbesartan",
        "candesartan",
        "bisoprolol",
        "nebivolol",
        "atenolol",
        "hydrochlorothiazide",
        "indapamide",
        "furosemide",
        "spironolactone",
        "atorvastatin",
        "rosuvastatin",
        "simvastatin",
        "pravastatin",
        "ezetimibe",
        "omeprazole",
        "esomeprazole",
        "pantoprazole",
        "lansoprazole",
        "rabeprazole",
        "metformin",
        "gliclazide",
        "sitagliptin",
        "insulin",
        "levothyroxine",
        "allopurinol",
        "tamsulosin",
        "macrogol",
        "lactulose",
        "metoclopramide",
        "domperidone",
        "loperamide",
        "tramadol",
        "codeine",
        "fentanyl",
        "hydromorphone",
        "pregabalin",
        "gabapentin",
        "amitriptyline",
        "duloxetine",
        "sertraline",
        "escitalopram",
        "paroxetine",
        "mirtazapine",
        "zolpidem",
        "zopiclone",
        "alprazolam",
        "lorazepam",
        "oxazepam",
        "bromazepam",
        "hydroxyzine",
        "salbutamol",
        "tiotropium",
        "budesonide",
        "amoxicillin",
        "cotrimoxazole",
        "potassium_chloride",
        "magnesium",
    }
)

DRUG_CLASSES: Final[dict[str, DrugClass]] = {
    **dict.fromkeys(UNRELATED, "other"),
    **dict.fromkeys(ANTICANCER, "anticancer"),
    **dict.fromkeys(ANTIRESORPTIVES, "antiresorptive"),
    **dict.fromkeys(SUPPORTIVE, "supportive"),
    **dict.fromkeys(ANTIPLATELETS, "antiplatelet"),
    **dict.fromkeys(ANTICOAGULANTS, "anticoagulant"),
}
