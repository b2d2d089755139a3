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
