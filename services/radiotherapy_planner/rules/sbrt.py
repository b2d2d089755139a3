"""Stereotactic radiotherapy: RT-SBRT-IND, RT-SBRT-CI, RT-SBRT-DOSE, RT-CORD-DMAX, RT-SBRT-FX. Pure, no I/O.

Section 2.2 of the radiotherapy chapter: indications and contraindications (L1599-1636), doses (L1658-1680),
side effects (L1758-1790), Tableau 5 (L1871-1914) and the curative-setting recommendations (L2161-2186)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from services.radiotherapy_planner.rules.common import POOR_PROGNOSIS_MONTHS, Criterion, Finding, Scheme
from shared.clinical.dates import add_months

# ---- RT-SBRT-IND ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SbrtIndication:
    indicated: bool | None  # None: cannot decide from what is known
    reasons: tuple[Finding, ...]
    missing: tuple[str, ...]
    notes_fr: tuple[str, ...] = ()  # what stands undecided, in French


def sbrt_indication(
    *,
    previously_irradiated: bool,
    cord_dose_excludes_conventional: bool | None = None,
    oligometastatic: bool | None,
    curative_intent: bool,
    adjacent_vertebrae: int | None,
    postoperative_residue: bool,
) -> SbrtIndication:
    """The two cases the text underlines (L1615-1625): (1) a lesion in an irradiated territory *whose cord dose is
    not compatible with a conventional treatment* (L1617-1619: an earlier course alone is not the indication, the
    radiation oncologist's judgement of the cord dose is); (2) oligometastatic cancer treated with curative intent,
    target at most 3 adjacent pathological vertebrae or a post-operative residue. Always validated in RCP-OOS."""
    reasons: list[Finding] = []
    missing: list[str] = []
    notes: list[str] = []
    if previously_irradiated and cord_dose_excludes_conventional:
        reasons.append(
            Finding(
                "territoire déjà irradié, dose reçue par la moelle incompatible avec une radiothérapie conventionnelle",
                "cord_dose_excludes_conventional",
                True,
            )
        )
    elif previously_irradiated and cord_dose_excludes_conventional is None:
        missing.append("whether the cord dose already received rules out conventional radiotherapy (RT-SBRT-IND)")
        notes.append(
            "territoire déjà irradié : l'indication tient si la dose déjà reçue par la moelle exclut une "
            "radiothérapie conventionnelle, à préciser"
        )
    if oligometastatic and curative_intent:
        if adjacent_vertebrae is not None and adjacent_vertebrae > 3 and not postoperative_residue:
            return SbrtIndication(
                False,
                (
                    Finding(
                        "plus de 3 vertèbres adjacentes dans le volume cible", "adjacent_vertebrae", adjacent_vertebrae
                    ),
                ),
                (),
            )
        reasons.append(Finding("maladie oligométastatique, intention curative", "oligometastatic", True))
    elif oligometastatic is None and curative_intent:
        missing.append("oligometastatic status (CLASS-OLIGO, from scoring)")
        notes.append("statut oligométastatique inconnu")
    if reasons:
        return SbrtIndication(True, tuple(reasons), tuple(missing))
    return SbrtIndication(None if missing else False, (), tuple(missing), tuple(notes))


# ---- RT-SBRT-CI -----------------------------------------------------------------------------------------------

CANAL_NARROWING_LIMIT_PCT: Final = 25.0  # relative CI if > 25 % (L1634)
TUMOUR_CORD_DISTANCE_LIMIT_MM: Final = 5.0  # relative CI if < 5 mm (L1635)
RECENT_RT_MONTHS: Final = 3  # absolute CI: radiotherapy less than 3 months ago (L1631)


@dataclass(frozen=True)
class Contraindication:
    name: str
    absolute: bool
    present: bool | None  # None: the input is unknown
    finding: Finding


@dataclass(frozen=True)
class SbrtContraindications:
    items: tuple[Contraindication, ...]

    @property
    def absolute(self) -> list[Contraindication]:
        return [c for c in self.items if c.absolute and c.present]

    @property
    def relative(self) -> list[Contraindication]:
        return [c for c in self.items if not c.absolute and c.present]

    @property
    def unknown(self) -> list[Contraindication]:
        return [c for c in self.items if c.present is None]

    @property
    def outcome(self) -> Literal["contraindicated", "cannot_decide", "possible"]:
        if self.absolute:
            return "contraindicated"
        return "cannot_decide" if any(c.absolute for c in self.unknown) else "possible"


def sbrt_contraindications(
    *,
    spine: bool,
    cord_compression: bool,
    compression_operated: bool,
    neurological_deficit: bool | None,
    sins_band: str | None,
    sins_floor: int | None,
    metabolic_rt_on: date | None,
    metabolic_rt_known: bool,
    last_rt_on: date | None,
    planned_on: date,
    life_expectancy_months: float | None,
    canal_narrowing_pct: float | None,
    tumour_cord_distance_mm: float | None,
    mri_contraindicated: bool | None,
) -> SbrtContraindications:
    """Every absolute and relative contraindication of L1629-1636, each with the input that triggers it.
    `sins_band` comes from the scoring service (never recomputed); `sins_floor` is the sum of its known items when
    incomplete (a lower bound). `metabolic_rt_known`: the hospital publishes metabolic RT events for this patient
    (there is no "none" event, so absence is taken as none; the text names any metabolic RT)."""
    items: list[Contraindication] = []

    def add(name: str, absolute: bool, present: bool | None, text: str, input_name: str, value: object) -> None:
        v = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        items.append(Contraindication(name, absolute, present, Finding(text, input_name, v)))

    # absolute
    unoperated = cord_compression and not compression_operated
    symptomatic = cord_compression and neurological_deficit is True
    add(
        "cord_compression",
        True,
        unoperated or symptomatic,
        "compression médullaire " + ("non opérée" if unoperated else "symptomatique" if symptomatic else "absente"),
        "cord_compression",
        cord_compression,
    )
    if spine:
        unstable: bool | None
        if sins_band == "unstable" or (sins_band is None and sins_floor is not None and sins_floor >= 13):
            unstable = True
        elif sins_band in ("stable",):
            unstable = False
        else:  # potentially unstable (7-12) needs a surgeon's opinion; unknown when no SINS
            unstable = None
        add(
            "vertebral_instability",
            True,
            unstable,
            "instabilité vertébrale (SINS "
            + (sins_band or (f"≥ {sins_floor}/18, score incomplet" if sins_floor is not None else "inconnu"))
            + ")",
            "sins_band",
            sins_band if sins_band is not None else (f">= {sins_floor}" if sins_floor is not None else None),
        )
    add(
        "metabolic_radiotherapy",
        True,
        metabolic_rt_on is not None if metabolic_rt_known else None,
        "radiothérapie métabolique" + (f" le {metabolic_rt_on:%d/%m/%Y}" if metabolic_rt_on else ""),
        "metabolic_radiotherapy",
        metabolic_rt_on.isoformat() if metabolic_rt_on else None,
    )
    recent = last_rt_on is not None and add_months(last_rt_on, RECENT_RT_MONTHS) > planned_on
    add(
        "radiotherapy_lt_3_months",
        True,
        recent,
        "radiothérapie de moins de 3 mois" + (f" (le {last_rt_on:%d/%m/%Y})" if last_rt_on else ""),
        "last_radiotherapy_on",
        last_rt_on.isoformat() if last_rt_on else None,
    )
    add(
        "life_expectancy_lt_3_months",
        True,
        None if life_expectancy_months is None else life_expectancy_months < POOR_PROGNOSIS_MONTHS,
        "espérance de vie inférieure à 3 mois",
        "life_expectancy_months",
        life_expectancy_months,
    )
    # relative
    if spine:
        add(
            "canal_narrowing_gt_25_pct",
            False,
            None if canal_narrowing_pct is None else canal_narrowing_pct > CANAL_NARROWING_LIMIT_PCT,
            "rétrécissement du canal médullaire > 25 %",
            "canal_narrowing_pct",
            canal_narrowing_pct,
        )
        add(
            "tumour_cord_distance_lt_5_mm",
            False,
            None if tumour_cord_distance_mm is None else tumour_cord_distance_mm < TUMOUR_CORD_DISTANCE_LIMIT_MM,
            "distance tumeur-moelle < 5 mm",
            "tumour_cord_distance_mm",
            tumour_cord_distance_mm,
        )
    add(
        "mri_contraindicated",
        False,
        mri_contraindicated,
        "contre-indication à l'IRM",
        "mri_contraindicated",
        mri_contraindicated,
    )
    return SbrtContraindications(tuple(items))


# ---- RT-SBRT-DOSE ---------------------------------------------------------------------------------------------

#: fractions -> (min, max) total dose, Gy (L1658-1665)
SPINE_RANGES: Final[dict[int, tuple[float, float]]] = {1: (18, 24), 2: (18, 24), 3: (27, 30), 5: (30, 35)}
NON_SPINE_RANGES: Final[dict[int, tuple[float, float]]] = {1: (15, 25), 3: (24, 50), 4: (24, 50), 5: (24, 50)}
#: Tableau 5: re-irradiation (SBRT) 35 Gy/5 or 27 Gy/3; oligometastatic (ablative) 35 Gy/7 or 27 Gy/3
REIRR_SCHEMES: Final[tuple[Scheme, ...]] = ((35.0, 5), (27.0, 3))
OLIGO_SCHEMES: Final[tuple[Scheme, ...]] = ((35.0, 7), (27.0, 3))


@dataclass(frozen=True)
class DoseCheck:
    verdict: Literal["within", "outside", "unknown"]
    range_fr: str
    notes: tuple[str, ...]


def sbrt_dose_check(
    spine: bool, total_gy: float | None, fractions: int | None, reirradiation: bool, oligometastatic: bool
) -> DoseCheck:
    ranges = SPINE_RANGES if spine else NON_SPINE_RANGES
    range_fr = (
        "rachis : 18-24 Gy en 1-2 fractions, 27-30 Gy en 3, 30-35 Gy en 5"
        if spine
        else "hors rachis : 15-25 Gy en 1 fraction, 24-50 Gy en 3 à 5 fractions"
    )
    notes: list[str] = []
    if reirradiation:
        notes.append("Tableau 5, ré-irradiation : 35 Gy en 5 fractions ou 27 Gy en 3 fractions (ou équivalent).")
        notes.append("Traitement fractionné recommandé en cas de récidive en territoire irradié.")
    if oligometastatic:
        notes.append("Tableau 5, oligométastatique : 35 Gy en 7 fractions ou 27 Gy en 3 fractions (ou équivalent).")
    if total_gy is None or fractions is None:
        return DoseCheck("unknown", range_fr, tuple(notes))
    if fractions == 1:
        notes.append("La séance unique est à réserver à des cas particuliers (L1674-1676).")
    table_schemes = (REIRR_SCHEMES if reirradiation else ()) + (OLIGO_SCHEMES if oligometastatic else ())
    if (total_gy, fractions) in table_schemes:
        return DoseCheck("within", range_fr, tuple(notes))
    bounds = ranges.get(fractions)
    within = bounds is not None and bounds[0] <= total_gy <= bounds[1]
    return DoseCheck("within" if within else "outside", range_fr, tuple(notes))


# ---- RT-CORD-DMAX ---------------------------------------------------------------------------------------------

#: First irradiation, myelopathy risk 1-5 %: cord point dose (Dmax) not to exceed, by fraction count (L1778-1784).
#: One fraction: 12 to 14 Gy (14 is the ceiling; above 12 is flagged).
CORD_DMAX_LIMITS: Final[dict[int, float]] = {1: 14.0, 2: 17.0, 3: 20.3, 4: 23.0, 5: 25.3}
CORD_DMAX_SINGLE_LOW: Final = 12.0


def cord_dmax_check(planned_dmax_gy: float | None, fractions: int | None) -> Criterion:
    limit = CORD_DMAX_LIMITS.get(fractions) if fractions is not None else None
    limit_fr = (
        "12 à 14 Gy en 1 fraction"
        if fractions == 1
        else f"{limit:g} Gy en {fractions} fractions"
        if limit is not None
        else "limite donnée pour 1 à 5 fractions seulement"
    )
    if planned_dmax_gy is None or limit is None:
        return Criterion("cord_dmax", "Dmax moelle prévue", planned_dmax_gy, limit_fr, "unknown")
    return Criterion(
        "cord_dmax",
        "Dmax moelle prévue",
        planned_dmax_gy,
        limit_fr,
        "pass" if planned_dmax_gy <= limit else "fail",
    )


# ---- RT-SBRT-FX -----------------------------------------------------------------------------------------------

VERTEBRAL_BODY_LIMIT: Final = 0.20  # > 20 % of the vertebral body (L1759-1760)
DOSE_PER_FRACTION_LIMIT_GY: Final = 20.0  # > 20 Gy per fraction
_T10_TO_SACRUM: Final = frozenset({"T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2", "S3", "S4", "S5"})


def fracture_risk_factors(
    level: str | None,
    sacrum: bool,
    lesion_type: str | None,
    body_fraction: float | None,
    total_gy: float | None,
    fractions: int | None,
) -> tuple[list[Finding], list[str]]:
    """Factors of vertebral fracture after SBRT; any present -> suggest cementoplasty before irradiation."""
    found: list[Finding] = []
    missing: list[str] = []
    if sacrum or (level is not None and level in _T10_TO_SACRUM):
        found.append(Finding("localisation entre T10 et le sacrum", "vertebral_level", level or "sacrum"))
    if lesion_type == "lytic":
        found.append(Finding("lésion ostéolytique", "lesion_type", lesion_type))
    elif lesion_type is None:
        missing.append("lesion type (lytic or not)")
    if body_fraction is None:
        missing.append("fraction of the vertebral body involved")
    elif body_fraction > VERTEBRAL_BODY_LIMIT:
        found.append(
            Finding("envahissement > 20 % du corps vertébral", "vertebral_body_involvement_fraction", body_fraction)
        )
    if total_gy is not None and fractions:
        per_fx = total_gy / fractions
        if per_fx > DOSE_PER_FRACTION_LIMIT_GY:
            found.append(Finding("dose par fraction > 20 Gy", "dose_per_fraction_gy", round(per_fx, 2)))
    return found, missing
