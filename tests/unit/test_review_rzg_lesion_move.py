"""Reviewer RZG (issue 25, helper ZG's per-lesion fold): a record delivered again under the same event ID with a
different lesion (a re-sent study re-attributed by the hospital, redelivered past the dedup window) leaves the
table with the record under its new lesion only; the whole table's fold (the base) no longer shows it under the old
lesion, the per-lesion fold from the previous state's lesions must not either."""

from __future__ import annotations

from datetime import timedelta

from services.radiotherapy_planner import memo as m
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState, lesions
from shared.clinical.corrections import effective_findings
from tests.unit.test_issue18_local import NOW, vertebra


def _whole(s: LocalState) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for f in effective_findings(s.findings.values()):
        by.setdefault(f.lesion_id, []).append(str(f.event_id))
    return dict(sorted(by.items()))


def _per_lesion(s: LocalState) -> dict[str, list[str]]:
    return {lid: [str(f.event_id) for f in x.history] for lid, x in lesions(s).items()}


def test_a_record_moved_to_another_lesion_leaves_its_old_lesion() -> None:
    m.clear()
    first = vertebra("t8", "T8", at=NOW - timedelta(days=3), cord_compression=True, epidural_extension=True)
    moved = first.model_copy(update={"lesion_id": "t9", "vertebral_level": "T9", "recorded_at": NOW})
    other = vertebra("t9", "T9", at=NOW - timedelta(days=10), cord_compression=False)
    s = LocalState()
    for e in (other, first, moved):
        s, _ = apply_event(s, e)
    assert list(s.findings) and all(f.lesion_id == "t9" for f in s.findings.values())
    assert _per_lesion(s) == _whole(s)  # base: {"t9": [other, moved]}; new: "t8" still holds the moved record
    assert "t8" not in lesions(s)


def test_the_plan_after_a_move_is_that_of_a_restart() -> None:
    """The state as stored (a restart reads it back: no lesions cached) decides as the live one."""
    m.clear()
    first = vertebra("t8", "T8", at=NOW - timedelta(days=3), cord_compression=True, epidural_extension=True)
    moved = first.model_copy(update={"lesion_id": "t9", "vertebral_level": "T9", "recorded_at": NOW})
    s = LocalState()
    for e in (first, moved):
        s, _ = apply_event(s, e)
    live = lesions(s)
    restarted = lesions(LocalState.model_validate_json(s.model_dump_json()))
    assert sorted(live) == sorted(restarted)


def test_the_plan_after_a_move_names_no_compression_at_the_old_level() -> None:
    """The decision: the moved compression (now at T9) still decided at T8 from the stale lesion."""
    from services.radiotherapy_planner.domain import current_plan

    m.clear()
    first = vertebra("t8", "T8", at=NOW - timedelta(days=3), cord_compression=True, epidural_extension=True)
    moved = first.model_copy(update={"lesion_id": "t9", "vertebral_level": "T9", "recorded_at": NOW})
    s = LocalState()
    for e in (first, moved):
        s, _ = apply_event(s, e)
    live = current_plan(s, first.patient_id)
    m.clear()
    restarted = current_plan(LocalState.model_validate_json(s.model_dump_json()), first.patient_id)
    assert live is not None and restarted is not None

    def items(p: object) -> list[tuple[str, str, str]]:
        return sorted((i.rule_id, i.key, i.status) for sec in p.sections for i in sec.items)  # type: ignore[attr-defined]

    assert items(live) == items(restarted)
