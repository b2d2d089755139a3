"""RT-DRUG: drug–radiotherapy windows of Tableau 6 (L2196-2358), section 3 (L1948-2016) and Tableau 7
(L2150-2152). Pure, no I/O. Drug names are the INN vocabulary of shared/clinical/drugs.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from shared.clinical.drug_classes import ANTICANCER, IMMUNOTHERAPIES, TKIS
from shared.clinical.drugs import DrugIdentity, identify


@dataclass(frozen=True)
class Window:
    before: timedelta  # stop at least this long before the first fraction
    after: timedelta  # resume no earlier than this long after the last fraction
    urgent_minimum: timedelta | None = None  # shortened window in an emergency (gemcitabine: at least 8 days)


#: Tableau 6, radiosensitising drugs with a window ("à moduler selon l'urgence ... minimum de 8 j" for gemcitabine).
WINDOWS: Final[dict[str, Window]] = {
    "gemcitabine": Window(timedelta(weeks=4), timedelta(weeks=4), timedelta(days=8)),
    "doxorubicin": Window(timedelta(days=8), timedelta(days=8)),
    "bevacizumab": Window(timedelta(weeks=4), timedelta(weeks=4)),
}
#: Tableau 6, compatible: no window.
NO_WINDOW: Final = frozenset(
    {"carboplatin", "cisplatin", "vinorelbine", "paclitaxel", "etoposide", "pemetrexed", "docetaxel"}
)
#: Radiosensitisers the text says to stop (L1968-1970, L2150) without giving a window in Tableau 6.
STOP_NO_WINDOW_GIVEN: Final = frozenset({"bleomycin", "ramucirumab", "nintedanib"})
#: Immunotherapies and TKIs: no systematic concomitant use, precaution delay, RCP opinion (Tableau 6).
IMMUNO: Final = IMMUNOTHERAPIES
TKI: Final = TKIS

DrugRtClass = Literal["window", "no_window", "stop_window_not_given", "precaution_rcp", "not_in_table", "unknown"]


def drug_rt_class(drug: str | DrugIdentity) -> DrugRtClass | None:
    """Tableau 6 class of a drug, read through its identity (shared vocabulary: any spelling, or its ATC code);
    None for a drug known not to be anticancer (not concerned). A drug of unknown identity is "unknown": never
    taken for "no interaction" (issue 18.3)."""
    who = drug if isinstance(drug, DrugIdentity) else identify(drug)
    d = who.key
    if not who.known:  # before the lists: "pemetrexed" sent with doxorubicin's code is not "compatible"
        return "unknown"
    if d in WINDOWS:
        return "window"
    if d in NO_WINDOW:
        return "no_window"
    if d in STOP_NO_WINDOW_GIVEN or who.group == "antiangiogenic":  # "plus généralement les anti-angiogéniques"
        return "stop_window_not_given"
    if who.group in ("immunotherapy", "tki", "egfr_tki", "targeted") or d in IMMUNO or d in TKI:  # L1987-1989, L2153
        return "precaution_rcp"
    if who.drug_class == "anticancer" or d in ANTICANCER:
        return "not_in_table"
    return None


@dataclass(frozen=True)
class DrugRtDecision:
    drug: str
    rt_class: DrugRtClass
    last_dose: date | None
    ongoing: bool
    earliest_rt_start: date | None  # window drugs, when the last dose is known
    resume_after_rt_days: int | None
    delays_rt: bool | None  # RT cannot start on the reference date
    text_fr: str
    missing: tuple[str, ...]


#: What to say for the classes of Tableau 6 that give no dated window (drug name, "last dose ..." phrase).
_NO_DATED_WINDOW: Final[dict[str, Callable[[str, str], str]]] = {
    "no_window": lambda name, when: (
        f"{name} : compatible avec une radiothérapie palliative, pas de fenêtre nécessaire (Tableau 6)."
    ),
    "precaution_rcp": lambda name, when: (
        f"{name} ({when}) : peu de données ; pas de traitement concomitant systématique, respecter un délai de "
        "précaution et demander l'avis de la RCP-OOS ; informer le patient de l'absence de données."
    ),
    "stop_window_not_given": lambda name, when: (
        f"{name} ({when}) : radiosensibilisant, à interrompre pendant la radiothérapie (wash-out strict) ; le "
        "référentiel ne donne pas de délai chiffré : à fixer en RCP-OOS."
    ),
    "not_in_table": lambda name, when: (
        f"{name} ({when}) : absent du Tableau 6 ; délai théorique de 5 demi-vies avant la radiothérapie, "
        "à évaluer avec la RCP-OOS."
    ),
    "unknown": lambda name, when: (
        f"{name} ({when}) : médicament non identifié par le système. S'il s'agit d'un anticancéreux "
        "(chimiothérapie, thérapie ciblée, immunothérapie), principe de précaution : pas d'association systématique "
        "avec la radiothérapie, délai avant l'irradiation et avis de la RCP-OOS ; sinon, le signaler."
    ),
}


def drug_rt_window(
    drug: str | DrugIdentity, last_dose: date | None, ongoing: bool, reference: date, urgent: bool
) -> DrugRtDecision | None:
    """For one anticancer drug: the earliest date RT may start (window drugs) or what to do. `reference` is the
    planned RT date (or today's decision date); `urgent` shortens the gemcitabine window, before AND after the
    irradiation, to its 8-day minimum (Tableau 6's asterisk stands on both lines, L2207-2213)."""
    who = drug if isinstance(drug, DrugIdentity) else identify(drug)
    c = drug_rt_class(who)
    if c is None:
        return None
    drug = who.key
    name = drug.replace("_", " ")
    when = (
        f"dernière administration le {last_dose:%d/%m/%Y}" if last_dose else "date de dernière administration inconnue"
    )
    if c != "window":  # the classes with no dated window: one sentence each (Tableau 6)
        delays = False if c == "no_window" else None
        missing = (f"identity of {name} (anticancer drug?)",) if c == "unknown" else ()
        return DrugRtDecision(drug, c, last_dose, ongoing, None, None, delays, _NO_DATED_WINDOW[c](name, when), missing)
    w = WINDOWS[drug]
    shortened = urgent and w.urgent_minimum is not None
    before = w.urgent_minimum if shortened and w.urgent_minimum is not None else w.before
    after_days = (w.urgent_minimum if shortened and w.urgent_minimum is not None else w.after).days
    if last_dose is None:
        return DrugRtDecision(
            drug,
            c,
            None,
            ongoing,
            None,
            after_days,
            None,
            f"{name} : arrêt {before.days} jours avant la radiothérapie et reprise {after_days} jours après ; "
            "date de la dernière administration inconnue.",
            (f"date of the last {name} dose",),
        )
    earliest = last_dose + before
    delays = earliest > reference
    urgent_note = " (délai raccourci au minimum de 8 jours pour l'urgence)" if before != w.before else ""
    text = (
        f"{name} : {when} ; radiothérapie possible à partir du {earliest:%d/%m/%Y} "
        f"({before.days} jours après{urgent_note})"
        + (", ce qui retarde la radiothérapie" if delays else "")
        + f". Ne pas reprendre le {name} avant {after_days} jours après la fin de l'irradiation"
        + (f" (urgence ; {w.after.days} jours hors urgence)." if after_days != w.after.days else ".")
    )
    if ongoing:
        text += f" Suspendre le {name} (prochaine cure à décaler)."
    return DrugRtDecision(drug, c, last_dose, ongoing, earliest, after_days, delays, text, ())
