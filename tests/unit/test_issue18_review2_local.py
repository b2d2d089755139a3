"""Issue 18, the second independent review of the local-treatment planner's fixes: ranges written with other dashes
or words, sites written in free text outside the spine, and combinations written without spaces. Each case failed
before its fix (reproductions of /tmp/review2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts.hospital import ImagingFinding
from tests.unit.test_issue18_local import (
    TODAY,
    cement_ready_timeline,
    drug,
    env,
    one,
    plan_items,
    request,
    run,
    treatment,
    vertebra,
)


@pytest.mark.parametrize("level", ["T4—T8", "T4 − T8", "T4→T8", "T4 jusqu'à T8", "T4..T8", "T4 et T8"])
def test_a_range_however_written_is_an_irradiated_segment(level: str) -> None:
    """L2057-2060: "nouvelle irradiation d'un ancien volume cible ou à proximité": T6 lies within any of these."""
    earlier = TODAY - timedelta(days=400)
    course = treatment(
        kind="radiotherapy",
        site="spine",
        vertebral_level=level,
        total_dose_gy=30.0,
        fractions=10,
        on=earlier.isoformat(),
        cord_dmax_gy=30.0,
    )
    _, out = run(
        [
            vertebra("t6", "T6"),
            course,
            request(
                "t6",
                "sbrt",
                total_dose_gy=27.0,
                fractions=3,
                planned_cord_dmax_gy=9.0,
                planned_on=TODAY + timedelta(days=7),
            ),
        ]
    )
    rules = {i.rule_id for i in plan_items(out)}
    assert "RT-REIRR" in rules and "RT-CORD-DMAX" not in rules


@pytest.mark.parametrize(
    ("lesion_site", "course", "irradiated"),
    [
        ("sacrum", {"site": "bassin"}, True),
        ("sacrum", {"site": "pelvis"}, True),
        ("sacrum", {"site": "spine", "vertebral_level": "S1-S2"}, True),
        ("sacrum", {"site": "rachis lombo-sacré", "vertebral_level": "L4-S2"}, True),
        ("femur_neck", {"site": "Fémur droit"}, True),
        ("femur_neck", {"site": "col fémoral"}, True),
        ("femur_neck", {"site": "hanche droite"}, True),
        ("femur_neck", {"site": "humérus gauche"}, False),
    ],
)
def test_a_site_written_in_free_text_is_matched_outside_the_spine(
    lesion_site: str, course: dict[str, Any], irradiated: bool
) -> None:
    """L2060-2064: the earlier dose to the organs at risk (sacral plexus, hollow organs) is to be weighed."""
    lesion = ImagingFinding.model_validate(
        env(lesion_id="l1", skeletal_site=lesion_site, modality="ct", status="confirmed")
    )
    earlier = treatment(
        kind="radiotherapy", total_dose_gy=20.0, fractions=5, on=(TODAY - timedelta(days=60)).isoformat(), **course
    )
    _, out = run([lesion, earlier, request("l1", "palliative_rt", planned_on=TODAY + timedelta(days=3))])
    assert ("RT-REIRR" in {i.rule_id for i in plan_items(out)}) is irradiated


@pytest.mark.parametrize(
    "name", ["Acide acétylsalicylique 75 mg/clopidogrel 75 mg", "Kardegic 75mg/Plavix 75mg", "Kardégic (+ clopidogrel)"]
)
def test_a_combination_written_without_spaces_or_in_brackets_holds_the_cementoplasty(name: str) -> None:
    """L2630-2633: clopidogrel stops 5 days before; aspirin under 160 mg/day may continue: never read as aspirin."""
    events = cement_ready_timeline("clopidogrel")
    events[5] = drug(name, TODAY - timedelta(days=1), ongoing=True, daily_dose_mg=75.0)
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status != "recommended" and "prérequis remplis" not in cement.title


def test_a_common_comedication_with_its_code_is_no_item() -> None:
    """A drug placed by its ATC code outside every family a rule reads concerns no rule: no "unidentified" item."""
    _, out = run(
        [
            vertebra(),
            drug("Ramipril 5 mg", TODAY - timedelta(days=1), atc_code="C09AA05", ongoing=True),
            request("t8", "palliative_rt", planned_on=TODAY + timedelta(days=2)),
        ]
    )
    assert not [i for i in plan_items(out) if i.rule_id == "RT-DRUG"]
