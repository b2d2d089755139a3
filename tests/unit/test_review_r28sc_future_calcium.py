"""Review R28-SC: the stated residual of HAZ-27-FUTURE-HIDES for calcium ("> LABS_KEPT future calcium values may
drop the current one") is real, and what it does: past LABS_KEPT (24) corrected calcium values dated in the future
(a producer's clock ahead, shared/runtime/decoding.not_future), retention (services/scoring/retention._retain_labs)
takes the first future normal value as the end of today's crisis episode, before its cutoff: the episode is
"ended" and forgotten with what was published for it (its SRE and alert slots), and today's value is dropped.
Today's critical LAB-CA-CRISIS alert is then left active downstream, never withdrawn nor made a warning; a normal
value measured 40 minutes after the crisis withdraws the hypercalcaemia SRE instead of making it historical
(CLASS-SRE L259-296: the crisis happened, one SRE); a second crisis value opens a second critical alert for the same
episode. With LABS_KEPT future values the SRE is kept. Strict xfail, a minimal case (also on c63da6d: calcium is
not part of the change)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts.base import Message
from services.scoring.domain import ScoringState, apply_event
from services.scoring.retention import LABS_KEPT
from tests.unit.test_scoring_clock import T0
from tests.unit.test_scoring_crisis import cc
from tests.unit.test_scoring_scores import live_sres

DAY = timedelta(days=1)


def _hypercalcaemias(future_values: int) -> list[bool | None]:
    """Today's crisis, `future_values` normal values dated from tomorrow (recorded 30 min later), then today's
    normal value 40 min after the crisis (the episode ends): the live hypercalcaemia SREs' `current`."""
    s, out = apply_event(ScoringState(), cc(3.8, rid="today"), now=T0)
    recorded = T0 + timedelta(minutes=30)
    for i in range(future_values):
        s, o = apply_event(s, cc(2.3, rid=f"ahead-{i}", at=T0 + (i + 1) * DAY, recorded=recorded), now=recorded)
        out += o
    later = T0 + timedelta(minutes=40)
    s, o = apply_event(s, cc(2.3, rid="normal", at=later), now=later)
    published: list[Message] = [*out, *o]
    return [x.current for x in live_sres(published) if x.kind == "hypercalcaemia"]


def test_review_r28sc_calcium_baseline() -> None:
    assert _hypercalcaemias(0) == [False]
    assert _hypercalcaemias(LABS_KEPT) == [False]


@pytest.mark.xfail(strict=True, reason="review R28-SC: future calcium values past LABS_KEPT end today's crisis")
def test_review_r28sc_future_calcium_values_past_the_kept_ones_keep_todays_crisis_sre() -> None:
    assert _hypercalcaemias(LABS_KEPT + 1) == [False]  # is []: the SRE withdrawn
