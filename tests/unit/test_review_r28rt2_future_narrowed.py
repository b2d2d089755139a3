"""Review R28-RT2 (of fc16565: HAZ-27-FUTURE-HIDES narrowed, services/radiotherapy_planner/as_of.py).

The view reads the newest current fact of a name (sign) in place of a newer future-dated one when (a) both say the
same value, or (b) the current one reports an emergency sign the future one denies. Both compare VALUES only; the rules
also read the fact's DATE (RT-MSCC, L1397-1402: "imaging made after the deficit", "a course since the deficit", the
onset of the current run of "compression: yes"), so reading an older fact of the same value is not "the same decision,
now current". Each case below is one or two records from a producer whose clock runs ahead (20 min, beyond the 15 min
tolerance), decided at `NOW`; on 8589dca (before the view) each gave the cautious item named, on fc16565 a less
cautious one. The view was reverted (2026-12-06): the first five pass again and stay as regression tests for the next
fix of HAZ-27-FUTURE-HIDES; the last two are what that fix must also do (strict xfails, also on 8589dca):
- a neurological deficit assessed again ahead, after an RT course of the epidural extension: 8589dca "données non
  actuelles ... réexaminer sans délai" (to_do, warning); fc16565 "Épidurite et déficit neurologique : irradiés" (done,
  info): the view reads the deficit of before the course, so the course "treated" it;
- the same after an MRI that stated no compression: 8589dca to_do "réexaminer sans délai ... IRM en urgence";
  fc16565 "prévention" (recommended), saying the deficit had imaging after it (it had not: the newer one);
- a compression that went away on imaging and came back, both reports dated ahead, after the course that irradiated
  the first one: `LesionAt._reporting` compares only the newest current and the newest reports (both "yes") and reads
  the current run, so the recurrence is shown "irradiée" (done, info) instead of "donnée non actuelle" (to_do);
- (b) extends to `epidural_extension`, which RT-MSCC does not treat as an emergency (L1290: "Prévention de la
  morbidité ... (ex : épidurite vertébrale)"): a current extension over a report dated ahead saying none makes a
  prevention RT recommended (8589dca: no item), a recommendation appearing on a contradicted sign;
- (b) for the compression lowers caution where the newest report, dated ahead, says the compression is gone but the
  extension remains: 8589dca "Épidurite : prévention" (recommended, warning, notified); fc16565 "Compression
  irradiée" (done, info), from the current report of before the course (a severity dropping, by the review's brief a
  defect; clinically arguable, as the newer report is not current);
- (b) "resolved" is applied to the imaged compression only (`LesionAt._onset`), not to the compression inferred from an
  epidural extension with a deficit (items_mscc.to_rule_out reads `latest.status`): a finding dated ahead saying
  "resolved" still turns today's "compression médullaire à éliminer" (critical) into "prévention" (warning), while the
  same finding leaves an imaged compression critical (as on 8589dca: HAZ-27's residual, not a regression);
- (b) for the compression itself keeps the emergency critical but says nothing of the newer report dated ahead that
  denies it (no input, no word): the contradiction is ignored silently, the pattern review R28-RT objected to."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from contracts.hospital import ImagingFinding
from tests.unit.test_issue18_local import NOW, TODAY, course, vertebra
from tests.unit.test_review_r28rt_future_left_out import AHEAD, DAY, _assessment, _items

HOUR = timedelta(hours=1)


def _ahead(f: ImagingFinding) -> ImagingFinding:
    """A finding dated ahead, recorded now (the producer's clock ahead of ours)."""
    return f.model_copy(update={"recorded_at": NOW})


def _mscc(events: list[Message]) -> tuple[str, str, str]:
    [mscc] = _items(events, "RT-MSCC")
    return mscc.status, mscc.severity, mscc.title


def test_review_r28rt2_a_deficit_assessed_again_ahead_after_the_course_is_not_shown_irradiated() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 20 * DAY, epidural_extension=True, status="confirmed"),
        _assessment(NOW - 15 * DAY, neurological_deficit=True, life_expectancy_months=24.0),
        course(TODAY - 10 * DAY),
    ]
    assert _mscc(events)[:2] == ("done", "info")  # control: irradiated since the deficit
    status, severity, title = _mscc([*events, _assessment(AHEAD, neurological_deficit=True)])
    assert (status, severity) == ("to_do", "warning"), title  # 8589dca: "données non actuelles"


def test_review_r28rt2_a_deficit_assessed_again_ahead_after_the_mri_is_still_to_rule_out() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 20 * DAY, epidural_extension=True, status="confirmed"),
        _assessment(NOW - 5 * DAY, neurological_deficit=True, life_expectancy_months=24.0),
        vertebra(at=NOW - 2 * DAY, epidural_extension=True, cord_compression=False, status="confirmed"),
    ]
    assert _mscc(events)[0] == "recommended"  # control: prevention, the MRI after the deficit stated none
    status, severity, title = _mscc([*events, _assessment(AHEAD, neurological_deficit=True)])
    assert (status, severity) == ("to_do", "warning"), title  # 8589dca: "données non actuelles", re-examine


def test_review_r28rt2_a_compression_back_after_a_no_both_dated_ahead_is_not_the_irradiated_one() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 50 * DAY, cord_compression=True, status="confirmed"),
        course(TODAY - 40 * DAY),
    ]
    assert _mscc(events)[:2] == ("done", "info")  # control: irradiated
    gone = _ahead(vertebra(at=AHEAD, cord_compression=False, status="confirmed"))
    back = _ahead(vertebra(at=AHEAD + HOUR, cord_compression=True, status="confirmed"))
    status, severity, title = _mscc([*events, gone, back])
    assert (status, severity) == ("to_do", "warning"), title  # 8589dca: "donnée non actuelle" (the recurrence)


def test_review_r28rt2_an_epidural_extension_denied_ahead_does_not_raise_a_prevention_rt() -> None:
    events: list[Message] = [vertebra(at=NOW - 2 * DAY, epidural_extension=True, status="confirmed")]
    assert _mscc(events)[0] == "recommended"  # control: prevention RT (L1290)
    denied = _ahead(vertebra(at=AHEAD, epidural_extension=False, status="confirmed"))
    assert _items([*events, denied], "RT-MSCC") == []  # 8589dca: no item


def test_review_r28rt2_a_compression_kept_over_a_denial_dated_ahead_shows_the_denial() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 2 * DAY, cord_compression=True, epidural_extension=True, status="confirmed"),
        _assessment(life_expectancy_months=24.0),
    ]
    denied = _ahead(vertebra(at=AHEAD, cord_compression=False, epidural_extension=False, status="confirmed"))
    [mscc] = _items([*events, denied], "RT-MSCC")
    assert mscc.severity == "critical"  # the emergency kept (b)
    shown = {i.source_event_id for i in mscc.inputs}
    assert denied.event_id in shown or "futur" in mscc.text_fr, mscc.text_fr


def test_review_r28rt2_an_irradiated_compression_denied_ahead_with_the_extension_left_is_not_info() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 20 * DAY, cord_compression=True, epidural_extension=True, status="confirmed"),
        _assessment(NOW - 20 * DAY, life_expectancy_months=24.0),
        course(TODAY - 10 * DAY),
    ]
    assert _mscc(events)[:2] == ("done", "info")  # control: irradiated
    newer = _ahead(vertebra(at=AHEAD, cord_compression=False, epidural_extension=True, status="confirmed"))
    status, severity, title = _mscc([*events, newer])
    assert severity != "info", (status, title)  # 8589dca: "Épidurite : prévention" (recommended, warning)


def test_review_r28rt2_a_resolution_dated_ahead_does_not_end_the_inferred_emergency_either() -> None:
    events: list[Message] = [
        vertebra(at=NOW - 3 * DAY, epidural_extension=True, status="confirmed"),
        _assessment(NOW - DAY, neurological_deficit=True, life_expectancy_months=24.0),
    ]
    assert _mscc(events)[1] == "critical"  # control: a compression to rule out
    imaged: list[Message] = [
        vertebra(at=NOW - 3 * DAY, cord_compression=True, status="confirmed"),
        _assessment(NOW - DAY, life_expectancy_months=24.0),
    ]
    resolved = _ahead(vertebra(at=AHEAD, status="resolved"))
    assert _mscc([*imaged, resolved])[1] == "critical"  # (b): the imaged one is kept
    status, severity, title = _mscc([*events, resolved])
    assert severity == "critical", (status, title)
