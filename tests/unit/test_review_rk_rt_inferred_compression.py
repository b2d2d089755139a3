"""Review RK (HAZ-18-17, 03b7102): RT-MSCC's compression inferred from an epidural extension with a neurological
deficit (L1397-1402: "métastase vertébrale avec compression médullaire", L1292 "avérée"; the inference asks to rule
it out). It is a compression to rule out only while nothing current says otherwise: a later assessment without a
deficit, a later study without the extension, or an MRI made after the deficit that shows no compression (the
urgent imaging the item asks for, done: scoring's CLASS-SRE `_compression` likewise requires the deficit to be
reported after any imaging that ruled compression out)."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, TreatmentEvent
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW, env, plan_items, vertebra


def _assessment(at: object, **facts: object) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(env(at, **facts))  # type: ignore[arg-type]


def _mscc(events: list[Message]) -> list[tuple[str, str]]:
    """The RT-MSCC items of the last plan, decided at the clock NOW: (severity, title)."""
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        out = o or out
    return [(i.severity, i.title) for i in plan_items(out) if i.rule_id == "RT-MSCC"]


def test_an_mri_after_the_deficit_showing_no_compression_ends_the_emergency_to_rule_it_out() -> None:
    imaged = NOW - timedelta(days=2)
    deficit = _assessment(NOW - timedelta(days=3), neurological_deficit=True)
    before = _mscc([vertebra(at=imaged - timedelta(days=200), epidural_extension=True), deficit])
    assert [sev for sev, _ in before] == ["critical"]  # a current deficit with a known extension: rule it out
    mri = vertebra(at=imaged, epidural_extension=True, cord_compression=False)
    after = _mscc([vertebra(at=imaged - timedelta(days=200), epidural_extension=True), deficit, mri])
    assert after and all(sev != "critical" for sev, _ in after), after
    assert all("à éliminer" not in title for _, title in after), "the compression was ruled out by the MRI"


def test_an_mri_before_the_deficit_showing_no_compression_does_not_rule_out_a_new_one() -> None:
    mri = vertebra(at=NOW - timedelta(days=30), epidural_extension=True, cord_compression=False)
    later = _mscc([mri, _assessment(NOW - timedelta(days=1), neurological_deficit=True)])
    assert [sev for sev, _ in later] == ["critical"]


def test_a_later_examination_without_a_deficit_or_a_later_study_without_the_extension_ends_it() -> None:
    base: list[Message] = [
        vertebra(at=NOW - timedelta(days=20), epidural_extension=True),
        _assessment(NOW - timedelta(days=10), neurological_deficit=True),
    ]
    no_deficit = _mscc([*base, _assessment(NOW - timedelta(days=1), neurological_deficit=False)])
    assert no_deficit and all(sev != "critical" for sev, _ in no_deficit)
    no_extension = _mscc([*base, vertebra(at=NOW - timedelta(days=1), epidural_extension=False)])
    assert all(sev != "critical" for sev, _ in no_extension)


def _treatment(at: object, **treatment: object) -> TreatmentEvent:
    return TreatmentEvent.model_validate(env(at, treatment={"site": "spine", "lesion_id": "t8", **treatment}))  # type: ignore[arg-type]


def test_a_compression_to_rule_out_treated_since_the_deficit_is_no_longer_an_emergency() -> None:
    """Irradiated or decompressed after the deficit: the item asked for an urgent MRI and RT 'if confirmed' for up to
    COMPRESSION_CURRENT after the treatment had begun (a wrong recommendation). Now: irradiated (done), or operated
    (adjuvant RT 2 to 3 weeks after the decompression, L1397-1399). A course before the deficit treats nothing new."""
    on = NOW - timedelta(days=1)
    base: list[Message] = [
        vertebra(at=NOW - timedelta(days=10), epidural_extension=True),
        _assessment(NOW - timedelta(days=3), neurological_deficit=True),
    ]
    course = {"kind": "radiotherapy", "vertebral_level": "T8", "total_dose_gy": 30.0, "fractions": 10}
    course |= {"cord_dmax_gy": 29.0}
    irradiated = _mscc([*base, _treatment(on, on=on.date().isoformat(), **course)])
    assert irradiated == [("info", "Épidurite et déficit neurologique en T8 (t8) : irradiés")]
    operated = _mscc([*base, _treatment(on, kind="surgery", procedure="decompression", on=on.date().isoformat())])
    assert [sev for sev, _ in operated] == ["warning"] and "adjuvante" in operated[0][1]
    before = NOW - timedelta(days=20)
    earlier = _mscc([*base, _treatment(before, on=before.date().isoformat(), **course)])
    assert [sev for sev, _ in earlier] == ["critical"]  # a new deficit after the course: rule the compression out
