"""CDS Hooks `order-sign` / `order-select`: the draft orders an EHR is about to sign, checked against the patient's
current facts (orders_facts.py). Pure: no I/O, no clock (`facts.now`). The checks of one draft live in
orders_antiresorptive.py and orders_local.py; this module runs them, adds the checks across the order set, and makes
the cards.

Checks (each card cites its rule and passage, lists the data used with value, unit and time, and what is missing):
- zoledronic acid dose against the clearance, Tableau 2 (SYS-ZA-DOSE, L1153-1184): a wrong or absent dose gets a
  suggestion whose `update` action replaces the draft with the corrected one; CrCl < 30 (contraindicated,
  L1155-1156) a `delete` suggestion; a missing, stale or censored clearance an "insufficient data" card, never a dose;
- denosumab at CrCl < 30 (SYS-DENO, L1215-1218);
- an anti-resorptive while SYS-AR-PREREQ prerequisites are unmet (L795-801, L1086-1100, L1267-1273), or during a
  current hypercalcaemic crisis (LAB-CA-CRISIS L300-306: the prerequisites are waived, "sauf urgence");
- an anticancer drug while a radiotherapy is planned (RT-DRUG, Tableau 6, L1948-2016, L2196-2358);
- an antiplatelet or anticoagulant while a cementoplasty is planned (IR-CEMENT haemostasis, L2626-2640);
- review RB: the rhythm (zoledronic acid monthly or three-monthly, L1182, L1132-1140; denosumab 120 mg monthly,
  L1210, L1140-1142: SYS-SCHEDULE / SYS-DENO), the osteoporosis products (Aclasta®, Prolia®) never corrected in place,
  two different anti-resorptives in one order set (L1136), a cementoplasty or radiotherapy ordered in the same set,
  a draft whose names and codes disagree or that combines substances on one line ("à vérifier").
A drug the shared vocabulary cannot identify concerns none of these rules and gets no card (drugs.identify); a
cancelled, stopped, completed or entered-in-error draft is not checked (orders_drafts.NOT_TO_SIGN).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Final

from contracts.base import derived_id
from contracts.plan import PlanItem
from contracts.rules import GUIDELINE, RULESET_VERSION, cite
from services.notification.cds import RULE_SYSTEM, override_reasons
from services.notification.orders_antiresorptive import _deno, _deno_dose, _prerequisites, _za, drug_fr, shown
from services.notification.orders_drafts import Draft, drafts
from services.notification.orders_facts import OrderFacts, Value
from services.notification.orders_finding import LABELS, SUMMARY_MAX, UCUM, Finding, Links, _fit
from services.notification.orders_local import _cementoplasty, _radiotherapy
from services.notification.orders_rules import (
    DRUG_FR,
    NEPHROTOXIC_WITH_BISPHOSPHONATES,
)
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.drugs import DrugIdentity, identify

#: what app.py and the tests use from here
__all__ = ["UCUM", "Finding", "Links", "cards", "findings"]


def _unreadable(draft: Draft) -> Finding:
    name = drug_fr(draft)
    return Finding(
        draft,
        "unreadable",
        "SYS-ZA-DOSE" if draft.identity and draft.identity.key == "zoledronic_acid" else "SYS-AR-PREREQ",
        "warning",
        _fit("", name.capitalize(), " : brouillon non conforme FHIR R4, contrôle impossible"),
        "Le brouillon de prescription n'est pas une MedicationRequest FHIR R4 valide : la dose et le rythme n'ont "
        "pas pu être lus ni vérifiés.",
        missing=("MedicationRequest FHIR R4 valide",),
    )


#: the rule whose card speaks for a drug of each class when its identity is in doubt
_RULE_OF_CLASS: Final = {
    "antiresorptive": "SYS-AR-PREREQ",
    "anticancer": "RT-DRUG",
    "antiplatelet": "IR-CEMENT",
    "anticoagulant": "IR-CEMENT",
}


def _names_fr(identities: list[DrugIdentity]) -> str:
    """Several identified drugs, by their French names (as `drug_fr`), joined for a card."""
    return " / ".join(DRUG_FR.get(i.key) or i.key.replace("_", " ") for i in identities)


def _combination(draft: Draft, f: OrderFacts) -> list[Finding]:
    """Several substances on one line: the dose and rhythm belong to none of them. When a rule would speak for one
    of them here, the line is to check (each substance on its own line), with what the rules would say."""
    parts = [identify(k) for k in draft.conflict]
    alone = [replace(draft, identity=i, conflict=(), names=(), combination=False) for i in parts]
    said = [x for x in findings(alone, f) if x.check != "unreadable"]
    if not said:
        return []
    named = _names_fr(parts)
    return [
        Finding(
            draft,
            "combination",
            said[0].rule_id,
            "critical" if any(x.indicator == "critical" for x in said) else "warning",
            _fit("Association sur une même ligne, à vérifier : ", named),
            f"Le brouillon associe plusieurs médicaments sur une même ligne ({named}) : la dose et le rythme ne "
            "peuvent être attribués à aucun d'eux. Prescrire chaque médicament sur sa propre ligne. Pour ces "
            "médicaments :",
            missing=("une ligne par médicament",),
            extra=tuple(f"- {x.summary}" for x in said),
        )
    ]


def _conflicting(draft: Draft, f: OrderFacts) -> list[Finding]:
    """A draft whose names and codes designate different drugs (Xgeva® coded M05BA08; a text naming zoledronic acid
    and a coding naming denosumab): no rule may be assumed, and the draft must not sign as if it concerned none."""
    if draft.combination:
        return _combination(draft, f)
    who = [identify(k) for k in draft.conflict]
    rules = [
        "SYS-ZA-DOSE" if i.key == "zoledronic_acid" else "SYS-DENO" if i.key == "denosumab" else _RULE_OF_CLASS[c]
        for i in who
        if (c := i.drug_class) in _RULE_OF_CLASS
    ]
    if not rules:
        return []
    named = _names_fr(who)
    return [
        Finding(
            draft,
            "identity",
            rules[0],
            "warning",
            _fit("Prescription à vérifier : le nom et le code désignent des médicaments différents (", named, ")"),
            f"Le brouillon nomme des médicaments différents ({named}) : aucun contrôle ne peut être fait sans savoir "
            "lequel est prescrit. Corriger la prescription avant de la signer.",
            missing=("identité du médicament prescrit",),
        )
    ]


def findings(orders: list[Draft], f: OrderFacts) -> list[Finding]:
    """Every check on every draft (ServiceRequests are read but no rule here checks them yet)."""
    out: list[Finding] = []
    for d in orders:
        who = d.identity
        if d.conflict:
            out += _conflicting(d, f)
            continue
        if who is None or not who.known:
            continue
        concerned = who.drug_class in ("antiresorptive", "anticancer", "antiplatelet", "anticoagulant")
        if concerned and not d.valid:
            out.append(_unreadable(d))
            continue
        if who.key == "zoledronic_acid":
            out += _za(d, f)
        if who.key == "denosumab":
            out += _deno(d, f) + _deno_dose(d)
        if who.drug_class == "antiresorptive":
            out += _prerequisites(d, f)
        if who.drug_class == "anticancer":
            out += _radiotherapy(d, f)
        if who.drug_class in ("antiplatelet", "anticoagulant"):
            out += _cementoplasty(d, f)
    return out


def _two_antiresorptives(chosen: list[Draft], every: list[Draft]) -> list[Finding]:
    """SYS-SCHEDULE: "acide zoledronique ou dénosumab mensuel" (L1136), one administration a month (L1182, L1210):
    two anti-resorptive drafts in one order set, different (both drugs) or the same (a doubled dose). One card per
    pair: on the later draft, or on the selected one when its partner is elsewhere in the set (order-select)."""
    ar = [d for d in every if d.identity is not None and d.identity.drug_class == "antiresorptive"]
    picked = {d.ref for d in chosen}
    out: list[Finding] = []
    for d in (x for x in ar if x.ref in picked):
        before = {o.ref for o in ar[: ar.index(d)]}
        partners = [o for o in ar if o.ref != d.ref and (o.ref not in picked or o.ref in before)]
        if not partners:
            continue
        names = list(dict.fromkeys(drug_fr(x) for x in [*partners, d]))
        if len(names) == 1:
            summary = _fit("Deux prescriptions d'", names[0], " dans la même ordonnance : dose doublée ?")
            if names[0][:1] not in "aeiouyéh":
                summary = _fit("Deux prescriptions de ", names[0], " dans la même ordonnance : dose doublée ?")
            text = (
                f"La prescription contient {len(partners) + 1} lignes de {names[0]} : une seule administration par "
                "mois est prévue. N'en garder qu'une."
            )
        else:
            joined = " et ".join(names)
            summary = _fit("Deux anti-résorptifs dans la même prescription : ", joined)
            text = (
                f"La prescription contient {joined}. Le référentiel propose l'un ou l'autre (acide zolédronique ou "
                "dénosumab mensuel), jamais les deux ensemble : n'en garder qu'un."
            )
        out.append(Finding(d, "two-antiresorptives", "SYS-SCHEDULE", "warning", summary, text))
    return out


def _nephrotoxicity(chosen: list[Draft], every: list[Draft]) -> list[Finding]:
    """SYS-RENAL-TOX (L770-772): a bisphosphonate with a platinum salt or pemetrexed in one order set, cumulative
    nephrotoxicity. One card for the set: on the bisphosphonate, or on the selected draft (order-select)."""
    bis = [d for d in every if d.identity is not None and d.identity.group == "bisphosphonate"]
    chemo = [d for d in every if d.identity is not None and d.identity.key in NEPHROTOXIC_WITH_BISPHOSPHONATES]
    if not bis or not chemo:
        return []
    picked = {d.ref for d in chosen}
    on = next((d for d in bis if d.ref in picked), None) or next((d for d in chemo if d.ref in picked), None)
    if on is None:
        return []
    names = " et ".join(dict.fromkeys(drug_fr(d) for d in [*chemo, *bis]))
    return [
        Finding(
            on,
            "nephrotoxicity",
            "SYS-RENAL-TOX",
            "warning",
            _fit("Néphrotoxicité cumulative : ", names),
            f"La prescription associe {names} : l'utilisation concomitante des sels de platine, du pemetrexed et des "
            "bisphosphonates expose à une néphrotoxicité cumulative. Surveiller la fonction rénale avant chaque cure "
            "et chaque perfusion.",
        )
    ]


#: a procedure ordered in the same order set (a ServiceRequest's code text or codings' display): the rule whose
#: checks it brings, the item's kind, and its names (French, English)
_PROCEDURES: Final = (
    ("IR-CEMENT", "Cimentoplastie", re.compile(r"cimentoplast|vert[eé]broplast|kyphoplast|cementoplast", re.I)),
    ("RT-PAIN", "Radiothérapie", re.compile(r"radioth[eé]rap|irradiation|radiotherap|st[eé]r[eé]otax|sbrt", re.I)),
)


def _procedure_names(resource: dict[str, Any]) -> list[str]:
    code = resource.get("code")
    if not isinstance(code, dict):
        return []
    names = [code["text"]] if isinstance(code.get("text"), str) else []
    return names + [c["display"] for c in code.get("coding") or [] if isinstance(c, dict) and "display" in c]


def _with_ordered_procedures(f: OrderFacts, every: list[Draft]) -> OrderFacts:
    """A cementoplasty (IR-CEMENT, L2626-2640) or a radiotherapy (RT-DRUG, Tableau 6) ordered in the same order set
    counts as planned for the drug checks, as the local plan's items do: the moment of ordering."""
    cement, rt = list(f.cementoplasty), list(f.radiotherapy)
    for d in every:
        if d.resource.get("resourceType") != "ServiceRequest":
            continue
        names = " ".join(str(n) for n in _procedure_names(d.resource))
        for rule_id, kind, pattern in _PROCEDURES:
            if pattern.search(names):
                item = PlanItem(
                    key=f"order:{d.ref}",
                    rule_id=rule_id,
                    status="to_do",
                    severity="warning",
                    title=f"{kind} — dans cette ordonnance : à signer",
                    text_fr=f"{kind} prescrite dans cette ordonnance.",
                    citation=cite(rule_id),
                )
                (cement if rule_id == "IR-CEMENT" else rt).append(item)
    return replace(f, cementoplasty=tuple(cement), radiotherapy=tuple(rt))


# ---- cards -------------------------------------------------------------------------------------------------------
def _when(v: Value) -> str:
    if v.at is None:
        return ""
    local = v.at.astimezone(HOSPITAL_TZ)
    return f" (prélèvement du {local:%d/%m/%Y} à {local:%H:%M})"


def _detail(x: Finding) -> str:
    lines = [x.text, *x.extra, ""]
    if x.used:
        lines.append("**Données utilisées :**")
        lines += [f"- {LABELS.get(v.name, v.name.replace('_', ' '))} : {shown(v)}{_when(v)}" for v in x.used]
        lines.append("")
    if x.missing:
        lines += ["**Données manquantes :** " + ", ".join(x.missing), ""]
    c = cite(x.rule_id)
    lines.append(f"Règle {x.rule_id} ({RULESET_VERSION}) — {c.section}, {c.lines}.")
    return "\n".join(lines)


def card(x: Finding, patient_id: str, links: Links) -> dict[str, Any]:
    """One CDS Hooks 2.0 card. Its uuid names the patient, the draft, the check and the data it used: the same draft
    checked again on the same data is the same card (the feedback then names it)."""
    c = cite(x.rule_id)
    data = tuple((v.name, v.value, v.comparator, v.at) for v in x.used)
    uid = derived_id("order-card", patient_id, x.draft.ref, x.check, x.rule_id, data, x.missing)
    out: dict[str, Any] = {
        "uuid": str(uid),
        "summary": x.summary[:SUMMARY_MAX],
        "indicator": x.indicator,
        "detail": _detail(x),
        "source": {
            "label": f"{GUIDELINE} — {c.section} ({c.lines})",
            "url": links.passage(x.rule_id),
            "topic": {"system": RULE_SYSTEM, "code": x.rule_id, "display": c.section},
        },
        "overrideReasons": override_reasons(),
        "links": [
            {"label": "Dossier OsteoCDS du patient (alertes, plan)", "url": links.page(patient_id), "type": "smart"}
        ],
    }
    if x.suggestion is not None:  # its uuid names the card's (the patient's) too: unique in the feedback's log
        out["suggestions"] = [{**x.suggestion, "uuid": str(derived_id("order-suggestion", uid, x.suggestion["uuid"]))}]
        out["selectionBehavior"] = "at-most-one"
    return out


_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


def cards(
    bundle: dict[str, Any] | None,
    f: OrderFacts,
    patient_id: str,
    links: Links,
    selections: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The `order-sign` / `order-select` cards for the drafts, most urgent first."""
    every = drafts(bundle)
    chosen = every if selections is None else drafts(bundle, selections)
    f = _with_ordered_procedures(f, every)
    found = findings(chosen, f) + _two_antiresorptives(chosen, every) + _nephrotoxicity(chosen, every)
    return [card(x, patient_id, links) for x in sorted(found, key=lambda x: _ORDER[x.indicator])]
