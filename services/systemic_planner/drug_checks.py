"""Drugs the systemic planner cannot count silently (issue 18 review): drugs under way or given recently that the
vocabulary cannot identify (`unidentified`: never counted as not an anti-resorptive, not nephrotoxic, not a TKI),
and drug records whose correction leaves what was given to check (`corrections`).

Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from contracts.hospital import (
    DrugAdministration,
    SystemicDrug,
    TreatmentEvent,
)
from services.systemic_planner import rules as r
from services.systemic_planner.drug_replay import DrugHistory
from services.systemic_planner.state import SystemicState
from services.systemic_planner.treatments import _resolved, treatments
from shared.clinical.dates import add_months
from shared.clinical.drugs import identify


@dataclass(frozen=True)
class Unidentified:
    """A drug under way (or administered recently) that the vocabulary cannot identify (issue 18 review)."""

    key: str
    atc: str | None
    since: date
    conflict: bool

    @property
    def name_fr(self) -> str:
        return self.key.replace("_", " ")

    @property
    def missing(self) -> str:
        return f"identity of {self.name_fr} (anti-resorptive? nephrotoxic? TKI?)"


def unidentified(s: SystemicState, drugs: DrugHistory, at: r.AsOf) -> list[Unidentified]:
    """Drugs under way, or administered within r.UNIDENTIFIED_RECENT_MONTHS (or still taken), whose identity the
    vocabulary cannot establish (unlisted, or name and ATC code disagreeing): never counted silently as not an
    anti-resorptive, not nephrotoxic, not a TKI, not a cancer treatment."""
    found: dict[str, Unidentified] = {}
    for name, since in drugs.active.items():  # an unknown drug keeps the name it was sent with (canonical)
        who = drugs.identity(name)
        if not who.known:
            found[who.key] = Unidentified(who.key, drugs.atc.get(name), since, who.conflict)
    for e in treatments(s):
        t = e.treatment
        if not isinstance(t, DrugAdministration) or at.today_lt(t.on):
            continue
        who = identify(t.drug, t.atc_code)
        if who.known or who.key in found:
            continue
        until = add_months(t.on, r.UNIDENTIFIED_RECENT_MONTHS)
        if t.ongoing or at.today_lt(until):
            if not t.ongoing:
                at.after_date(until)
            found[who.key] = Unidentified(who.key, t.atc_code, t.on, who.conflict)
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class CorrectionToCheck:
    """An amended drug record later entered in error: what it replaced is not brought back (issue 18 review). Or
    (second review, `in_force`) the version of a drug record that still counts although an entered-in-error named one
    of its superseded versions: the hospital may have meant the whole record."""

    event: TreatmentEvent
    drugs: tuple[str, ...]  # the drug named by the amendment and by the record it replaced
    on: date
    in_force: bool = False

    @property
    def holds_start(self) -> bool:
        """An anti-resorptive, or a drug not identified, may have been given: no new start before checking."""
        return any(d in r.ANTIRESORPTIVES or not identify(d).known for d in self.drugs)

    @property
    def missing(self) -> str:
        names = " / ".join(d.replace("_", " ") for d in self.drugs)
        if self.in_force:
            return (
                f"whether {names} recorded on {self.on.isoformat()} is right (an earlier, superseded version was "
                "entered in error)"
            )
        return f"whether {names} recorded on {self.on.isoformat()} was given (its amended record was entered in error)"


def corrections(s: SystemicState) -> list[CorrectionToCheck]:
    out: list[CorrectionToCheck] = []
    to_check = _resolved(s)[1]
    if not to_check:  # the common case (helper HV): no set of every counted event's ID made for nothing
        return out
    counted = {e.event_id for e in treatments(s)}
    for e in to_check:
        t = e.treatment
        if not isinstance(t, SystemicDrug | DrugAdministration):
            continue
        if e.event_id in counted:  # still in force: an earlier version of it was entered in error
            out.append(CorrectionToCheck(e, (t.drug,), t.on, in_force=True))
            continue
        names = [t.drug]
        replaced = s.treatments.get(str(e.corrects)) if e.corrects is not None else None
        if replaced is not None and isinstance(replaced.treatment, SystemicDrug | DrugAdministration):
            names.append(replaced.treatment.drug)
        out.append(CorrectionToCheck(e, tuple(dict.fromkeys(names)), t.on))
    return out
