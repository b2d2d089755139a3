"""RT-MSCC (L1397-1402) with no compression on imaging: an epidural extension of a spinal lesion with a neurological
deficit is a compression to rule out in an emergency, decided from current data only (stop 21): the deficit, the
symptom, must be current (the extension may have been imaged long ago: a new deficit then is the emergency). Before,
a deficit of any age gave a critical item, and no deadline re-decided it when it aged out."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.notification.vocabulary import missing as missing_fr
from services.radiotherapy_planner.domain import COMPRESSION_CURRENT, apply_event
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import NOW, env, one, run, tick, vertebra


def deficit(at: object = NOW) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(env(at, neurological_deficit=True))  # type: ignore[arg-type]


def test_an_epidural_extension_with_a_current_deficit_is_an_emergency_until_the_deficit_ages_out() -> None:
    imaged = NOW - timedelta(days=300)  # long ago: a new deficit makes it an emergency all the same
    s, out = run([vertebra(at=imaged, epidural_extension=True), deficit(NOW)])
    mscc = one(out, "RT-MSCC")
    assert (mscc.status, mscc.severity) == ("to_do", "critical")
    assert s.next_due == NOW + COMPRESSION_CURRENT + timedelta(seconds=1)  # the deficit leaves the window
    s, more = apply_event(s, tick(s))
    aged = one(more, "RT-MSCC")
    assert (aged.status, aged.severity) == ("to_do", "warning") and "non actuelles" in aged.title
    assert aged.missing == ["a current neurological examination"]
    assert [missing_fr(m) for m in aged.missing] == ["examen neurologique actuel"]  # translated for clinicians


def test_an_old_deficit_is_no_emergency_and_asks_for_an_examination() -> None:
    old = one(at_clock([deficit(NOW - timedelta(days=400)), vertebra(at=NOW, epidural_extension=True)]), "RT-MSCC")
    assert old.severity == "warning" and old.missing == ["a current neurological examination"]


def test_a_future_dated_deficit_is_not_current_either() -> None:
    future = one(at_clock([vertebra(at=NOW, epidural_extension=True), deficit(NOW + timedelta(days=3))]), "RT-MSCC")
    assert future.severity == "warning" and "futur" in future.text_fr


def at_clock(events: list[ClinicalAssessment | ImagingFinding]) -> list[Message]:
    """Decided at the clock NOW, not at the records' own times (issue 22)."""
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        out += o
    return out
