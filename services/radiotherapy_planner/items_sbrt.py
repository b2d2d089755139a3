"""Plan items of SBRT (RT-SBRT-IND, RT-SBRT-CI, RT-SBRT-DOSE, RT-CORD-DMAX, RT-SBRT-FX); its re-irradiation part
is items_reirr.py. Pure; French texts written for this project."""

from __future__ import annotations

from contracts.local import LocalTreatmentRequest
from contracts.plan import ItemStatus
from services.radiotherapy_planner.facts import Lesion, ScoreFact
from services.radiotherapy_planner.facts_treatments import matches
from services.radiotherapy_planner.items_base import Inp, Item, finding_used, inp, interned, item, reference_date
from services.radiotherapy_planner.items_patient import Patient, where
from services.radiotherapy_planner.items_reirr import (
    VERDICT_FR,
    criterion_line,
    is_reirradiation,
    reirradiation_items,
    segment,
)
from services.radiotherapy_planner.rules import sbrt
from shared.clinical.irradiation import Course, SegmentHistory

CI_STATUS: dict[str, ItemStatus] = {
    "contraindicated": "not_indicated",
    "cannot_decide": "cannot_decide",
    "possible": "recommended",
}
CHECK_STATUS: dict[str, ItemStatus] = {
    "within": "recommended",
    "pass": "recommended",
    "outside": "warning",
    "fail": "warning",
    "unknown": "cannot_decide",
}


# ---- SBRT --------------------------------------------------------------------------------------------------------
def _not_applicable(i: Item, absolute: list[sbrt.Contraindication]) -> Item:
    """An SBRT dose item under an absolute contraindication: information only, never a recommendation to prepare a
    treatment that is not to be given (issue 18 review)."""
    why = "; ".join(c.finding.text_fr for c in absolute)
    return interned(
        i.key,
        i.rule_id,
        "info",
        "info",
        i.title + " : sans objet en l'état",
        f"Sans objet tant que la stéréotaxie est contre-indiquée ({why}). Pour mémoire : {i.text_fr}",
        i.inputs,
        i.missing,
        i.what_would_change_fr,
        i.checks,
    )


def sbrt_items(p: Patient, lesion: Lesion, req: LocalTreatmentRequest, part: str = "all") -> list[Item]:
    """The SBRT items of a request; `part` ("main": indication, contraindications and dose checks, one verdict per
    lesion and technique; "reirr": re-irradiation) builds one family only, each memoised on the facts it reads
    (domain.build_plan)."""
    ref = reference_date(req, p.tz)
    lid = lesion.lesion_id
    hist = segment(p, lesion, req, ref)
    previous = list(hist.courses)
    reirradiation = is_reirradiation(lesion, req, hist)
    oligo = p.s.scores.get("oligometastatic")
    oligometastatic = None if oligo is None or oligo.band in (None, "undetermined") else oligo.band == "oligometastatic"
    out: list[Item] = []

    absolute: list[sbrt.Contraindication] = []
    if part in ("all", "main"):  # one verdict per lesion and technique: an absolute contraindication wins (18.10)
        onset = lesion.compression_onset()
        operated = onset is not None and any(
            t.procedure == "decompression" and p.day(onset.occurred_at) <= t.on <= p.today and matches(lesion, t)
            for _, t in p.surgeries
        )
        sins = p.s.scores.get(f"sins:{lid}")
        metab = p.metabolic
        # "une radiothérapie de moins de 3 mois" (L1631): from the latest the last fraction can be (issue 18 review)
        recorded = [Course(t.cord_dmax_gy, t.fractions, t.on, t.end_on) for _, t in p.rt_courses if t.on < ref]
        all_rt = [b[1] for c in (*previous, *recorded) if (b := c.last_day_bounds()) is not None]
        deficit = p.value("neurological_deficit")
        ci = sbrt.sbrt_contraindications(
            spine=lesion.spine,
            cord_compression=onset is not None,
            compression_operated=operated,
            neurological_deficit=None if deficit is None else bool(deficit),
            sins_band=None if sins is None else sins.band,
            sins_floor=None if sins is None else sins.floor,
            metabolic_rt_on=metab[-1][1].on if metab else None,
            metabolic_rt_known=True,
            last_rt_on=max(all_rt) if all_rt else None,
            planned_on=ref,
            life_expectancy_months=p.life_expectancy,
            canal_narrowing_pct=lesion.value("canal_narrowing_pct"),  # type: ignore[arg-type]
            tumour_cord_distance_mm=lesion.value("tumour_cord_distance_mm"),  # type: ignore[arg-type]
            mri_contraindicated=p.value("mri_contraindicated"),
        )
        absolute, relative, unknown = ci.absolute, ci.relative, ci.unknown
        out.append(_indication_item(lesion, req, hist, oligometastatic, oligo, absolute))
        unstable = any(c.name == "vertebral_instability" for c in absolute)
        parts = []
        if absolute:
            parts.append("Contre-indication(s) absolue(s) : " + "; ".join(c.finding.text_fr for c in absolute) + ".")
        if relative:
            parts.append("Contre-indication(s) relative(s) : " + "; ".join(c.finding.text_fr for c in relative) + ".")
        if unknown:
            parts.append("Non renseigné : " + "; ".join(c.finding.text_fr for c in unknown) + ".")
        if not absolute and not relative and not unknown:
            parts.append("Aucune contre-indication retrouvée parmi celles du référentiel.")
        outcome = ci.outcome
        inputs: list[Inp] = [finding_used(c.finding) for c in ci.items]
        if sins is not None:
            inputs.append(sins.used("sins"))
        out.append(
            item(
                f"{lid}:sbrt-ci",
                "RT-SBRT-CI",
                CI_STATUS[outcome],
                "critical" if unstable else "warning" if outcome != "possible" or relative else "info",
                (
                    f"Stéréotaxie non réalisable en {where(lesion)} : " + ", ".join(c.finding.text_fr for c in absolute)
                    if absolute
                    else f"Contre-indications de la stéréotaxie — {where(lesion)}"
                ),
                " ".join(parts)
                + (" Avis chirurgical (stabilisation) avant toute irradiation." if unstable else "")
                + (" Pesée en RCP-OOS." if relative else ""),
                inputs=inputs,
                missing=[f"{c.name} ({c.finding.input_name})" for c in unknown if c.absolute],
                what_would_change_fr="Une stabilisation de la vertèbre, la décompression d'une compression, ou les "
                "données manquantes (SINS, espérance de vie, dates d'irradiation).",
            )
        )

    if part in ("all", "main"):
        first = len(out)
        dose = sbrt.sbrt_dose_check(
            lesion.spine, req.total_dose_gy, req.fractions, reirradiation, bool(oligometastatic)
        )
        scheme = (
            f"{req.total_dose_gy:g} Gy en {req.fractions} fractions" if req.total_dose_gy and req.fractions else None
        )
        out.append(
            item(
                f"{lid}:sbrt-dose",
                "RT-SBRT-DOSE",
                CHECK_STATUS[dose.verdict],
                "warning" if dose.verdict == "outside" else "info",
                f"Dose de stéréotaxie — {where(lesion)}" + (f" : {scheme}" if scheme else ""),
                (f"Schéma proposé {scheme} : " if scheme else "Aucun schéma proposé. ")
                + {
                    "within": "dans les plages du référentiel",
                    "outside": "hors des plages du référentiel",
                    "unknown": "",
                }[dose.verdict]
                + f" ({dose.range_fr}). "
                + " ".join(dose.notes),
                inputs=[
                    inp(name="total_dose_gy", value=req.total_dose_gy, unit="Gy", source_event_id=req.event_id),
                    inp(name="fractions", value=req.fractions, source_event_id=req.event_id),
                ],
                missing=[] if scheme else ["proposed scheme (total dose, fractions)"],
                what_would_change_fr="Le schéma proposé.",
            )
        )
        if lesion.spine and not reirradiation:
            c = sbrt.cord_dmax_check(req.planned_cord_dmax_gy, req.fractions)
            out.append(
                item(
                    f"{lid}:cord-dmax",
                    "RT-CORD-DMAX",
                    CHECK_STATUS[c.verdict],
                    "warning" if c.verdict != "pass" else "info",
                    f"Dmax moelle — {where(lesion)} : {VERDICT_FR[c.verdict]}",
                    f"Première irradiation : {criterion_line(c)}. Limite pour un risque de myélopathie de 1 à 5 %."
                    + (
                        " Au-delà de 12 Gy en séance unique, on est dans le haut de la fourchette."
                        if req.fractions == 1
                        and c.value is not None
                        and isinstance(c.value, float)
                        and c.value > sbrt.CORD_DMAX_SINGLE_LOW
                        else ""
                    ),
                    inputs=[
                        inp(
                            name="planned_cord_dmax_gy",
                            value=req.planned_cord_dmax_gy,
                            unit="Gy",
                            source_event_id=req.event_id,
                        )
                    ],
                    missing=[] if c.verdict != "unknown" else ["planned cord Dmax (Gy) for 1 to 5 fractions"],
                    what_would_change_fr="Une dosimétrie qui abaisse la Dmax à la moelle.",
                )
            )
        if lesion.spine or lesion.latest.skeletal_site == "sacrum":
            found, missing = sbrt.fracture_risk_factors(
                lesion.level,
                lesion.latest.skeletal_site == "sacrum",
                lesion.value("lesion_type"),  # type: ignore[arg-type]
                lesion.value("vertebral_body_involvement_fraction"),  # type: ignore[arg-type]
                req.total_dose_gy,
                req.fractions,
            )
            out.append(
                item(
                    f"{lid}:sbrt-fx",
                    "RT-SBRT-FX",
                    "recommended" if found else "info",
                    "warning" if found else "info",
                    f"Risque de fracture vertébrale après stéréotaxie — {where(lesion)}",
                    (
                        "Facteurs de risque : " + "; ".join(f.text_fr for f in found) + ". Proposer une cimentoplastie "
                        "avant l'irradiation. "
                        if found
                        else "Aucun facteur de risque de fracture retrouvé parmi ceux renseignés. "
                    )
                    + "Recrudescence douloureuse transitoire (« pain flare ») fréquente : corticoïdes si besoin.",
                    inputs=[finding_used(f) for f in found],
                    missing=missing,
                    what_would_change_fr="Le type de lésion, la part du corps vertébral atteinte, la dose par "
                    "fraction.",
                )
            )
        if absolute:  # the dose, cord-dose and fracture-risk items of a contraindicated SBRT are information only
            out[first:] = [_not_applicable(i, absolute) for i in out[first:]]
    if part in ("all", "reirr"):
        out += reirradiation_items(p, lesion, req, hist)
    return out


def _indication_item(
    lesion: Lesion,
    req: LocalTreatmentRequest,
    hist: SegmentHistory,
    oligometastatic: bool | None,
    oligo: ScoreFact | None,
    absolute: list[sbrt.Contraindication],
) -> Item:
    ind = sbrt.sbrt_indication(
        previously_irradiated=hist.irradiated or req.cord_dose_excludes_conventional is True,
        cord_dose_excludes_conventional=req.cord_dose_excludes_conventional,
        oligometastatic=oligometastatic,
        curative_intent=req.intent == "ablative_oligometastatic",
        adjacent_vertebrae=req.adjacent_vertebrae,
        postoperative_residue=req.intent == "postoperative",
    )
    inputs = [finding_used(r) for r in ind.reasons] + ([oligo.used("oligometastatic")] if oligo else [])
    title = f"Indication de radiothérapie stéréotaxique — {where(lesion)}"
    if absolute:
        return item(
            f"{lesion.lesion_id}:sbrt-ind",
            "RT-SBRT-IND",
            "not_indicated",
            "info",  # the contraindication item carries the alert
            title + " : contre-indiquée",
            "Stéréotaxie non indiquée en l'état : contre-indication absolue ("
            + "; ".join(c.finding.text_fr for c in absolute)
            + ")"
            + (
                ", qui prime sur l'indication évoquée (" + "; ".join(r.text_fr for r in ind.reasons) + ")."
                if ind.indicated
                else "."
            ),
            inputs=inputs + [finding_used(c.finding) for c in absolute],
            what_would_change_fr="La levée de la contre-indication absolue.",
        )
    return item(
        f"{lesion.lesion_id}:sbrt-ind",
        "RT-SBRT-IND",
        "recommended" if ind.indicated else "cannot_decide" if ind.indicated is None else "warning",
        "info" if ind.indicated else "warning",
        title,
        (
            "Indication reconnue : " + "; ".join(r.text_fr for r in ind.reasons) + ". À valider en RCP-OOS."
            if ind.indicated
            else "Indication à préciser : " + "; ".join(ind.notes_fr) + ". À discuter en RCP-OOS."
            if ind.indicated is None and ind.notes_fr
            else "Aucune des deux situations soulignées par le référentiel (territoire déjà irradié avec une dose à "
            "la moelle qui exclut une radiothérapie conventionnelle, maladie oligométastatique en intention "
            "curative) n'est établie : à discuter en RCP-OOS."
        ),
        inputs=inputs,
        missing=list(ind.missing),
        what_would_change_fr="Le statut oligométastatique, l'intention (curative), une irradiation antérieure et "
        "la dose qu'elle a donnée à la moelle.",
    )
