"""Plan items of conventional radiotherapy: RT-POSTOP, RT-PAIN, RT-FRACT-PALL / RT-FRACTURE-RISK, RT-DRUG (pure;
French texts written for this project). RT-MSCC: items_mscc.py."""

from __future__ import annotations

from datetime import date

from contracts.base import Severity
from contracts.local import LocalTreatmentRequest
from contracts.plan import ItemStatus
from services.radiotherapy_planner.facts import Lesion
from services.radiotherapy_planner.facts_treatments import matches
from services.radiotherapy_planner.items_base import Inp, Item, inp, item, reference_date
from services.radiotherapy_planner.items_patient import Patient, where
from services.radiotherapy_planner.rules import conventional as conv
from services.radiotherapy_planner.rules.common import LONG_BONES, scheme_fr
from services.radiotherapy_planner.rules.drugs import drug_rt_window


# ---- RT-POSTOP ---------------------------------------------------------------------------------------------------
def postop_items(p: Patient, lesion: Lesion) -> list[Item]:
    out = []
    for e, t in p.surgeries:
        if t.procedure in ("decompression", "other") or not matches(lesion, t):
            continue
        done = [c for _, c in p.rt_courses if c.on >= t.on and matches(lesion, c)]
        plan = conv.postop_plan(t.on)
        lo, hi = plan.start_between
        out.append(
            item(
                f"{lesion.lesion_id}:postop:{t.on.isoformat()}",
                "RT-POSTOP",
                "done" if done else "recommended",
                "info" if done else "warning",
                f"Radiothérapie post-opératoire — {where(lesion)}",
                f"Chirurgie ({t.procedure}) le {t.on:%d/%m/%Y} : irradiation systématique de toute la pièce osseuse "
                f"opérée et de tout le matériel, à débuter entre le {lo:%d/%m/%Y} et le {hi:%d/%m/%Y} sur peau "
                f"cicatrisée ; {' ou '.join(scheme_fr(x) for x in plan.schemes)}."
                + (" Radiothérapie enregistrée après le geste." if done else ""),
                inputs=[inp(name="surgery", value=f"{t.procedure} {t.on.isoformat()}", source_event_id=e.event_id)],
                what_would_change_fr="Une cicatrisation retardée (début décalé).",
            )
        )
    return out


# ---- RT-PAIN, RT-FRACT-PALL, RT-FRACTURE-RISK --------------------------------------------------------------------
def fracture_risk(p: Patient, lesion: Lesion) -> tuple[bool | None, list[Inp]]:
    """From the scoring service's Mirels (long bones, >= 8: RCP or fixation) or SINS (spine, >= 7): never recomputed."""
    if lesion.spine:
        sins = p.s.scores.get(f"sins:{lesion.lesion_id}")
        if sins is None:
            return None, []
        if sins.band is not None:
            return sins.band != "stable", [sins.used("sins")]
        return (True if (sins.floor or 0) >= 7 else None), [sins.used("sins")]
    mirels = p.s.scores.get(f"mirels:{lesion.lesion_id}")
    if mirels is None:
        return None, []
    if mirels.total is not None:
        return mirels.total >= 8, [mirels.used("mirels")]
    return (True if (mirels.floor or 0) >= 8 else None), [mirels.used("mirels")]


def complications(p: Patient, lesion: Lesion) -> tuple[list[str], list[Inp]]:
    out: list[str] = []
    used: list[Inp] = []
    for attr, label in (
        ("pathological_fracture", "fracture pathologique"),
        ("epidural_extension", "épidurite"),
        ("cord_compression", "compression médullaire"),
    ):
        if lesion.value(attr) is True:
            out.append(label)
            used.append(lesion.used(attr))
    if p.pain_value(lesion.lesion_id, "pain_character") == "neuropathic":
        out.append("douleur neuropathique")
        used += p.pain_used(lesion.lesion_id, "pain_character")
    if any(matches(lesion, t) for _, t in p.surgeries):
        out.append("post-opératoire")
    return out, used


def palliative_items(p: Patient, lesion: Lesion, req: LocalTreatmentRequest) -> list[Item]:
    comp, comp_used = complications(p, lesion)
    if req.adjacent_vertebrae is not None and req.adjacent_vertebrae > 3:  # Tableau 7 (L2143)
        comp.append("plus de 3 vertèbres")
        comp_used.append(inp("adjacent_vertebrae", req.adjacent_vertebrae, source_event_id=req.event_id))
    risk, risk_used = fracture_risk(p, lesion)
    out: list[Item] = []
    resistant = p.pain_value(lesion.lesion_id, "pain_resistant_to_analgesics")
    pain = conv.pain_indication(
        None if resistant is None else bool(resistant),
        bool(comp) or bool(risk),
    )
    if req.intent in (None, "pain"):
        out.append(
            item(
                f"{lesion.lesion_id}:rt-pain",
                "RT-PAIN",
                "recommended" if pain.indicated else "cannot_decide" if pain.indicated is None else "info",
                "info",
                f"Radiothérapie antalgique — {where(lesion)}",
                "Métastase douloureuse non compliquée résistant aux antalgiques : la radiothérapie est le premier "
                "traitement."
                if pain.indicated
                else "Résistance aux antalgiques non renseignée : indication antalgique à confirmer."
                if pain.indicated is None
                else "Lésion compliquée ou douleur contrôlée : voir le schéma proposé et ses motifs.",
                inputs=p.pain_used(lesion.lesion_id, "pain_resistant_to_analgesics") + comp_used,
                missing=list(pain.missing),
                what_would_change_fr="L'évolution de la douleur sous antalgiques.",
            )
        )
    scheme = conv.palliative_scheme(
        spine=lesion.spine,
        complications=tuple(comp),
        fracture_risk=risk,
        life_expectancy_months=p.life_expectancy,
        frail=p.value("frail"),
        hard_to_move=p.value("hard_to_move"),
    )
    text = conv.scheme_text(scheme)
    steroids = [u for u in p.drug_uses(reference_date(req)) if u.who.group == "corticosteroid" and u.ongoing]
    if scheme.corticosteroids_48_72h and steroids:
        text += f" Le patient reçoit déjà une corticothérapie ({steroids[0].drug})."
    if req.total_dose_gy is not None and req.fractions is not None:
        proposed = (req.total_dose_gy, req.fractions)
        allowed = (scheme.preferred, *scheme.alternatives)
        text += f" Schéma demandé : {scheme_fr(proposed)}" + (
            ", conforme." if proposed in allowed else ", différent des schémas retenus ici : à justifier."
        )
    if lesion.latest.skeletal_site in LONG_BONES and scheme.rule_id == "RT-FRACT-PALL":
        text += " Os long : inclure tout l'os atteint (et le matériel)."
    status: ItemStatus = "to_do" if scheme.rule_out_surgery_first or scheme.missing else "recommended"
    out.append(
        item(
            f"{lesion.lesion_id}:rt-scheme",
            scheme.rule_id,
            status,
            "warning" if scheme.rule_out_surgery_first else "info",
            f"Radiothérapie palliative — {where(lesion)} : {scheme_fr(scheme.preferred)}",
            text,
            inputs=comp_used + risk_used + p.le_used() + p.used("frail") + p.used("hard_to_move"),
            missing=list(scheme.missing),
            what_would_change_fr="Un score de Mirels ou SINS (risque fracturaire), l'espérance de vie, la fragilité "
            "ou une complication (fracture, épidurite, compression).",
        )
    )
    return out


# ---- RT-DRUG -----------------------------------------------------------------------------------------------------
def drug_items(p: Patient, lesion: Lesion, reference: date, urgent: bool, what: str) -> list[Item]:
    out = []
    for use in p.drug_uses(reference):
        d = drug_rt_window(use.who, use.last_dose, use.ongoing, reference, urgent)
        if d is None:
            continue
        status: ItemStatus
        severity: Severity
        if d.rt_class == "no_window":
            status, severity = "info", "info"
        elif d.rt_class == "unknown":
            status, severity = "cannot_decide", "warning"
        elif d.rt_class != "window":
            status, severity = "warning", "warning"
        elif d.delays_rt is None:
            status, severity = "cannot_decide", "warning"
        else:
            status, severity = ("to_do", "warning") if d.delays_rt else ("recommended", "info")
        out.append(
            item(
                f"{lesion.lesion_id}:drug:{use.drug}",
                "RT-DRUG",
                status,
                severity,
                f"{use.drug.replace('_', ' ')} et {what} — {where(lesion)}",
                d.text_fr,
                inputs=[
                    inp(
                        name=f"drug:{use.drug}",
                        value=use.last_dose.isoformat() if use.last_dose else ("ongoing" if use.ongoing else None),
                        source_event_id=use.source,
                    ),
                    inp(name="radiotherapy_reference_date", value=reference.isoformat()),
                    inp(name="urgent", value=urgent),
                ],
                missing=list(d.missing),
                what_would_change_fr="La date de la dernière administration, la date prévue de l'irradiation ou "
                "l'urgence clinique.",
            )
        )
    return out
