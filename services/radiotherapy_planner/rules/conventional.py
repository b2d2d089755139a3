"""Conventional radiotherapy: RT-PAIN, RT-FRACT-PALL, RT-FRACTURE-RISK, RT-MSCC, RT-POSTOP. Pure, no I/O.

Sections of the text: 1.1-1.4 (L1298-1461) and 2.1 (L1500-1585), Tableau 5 (L1795-1914), the recommendations
(L1937-1943) and Tableau 7 (L2131-2157, L2413-2436)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from services.radiotherapy_planner.rules.common import POOR_PROGNOSIS_MONTHS, Scheme, scheme_fr
from services.radiotherapy_planner.rules.surgery import surgery_excluded

#: RT-MSCC: adjuvant radiotherapy 2 to 3 weeks after decompressive surgery (L1399-1400).
ADJUVANT_RT_AFTER_SURGERY: Final = (timedelta(weeks=2), timedelta(weeks=3))
#: RT-POSTOP: start 15 days to 3 weeks after surgery, on healed skin (L1457-1459).
POSTOP_RT_WINDOW: Final = (timedelta(days=15), timedelta(weeks=3))
#: RT-MSCC / Tableau 5: schemes for exclusive urgent RT; 8 Gy x 1 is an option for a poor prognosis.
MSCC_SCHEMES: Final = ("30 Gy en 10 fractions", "20 Gy en 5 fractions")
MSCC_POOR_PROGNOSIS_SCHEME: Final = "8 Gy en 1 fraction"

S30_10: Final[Scheme] = (30.0, 10)
S20_5: Final[Scheme] = (20.0, 5)
S8_1: Final[Scheme] = (8.0, 1)


@dataclass(frozen=True)
class MsccPlan:
    """RT-MSCC. `setting`: adjuvant (operated), surgery_first (operable, not yet operated: decompression then
    adjuvant RT), exclusive_urgent (not operable, operability unknown, or surgery excluded)."""

    setting: Literal["adjuvant", "surgery_first", "exclusive_urgent"]
    schemes: tuple[str, ...]
    start_between: tuple[date, date] | None
    single_fraction_favoured: bool
    missing: tuple[str, ...]
    notes: tuple[str, ...] = ()


def cord_compression_plan(
    operated_on: date | None,
    life_expectancy_months: float | None,
    operable: bool | None = None,
    neurological_deficit: bool | None = None,
    epidural_extension: bool | None = None,
) -> MsccPlan:
    """RT-MSCC for ONE compression. `operated_on` is the decompression that treated THIS compression (same lesion
    or level, on or after it), never another one (issue 9.1)."""
    notes: list[str] = []
    if neurological_deficit:
        notes.append("Déficit neurologique : compression symptomatique, prise en charge sans délai.")
    if epidural_extension:
        notes.append(
            "Épidurite : privilégier 30 Gy en 10 fractions (L2143) ; volume étendu selon l'extension à l'IRM (L1518)."
        )
    if operated_on is not None:
        lo, hi = ADJUVANT_RT_AFTER_SURGERY
        return MsccPlan("adjuvant", MSCC_SCHEMES, (operated_on + lo, operated_on + hi), False, (), tuple(notes))
    missing: list[str] = []
    no_surgery = life_expectancy_months is not None and surgery_excluded(life_expectancy_months)
    if no_surgery:
        notes.append("Espérance de vie < 6 semaines : pas de chirurgie (SURG-LE), radiothérapie seule.")
    setting: Literal["surgery_first", "exclusive_urgent"] = (
        "surgery_first" if operable is True and not no_surgery else "exclusive_urgent"
    )
    if operable is None and not no_surgery:
        missing.append("surgical opinion (operable or not)")
    if life_expectancy_months is None:
        missing.append("life expectancy estimate (to weigh the 8 Gy single fraction)")
        return MsccPlan(setting, (*MSCC_SCHEMES, MSCC_POOR_PROGNOSIS_SCHEME), None, False, tuple(missing), tuple(notes))
    poor = life_expectancy_months < POOR_PROGNOSIS_MONTHS
    favour_single = poor and not epidural_extension
    schemes = (
        (MSCC_POOR_PROGNOSIS_SCHEME, *MSCC_SCHEMES) if favour_single else (*MSCC_SCHEMES, MSCC_POOR_PROGNOSIS_SCHEME)
    )
    return MsccPlan(setting, schemes, None, favour_single, tuple(missing), tuple(notes))


@dataclass(frozen=True)
class PainIndication:
    """RT-PAIN: a painful, uncomplicated metastasis resisting analgesics -> RT is the first treatment."""

    indicated: bool | None
    missing: tuple[str, ...]


def pain_indication(resistant_to_analgesics: bool | None, complicated: bool) -> PainIndication:
    if resistant_to_analgesics is None:
        return PainIndication(None, ("pain resistant to analgesics (yes/no)",))
    return PainIndication(resistant_to_analgesics and not complicated, ())


@dataclass(frozen=True)
class PalliativeScheme:
    """RT-FRACT-PALL / RT-FRACTURE-RISK: the fractionation to propose, the alternatives, and why."""

    rule_id: Literal["RT-FRACT-PALL", "RT-FRACTURE-RISK"]
    preferred: Scheme
    alternatives: tuple[Scheme, ...]
    reasons: tuple[str, ...]
    rule_out_surgery_first: bool
    corticosteroids_48_72h: bool
    missing: tuple[str, ...]


def palliative_scheme(
    *,
    spine: bool,
    complications: tuple[str, ...],
    fracture_risk: bool | None,
    life_expectancy_months: float | None,
    frail: bool | None,
    hard_to_move: bool | None,
) -> PalliativeScheme:
    """`complications`: French reasons that make the lesion complicated (fracture, epiduritis, compression,
    neuropathic pain, post-operative). `fracture_risk`: from the scoring service's Mirels (>= 8) or SINS (>= 7)."""
    missing: list[str] = []
    if fracture_risk is None:
        missing.append("fracture risk (Mirels for a long bone, SINS for the spine) to rule out before RT")
    short = life_expectancy_months is not None and life_expectancy_months < POOR_PROGNOSIS_MONTHS
    if fracture_risk:  # Tableau 5: 30/10 preferred (re-ossification, L1573-1575); surgery ruled out first
        return PalliativeScheme(
            "RT-FRACTURE-RISK",
            S30_10,
            (S20_5, S8_1),
            ("risque fracturaire : 30 Gy en 10 fractions pour une meilleure ré-ossification (8 Gy exceptionnel)",),
            True,
            False,
            tuple(missing),
        )
    if complications:  # Tableau 7 (L2143-2145): complicated -> 30/10
        alts = (S20_5,) if (frail or short) else ()
        return PalliativeScheme(
            "RT-FRACT-PALL", S30_10, alts, ("lésion compliquée : " + ", ".join(complications),), False, False, ()
        )
    if life_expectancy_months is None:
        missing.append("life expectancy estimate (single fraction only for a short life expectancy)")
    if short or hard_to_move:  # 8 Gy single fraction: only special cases (L1941-1943)
        why = "espérance de vie courte" if short else "patient difficile à mobiliser"
        if spine:  # Tableau 5: prefer fractionated schemes on the spine (digestive toxicity)
            return PalliativeScheme(
                "RT-FRACT-PALL",
                S20_5,
                (S8_1, S30_10),
                (why + " ; rachis : préférer un schéma fractionné (toxicité digestive)",),
                False,
                False,
                tuple(missing),
            )
        return PalliativeScheme(
            "RT-FRACT-PALL",
            S8_1,
            (S20_5, S30_10),
            (why + " ; métastase non compliquée d'un os long ou plat",),
            False,
            True,
            tuple(missing),
        )
    if frail:  # OPTION (L2157): elderly, altered general state -> 20 Gy / 5
        return PalliativeScheme(
            "RT-FRACT-PALL", S20_5, (S30_10,), ("sujet âgé ou fragile",), False, False, tuple(missing)
        )
    if frail is None:
        missing.append("frailty (elderly or frail: 20 Gy in 5 is an option)")
    return PalliativeScheme(
        "RT-FRACT-PALL",
        S30_10,
        (S20_5,),
        ("schéma habituellement recommandé en situation palliative",),
        False,
        False,
        tuple(missing),
    )


def scheme_text(p: PalliativeScheme) -> str:
    alts = ", ".join(scheme_fr(a) for a in p.alternatives)
    text = f"Proposer {scheme_fr(p.preferred)}" + (f" (alternatives : {alts})" if alts else "") + ". "
    text += "Motif : " + "; ".join(p.reasons) + ". "
    if p.corticosteroids_48_72h:
        text += "Séance unique sous corticothérapie de 48 à 72 h. "
    if p.rule_out_surgery_first:
        text += "Éliminer d'abord une indication chirurgicale (avis chirurgical avant l'irradiation). "
    return text.strip()


@dataclass(frozen=True)
class PostopPlan:
    """RT-POSTOP: the whole operated bone and all hardware, 15 days to 3 weeks after surgery, on healed skin."""

    start_between: tuple[date, date]
    schemes: tuple[Scheme, ...]


def postop_plan(operated_on: date) -> PostopPlan:
    lo, hi = POSTOP_RT_WINDOW
    return PostopPlan((operated_on + lo, operated_on + hi), (S30_10, S20_5))
