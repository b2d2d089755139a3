"""What the systemic planner reads of the lab values: the newest live result of each analyte, renal function
(creatinine clearance, LAB-CRCL: SYS-DENO, SYS-RENAL-TOX, SYS-ZA-DOSE), corrected calcium (LAB-CA-CRISIS, the
hypercalcaemia SRE) and vitamin D (SYS-VITD-CORR, SYS-AR-PREREQ), and how current each one is.

Pure. Every reader takes an `AsOf` (now, recency windows) and records the deadlines at which its answer changes
(an input going stale, a crisis ceasing to be current, a future-dated fact becoming effective)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from contracts.base import InputUsed
from services.systemic_planner import rules as r
from services.systemic_planner.drug_replay import DrugHistory
from services.systemic_planner.fr import fr_date
from services.systemic_planner.state import LabFact, SystemicState
from shared.clinical import censored
from shared.clinical.facts import Fact


def latest(table: dict[str, LabFact], at: r.AsOf, before: date | None = None) -> LabFact | None:
    """The newest live value by clinical time. A value dated in the future is not current and never hides the
    newest real one (it becomes effective, if still there, when its date comes: a deadline)."""
    live = []
    for v in table.values():
        if v.withdrawn or (before is not None and at.day(v.occurred_at) > before):
            continue
        if at.is_future(v.occurred_at):  # its deadline offered by is_future (HAZ-27-SYS-FUTURE)
            continue
        live.append(v)
    return max(live, key=lambda v: (v.occurred_at, v.recorded_at, v.event_id.int), default=None)


def future_dated(table: dict[str, LabFact], at: r.AsOf) -> bool:
    return any(not v.withdrawn and at.is_future(v.occurred_at) for v in table.values())


@dataclass(frozen=True)
class Renal:
    """Creatinine clearance as the rules may use it. `value` is set only when current (item: stale inputs)."""

    crcl: LabFact | None
    status: Literal["unknown", "not_computable", "stale", "current"]
    value: float | None
    stale: tuple[str, ...] = ()  # what to measure again, in French
    missing: tuple[str, ...] = ()  # what is needed, for `missing`

    @property
    def failure(self) -> censored.Side | None:
        """CrCl < 30 (SYS-DENO, SYS-RENAL-TOX, SYS-ZA-DOSE contraindication) on the clearance as an interval
        (issue 12): "below" = severe renal failure for certain, "straddles" = undecided. None unless current."""
        if self.value is None or self.crcl is None:
            return None
        return r.renal_failure_side(self.value, self.crcl.comparator)

    def censored_missing(self) -> list[str]:
        """Issue 12: what to measure again when a censored clearance leaves a threshold undecided."""
        assert self.crcl is not None
        return [f"exact value: {x} is censored, measure again" for x in self.crcl.censored_sources] or [
            f"exact creatinine clearance: {self.crcl.shown()} mL/min is censored, measure again"
        ]


def renal(s: SystemicState, at: r.AsOf) -> Renal:
    crcl = latest(s.creatinine_clearance, at)
    if crcl is None:
        # LAB-CRCL is derived by lab-normalisation from a creatinine and the patient record; without one the
        # planner only knows that the clearance is missing (never which of weight, age or sex: it does not read
        # the record, and naming them when they are known would be wrong).
        return Renal(None, "unknown", None, missing=("creatinine clearance",))
    if crcl.value is None:
        return Renal(crcl, "not_computable", None, missing=("creatinine clearance", *crcl.missing))
    w = at.recency
    stale: list[str] = []
    missing: list[str] = []
    if not at.is_current(crcl.occurred_at, w.creatinine):
        stale.append(f"créatininémie du {fr_date(crcl.occurred_at)}")
        missing.append(f"creatinine measured within {w.creatinine.days} days")
    if crcl.weight_at is None or not at.is_current(crcl.weight_at, w.weight):
        when = f"du {fr_date(crcl.weight_at)}" if crcl.weight_at else "sans date de pesée"
        stale.append(f"poids {when}")
        missing.append(f"weight measured within {w.weight.days} days")
    if stale:
        return Renal(crcl, "stale", None, tuple(stale), tuple(missing))
    return Renal(crcl, "current", crcl.value)


@dataclass(frozen=True)
class Calcium:
    """Corrected calcium as the plan uses it.

    `emergency`: a *current* hypercalcaemic crisis (newest corrected calcium > 3.5 mmol/L, within the recency
    window; or a hypercalcaemia SRE with no newer calcium known, itself recent). A late crisis value older than a
    newer normal one is history, never an emergency (the SRE still counts as an SRE for SYS-AR-START).
    `hold_supplements`: no vitamin D loading and no calcium advice while the newest corrected calcium is above
    normal, or a hypercalcaemia is known with no normal calcium since (whatever its age: only a normal corrected
    calcium lifts it)."""

    latest: LabFact | None
    emergency: bool
    hold_supplements: bool
    current: bool
    inputs: tuple[InputUsed, ...] = ()
    #: issue 12: the newest corrected calcium is censored and its bound leaves the upper normal limit undecided
    #: (e.g. "> 2.5"): neither held for a hypercalcaemia nor known normal; the reported value(s), to name
    uncertain: str | None = None


def calcium(s: SystemicState, at: r.AsOf) -> Calcium:
    values = {k: v for k, v in s.corrected_calcium.items() if v.value is not None}
    ca = latest(values, at)
    sres = [f for f in s.sres.values() if f.value == "hypercalcaemia" and not at.is_future(f.occurred_at)]
    last_sre = max(sres, key=lambda f: f.order(), default=None)
    inputs: list[InputUsed] = []
    if ca is not None and (last_sre is None or ca.occurred_at >= last_sre.occurred_at):
        assert ca.value is not None
        inputs.append(ca.used("corrected_calcium", "mmol/L"))
        current = at.is_current(ca.occurred_at, at.recency.calcium)
        # strict and unrounded; a censored value decides only when its whole interval lies on one side (issue 12):
        # an emergency never from a bound that may be below 3.5 (LAB-CA-CRISIS L304-306)
        crisis = r.calcium_side(ca.value, ca.comparator, r.CRISIS_CORRECTED_CALCIUM_MMOL_L) == "above"
        high = r.calcium_side(ca.value, ca.comparator, r.CALCIUM_UPPER_NORMAL_MMOL_L)
        uncertain = ca.reported("corrected_calcium", "mmol/L") if high == "straddles" else None
        return Calcium(ca, current and crisis, high == "above", current, tuple(inputs), uncertain)
    if last_sre is not None:  # a crisis known from scoring, no newer calcium here
        inputs.append(last_sre.used("sre:hypercalcaemia"))
        current = sre_is_current(s, last_sre, at, at.recency.calcium)
        return Calcium(ca, current, True, current, tuple(inputs))
    return Calcium(None, False, False, False)


def sre_is_current(s: SystemicState, sre: Fact[str], at: r.AsOf, window: timedelta) -> bool:
    """An SRE is under way: as scoring assessed it (`current`, until `current_until`), else judged here from its
    newest evidence within `window`. Either way, never from a future date."""
    assessed = s.sre_currency.get(str(sre.event_id))
    if assessed is not None and assessed.current is not None:
        if not assessed.current:
            return False
        if assessed.current_until is not None:  # current up to it inclusive (contracts SkeletalEvent, scoring)
            return at.not_after(assessed.current_until) and not at.is_future(assessed.evidence_at or sre.occurred_at)
    return at.is_current(assessed.evidence_at if assessed and assessed.evidence_at else sre.occurred_at, window)


@dataclass(frozen=True)
class VitaminD:
    fact: LabFact | None
    #: censored: the level is a bound spanning two of the correction scheme's bands (issue 12): nothing is decided
    status: Literal["unknown", "stale", "current", "censored"]
    #: SYS-AR-PREREQ: a deficiency (< 20 ng/mL) whose loading is not complete
    deficiency_uncorrected: bool = False
    loading_since: date | None = None
    loading_ends: date | None = None
    #: r.VITD_CUTS band (0: < 20 ... 4: > 150) when current; and a certain Tableau 1 deficiency (< 10 ng/mL)
    band: int | None = None
    severe: bool = False
    #: SYS-VITD-CORR (issue 18 review): the loading on this level was stopped on this day, before its weeks were
    #: given (L851, L855: 8 or 4 weekly doses): not complete
    loading_stopped: date | None = None
    loading_weeks: int = 0

    @property
    def decided_value(self) -> float | None:
        """A value inside the level's band, standing for it in the band's decisions (the exact value when exact)."""
        if self.fact is None or self.fact.value is None or self.band is None:
            return None
        return self.fact.value if self.fact.comparator is None else r.VITD_BAND_VALUE[self.band]


def vitamin_d(s: SystemicState, drugs: DrugHistory, at: r.AsOf) -> VitaminD:
    v = latest(s.vitamin_d, at)
    if v is None or v.value is None:
        return VitaminD(v, "unknown")
    if not at.is_current(v.occurred_at, at.recency.vitamin_d):
        return VitaminD(v, "stale")
    # issue 12: a censored level decides only when its whole interval lies in one band of the scheme (SYS-VITD-CORR
    # L849-855: < 20, 20 to 30; Tableau 1 L821-831: 30-70, > 150)
    band = r.vitamin_d_band(v.value, v.comparator)
    if band is None:
        return VitaminD(v, "censored")
    severe = r.severe_vitamin_d_deficiency(v.value, v.comparator)
    weeks = {0: 8, 1: 4}.get(band, 0)
    if not weeks:
        return VitaminD(v, "current", band=band, severe=severe)
    # the loading prescribed on this level (one 50 000 IU dose a week): cholecalciferol started on or after the
    # level; a deficiency is corrected once a course lasted the loading's weeks (issue 18 review: a course stopped
    # before then is not a complete loading, L851 "8 prises de 50 000 UI hebdomadaires", L795-799)
    deficient = band == 0
    courses = [(a, b) for a, b in drugs.runs.get("cholecalciferol", ()) if a >= at.day(v.occurred_at)]
    if not courses:
        return VitaminD(v, "current", deficiency_uncorrected=deficient, band=band, severe=severe, loading_weeks=weeks)
    loaded = timedelta(weeks=weeks)
    complete = next(
        ((a, b) for a, b in courses if (b >= a + loaded if b is not None else at.today_ge(a + loaded))), None
    )
    started, stopped = complete or courses[-1]
    ends = started + loaded
    if complete is None and stopped is not None:  # interrupted before its weeks, not started again since
        return VitaminD(
            v,
            "current",
            deficiency_uncorrected=deficient,
            loading_since=started,
            band=band,
            severe=severe,
            loading_stopped=stopped,
            loading_weeks=weeks,
        )
    at.after_date(ends)
    uncorrected = deficient and complete is None
    return VitaminD(
        v,
        "current",
        deficiency_uncorrected=uncorrected,
        loading_since=started,
        loading_ends=ends,
        band=band,
        severe=severe,
        loading_weeks=weeks,
    )
