"""Pure systemic-treatment rules (SYS-*). No I/O."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from contracts.hospital import Comparator
from shared.clinical import drug_classes, drugs
from shared.clinical.censored import Side, Strictness, band, interval, side_of
from shared.clinical.dates import add_months
from shared.clinical.life_expectancy import THREE_MONTHS

ANTIRESORPTIVES: Final = drug_classes.ANTIRESORPTIVES
BISPHOSPHONATES: Final = drug_classes.BISPHOSPHONATES
PLATINUM: Final = frozenset({"cisplatin", "carboplatin", "oxaliplatin"})
NEPHROTOXIC_CHEMO: Final = PLATINUM | {"pemetrexed"}
#: SYS-RENAL-TOX (L740-742) "Les TKI ... déconseillés en cas d'insuffisance rénale sévère": the kinase inhibitors of
#: the shared vocabulary (groups egfr_tki and tki, also placed by an ATC code L01E; antibodies such as amivantamab
#: are the "targeted" group, not kinase inhibitors).
TKI_GROUPS: Final = frozenset({"egfr_tki", "tki"})


def is_tki(drug: str, atc: str | None = None) -> bool:
    return drugs.identify(drug, atc).group in TKI_GROUPS


#: SYS-AR-START (L1070-1074): life expectancy threshold (months), strictly above; counted on what remains of the
#: estimate (shared/clinical/life_expectancy.py, as scoring and the radiotherapy planner count it).
AR_START_MIN_LIFE_EXPECTANCY_MONTHS: Final = THREE_MONTHS


#: IMG-ISOLATED (L489-491): a lesion seen only on these is unconfirmed (the same set as scoring's).
METABOLIC_MODALITIES: Final = frozenset({"bone_scan", "fdg_pet", "naf_pet"})


@dataclass(frozen=True)
class ArStartDecision:
    """SYS-AR-START outcome. `trigger` names why ("sre" or "bone_metastasis")."""

    outcome: Literal[
        "start", "not_indicated", "insufficient_data", "already_treated", "no_trigger", "stopped_after_review"
    ]
    trigger: Literal["sre", "bone_metastasis"] | None
    missing: tuple[str, ...] = ()


def antiresorptive_start(
    *,
    has_sre: bool,
    bone_metastasis: bool,
    life_expectancy_months: float | None,
    on_antiresorptive: bool,
    stopped_after_review: bool = False,
) -> ArStartDecision:
    """SYS-AR-START (L1068-1084, L1263-1265): after any SRE start whatever the survival; otherwise start at the
    discovery of a bone metastasis when life expectancy is > 3 months. After a deliberate stop at the 2-year
    review (SYS-REVIEW-2Y, L1275-1279), only a *new* SRE (`has_sre` then counts SREs after the stop) reopens it."""
    if on_antiresorptive:
        return ArStartDecision("already_treated", None)
    if has_sre:
        return ArStartDecision("start", "sre")
    if stopped_after_review:
        return ArStartDecision("stopped_after_review", None)
    if not bone_metastasis:
        return ArStartDecision("no_trigger", None)
    if life_expectancy_months is None:
        return ArStartDecision("insufficient_data", "bone_metastasis", ("life expectancy estimate",))
    if life_expectancy_months > AR_START_MIN_LIFE_EXPECTANCY_MONTHS:
        return ArStartDecision("start", "bone_metastasis")
    return ArStartDecision("not_indicated", "bone_metastasis")


# ---- SYS-ZA-DOSE, Tableau 2 (L1153-1184): half-open bands on the initial Cockcroft-Gault clearance ----------
@dataclass(frozen=True)
class ZaDose:
    dose_mg: float | None  # None: contraindicated
    band: str
    next_band_fr: str  # what would change it


#: Tableau 2 cut points in ascending order, with how each band's lower bound is stated: < 30 | 30-39 | 40-49 | 50-60 |
#: > 60 (L1159-1178; "contre-indiqué en cas de clairance < 30", L1155-1156)
ZA_CUTS: Final[list[tuple[float, Strictness]]] = [(30.0, ">="), (40.0, ">="), (50.0, ">="), (60.0, ">")]
#: SYS-DENO / SYS-RENAL-TOX: "< 30 ml/mn" (L1215-1216, L742): below means not ">= 30"
SEVERE_RENAL_FAILURE_ML_MIN: Final = 30.0


def renal_failure_side(crcl_ml_min: float, comparator: Comparator | None) -> Side:
    """Issue 12: "below" = severe renal failure (CrCl < 30) whatever the censored value is, "above" = certainly not,
    "straddles" = undecided (insufficient data)."""
    return side_of(crcl_ml_min, comparator, SEVERE_RENAL_FAILURE_ML_MIN, ">=")


def zoledronic_acid_dose_bounded(crcl_ml_min: float, comparator: Comparator | None) -> ZaDose | None:
    """Issue 12: the Tableau 2 band of a censored clearance only when the whole interval lies in one band, else None
    (e.g. "> 45" may be 3.3, 3.5 or 4.0 mg): no dose is chosen from a bound."""
    b = band(interval(crcl_ml_min, comparator), ZA_CUTS)
    if b is None:
        return None
    # the band's own exact representative: its lower cut (or below the first cut; above the last)
    representative = {0: 0.0, 1: 30.0, 2: 40.0, 3: 50.0, 4: math.inf}[b]
    return zoledronic_acid_dose(representative)


def zoledronic_acid_dose(crcl_ml_min: float) -> ZaDose:
    """> 60 -> 4.0 mg; 50-60 -> 3.5; 40 to < 50 -> 3.3; 30 to < 40 -> 3.0; < 30 contraindicated."""
    if crcl_ml_min > 60:
        return ZaDose(4.0, "> 60 mL/min", "la dose baisse à 3,5 mg si la clairance passe à 60 mL/min ou moins")
    if crcl_ml_min >= 50:
        return ZaDose(3.5, "50-60 mL/min", "la dose passe à 4 mg si la clairance dépasse 60 mL/min, à 3,3 mg sous 50")
    if crcl_ml_min >= 40:
        return ZaDose(3.3, "40-49 mL/min", "la dose passe à 3,5 mg à partir de 50 mL/min, à 3,0 mg sous 40")
    if crcl_ml_min >= 30:
        return ZaDose(3.0, "30-39 mL/min", "la dose passe à 3,3 mg à partir de 40 mL/min ; contre-indication sous 30")
    return ZaDose(None, "< 30 mL/min", "l'acide zolédronique redevient possible si la clairance atteint 30 mL/min")


# ---- SYS-VITD-CORR (L803-865 with Tableau 1, L1124-1128) -----------------------------------------------------
VITD_DOSE_IU: Final = 50_000
CALCIUM_INTAKE_MG_DAY: Final = (1000, 1500)


@dataclass(frozen=True)
class VitaminDPlan:
    loading_weekly_doses: int  # 8, 4 or 0 (maintenance only)
    severe_deficiency: bool  # Tableau 1 deficiency (< 10 ng/mL): deep, prolonged hypocalcaemia risk
    what_would_change_fr: str


def vitamin_d_correction(ng_ml: float) -> VitaminDPlan:
    """< 20 ng/mL: 8 weekly 50 000 IU; 20 to < 30: 4 weekly; >= 30: monthly maintenance only."""
    if ng_ml < 20:
        return VitaminDPlan(8, ng_ml < 10, "4 prises seulement si le taux est entre 20 et 30 ng/mL")
    if ng_ml < 30:
        return VitaminDPlan(4, False, "8 prises si le taux est < 20 ng/mL ; entretien seul à partir de 30 ng/mL")
    return VitaminDPlan(0, False, "recharge si le taux redescend sous 30 ng/mL")


# ---- SYS-SCHEDULE (L1130-1142, L1279-1281) ------------------------------------------------------------------
Schedule = Literal["za_3_monthly_2_years", "monthly", "za_spaced_3_monthly"]


def schedule(oligometastatic: bool, good_response: bool, drug: str) -> Schedule:
    """Oligometastatic: zoledronic acid every 3 months for 2 years. Multi-metastatic: monthly; after a complete
    or good response zoledronic acid (not denosumab) may be spaced to every 3 months."""
    if oligometastatic and drug == "zoledronic_acid":
        return "za_3_monthly_2_years"
    if good_response and drug == "zoledronic_acid":
        return "za_spaced_3_monthly"
    return "monthly"


# ---- dates ---------------------------------------------------------------------------------------------------
#: SYS-AR-PREREQ (L1096-1098): after an extraction, start once healed *and* the dentist agrees, "au minimum 3
#: semaines-1 mois". The hard floor is 3 weeks (never before, even with the dentist's agreement); 1 month is the
#: usual date. Without the dentist's agreement the start waits whatever the delay.
EXTRACTION_HEALING: Final = (timedelta(weeks=3), 1)  # (minimum, months)
#: SYS-AR-PREREQ (L1100, L1272): dental check every 6 months; a pre-treatment assessment older than that no
#: longer describes the mouth.
DENTAL_REVIEW_MONTHS: Final = 6
REVIEW_AFTER_YEARS: Final = 2
#: SYS-REVIEW-2Y (issue 18 review): the 2 years are of anti-resorptive *exposure* ("Après une durée de 2 ans de
#: traitement antirésorbeur", L1238; osteonecrosis "augmente fortement après 24 mois", L1200-1202; L1275), summed
#: over the courses of any anti-resorptive (bisphosphonate or denosumab, L1263), so a pause (dental care, a switch
#: with a gap) never starts the count again. The text gives no gap after which the count starts afresh: 12 months
#: is chosen, conservatively (a longer gap would only make the review later, never earlier); a shorter gap adds
#: nothing to the count but does not reset it.
AR_FRESH_COUNT_GAP_MONTHS: Final = 12
#: SYS-DENO-STOP (L1249-1253, "une ou plusieurs injections d'acide zolédronique à la fin de la séquence
#: thérapeutique"): zoledronic acid started within this many months of a denosumab stop decided at the 2-year review
#: is the relay that ends the sequence, not a restart (the review stop stands). Still under way beyond it, it is a
#: treatment again (SYS-AR-START, SYS-REVIEW-2Y apply). The text gives no figure: 6 months, about the time the
#: rebound it prevents takes to develop, chosen so that a relay of several spaced infusions is covered.
DENO_RELAY_WINDOW_MONTHS: Final = 6
#: Issue 18 review: a drug the vocabulary cannot identify, administered (DrugAdministration) within this many months,
#: may still act: the longest usual interval between two doses of a bone-targeted drug the plan reads (zoledronic
#: acid spaced every 3 months, L1279-1281).
UNIDENTIFIED_RECENT_MONTHS: Final = 3
#: SYS-AR-START, SYS-REVIEW-2Y, SYS-DENO-STOP (second review): a known anti-resorptive given (a DrugAdministration) is
#: under way from its date for its dosing interval, and that time is exposure. Denosumab: "120 mg mensuel" (L1210),
#: never spaced (L1140-1142, L1281). Zoledronic acid: "à administrer mensuellement" (Tableau 2, L1182; L1136), every
#: 3 months when the schedule is spaced (oligometastatic "trimestriel", L1132; good response, L1138-1140, L1281).
#: The text says "mensuel": one calendar month (never shorter than the 4 weeks of the product's labelling).
DENOSUMAB_INTERVAL_MONTHS: Final = 1
ZA_MONTHLY_INTERVAL_MONTHS: Final = 1
ZA_SPACED_INTERVAL_MONTHS: Final = 3
#: SYS-ONJ: exposed jaw bone for more than 8 weeks despite adequate care.
ONJ_EXPOSURE_WEEKS: Final = 8


def extraction_window(extracted_on: date) -> tuple[date, date]:
    return extracted_on + EXTRACTION_HEALING[0], add_months(extracted_on, EXTRACTION_HEALING[1])


def is_osteonecrosis_of_the_jaw(
    exposure_weeks: float, on_or_after_antiresorptive: bool, craniofacial_irradiation: bool | None
) -> bool | None:
    """SYS-ONJ definition. None when the irradiation history, which the definition excludes, is unknown."""
    if exposure_weeks <= ONJ_EXPOSURE_WEEKS or not on_or_after_antiresorptive:
        return False
    if craniofacial_irradiation is None:
        return None
    return not craniofacial_irradiation


# ---- recency of inputs (DEVELOPERS: an input too old, or dated in the future, is not current) -------------------
@dataclass(frozen=True)
class Recency:
    """How old an input may be and still count as current. Defaults (settings `*_max_age_*`, README):

    - creatinine and weight, 30 days: zoledronic acid is dosed on renal function and given monthly (Tableau 2,
      L1153-1184), renal function is checked before each infusion (L770-772, SmPC); Cockcroft-Gault needs the
      weight, which changes quickly in cancer (cachexia): weighed at each monthly visit.
    - 25-OH vitamin D, 90 days: the 8-week loading (L849-851) is judged on a level from before it; a level older
      than a season no longer describes the stock (GRIO, ref. 49: re-measure about 3 months after correction).
    - corrected calcium, 72 hours: a crisis (> 3.5 mmol/L, L302-306) is an emergency only while it is current; it
      is re-checked at least daily under treatment, so a value older than 3 days says nothing of today.
    - corrected calcium before calcium intake advice, 30 days: advice on calcium intake (L813-817, L863-865)
      needs a calcium known not to be high; checked monthly with the renal function under an anti-resorptive.
    - life expectancy, 91 days: an older estimate cannot place the patient either side of 3 months (SYS-AR-START,
      L1070-1074) or 6 weeks (SURG-LE, L2804); it is to be estimated again (as in scoring). Within the window the
      thresholds apply to what remains of it (the estimate minus the time since it was made).
    - serum CTX, 90 days: the 2-year review weighs a *rise* of CTX (L1242-1243); an older value is history.
    - future tolerance, 10 minutes: clock skew between hospital systems; later than that a date is not current.
    """

    creatinine: timedelta = timedelta(days=30)
    weight: timedelta = timedelta(days=30)
    vitamin_d: timedelta = timedelta(days=90)
    calcium: timedelta = timedelta(hours=72)
    calcium_for_supplements: timedelta = timedelta(days=30)
    life_expectancy: timedelta = timedelta(days=91)
    ctx: timedelta = timedelta(days=90)
    future_tolerance: timedelta = timedelta(minutes=10)


#: issue 25 (helper ZD): the UTC tzinfo object of the datetimes parsed from messages and states (pydantic's, one
#: object). An aware datetime compares with another of the same tzinfo object by its fields; with another tzinfo, both
#: offsets are asked first (~8x slower, and a decision compares `now` with its facts' times many times). `now`, the
#: span's bounds and the midnights are given this tzinfo: the same instants, the same JSON and isoformat.
PARSED_UTC: Final = TypeAdapter(datetime).validate_json(b'"2000-01-01T00:00:00Z"').tzinfo or UTC


def as_parsed_utc(t: datetime) -> datetime:
    """`t` with the parsed datetimes' UTC tzinfo when it is in UTC (the same instant), else `t`."""
    if t.tzinfo is PARSED_UTC or t.utcoffset() != timedelta(0):
        return t
    return t.replace(tzinfo=PARSED_UTC)


#: the fixed-offset tzinfo types: pydantic's (each parsed time holds its own object) and the standard library's
_FIXED_OFFSET: Final = (type(PARSED_UTC), timezone)


def fixed_offset(t: datetime) -> bool:
    """Whether `t`'s tzinfo is a fixed offset: then `t` compares with any aware time by instants (review R38-SYS: two
    times of one ZoneInfo object compare by their wall clocks, the fold ignored)."""
    return type(t.tzinfo) in _FIXED_OFFSET


def span_utc(t: datetime) -> datetime:
    """A span bound (`AsOf.lo`, `AsOf.hi`) in PARSED_UTC when its tzinfo is a fixed offset: the same instant, and
    every comparison gives the same answer (two times of one fixed-offset tzinfo compare by their fields, which is
    their instants' order; any other pair by instants), but one with `now` (PARSED_UTC) compares fields, not both
    offsets (~1.5 us each; the memo's span check makes four per hit). A bound is never published (only `after`'s
    deadlines are, as given); a zone with DST (ZoneInfo) or a bound out of range is left as it is."""
    if t.tzinfo is PARSED_UTC or not fixed_offset(t):
        return t
    try:
        return t.astimezone(PARSED_UTC)
    except OverflowError:
        return t


#: issue 25 (memo.py): the widest span of `now` a decision may hold over
EARLIEST: Final = datetime.min.replace(tzinfo=PARSED_UTC)
LATEST: Final = datetime.max.replace(tzinfo=PARSED_UTC)
_TICK: Final = timedelta(microseconds=1)  # `now <= x` is `now < x + 1 µs` (datetimes are in microseconds)


@dataclass
class AsOf:
    """`now` for a pure decision (passed in by the adapter), and the deadlines the decision depends on: the
    earliest one after `now` is when the plan must be looked at again (shared/runtime/timers.py).

    Issue 25 (memo.py): every comparison with `now` goes through a method here, which narrows [`lo`, `hi`), the span
    of `now` over which each answer given so far stays the same; a decision memoised with its span is reused exactly
    at any `now` inside it. `offered` keeps every deadline offered to `after`, past ones too (a reuse offers them
    again at its own `now`)."""

    now: datetime
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Paris"))
    recency: Recency = field(default_factory=Recency)
    deadlines: list[datetime] = field(default_factory=list)
    offered: list[datetime] = field(default_factory=list, repr=False, compare=False)
    lo: datetime = field(default=EARLIEST, repr=False, compare=False)
    hi: datetime = field(default=LATEST, repr=False, compare=False)
    #: issue 25: decisions may be memoised (memo.py); off for the whole-history reference (`keep_all`)
    memo: bool = field(default=True, repr=False, compare=False)

    def narrow(self, lo: datetime, hi: datetime) -> None:
        if lo > self.lo:
            self.lo = lo
        if hi < self.hi:
            self.hi = hi

    def _side(self, edge: datetime | None) -> None:
        """The answer just read changes only where `now` crosses `edge`: keep `now`'s side of it (`now` alone when
        the edge is out of range: None). The edge is kept in PARSED_UTC (`span_utc`): the same instant, compared
        with `now` and the memoised spans the same, ~25x faster (h38-sys)."""
        if edge is None:
            self.narrow(self.now, self.now + _TICK)
            return
        edge = span_utc(edge)
        if self.now < edge:
            if edge < self.hi:
                self.hi = edge
        elif edge > self.lo:
            self.lo = edge

    @functools.cached_property
    def _today(self) -> date:
        return self.now.astimezone(self.tz).date()

    @property
    def today(self) -> date:
        """The hospital-local date of `now` (computed once: a decision reads it at every drug event). Held for the day;
        a comparison with a date is `today_ge` and the like, held until that date's midnight."""
        d = self._today
        self._side(self._midnight(d))
        self._side(self._midnight(d + timedelta(days=1)) if d < date.max else None)
        return d

    def _midnight(self, d: date) -> datetime | None:
        """`start_of(d)` in UTC, None when out of range (compared as such: never an error the date would not raise)."""
        try:
            return self.start_of(d).astimezone(PARSED_UTC)
        except OverflowError:
            return None

    def today_ge(self, d: date) -> bool:
        """`today >= d`."""
        self._side(self._midnight(d))
        return self._today >= d

    def today_lt(self, d: date) -> bool:
        """`today < d`."""
        return not self.today_ge(d)

    def today_gt(self, d: date) -> bool:
        """`today > d`."""
        self._side(self._midnight(d + timedelta(days=1)) if d < date.max else None)
        return self._today > d

    def today_le(self, d: date) -> bool:
        """`today <= d`."""
        return not self.today_gt(d)

    def exact_now(self) -> datetime:
        """`now` itself, for a value computed from it (what remains of a life expectancy): held at this `now` only."""
        self.narrow(self.now, self.now + _TICK)
        return self.now

    def day(self, t: datetime) -> date:
        """The hospital-local calendar day of a time (compared with the date fields of treatments and stops)."""
        return t.astimezone(self.tz).date()

    def start_of(self, d: date) -> datetime:
        """Midnight (hospital time) of a calendar date: when a date-based deadline passes."""
        return datetime.combine(d, time.min, self.tz)

    def before(self, t: datetime) -> bool:
        """`now < t`."""
        self._side(t)
        return self.now < t

    def not_after(self, t: datetime) -> bool:
        """`now <= t`; the change just after `t` is a deadline (review R27: an inclusive bound, as scoring's
        `current_until` and every currency window's expiry)."""
        try:
            edge: datetime | None = t + _TICK
        except OverflowError:
            edge = None
        if edge is not None:
            self.after(edge)
        self._side(edge)
        return edge is None or self.now < edge

    def is_future(self, t: datetime) -> bool:
        """Dated beyond the clock-skew tolerance after `now`. While it is, the instant it stops being so is a
        deadline (review R27: a fact dated tomorrow is decided on when it becomes effective, not at the next event)."""
        tolerance = self.recency.future_tolerance
        try:
            edge: datetime | None = t - tolerance  # t > now + tolerance: now < t - tolerance
        except OverflowError:
            edge = None
        self._side(edge)
        if edge is not None and self.now < edge:  # datetime.min + tolerance is never in the future
            self.after(edge)
            return True
        return False

    def is_current(self, t: datetime, max_age: timedelta) -> bool:
        """Not dated in the future, and not older than `max_age`; its expiry is a deadline."""
        if self.is_future(t):
            return False
        try:
            expiry = t + max_age
        except OverflowError:  # an expiry past datetime.max: current for ever
            self._side(None)
            return True
        # HAZ-26-LE-02: current up to the expiry inclusive (`t >= now - max_age`): the change just after it is the
        # deadline, even for a decision made at the expiry exactly
        return self.not_after(expiry)

    def after(self, t: datetime) -> None:
        """Record a deadline (ignored unless it lies after `now`)."""
        self.offered.append(t)
        if t > self.now:
            self.deadlines.append(t)

    def after_date(self, d: date) -> None:
        self.after(self.start_of(d))

    def next_due(self) -> datetime | None:
        return min((d for d in self.deadlines if d > self.now), default=None)


# ---- calcium (LAB-CA-CRISIS L302-306; SYS-VITD-CORR) --------------------------------------------------------
#: corrected calcium strictly above 3.5 mmol/L is an acute hypercalcaemic crisis (strict, unrounded).
CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.5
#: upper limit of a normal corrected calcium (usual laboratory reference 2.20-2.60 mmol/L). Above it, no vitamin D
#: loading and no calcium supplement or intake advice: hypercalcaemia contraindicates cholecalciferol (SmPC).
CALCIUM_UPPER_NORMAL_MMOL_L: Final = 2.60


# ---- vitamin D as a prerequisite (SYS-AR-PREREQ L795-799, L1267-1269) ----------------------------------------
#: "carence" in the correction scheme (L849): < 20 ng/mL. A deficiency must be corrected before the start (unless
#: emergency); 20 to < 30 (insufficiency, L853) is loaded in parallel and does not hold the start.
VITD_DEFICIENCY_NG_ML: Final = 20.0


#: Tableau 1 (L821-831): recommended 30 to 70 ng/mL; above 70 no supplement is ordered (warning); above 150 a
#: vitamin D intoxication is possible (critical). Strict: 70 and 150 themselves are within the lower class.
VITD_RECOMMENDED_MAX_NG_ML: Final = 70.0
VITD_INTOXICATION_NG_ML: Final = 150.0


#: Issue 12: the vitamin D decisions' cut points (ng/mL), ascending: < 20 (8 weekly doses; a deficiency holding the
#: start) | 20 to < 30 (4 doses) | 30 to 70 (maintenance) | > 70 (no supplement) | > 150 (possible intoxication)
VITD_CUTS: Final[list[tuple[float, Strictness]]] = [
    (VITD_DEFICIENCY_NG_ML, ">="),
    (30.0, ">="),
    (VITD_RECOMMENDED_MAX_NG_ML, ">"),
    (VITD_INTOXICATION_NG_ML, ">"),
]
#: Tableau 1 (L825): a deficiency below 10 ng/mL, the severe one that exposes to a deep hypocalcaemia (L795-797)
VITD_SEVERE_NG_ML: Final = 10.0
#: each VITD_CUTS band's exact representative (a value inside it), so that a bounded value whose band is settled is
#: decided exactly as any value of that band
VITD_BAND_VALUE: Final = (0.0, 20.0, 30.0, 100.0, math.inf)


def vitamin_d_band(ng_ml: float, comparator: Comparator | None) -> int | None:
    """The VITD_CUTS band of a (censored) level, or None when its bound spans two bands ("< 25 ng/mL")."""
    return band(interval(ng_ml, comparator), VITD_CUTS)


def severe_vitamin_d_deficiency(ng_ml: float, comparator: Comparator | None) -> bool:
    """< 10 ng/mL for certain (a censored "< 15" is not called severe: it may be 12)."""
    return side_of(ng_ml, comparator, VITD_SEVERE_NG_ML, ">=") == "below"


def calcium_side(corrected_mmol_l: float, comparator: Comparator | None, threshold: float) -> Side:
    """LAB-CA-CRISIS "> 3,5" (L304-306) and the upper normal limit "> 2.60", strict, on the value as an interval."""
    return side_of(corrected_mmol_l, comparator, threshold, ">")


def loading_weeks(ng_ml: float) -> int:
    """Weeks of weekly loading (one 50 000 IU dose a week): 8 below 20 ng/mL, 4 from 20 to < 30, else 0."""
    return vitamin_d_correction(ng_ml).loading_weekly_doses
