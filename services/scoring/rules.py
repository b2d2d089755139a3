"""Pure scoring rules: LAB-CA-CRISIS, SCORE-MIRELS, SCORE-SINS, CLASS-OLIGO, IMG-FLARE. No I/O, no clock: the
time a decision is made for (`now`) is passed in.

Each score returns its components with their points; a missing input gives a component with no points,
and the score is then incomplete: its total is None, never a partial sum shown as complete. A decision may
still be taken on the bounds of an incomplete score (what the unknown items can at least and at most add).
Values are compared with thresholds unrounded; rounding is for display only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Final, Literal

from contracts.hospital import Comparator
from shared.clinical import drugs, life_expectancy
from shared.clinical.censored import Side, side_of
from shared.clinical.dates import add_months

SERVICE: Final = "scoring"


@dataclass(frozen=True)
class Policy:
    """Configurable time limits of the scoring decisions (ScoringSettings)."""

    #: A crisis value is current while it is the newest corrected calcium and at most this old: in a crisis calcium
    #: is re-measured at least daily, so a value older than 3 days no longer describes the patient (practice).
    calcium_current: timedelta = timedelta(hours=72)
    #: A fracture or cord compression, not yet treated, stays current this long after the newest imaging showing it
    #: (SURG-LE L2863-2867: stabilising a fracture is the emergency; after 6 weeks it is no longer one in the making).
    lesion_event_current: timedelta = timedelta(weeks=6)
    #: A life-expectancy estimate older than this no longer places the patient either side of the 3-month and
    #: 6-week limits the decisions hinge on (MIRELS-HIGH, SURG-LE): it is to be estimated again.
    life_expectancy_valid: timedelta = timedelta(days=91)
    #: A lesion's pain (Mirels, SINS) older than this is to be reassessed: pain changes within weeks under analgesics,
    #: radiotherapy or progression, and a fracture-risk score is decided on the pain of now (practice: one month).
    lesion_pain_valid: timedelta = timedelta(days=30)
    #: CLASS-OLIGO: "primary controlled" and the extra-osseous disease describe the last restaging; past about one
    #: restaging interval (3 months under treatment, practice) they no longer describe the disease.
    staging_valid: timedelta = timedelta(days=91)
    #: Clock skew allowed between the hospital systems and us; a fact dated later than now + this is not current.
    future_tolerance: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        # issue 25: every memo key holds the policy: its hash (the fields', as dataclass's own) is made once
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]


DEFAULT_POLICY: Final = Policy()


def is_future(occurred_at: datetime, now: datetime, policy: Policy) -> bool:
    """A clinical time later than `now` plus the allowed clock skew cannot describe the present."""
    return occurred_at > now + policy.future_tolerance


# ---- LAB-CA-CRISIS (L300-306) --------------------------------------------------------------------------
#: corrected calcium strictly above 3.5 mmol/L is an acute hypercalcaemic crisis.
CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.5


def is_hypercalcaemic_crisis(corrected_calcium_mmol_l: float) -> bool:
    """Compared unrounded: 3.504 mmol/L is a crisis although it displays as 3.50 at two decimals."""
    return corrected_calcium_mmol_l > CRISIS_CORRECTED_CALCIUM_MMOL_L


def crisis_side(corrected_calcium_mmol_l: float, comparator: Comparator | None) -> Side:
    """Issue 12: a censored corrected calcium is an interval (shared/clinical/censored.py). "above": a crisis whatever
    the true value ("> 3.6"); "below": no crisis ("< 2.0"); "straddles": undecided ("> 2.5"), never an emergency. The
    text's threshold is strict: "supérieure à 3,5 mmol/L" (L304-306)."""
    return side_of(corrected_calcium_mmol_l, comparator, CRISIS_CORRECTED_CALCIUM_MMOL_L, ">")


def shown(value: float, threshold: float, decimals: int = 2) -> str:
    """A value for display, with enough decimals never to look equal to a threshold it is not equal to."""
    text = f"{value:.{decimals}f}"
    while value != threshold and float(text) == threshold and decimals < 6:
        decimals += 1
        text = f"{value:.{decimals}f}"
    return text


@dataclass(frozen=True)
class Item:
    """One scored component: the value it was given and its points (None when the value is missing)."""

    name: str
    value: str | float | bool | None
    points: int | None


@dataclass(frozen=True)
class Scored:
    items: tuple[Item, ...]
    missing: tuple[str, ...] = ()

    @cached_property
    def complete(self) -> bool:
        return all(i.points is not None for i in self.items)

    @cached_property
    def total(self) -> int | None:
        return sum(i.points for i in self.items if i.points is not None) if self.complete else None

    @cached_property
    def known_points(self) -> int:
        return sum(i.points for i in self.items if i.points is not None)

    def bounds(self, item_min: dict[str, int], item_max: dict[str, int]) -> tuple[int, int]:
        """The least and the most the total can be once the missing items are known."""
        unknown = [i.name for i in self.items if i.points is None]
        lo = self.known_points + sum(item_min[n] for n in unknown)
        return lo, self.known_points + sum(item_max[n] for n in unknown)


def _item(name: str, value: str | float | bool | None, table: dict[str, int], missing: list[str]) -> Item:
    if value is None or str(value) not in table:
        missing.append(name)
        return Item(name, value, None)
    return Item(name, value, table[str(value)])


# ---- SCORE-MIRELS, Tableau 3 (L1308-1372) ----------------------------------------------------------------
#: Tableau 3 site: membre supérieur 1, membre inférieur 2, région trochantérienne 3. The table is Mirels' (ref. 79),
#: whose 3-point site is the peritrochanteric region of the proximal femur: the femoral neck belongs to it.
MIRELS_SITE: Final = {
    "humerus": 1,
    "radius_ulna": 1,
    "other_upper_limb": 1,
    "femur_shaft": 2,
    "tibia_fibula": 2,
    "other_lower_limb": 2,
    "femur_neck": 3,
    "femur_trochanteric": 3,
}
LONG_BONE_SITES: Final = frozenset(MIRELS_SITE)
MIRELS_TYPE: Final = {"blastic": 1, "mixed": 2, "lytic": 3}
#: Tableau 3 pain: légère 1, modérée 2, handicapante 3. A painless lesion takes the lowest item.
MIRELS_PAIN: Final = {"none": 1, "mild": 1, "moderate": 2, "functional": 3}
MIRELS_ITEM_MIN: Final = {"site": 1, "size": 1, "lesion_type": 1, "pain": 1}
MIRELS_ITEM_MAX: Final = {"site": 3, "size": 3, "lesion_type": 3, "pain": 3}


def mirels_size_points(cortex_fraction: float) -> int:
    """< 1/3 of the cortex: 1; 1/3 to 2/3: 2; > 2/3: 3."""
    if cortex_fraction < 1 / 3:
        return 1
    return 2 if cortex_fraction <= 2 / 3 else 3


def mirels(site: str, cortex_fraction: float | None, lesion_type: str | None, pain: str | None) -> Scored:
    """SCORE-MIRELS: the sum of four items, 4 to 12 (the text says 3 to 12; each item is at least 1)."""
    missing: list[str] = []
    size = (
        Item("size", cortex_fraction, mirels_size_points(cortex_fraction))
        if cortex_fraction is not None
        else Item("size", None, None)
    )
    if cortex_fraction is None:
        missing.append("size")
    items = (
        _item("site", site, MIRELS_SITE, missing),
        size,
        _item("lesion_type", lesion_type, MIRELS_TYPE, missing),
        _item("pain", pain, MIRELS_PAIN, missing),
    )
    return Scored(items, tuple(missing))


MirelsDecision = Literal["low", "rcp", "doubt", "fixation", "short_survival", "no_surgery", "survival_unknown"]
#: MIRELS-HIGH (L1324): fixation first only with a life expectancy of more than 3 months (shared/clinical).
FIXATION_MIN_LIFE_EXPECTANCY_MONTHS: Final = life_expectancy.THREE_MONTHS


def mirels_bounds(m: Scored) -> tuple[int, int]:
    return m.bounds(MIRELS_ITEM_MIN, MIRELS_ITEM_MAX)


def mirels_decision(lo: int, hi: int, life_expectancy_months: float | None) -> tuple[str, MirelsDecision]:
    """The attitude of Tableau 3 from the bounds of the score (lo == hi when complete). `life_expectancy_months` is
    what remains of the estimate now (shared.clinical.life_expectancy.remaining_months).

    MIRELS-LOW (<= 7), MIRELS-8 (= 8); bounds that straddle a band (they then always include 8): MIRELS-8 "doubt"
    (L1330 "ou en cas de doute": RCP-OOS, naming what is missing); >= 9: MIRELS-HIGH (fixation first) only with
    life expectancy > 3 months (L1324); <= 3 months: not fixation first, MIRELS-HIGH-SHORT-LE (RCP-OOS,
    L1330-1332), or SURG-LE under 6 weeks (no surgery: analgesia, perhaps RT, L2804-2808); unknown life
    expectancy: SCORE-MIRELS, to estimate."""
    if hi <= 7:
        return "MIRELS-LOW", "low"
    if lo == hi == 8:
        return "MIRELS-8", "rcp"
    if lo < 9:
        return "MIRELS-8", "doubt"
    if life_expectancy_months is None:
        return "SCORE-MIRELS", "survival_unknown"
    if life_expectancy_months > FIXATION_MIN_LIFE_EXPECTANCY_MONTHS:
        return "MIRELS-HIGH", "fixation"
    if life_expectancy.surgery_excluded(life_expectancy_months):
        return "SURG-LE", "no_surgery"
    return "MIRELS-HIGH-SHORT-LE", "short_survival"


def ct_osteolysis_criterion(axial_pct: float | None, circumferential_pct: float | None) -> bool | None:
    """MIRELS-HIGH CT criterion, for a Mirels >= 9 only (L1340-1346): cortical osteolysis > 30 % in the axial plane
    AND > 50 % of the circumference. The French text requires cortical osteolysis > 30 % in the axial
    plane AND > 50 % of the circumference (RULES.md says "or"; the French text decides). None: not measured."""
    if axial_pct is None or circumferential_pct is None:
        return None
    return axial_pct > 30 and circumferential_pct > 50


# ---- SCORE-SINS (L1375-1392, Fisher 2010) -------------------------------------------------------------------
SINS_PAIN: Final = {"mechanical": 3, "non_mechanical": 1, "neuropathic": 1, "none": 0}
SINS_LESION: Final = {"lytic": 2, "mixed": 1, "blastic": 0}
SINS_ALIGNMENT: Final = {"subluxation_translation": 4, "de_novo_deformity": 2, "normal": 0}
SINS_COLLAPSE: Final = {"gt_50": 3, "lt_50": 2, "none_body_involved_gt_50": 1, "none": 0}
SINS_POSTEROLATERAL: Final = {"bilateral": 3, "unilateral": 1, "none": 0}
SinsLocation = Literal["junctional", "mobile", "semi_rigid", "rigid"]
SINS_LOCATION_POINTS: Final = {"junctional": 3, "mobile": 2, "semi_rigid": 1, "rigid": 0}


def sins_location(level: str) -> SinsLocation | None:
    """Junctional: occiput-C2, C7-T2, T11-L1, L5-S1; mobile: C3-C6, L2-L4; semi-rigid: T3-T10;
    rigid: S2-S5. The coccyx is outside SINS (None)."""
    m = re.fullmatch(r"([CTLS])(\d+)", level)
    if m is None:
        return None
    region, n = m.group(1), int(m.group(2))
    if (region == "C" and (n <= 2 or n == 7)) or (region == "T" and (n <= 2 or n >= 11)):
        return "junctional"
    if (region == "L" and n in (1, 5)) or (region == "S" and n == 1):
        return "junctional"
    if region == "C" or (region == "L" and 2 <= n <= 4):
        return "mobile"
    if region == "T":
        return "semi_rigid"
    return "rigid"


SinsBand = Literal["stable", "potentially_unstable", "unstable"]
SINS_ITEM_MIN: Final = dict.fromkeys(
    ("location", "pain", "bone_lesion", "alignment", "vertebral_collapse", "posterolateral_involvement"), 0
)
SINS_ITEM_MAX: Final = {
    "location": 3,
    "pain": 3,
    "bone_lesion": 2,
    "alignment": 4,
    "vertebral_collapse": 3,
    "posterolateral_involvement": 3,
}


def sins_band(total: int) -> SinsBand:
    """0-6 stable, 7-12 potentially unstable, 13-18 unstable."""
    if total <= 6:
        return "stable"
    return "potentially_unstable" if total <= 12 else "unstable"


def sins(
    level: str | None,
    pain: str | None,
    lesion_type: str | None,
    alignment: str | None,
    collapse: str | None,
    posterolateral: str | None,
) -> Scored:
    missing: list[str] = []
    location = sins_location(level) if level else None
    items = (
        _item("location", location, SINS_LOCATION_POINTS, missing),
        _item("pain", pain, SINS_PAIN, missing),
        _item("bone_lesion", lesion_type, SINS_LESION, missing),
        _item("alignment", alignment, SINS_ALIGNMENT, missing),
        _item("vertebral_collapse", collapse, SINS_COLLAPSE, missing),
        _item("posterolateral_involvement", posterolateral, SINS_POSTEROLATERAL, missing),
    )
    return Scored(items, tuple(missing))


# ---- CLASS-OLIGO (L1470-1474, L1621-1625, L2161-2169) --------------------------------------------------------
@dataclass(frozen=True)
class Criterion:
    name: str
    value: str | float | bool | None
    met: bool | None  # None: cannot be judged (missing data)


@dataclass(frozen=True)
class BoneLesion:
    site: str
    size_cm: float | None
    confirmed: bool  # False: suspected, counted only as a possibility


@dataclass(frozen=True)
class ExtraOsseous:
    count: int
    sites: tuple[str, ...]
    stable: bool | None
    largest_size_cm: float | None


@dataclass(frozen=True)
class OligoStatus:
    criteria: tuple[Criterion, ...]
    status: Literal["oligometastatic", "multi_metastatic", "undetermined"]
    failing: tuple[str, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())


def _within(lo: int, hi: int | None, least: int, most: int) -> bool | None:
    """Whether a count known to lie in [lo, hi] (hi None: unbounded) is within [least, most]; None: cannot tell."""
    if lo > most:
        return False
    if hi is not None and hi < least:
        return False
    if lo >= least and hi is not None and hi <= most:
        return True
    return None


def oligometastatic(bone: list[BoneLesion], extra: ExtraOsseous | None, primary_controlled: bool | None) -> OligoStatus:
    """1 to 3 sites involved, 1 to 5 metastases, each < 5 cm, primary cancer controlled (L1621-1625, L2167-2169),
    extra-osseous disease stable (L1472-1474, L2161). Sites and metastases are counted over the whole disease: each
    skeletal site with a bone metastasis and each extra-osseous organ is a site; every bone lesion and every
    extra-osseous metastasis is a metastasis. Suspected bone lesions make the counts a range; unknown extra-osseous
    disease leaves the upper bound open. Each criterion is decided on its range."""
    confirmed = [b for b in bone if b.confirmed]
    bone_sites_lo = {b.site for b in confirmed}
    bone_sites_hi = {b.site for b in bone}
    extra_sites = set(extra.sites) if extra else set()
    extra_count = extra.count if extra else 0
    sites_lo = len(bone_sites_lo) + len(extra_sites)
    sites_hi = None if extra is None else len(bone_sites_hi) + len(extra_sites)
    mets_lo = len(confirmed) + extra_count
    mets_hi = None if extra is None else len(bone) + extra_count

    sizes: list[float | None] = [b.size_cm for b in bone]
    if extra is not None and extra.count:
        sizes.append(extra.largest_size_cm)
    largest = max((x for x in sizes if x is not None), default=None)
    size_ok: bool | None
    if any(b.size_cm is not None and b.size_cm >= 5 for b in confirmed) or (
        extra is not None and extra.largest_size_cm is not None and extra.largest_size_cm >= 5
    ):
        size_ok = False
    elif extra is None or any(x is None for x in sizes) or not sizes or len(confirmed) < len(bone):
        size_ok = None  # an unmeasured metastasis, unknown extra-osseous disease, or a suspected lesion
    else:
        size_ok = True
    stable: bool | None = None if extra is None else (True if extra.count == 0 else extra.stable)

    def _range(lo: int, hi: int | None) -> str:
        return str(lo) if hi == lo else f"{lo}-{hi if hi is not None else '?'}"

    site_names = sorted(bone_sites_hi) + sorted(extra_sites)
    criteria = (
        Criterion(
            "sites_1_to_3", f"{_range(sites_lo, sites_hi)} ({', '.join(site_names)})", _within(sites_lo, sites_hi, 1, 3)
        ),
        Criterion("metastases_1_to_5", _range(mets_lo, mets_hi), _within(mets_lo, mets_hi, 1, 5)),
        Criterion("each_under_5_cm", largest, size_ok),
        Criterion("primary_controlled", primary_controlled, primary_controlled),
        Criterion("extra_osseous_stable", stable, stable),
    )
    failing = tuple(c.name for c in criteria if c.met is False)
    missing = tuple(c.name for c in criteria if c.met is None)
    status: Literal["oligometastatic", "multi_metastatic", "undetermined"] = (
        "multi_metastatic" if failing else "undetermined" if missing else "oligometastatic"
    )
    return OligoStatus(criteria, status, failing, missing)


# ---- IMG-FLARE (L357-418, L664-668, L774-776) ---------------------------------------------------------------
METABOLIC_MODALITIES: Final = frozenset({"bone_scan", "fdg_pet", "naf_pet"})
FLARE_WINDOW_MONTHS: Final = 6
#: Issue 18 review: the 6 months run from the start of the *continuous* treatment of a drug (L391-395: beyond six
#: months of treatment new foci mean progression). An interruption shorter than this (a toxicity pause, a dose change
#: recorded as a stop and a restart) does not start the window again; a longer one does (a new treatment start). The
#: text gives no figure: 3 months (half the window) is chosen so that a short pause never turns a progression into
#: a "possible flare", the reading that would wrongly reassure.
FLARE_RESTART_INTERRUPTION_MONTHS: Final = 3


def within_flare_window(treatment_started: date, imaging_on: date) -> bool:
    """New foci less than 6 months after an effective treatment started may be a flare."""
    return treatment_started <= imaging_on < add_months(treatment_started, FLARE_WINDOW_MONTHS)


@dataclass(frozen=True)
class DrugStart:
    """A drug under way: `drug` is the shared vocabulary's key (the INN when known), `atc` the code it was sent with
    (it places a drug the vocabulary does not list, e.g. an unlisted anti-PD-1, L01FF)."""

    drug: str
    on: date
    atc: str | None = None

    @property
    def identity(self) -> drugs.DrugIdentity:
        return drugs.identify(self.drug, self.atc)

    @property
    def egfr_tki(self) -> bool:
        """IMG-FLARE (L357-418): the flare is classically described under EGFR TKIs."""
        return self.identity.group == "egfr_tki"


@dataclass(frozen=True)
class FlareReading:
    """What a new focus means: "flare" (possible flare), "progression" (after 6 months), or "unknown" when a drug
    whose class the table does not know started since and could be the treatment that matters."""

    reading: Literal["flare", "progression", "unknown"]
    treatment: DrugStart | None  # the anticancer drug the reading is based on
    unknown_drugs: tuple[DrugStart, ...] = ()


def flare_reading(active: list[DrugStart], focus_on: date) -> FlareReading | None:
    """IMG-FLARE. Only an anticancer drug (shared/clinical/drugs.py) is the "effective treatment" whose start opens the
    6-month window; supportive care, anti-resorptives, antiplatelets and anticoagulants never are. A drug the table
    does not know is never assumed either way: if it started after the latest anticancer start and within the
    6 months before the focus, the reading is unknown. `active`: drugs started on or before the focus, not stopped.
    None: no anticancer treatment and no unknown drug (nothing to say)."""
    anticancer = [d for d in active if d.identity.drug_class == "anticancer"]
    latest = max(anticancer, key=lambda d: (d.on, d.drug), default=None)
    if latest is not None and within_flare_window(latest.on, focus_on):
        return FlareReading("flare", latest)
    unknown = tuple(
        sorted(
            (
                d
                for d in active
                if d.identity.drug_class is None
                and (latest is None or d.on > latest.on)
                and within_flare_window(d.on, focus_on)
            ),
            key=lambda d: (d.on, d.drug),
        )
    )
    if unknown:
        return FlareReading("unknown", latest, unknown)
    return FlareReading("progression", latest) if latest is not None else None
