"""Issue 18, independent clinical-safety review of scoring: a same-day re-prescription is still under way (2), two
amendments of one treatment record count once, the newest (5), and IMG-FLARE's 6-month window runs from the start
of the continuous treatment, a short interruption not restarting it (9; L391-395). Pure timelines, no mocks."""

from __future__ import annotations

import itertools

import pytest

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from services.scoring import rules as r
from tests.unit.test_issue18_scoring_context import FOCUS, RT_PAIN, correction, drug, flares
from tests.unit.test_scoring_scores import run

PROGRESSION = "Nouveau foyer osseux plus de 6 mois après le début du traitement anticancéreux"
FLARE = "Nouveau foyer osseux : possible flare, pas une progression"
Drug = tuple[str, str, str]


def reading(*events: Drug) -> tuple[str, list[str]] | None:
    """The IMG-FLARE title and the anticancer start it rests on, for these drug events and FOCUS (2026-11-01)."""
    _, out = run([*(drug(i, name, action, on=on) for i, (name, action, on) in enumerate(events)), FOCUS])
    found = flares(out)
    if not found:
        return None
    [rec] = found
    return rec.title, [str(i.value) for i in rec.inputs if i.name == "anticancer_treatment_started"]


# ---- (2) + (9) -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # the same drug stopped and restarted the same day (a re-prescription): under way since January
        (
            [
                ("osimertinib", "started", "2026-01-05"),
                ("osimertinib", "stopped", "2026-08-01"),
                ("Tagrisso 40 mg", "started", "2026-08-01"),
            ],
            (PROGRESSION, ["osimertinib 2026-01-05"]),
        ),
        # a one-day interruption for a dose change does not reopen the window
        (
            [
                ("osimertinib", "started", "2026-01-05"),
                ("osimertinib", "stopped", "2026-08-01"),
                ("Tagrisso 40 mg", "started", "2026-08-02"),
            ],
            (PROGRESSION, ["osimertinib 2026-01-05"]),
        ),
        # a re-prescription of a drug started two months before the focus: still a possible flare
        (
            [
                ("carboplatin", "started", "2025-01-10"),
                ("osimertinib", "started", "2026-09-01"),
                ("osimertinib", "stopped", "2026-10-01"),
                ("osimertinib", "started", "2026-10-01"),
            ],
            (FLARE, ["osimertinib 2026-09-01"]),
        ),
        # an interruption of 3 months or more: a new treatment, a new window
        (
            [
                ("osimertinib", "started", "2025-01-05"),
                ("osimertinib", "stopped", "2026-03-01"),
                ("osimertinib", "started", "2026-06-01"),
            ],
            (FLARE, ["osimertinib 2026-06-01"]),
        ),
        # an interruption just under 3 months does not
        (
            [
                ("osimertinib", "started", "2025-01-05"),
                ("osimertinib", "stopped", "2026-03-01"),
                ("osimertinib", "started", "2026-05-31"),
            ],
            (PROGRESSION, ["osimertinib 2025-01-05"]),
        ),
        # a start sent again while under way is the same treatment
        (
            [("osimertinib", "started", "2025-01-05"), ("osimertinib", "started", "2026-09-01")],
            (PROGRESSION, ["osimertinib 2025-01-05"]),
        ),
        # a switch between two drugs the same day is unchanged: the new drug starts
        (
            [
                ("carboplatin", "started", "2025-01-10"),
                ("carboplatin", "stopped", "2026-09-01"),
                ("osimertinib", "started", "2026-09-01"),
            ],
            (FLARE, ["osimertinib 2026-09-01"]),
        ),
        # stopped for good: nothing under way
        ([("osimertinib", "started", "2026-09-01"), ("osimertinib", "stopped", "2026-10-01")], None),
    ],
)
def test_IMG_FLARE_window_runs_from_the_continuous_treatment(
    events: list[Drug], expected: tuple[str, list[str]] | None
) -> None:
    assert reading(*events) == expected


def test_the_interruption_that_restarts_the_window_is_named() -> None:
    assert r.FLARE_RESTART_INTERRUPTION_MONTHS == 3 and r.FLARE_WINDOW_MONTHS == 6


# ---- (5) two amendments of one record: the newest counts (the phantom SRE) ----------------------------------------
def _sres(events: list[Message]) -> list[str]:
    _, out = run(events)
    current = {x.event_id: x.kind for x in out if isinstance(x, SkeletalEvent) and x.status != "withdrawn"}
    gone = {i for x in out if isinstance(x, SkeletalEvent) and x.status == "withdrawn" for i in x.supersedes}
    return sorted(kind for event_id, kind in current.items() if event_id not in gone)


def test_CLASS_SRE_the_newest_of_two_amendments_decides() -> None:
    date_fixed = correction(RT_PAIN, "amended", 50, on="2026-10-03")
    not_for_pain = correction(RT_PAIN, "amended", 60, intent="preventive")
    for order in itertools.permutations([RT_PAIN, date_fixed, not_for_pain]):
        assert _sres(list(order)) == [], order
    for_pain_again = correction(RT_PAIN, "amended", 70, intent="pain")
    assert _sres([RT_PAIN, date_fixed, not_for_pain, for_pain_again]) == ["radiotherapy_for_pain"]
