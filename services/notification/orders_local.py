"""The checks of a draft order against a planned local treatment: an anticancer drug while a radiotherapy is planned
(RT-DRUG, Tableau 6, L1948-2016, L2196-2358), an antiplatelet or anticoagulant while a cementoplasty is planned
(IR-CEMENT haemostasis, L2626-2640). Pure, no I/O."""

from __future__ import annotations

from contracts.plan import PlanItem
from services.notification.orders_antiresorptive import _line_mg, drug_fr
from services.notification.orders_drafts import Draft
from services.notification.orders_facts import OrderFacts, Value, missing_fr
from services.notification.orders_finding import Finding, Indicator, _fit
from services.notification.orders_rules import (
    ASPIRIN_CONTINUE_BELOW_MG,
    TABLEAU_6_NO_WINDOW,
    cement_stop_fr,
)


def _where(item: PlanItem) -> str:
    """The lesion a local-plan item is about, as its title names it ("Cimentoplastie — L3 (l3) : pas prête")."""
    return item.title.split(" — ", 1)[-1].split(" : ", 1)[0]


def _radiotherapy(draft: Draft, f: OrderFacts) -> list[Finding]:
    """RT-DRUG, Tableau 6: a drug with a window around a planned radiotherapy. The local plan publishes the planner's
    window for the drugs under way; for another drug the dates and windows are not published to notification."""
    if not f.radiotherapy:
        return []
    name = drug_fr(draft)
    assert draft.identity is not None
    decided = [i for i in f.windows if i.key.endswith(f":drug:{draft.identity.key}")]
    where = "; ".join(sorted({_where(i) for i in f.radiotherapy}))
    if decided:
        delays = any(i.status in ("to_do", "cannot_decide", "warning") for i in decided)
        return [
            Finding(
                draft,
                "rt-window",
                "RT-DRUG",
                "warning" if delays else "info",
                _fit(f"{name.capitalize()} et radiothérapie prévue (", where, ")"),
                " ".join(i.text_fr for i in decided)
                + " Une nouvelle administration repousse d'autant la date possible de l'irradiation (Tableau 6).",
                missing=tuple(dict.fromkeys(missing_fr(m) for i in decided for m in i.missing)),
            )
        ]
    if draft.identity.key in TABLEAU_6_NO_WINDOW:
        return [
            Finding(
                draft,
                "rt-window",
                "RT-DRUG",
                "info",
                _fit(f"{name.capitalize()} et radiothérapie prévue (", where, ") : compatible, pas de fenêtre"),
                f"Tableau 6 : {name}, compatible avec une radiothérapie à visée palliative, pas de fenêtre "
                "(accord de pratique).",
            )
        ]
    return [
        Finding(
            draft,
            "rt-window",
            "RT-DRUG",
            "warning",
            _fit(f"{name.capitalize()} : radiothérapie prévue (", where, "), fenêtre du Tableau 6 à vérifier"),
            "Une radiothérapie est prévue. Certains anticancéreux imposent un délai avant et après l'irradiation "
            "(Tableau 6 : gemcitabine, doxorubicine, bévacizumab ; immunothérapies et ITK : avis de la RCP). La date "
            "des séances et la fenêtre de ce médicament ne sont pas connues de ce service : à vérifier avec le "
            "radiothérapeute avant de signer.",
            missing=("dates de la radiothérapie prévue", f"fenêtre du Tableau 6 pour {name}"),
        )
    ]


def _daily_mg(draft: Draft) -> float | None:
    """The daily dose over every dosage line (dose x administrations per day); None when a line lacks either."""
    parts = [(_line_mg(line), line.per_day) for line in draft.lines]
    if not parts or any(mg is None or per_day is None for mg, per_day in parts):
        return None
    return sum(mg * per_day for mg, per_day in parts if mg is not None and per_day is not None)


def _cementoplasty(draft: Draft, f: OrderFacts) -> list[Finding]:
    """IR-CEMENT haemostasis (L2626-2640): antiplatelets and anticoagulants before a cementoplasty."""
    if not f.cementoplasty:
        return []
    assert draft.identity is not None
    who = draft.identity
    rule = cement_stop_fr(who.key, who.group)
    used: tuple[Value, ...] = ()
    missing: tuple[str, ...] = ()
    indicator: Indicator = "warning"
    if who.key == "aspirin":
        daily = _daily_mg(draft)  # every dosage line: 100 mg morning and evening is 200 mg/j
        if daily is not None:
            used = (Value("aspirin_daily_dose", daily, "mg/j", None),)
            indicator = "info" if daily < ASPIRIN_CONTINUE_BELOW_MG else "warning"
        else:
            missing = ("dose quotidienne d'aspirine",)
    lesions = "; ".join(sorted({_where(i) for i in f.cementoplasty}))
    return [
        Finding(
            draft,
            "cement-haemostasis",
            "IR-CEMENT",
            indicator,
            _fit(f"{drug_fr(draft).capitalize()} : cimentoplastie prévue (", lesions, ")"),
            f"Une cimentoplastie est prévue ({lesions}). Avant le geste : {rule}. Date du geste : voir le plan local "
            "(non transmise avec l'ordonnance).",
            used,
            missing,
        )
    ]
