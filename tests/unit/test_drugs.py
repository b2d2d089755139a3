"""The one drug table: classes are disjoint and lookups never guess."""

from __future__ import annotations

import pytest

from shared.clinical import drugs


def test_classes_are_disjoint() -> None:
    groups = [drugs.ANTICANCER, drugs.ANTIRESORPTIVES, drugs.SUPPORTIVE, drugs.ANTIPLATELETS, drugs.ANTICOAGULANTS]
    total = sum(len(g) for g in groups)
    assert len(drugs.DRUG_CLASSES) == total


@pytest.mark.parametrize(
    ("drug", "expected"),
    [
        ("pembrolizumab", "anticancer"),
        ("osimertinib", "anticancer"),
        ("zoledronic_acid", "antiresorptive"),
        ("Zoledronic acid", "antiresorptive"),
        ("denosumab", "antiresorptive"),
        ("cholecalciferol", "supportive"),
        ("clopidogrel", "antiplatelet"),
        ("apixaban", "anticoagulant"),
        ("unheard_of_mab", None),
    ],
)
def test_drug_class(drug: str, expected: str | None) -> None:
    assert drugs.drug_class(drug) == expected


@pytest.mark.parametrize(
    ("name", "atc", "key", "group"),
    [
        ("Clopidogrel", None, "clopidogrel", "antiplatelet"),
        ("PLAVIX 75 mg", None, "clopidogrel", "antiplatelet"),
        ("Kardégic 300 mg", None, "aspirin", "antiplatelet"),
        ("acide acétylsalicylique", None, "aspirin", "antiplatelet"),
        ("Eliquis", None, "apixaban", "doac"),
        ("énoxaparine", None, "enoxaparin", "heparin"),
        ("Previscan", None, "fluindione", "vka"),
        ("GEMCITABINE", None, "gemcitabine", "chemotherapy"),
        ("Gemzar", None, "gemcitabine", "chemotherapy"),
        ("acide zolédronique", None, "zoledronic_acid", "bisphosphonate"),
        ("XGEVA", None, "denosumab", "denosumab"),
        ("Tagrisso", None, "osimertinib", "egfr_tki"),
        ("amivantamab", None, "amivantamab", "targeted"),  # an antibody, not a kinase inhibitor
        ("tislelizumab", None, "tislelizumab", "immunotherapy"),  # an anti-PD-1 Tableau 6 does not name
        ("whatever", "B01AC04", "clopidogrel", "antiplatelet"),  # the ATC code identifies a listed drug
        ("new-anti-pd1", "L01FF99", "new_anti_pd1", "immunotherapy"),  # an unlisted drug placed by its ATC group
        ("newxaban", "B01AF99", "newxaban", "doac"),
        ("newthing", "B01AD99", "newthing", "other_anticoagulant"),  # any other antithrombotic: conservative
        ("unheard_of_mab", None, "unheard_of_mab", None),
        ("clopidogrel", "L01FF02", "clopidogrel", None),  # name and code disagree: unknown, to check
        ("clopidogrel", "not-a-code", "clopidogrel", "antiplatelet"),  # a malformed code is ignored
    ],
)
def test_identify_reads_what_hospitals_send(name: str, atc: str | None, key: str, group: str | None) -> None:
    who = drugs.identify(name, atc)
    assert (who.key, who.group) == (key, group)
    assert who.known is (group is not None)


def test_every_listed_drug_has_one_class_and_atc_codes_are_well_formed_and_unique() -> None:
    codes = list(drugs.ATC.values())
    assert all(drugs._ATC_FORM.match(c) for c in codes)
    assert len(codes) == len(set(codes))
    assert set(drugs.ATC) <= set(drugs.DRUG_CLASSES)
    for inn in drugs.DRUG_CLASSES:
        assert drugs.identify(inn).drug_class == drugs.DRUG_CLASSES[inn]
    for synonym, inn in drugs.SYNONYMS.items():
        assert inn in drugs.DRUG_CLASSES, synonym
