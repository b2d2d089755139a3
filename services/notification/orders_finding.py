"""What a check of a draft order finds (a `Finding`, made a CDS Hooks card by orders.py), where a card points
(`Links`), the French labels and units a card shows, and the summary's length (CDS Hooks 2.0: under 140
characters). Pure, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from services.notification.orders_drafts import Draft
from services.notification.orders_facts import Value

UCUM: Final = "http://unitsofmeasure.org"
Indicator = Literal["info", "warning", "critical"]
#: the names of the values a card shows (French, clinical)
LABELS: Final = {
    "creatinine_clearance": "Clairance de la créatinine (Cockcroft-Gault)",
    "initial_creatinine_clearance": "Clairance initiale (avant la première perfusion)",
    "corrected_calcium": "Calcémie corrigée",
    "aspirin_daily_dose": "Dose quotidienne d'aspirine prescrite",
}
UNITS_FR: Final = {"umol/L": "µmol/L", "mL/min": "mL/min", "mmol/L": "mmol/L"}


@dataclass(frozen=True)
class Finding:
    draft: Draft
    check: str
    rule_id: str
    indicator: Indicator
    summary: str
    text: str
    used: tuple[Value, ...] = ()
    missing: tuple[str, ...] = ()
    suggestion: dict[str, Any] | None = None
    extra: tuple[str, ...] = field(default=())  # further Markdown lines (e.g. the unmet prerequisites)


@dataclass(frozen=True)
class Links:
    """Where a card points: the patient's live page (a SMART link) and a rule's passage (`source.url`)."""

    page: Callable[[str], str]
    passage: Callable[[str], str]


#: CDS Hooks 2.0: a card's summary is a "<140-character" sentence
SUMMARY_MAX: Final = 139


def _fit(head: str, variable: str, tail: str = "") -> str:
    """A summary within SUMMARY_MAX whose message (head and tail) is whole: the variable part (lesions, names) is
    shortened, never the end of the sentence."""
    room = SUMMARY_MAX - len(head) - len(tail)
    if len(variable) > room:
        variable = variable[: max(room - 1, 0)].rstrip(" ;,/") + "…"
    return (head + variable + tail)[:SUMMARY_MAX]
