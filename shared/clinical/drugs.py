"""Drug identity, one vocabulary for every service (issue 18.3): INN (lower case, underscores), ATC code, class.

The classes and groups themselves (which INN is an anticancer, an anti-resorptive, an antiplatelet or an
anticoagulant: IMG-FLARE, IR-CEMENT, RT-DRUG) are in shared/clinical/drug_classes.py; the names and codes hospitals
send for them in shared/clinical/drug_names.py. A drug absent from the table is *unknown*: callers say so and never
assume a class.

`identify(name, atc)` reads what a hospital sends: an INN or a French name, with or without accents, capitals,
a strength ("Kardégic 75 mg"), a brand name, and/or an ATC code. The ATC code alone places an unlisted drug in its
class (an unlisted anti-PD-1, L01FF, is an immunotherapy: Tableau 6's precaution principle, L1987-1989). A name and
an ATC code that disagree are not resolved: the drug is unknown, to check.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from shared.clinical.drug_classes import (
    ANTIANGIOGENICS,
    ANTICANCER,
    ANTICOAGULANTS,
    ANTIPLATELETS,
    BISPHOSPHONATES,
    CHEMOTHERAPIES,
    CORTICOSTEROIDS,
    DRUG_CLASSES,
    EGFR_TKIS,
    IMMUNOTHERAPIES,
    OTHER_TKIS,
    SUPPORTIVE,
    TARGETED_ANTIBODIES,
    UNRELATED,
    DrugClass,
)
from shared.clinical.drug_names import ATC as ATC  # re-exported: the vocabulary's tables
from shared.clinical.drug_names import NOISE
from shared.clinical.drug_names import SYNONYMS as SYNONYMS


def drug_class(drug: str, atc: str | None = None) -> DrugClass | None:
    """The class of a drug, or None when the vocabulary does not know it (never guessed)."""
    return identify(drug, atc).drug_class


# ---- identity (the names and codes: drug_names.py) -----------------------------------------------------------------
#: Other codes of a listed drug (aspirin as an analgesic, N02BA01).
_ATC_ALIASES: Final[dict[str, str]] = {"N02BA01": "aspirin"}
_BY_ATC: Final[dict[str, str]] = {
    **{code: inn for inn, code in ATC.items() if inn != "nab_paclitaxel"},
    **_ATC_ALIASES,
}


Group = Literal[
    "egfr_tki",
    "tki",
    "targeted",
    "immunotherapy",
    "chemotherapy",
    "antiangiogenic",
    "other_anticancer",
    "bisphosphonate",
    "denosumab",
    "corticosteroid",
    "other_supportive",
    "antiplatelet",
    "vka",
    "doac",
    "heparin",
    "other_anticoagulant",
    "unrelated",
]

_ATC_FORM = re.compile(r"^[A-V]\d\d[A-Z][A-Z]\d\d$")
#: ATC groups that place a drug the vocabulary does not list (the most specific prefix wins)
_ATC_GROUPS: Final[tuple[tuple[str, Group], ...]] = (
    ("L01FF", "immunotherapy"),  # PD-1 / PD-L1 inhibitors
    ("L01FX04", "immunotherapy"),  # ipilimumab (anti-CTLA-4)
    ("L01FG", "antiangiogenic"),  # VEGF / VEGFR inhibitors
    ("L01EB", "egfr_tki"),
    ("L01E", "tki"),  # protein kinase inhibitors
    ("L01XE", "tki"),  # protein kinase inhibitors before the 2022 ATC revision
    ("L01", "other_anticancer"),
    ("M05BA", "bisphosphonate"),
    ("M05BX04", "denosumab"),
    ("M05BB", "bisphosphonate"),  # bisphosphonate combinations
    ("H02AB", "corticosteroid"),
    ("A11CC", "other_supportive"),  # vitamin D
    ("A12A", "other_supportive"),  # calcium
    ("B01AC", "antiplatelet"),
    ("B01AA", "vka"),
    ("B01AE", "doac"),
    ("B01AF", "doac"),
    ("B01AB", "heparin"),
    ("B01A", "other_anticoagulant"),  # any other antithrombotic agent: counted as an anticoagulant (conservative)
)
_GROUP_CLASS: Final[dict[Group, DrugClass]] = {
    "egfr_tki": "anticancer",
    "tki": "anticancer",
    "targeted": "anticancer",
    "immunotherapy": "anticancer",
    "chemotherapy": "anticancer",
    "antiangiogenic": "anticancer",
    "other_anticancer": "anticancer",
    "bisphosphonate": "antiresorptive",
    "denosumab": "antiresorptive",
    "corticosteroid": "supportive",
    "other_supportive": "supportive",
    "antiplatelet": "antiplatelet",
    "vka": "anticoagulant",
    "doac": "anticoagulant",
    "heparin": "anticoagulant",
    "other_anticoagulant": "anticoagulant",
    "unrelated": "other",
}
_VKAS: Final = frozenset({"warfarin", "acenocoumarol", "fluindione"})
_DOACS: Final = frozenset({"dabigatran", "rivaroxaban", "apixaban", "edoxaban"})
_HEPARINS: Final = frozenset({"heparin", "enoxaparin", "tinzaparin", "dalteparin", "nadroparin"})


def _group_of_inn(inn: str) -> Group | None:
    for members, group in (
        (EGFR_TKIS, "egfr_tki"),
        (OTHER_TKIS, "tki"),
        (TARGETED_ANTIBODIES, "targeted"),
        (IMMUNOTHERAPIES, "immunotherapy"),
        (CHEMOTHERAPIES, "chemotherapy"),
        (ANTIANGIOGENICS, "antiangiogenic"),
        (ANTICANCER, "other_anticancer"),
        (BISPHOSPHONATES, "bisphosphonate"),
        (frozenset({"denosumab"}), "denosumab"),
        (CORTICOSTEROIDS, "corticosteroid"),
        (SUPPORTIVE, "other_supportive"),
        (ANTIPLATELETS, "antiplatelet"),
        (_VKAS, "vka"),
        (_DOACS, "doac"),
        (_HEPARINS, "heparin"),
        (ANTICOAGULANTS, "other_anticoagulant"),
        (UNRELATED, "unrelated"),
    ):
        if inn in members:
            return group  # type: ignore[return-value]
    return None


#: ATC families a rule reads: a code there that no group above places is unknown, never "unrelated".
_RELEVANT_FAMILIES: Final = ("L01", "L02", "M05", "B01")


def _group_of_atc(atc: str) -> Group | None:
    group = next((g for prefix, g in _ATC_GROUPS if atc.startswith(prefix)), None)
    if group is None and not atc.startswith(_RELEVANT_FAMILIES):
        return "unrelated"  # ramipril, omeprazole, metformin: known to concern no rule (issue 18 review)
    return group


_NUMBER = re.compile(r"^[\d.,/]+([a-zµμ%/]+[\d]*)*$")  # 75, 4mg, 100ml, 50.000; "mg/100" and "auc5" apart
#: what may follow a "/" inside a dose ("mg/ml", "x2/j", "mg/m2", "ui anti-xa/0,5 ml"); any other word after a "/"
#: is another substance ("75 mg/clopidogrel": issue 18 second review)
_PER: Final = frozenset({"ml", "j", "jour", "jours", "kg", "m2", "h", "sem", "semaine", "semaines", "d", "day", "dose"})
#: separators of a combination product ("Kardégic 75 mg + Plavix 75 mg", "aspirine / clopidogrel")
_COMBINATION = re.compile(r"\s/\s|\+|&|\s+et\s+|\s+and\s+|,|;|\s+avec\s+|\s+with\s+")
#: dose frequencies and timing ("x2/j", "1 cp le soir", "toutes les 4 semaines")
_TIMING = re.compile(r"^(x\d*(/\w+)?|\d+x|\d+/\d+)$")


def _fold(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.strip().lower())
    text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    text = re.sub(r"\banti[\s-]?xa\b", " ", text)  # heparin units ("4000 UI anti-Xa")
    # a "/" before a word that is not a unit separates two substances
    return re.sub(r"/(?=\s*([a-z]+))", lambda m: "/" if m.group(1) in _PER else " / ", text)


def _dose_word(piece: str) -> bool:
    return not piece or piece in NOISE or piece in _PER or piece[0].isdigit()


def _substance(text: str) -> str:
    """The substance words of one prescription line: strengths, units, forms, salts, makers and timing dropped."""
    tokens = [t for t in re.split(r"[\s\-_,;:()\[\]]+", text) if t]
    kept = [
        t
        for t in tokens
        if t not in NOISE
        and not _NUMBER.match(t)
        and not _TIMING.match(t)
        and not re.match(r"^auc\d*$", t)  # carboplatin AUC5
        and not re.match(r"^\d", t)
        and not re.match(r"^(mg|g|ug|µg|mcg|ml|ui|iu)/", t)  # mg/ml, mg/m2
        and not ("/" in t and all(_dose_word(p) for p in t.split("/")))  # anti-xa/0,5 ml
    ]
    return "_".join(kept)


def normalise_name(name: str) -> str:
    """Lower case, accents folded, brackets, strengths, units, forms, salts, makers and timing dropped, words joined
    by underscores: "Acide Zolédronique Mylan 4 mg/100 ml" -> "acide_zoledronique"."""
    return _substance(re.sub(r"\(.*?\)|\[.*?\]", " ", _fold(name)))


def _bracketed(name: str) -> list[str]:
    """The substance words of each bracket: "DENOSUMAB (XGEVA)" -> ["xgeva"]."""
    groups = re.findall(r"\((.*?)\)|\[(.*?)\]", _fold(name))
    return [_substance(x) for pair in groups for part in pair if part for x in _COMBINATION.split(part)]


def _is_combination(name: str) -> bool:
    """Several substances on one line: split on "+", " / ", "et", commas..., brackets included; a bracket that names
    the same drug again ("DENOSUMAB (XGEVA)") or a word the vocabulary does not know inside brackets is not a second
    substance, a bracket naming another listed drug is ("Kardégic (+ clopidogrel)")."""
    outer = re.sub(r"\(.*?\)|\[.*?\]", " ", _fold(name))
    parts = [p for p in _COMBINATION.split(outer) if _substance(p)]
    if len(parts) > 1:
        return True
    main = _inn_of(_substance(outer))
    others = {i for b in _bracketed(name) if b and (i := _inn_of(b)) is not None}
    return bool(others - {main}) and main is not None


@dataclass(frozen=True)
class DrugIdentity:
    """What a drug is, as far as the vocabulary can tell. `key` names it everywhere (the INN when known, else the
    normalised name as sent); `known` is False when neither name nor ATC code places it (or they disagree)."""

    key: str
    inn: str | None
    atc: str | None
    group: Group | None
    conflict: bool = False
    combination: bool = False  # several substances on one line: each to be sent on its own

    @property
    def known(self) -> bool:
        return self.group is not None and not self.conflict

    @property
    def drug_class(self) -> DrugClass | None:
        return None if not self.known or self.group is None else _GROUP_CLASS[self.group]

    @property
    def name_fr(self) -> str:
        return self.key.replace("_", " ")


def _class_of(group: Group | None) -> DrugClass | None:
    return None if group is None else _GROUP_CLASS[group]


#: Codes of listed drugs before the 2022 ATC revision (kinase inhibitors were L01XE, antibodies L01XC): a name sent
#: with its old code agrees with it. Used only to check a name against its code, never to name a drug from a code.
_OLD_CODES: Final[dict[str, str]] = {
    "L01XE02": "gefitinib",
    "L01XE03": "erlotinib",
    "L01XE13": "afatinib",
    "L01XE16": "crizotinib",
    "L01XE23": "dabrafenib",
    "L01XE25": "trametinib",
    "L01XE28": "ceritinib",
    "L01XE31": "nintedanib",
    "L01XE35": "osimertinib",
    "L01XE36": "alectinib",
    "L01XE43": "brigatinib",
    "L01XE44": "lorlatinib",
    "L01XC07": "bevacizumab",
    "L01XC11": "ipilimumab",
    "L01XC17": "nivolumab",
    "L01XC18": "pembrolizumab",
    "L01XC21": "ramucirumab",
    "L01XC28": "durvalumab",
    "L01XC31": "avelumab",
    "L01XC32": "atezolizumab",
    "L01XC33": "cemiplimab",
}


def _disagree(inn: str, code: str) -> bool:
    """A name and an ATC code disagree unless the code is the name's (today's, an alias, or its pre-2022 code); a
    listed name without a code of its own disagrees with a code of another class (or another listed drug's)."""
    if _BY_ATC.get(code) == inn or _OLD_CODES.get(code) == inn or ATC.get(inn) == code:
        return False
    if code.startswith(("L01XE", "L01XC")) and code not in _OLD_CODES:  # retired families (2022): no longer given,
        return _class_of(_group_of_inn(inn)) != "anticancer"  # so an anticancer name with one is its old code
    other = _BY_ATC.get(code) or _OLD_CODES.get(code)
    if other is not None and _class_of(_group_of_inn(other)) == _class_of(_group_of_inn(inn)) == "supportive":
        return False  # "calcium" sent with calcium carbonate's code: the same supportive care
    if inn in ATC or other is not None:
        return True  # paclitaxel sent with bevacizumab's code: to check
    return _class_of(_group_of_atc(code)) != _class_of(_group_of_inn(inn))


def _inn_of(key: str) -> str | None:
    return key if key in DRUG_CLASSES else SYNONYMS.get(key)


@functools.lru_cache(maxsize=4096)
def identify(name: str, atc: str | None = None) -> DrugIdentity:
    """The identity of a drug from its name and/or ATC code (see the module's docstring)."""
    key = normalise_name(name) or _fold(name).replace(" ", "_")
    code = atc.strip().upper() if atc else None
    if code is not None and not _ATC_FORM.match(code):
        code = None
    if _is_combination(name):  # never read as its first substance (a hidden antiplatelet: issue 18 review)
        return DrugIdentity(key, None, code, None, conflict=True, combination=True)
    inn = _inn_of(key)
    if inn is None:  # "DENOSUMAB (XGEVA)": the bracket may name it
        named = {i for b in _bracketed(name) if (i := _inn_of(b)) is not None}
        if len(named) > 1:
            return DrugIdentity(key, None, code, None, conflict=True)
        inn = next(iter(named), None)
    by_code = _BY_ATC.get(code) if code else None
    if inn is not None:
        if code is not None and _disagree(inn, code):
            return DrugIdentity(key, None, code, None, conflict=True)  # name and code disagree: to check
        return DrugIdentity(inn, inn, ATC.get(inn, code), _group_of_inn(inn))
    if by_code is not None:
        return DrugIdentity(by_code, by_code, code, _group_of_inn(by_code))
    return DrugIdentity(key, None, code, _group_of_atc(code) if code else None)
