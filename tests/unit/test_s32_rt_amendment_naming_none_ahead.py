"""Session 32 (HAZ-27-FUTURE-HIDES, radiotherapy planner `as_of.view_b`): review R29B's cases with an amendment that
names no record (`corrects` None: the fold resolves it to the patient's newest assessment recorded before it,
shared/clinical/corrections.py `target`). The systemic planner resolves such an amendment dated ahead to its target
since session 31 (review R30-SYS); the radiotherapy planner's own copy of that rule read only `corrects`, so in view B
the amendment replaced yesterday's record and, being dated ahead, was left out with it: the deficit unknown, RT-MSCC's
emergency (L1397-1402) hidden by a record not yet current. One rule now serves both planners
(`corrections.fixes_ahead`)."""

from __future__ import annotations

import pytest

from tests.unit.test_review_r29b_rt_corrected_ahead import _history, _mscc


@pytest.mark.parametrize("deficit_amended", [True, False], ids=["re_stating", "denying"])
def test_s32_an_amendment_naming_none_dated_ahead_does_not_hide_today_s_emergency(deficit_amended: bool) -> None:
    past, amended = _history(deficit_amended)
    naming_none = amended.model_copy(update={"corrects": None})
    [(status, severity, title, text)] = _mscc([*past, naming_none])
    if deficit_amended:  # B (yesterday's record, current until the amendment's date) agrees with C: the emergency
        assert severity == "critical", (status, severity, title)
    else:  # B's emergency, marked: the amendment dated ahead contradicts it
        assert severity == "critical" and "vérifier" in text, (status, severity, title)
