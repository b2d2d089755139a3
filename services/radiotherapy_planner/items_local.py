"""Plan items of SBRT (RT-SBRT-IND, RT-SBRT-CI, RT-SBRT-DOSE, RT-CORD-DMAX, RT-SBRT-FX), re-irradiation (RT-REIRR),
cementoplasty (IR-CEMENT) and surgery (SURG-LE). Pure; French texts written for this project."""

from __future__ import annotations

from datetime import date

from contracts.local import LocalTreatmentRequest
from contracts.plan import Check, ItemStatus
from services.radiotherapy_planner.facts import (
    Lesion,
    ScoreFact,
    latest_lab,
    matches,
)
from services.radiotherapy_planner.items_base import In, Inp, Item, inp, interned, item, reference_date
from services.radiotherapy_planner.items_rt import Patient, where
from services.radiotherapy_planner.rules import cementoplasty as cem
from services.radiotherapy_planner.rules import reirradiation as reirr
from services.radiotherapy_planner.rules import sbrt
from services.radiotherapy_planner.rules import surgery as surg
from services.radiotherapy_planner.rules.common import Criterion, Finding
from shared.clinical.irradiation import Course, SegmentHistory, relation, segment_history
from shared.clinical.life_expectancy import surgery_excluded

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
VERDICT_FR = {"pass": "respecté", "fail": "NON respecté", "unknown": "inconnu"}


def _used(f: Finding) -> In:
    return inp(name=f.input_name or "input", value=f.input_value)


def segment(p: Patient, lesion: Lesion, req: LocalTreatmentRequest, before: date) -> SegmentHistory:
    """The segment's earlier courses (shared clinical context): those recorded on this lesion, its level, an adjacent
    level ("à proximité", L2060-2061) or a spinal level not said (to check), AND those the request declares, counted
    once (issue 18.2). Once per plan for a lesion, request and date (Patient.segments)."""
    key = (lesion.lesion_id, lesion.level, lesion.latest.skeletal_site, req.event_id.int, before)
    found = p.segments.get(key)
    if found is not None:
        return found
    hist = _segment(p, lesion, req, before)
    p.segments[key] = hist
    return hist


def _segment(p: Patient, lesion: Lesion, req: LocalTreatmentRequest, before: date) -> SegmentHistory:
    recorded = []
    for e, t in p.rt_courses:
        rel = relation(
            t.lesion_id, t.vertebral_level, t.site, lesion.lesion_id, lesion.level, lesion.latest.skeletal_site
        )
        if rel != "other":
            recorded.append(
                Course(t.cord_dmax_gy, t.fractions, t.on, t.end_on, t.total_dose_gy, "recorded", e.event_id, rel)
            )
    declared = [
        Course(c.cord_dmax_gy, c.fractions, c.on, c.end_on, c.total_dose_gy, "declared") for c in req.previous_courses
    ]
    return segment_history(recorded, declared, before)


def is_reirradiation(lesion: Lesion, req: LocalTreatmentRequest, hist: SegmentHistory) -> bool:
    """RT-REIRR (L2076-2095): any new course on a spinal segment that has had one, whatever the request's modality;
    a request saying the cord dose already received rules out conventional RT (L1617-1619) says there was one."""
    return (
        req.modality == "reirradiation"
        or (hist.irradiated and lesion.spine)
        or (lesion.spine and req.cord_dose_excludes_conventional is True)
    )


def _criterion_line(c: Criterion) -> str:
    value = "inconnu" if c.value is None else f"{c.value}"
    return f"{c.text_fr} : {value} (seuil {c.limit}) → {VERDICT_FR[c.verdict]}"


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
        inputs: list[Inp] = [_used(c.finding) for c in ci.items]
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
                    f"Première irradiation : {_criterion_line(c)}. Limite pour un risque de myélopathie de 1 à 5 %."
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
                    inputs=[_used(f) for f in found],
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
    inputs = [_used(r) for r in ind.reasons] + ([oligo.used("oligometastatic")] if oligo else [])
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
            inputs=inputs + [_used(c.finding) for c in absolute],
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


def reirradiation_items(
    p: Patient, lesion: Lesion, req: LocalTreatmentRequest, hist: SegmentHistory | None = None
) -> list[Item]:
    """RT-REIRR for a request of any modality (a palliative course on an irradiated spinal segment too); outside the
    spine, an earlier course on the site is a warning naming the organs at risk (L2060-2064)."""
    hist = hist if hist is not None else segment(p, lesion, req, reference_date(req, p.tz))
    if is_reirradiation(lesion, req, hist):
        return [reirradiation_item(p, lesion, req, hist)]
    if hist.irradiated and not lesion.spine:
        return [_site_reirradiation_item(lesion, hist)]
    return []


def _site_reirradiation_item(lesion: Lesion, hist: SegmentHistory) -> Item:
    courses = ", ".join(
        f"{'date inconnue' if c.on is None else f'{c.on:%d/%m/%Y}'}"
        + (f" ({c.total_dose_gy:g} Gy en {c.fractions} fractions)" if c.total_dose_gy and c.fractions else "")
        for c in hist.courses
    )
    return item(
        f"{lesion.lesion_id}:reirr",
        "RT-REIRR",
        "warning",
        "warning",
        f"Ré-irradiation — {where(lesion)} : territoire déjà irradié",
        f"Irradiation(s) antérieure(s) de ce site : {courses}. Une nouvelle irradiation demande l'expertise du "
        "traitement précédent, notamment la dose reçue par les organes à risque (plexus sacré, plexus brachial, "
        "organes creux) ; pas de critère chiffré hors du rachis dans le référentiel : avis en RCP-OOS.",
        inputs=[
            inp(name="earlier_course", value=c.on.isoformat() if c.on else None, source_event_id=c.event_id)
            for c in hist.courses
        ],
        missing=["doses to the organs at risk of the earlier course(s)"],
        what_would_change_fr="La dosimétrie des irradiations antérieures (organes à risque).",
    )


def reirradiation_item(p: Patient, lesion: Lesion, req: LocalTreatmentRequest, hist: SegmentHistory) -> Item:
    """RT-REIRR over the segment's whole history (recorded and declared courses): never a first-irradiation verdict
    on a segment that has had a course (issue 18.1)."""
    ab = p.alpha_beta
    previous = list(hist.courses)
    a = reirr.assess(previous, Course(req.planned_cord_dmax_gy, req.fractions, req.planned_on), ab)
    lines = []
    for i, ce in enumerate(a.previous, 1):
        c = ce.course
        dose = "Dmax inconnue" if ce.eqd2_gy is None else f"EQD2 {ce.eqd2_gy:.2f} Gy (α/β = {ab:g} Gy)"
        when = "date inconnue" if c.on is None else f"du {c.on:%d/%m/%Y}"
        dmax = "?" if c.cord_dmax_gy is None else f"{c.cord_dmax_gy:g}"
        lines.append(f"Irradiation {i} {when} : Dmax {dmax} Gy en {c.fractions or '?'} fractions, {dose}")
    for c in hist.undeclared:
        assert c.on is not None
        lines.append(
            f"Irradiation du {c.on:%d/%m/%Y} enregistrée sur ce segment mais absente de la demande : comptée ici, "
            "à vérifier"
        )
    for c in previous:
        when = "date inconnue" if c.on is None else f"{c.on:%d/%m/%Y}"
        if c.relation == "adjacent":
            lines.append(f"Irradiation du {when} sur un niveau adjacent : sa dose à la moelle est comptée")
        elif c.relation == "unknown":
            lines.append(f"Irradiation rachidienne du {when} sans niveau précisé : comptée ici, niveau à vérifier")
        if c.doses_disagree:
            lines.append(f"Irradiation du {when} reçue avec deux doses moelle différentes : la plus élevée est retenue")
    if not previous and req.cord_dose_excludes_conventional:
        lines.append("La demande indique une dose moelle déjà reçue : l'irradiation antérieure est à renseigner")
    new = a.new
    lines.append(
        f"Nouveau traitement : Dmax {req.planned_cord_dmax_gy} Gy en {req.fractions} fractions, "
        + ("EQD2 inconnue" if new.eqd2_gy is None else f"EQD2 {new.eqd2_gy:.2f} Gy (α/β = {ab:g} Gy)")
    )
    lines += [_criterion_line(c) for c in a.criteria]
    failed = a.failed
    verdict = (
        "Critère(s) non respecté(s) : " + ", ".join(c.text_fr for c in failed) + "."
        if failed
        else "Les quatre critères de Sahgal sont respectés ; cela ne garantit pas l'absence de myélopathie radique."
        if a.all_met
        else "Critères incomplets : données manquantes."
    )
    return item(
        f"{lesion.lesion_id}:reirr",
        "RT-REIRR",
        "warning",
        "warning",
        f"Ré-irradiation — {where(lesion)} : "
        + ("critère non respecté" if failed else "4 critères respectés" if a.all_met else "données manquantes"),
        ". ".join(lines) + f". {verdict} Pas de consensus : avis à porter en RCP-OOS, risque de myélopathie "
        "radique à expliquer au patient.",
        inputs=[
            *(
                inp(name="earlier_course", value=c.on.isoformat() if c.on else None, source_event_id=c.event_id)
                for c in previous
            ),
            inp(name="cord_alpha_beta_gy", value=ab, unit="Gy"),
            *(
                inp(
                    name=f"criterion:{c.name}",
                    value=c.value,
                    unit=c.verdict,
                )
                for c in a.criteria
            ),
            inp(name="planned_cord_dmax_gy", value=req.planned_cord_dmax_gy, unit="Gy", source_event_id=req.event_id),
        ],
        missing=list(a.missing)
        + [f"confirmation of the course of {c.on} recorded on this segment" for c in hist.undeclared],
        what_would_change_fr="Une dose moelle prévue plus basse, un intervalle plus long, ou les doses moelle "
        "exactes des irradiations antérieures.",
    )


# ---- IR-CEMENT ---------------------------------------------------------------------------------------------------
def cement_items(p: Patient, lesion: Lesion, req: LocalTreatmentRequest) -> list[Item]:
    ref = reference_date(req, p.tz)
    op = p.opinion(lesion.lesion_id)
    pain_res = p.pain_value(lesion.lesion_id, "pain_resistant_to_analgesics")
    ind = cem.cement_indication(
        pain_resistant=None if pain_res is None else bool(pain_res),
        opioid_complications=p.value("opioid_complications"),
        other_techniques_excluded=req.other_techniques_excluded,
        inoperable=op is not None and op.operable is False,
        stabilisation_alternative=req.intent == "stabilisation",
    )
    sins = p.s.scores.get(f"sins:{lesion.lesion_id}")
    unstable = None if not lesion.spine or sins is None or sins.band is None else sins.band == "unstable"
    intensity = p.pain_value(lesion.lesion_id, "pain_intensity")
    cis = cem.cement_contraindications(
        fracture=lesion.value("pathological_fracture"),  # type: ignore[arg-type]
        painful=None if intensity is None else intensity != "none",
        unstable=unstable,
        diffuse_pain=p.value("diffuse_pain"),
        infection=p.value("active_infection"),
        severe_coagulation_disorder=p.value("severe_coagulation_disorder"),
        cement_allergy=p.value("cement_allergy"),
        posterior_wall=lesion.value("posterior_wall_involvement"),  # type: ignore[arg-type]
        radiculopathy=p.value("radiculopathy"),
        epidural_extension=lesion.value("epidural_extension"),  # type: ignore[arg-type]
        joint_opening=lesion.value("joint_opening"),  # type: ignore[arg-type]
        spine=lesion.spine,
    )
    plt = latest_lab(p.s, "platelets", req.planned_on, p.tz)
    tp = latest_lab(p.s, "prothrombin_pct", req.planned_on, p.tz)
    labs = cem.haemostasis_labs(  # IR-CEMENT: days counted in the hospital's calendar
        None if plt is None else cem.LabValue(plt.value, p.day(plt.occurred_at), plt.comparator),
        None if tp is None else cem.LabValue(tp.value, p.day(tp.occurred_at), tp.comparator),
        ref,
    )
    uses = p.drug_uses(max(ref, p.today) if p.now is not None else ref)  # a dose given since a past date counts
    drugs = [  # by identity, whatever the spelling; an unidentified drug is a check of its own (issue 18.3)
        c
        for u in uses
        if (
            c := cem.antithrombotic_check(
                cem.DrugUse(u.drug, u.last_dose, u.ongoing, u.daily_dose_mg, u.who.drug_class, u.last_dose_at),
                req.planned_on,
                p.tz,
            )
            if u.who.known
            else cem.unknown_drug_check(cem.DrugUse(u.drug, u.last_dose, u.ongoing, u.daily_dose_mg))
        )
    ]
    checks = [Check(name=h.name, status=h.status, detail_fr=h.detail_fr) for h in (*labs, *drugs)]
    abs_present = [c for c in cis if c.absolute and c.present]
    abs_unknown = [c for c in cis if c.absolute and c.present is None]
    rel_present = [c for c in cis if not c.absolute and c.present]
    # never ready without a procedure date: the haemostasis windows and the results' age are counted to it (18 review)
    ready = (
        req.planned_on is not None
        and ind.indicated is True
        and not abs_present
        and not abs_unknown
        and all(c.status == "done" for c in checks)
    )
    parts: list[str] = []
    if ind.indicated:
        parts.append("Indication : " + "; ".join(r.text_fr for r in ind.reasons) + ".")
    elif ind.non_indication is not None:
        parts.append(ind.non_indication.text_fr.capitalize() + ".")
    else:
        parts.append("Indication non établie (contrôle de la douleur, tolérance des opiacés à préciser).")
    if abs_present:
        parts.append("Contre-indication(s) absolue(s) : " + "; ".join(c.finding.text_fr for c in abs_present) + ".")
    if rel_present:
        parts.append("Contre-indication(s) relative(s) : " + "; ".join(c.finding.text_fr for c in rel_present) + ".")
    if abs_unknown:
        parts.append("À vérifier : " + "; ".join(c.finding.text_fr for c in abs_unknown) + ".")
    unmet = [c.detail_fr for c in checks if c.status != "done"]
    if unmet:
        parts.append("Prérequis d'hémostase non remplis : " + " ".join(unmet))
    note = cem.long_bone_note(lesion.latest.skeletal_site)
    if note:
        parts.append(note)
    vigilance = cem.systemic_vigilance(
        [u.drug for u in uses if u.who.group in ("chemotherapy", "other_anticancer")],
        [u.drug for u in uses if u.who.group == "antiangiogenic"],
    )
    if vigilance:
        parts.append(vigilance)
    if req.planned_on is None:
        parts.append("Date du geste non renseignée : les délais d'arrêt et l'âge des résultats en dépendent.")
    short = p.life_expectancy is not None and surgery_excluded(p.life_expectancy)
    if short:  # L2667-2669: within the global care, life expectancy included; SURG-LE L2804-2806
        parts.append(
            "Espérance de vie restante estimée à moins de 6 semaines : bénéfice du geste à peser en RCP "
            "(antalgie efficace, éventuellement radiothérapie)."
        )
    parts.append("Décision en concertation multidisciplinaire." if ready else "Geste pas prêt : prérequis à lever.")
    missing = list(ind.missing) + [f"{c.name} ({c.finding.input_name})" for c in abs_unknown]
    if req.planned_on is None:
        missing.append("planned procedure date")
    missing += [h.missing for h in (*labs, *drugs) if h.missing]
    lab_inputs = [
        f.used(a, u) for a, f, u in (("platelets", plt, "G/L"), ("prothrombin_pct", tp, "%")) if f is not None
    ]
    return [
        item(
            f"{lesion.lesion_id}:cement",
            "IR-CEMENT",
            "recommended" if ready else "not_indicated" if abs_present or ind.indicated is False else "to_do",
            "info" if ready and not short else "warning",
            f"Cimentoplastie — {where(lesion)} : " + ("prérequis remplis" if ready else "pas prête"),
            " ".join(parts),
            inputs=lab_inputs
            + [_used(c.finding) for c in cis if c.present is not None]
            + [_used(r) for r in ind.reasons]
            + [inp(name=f"drug:{u.drug}", value=u.last_dose.isoformat() if u.last_dose else None) for u in uses]
            + p.le_used(),
            missing=missing,
            checks=checks,
            what_would_change_fr="Des plaquettes > 50 G/L et un TP > 50 % récents, l'arrêt des antiagrégants ou "
            "anticoagulants dans les délais, la date du geste, les contre-indications levées.",
        )
    ]


# ---- SURG-LE -----------------------------------------------------------------------------------------------------
def surgery_items(p: Patient, lesion: Lesion, requested: bool) -> list[Item]:
    out: list[Item] = []
    lid = lesion.lesion_id
    fracture = lesion.value("pathological_fracture") is True
    mirels = p.s.scores.get(f"mirels:{lid}")
    fixation = mirels is not None and mirels.total is not None and mirels.total >= 9
    if requested or fracture or fixation:
        le = p.life_expectancy
        band = None if le is None else surg.surgery_band(le)
        why = ", ".join(
            x
            for x, on in (
                ("demande de chirurgie", requested),
                ("fracture pathologique", fracture),
                ("Mirels ≥ 9", fixation),
            )
            if on
        )
        text = f"Motif : {why}. " + (
            surg.BAND_TEXT[band] if band else "Espérance de vie non renseignée : le type de chirurgie en dépend."
        )
        if fracture and band != "no_surgery":
            text += (
                " Une fracture pathologique relève le plus souvent de la chirurgie (stabilisation antalgique en "
                "urgence), sauf si l'état général l'interdit."
            )
        out.append(
            item(
                f"{lid}:surgery",
                "SURG-LE",
                "cannot_decide" if band is None else "not_indicated" if band == "no_surgery" else "recommended",
                # alerted when asked for, or to say "no surgery"; scoring already alerts on Mirels >= 9 and fractures
                "warning" if requested or band == "no_surgery" else "info",
                f"Chirurgie et espérance de vie — {where(lesion)}"
                + (" : pas de chirurgie" if band == "no_surgery" else ""),
                text,
                inputs=p.le_used()
                + ([lesion.used("pathological_fracture")] if fracture else [])
                + ([mirels.used("mirels")] if fixation and mirels else []),
                missing=[] if band else [p.le_missing],
                what_would_change_fr="Une nouvelle estimation de l'espérance de vie (seuils 6 semaines et 1 an).",
            )
        )
    for e, t in p.surgeries:
        if not matches(lesion, t):
            continue
        r = surg.resumption_after(t.on)
        out.append(
            item(
                f"{lid}:resume:{t.on.isoformat()}",
                "SURG-LE",
                "info",
                "info",
                f"Reprise des traitements après chirurgie — {where(lesion)}",
                f"Chirurgie le {t.on:%d/%m/%Y} : chimiothérapie et radiothérapie à reprendre une fois la cicatrisation "
                f"acquise, à partir du {r.standard:%d/%m/%Y} (3 semaines) ; en urgence oncologique relative, peau "
                f"cicatrisée et avec l'accord du chirurgien, dès le {r.relative_emergency:%d/%m/%Y} (15 jours).",
                inputs=[inp(name="surgery", value=f"{t.procedure} {t.on.isoformat()}", source_event_id=e.event_id)],
                what_would_change_fr="Une cicatrisation retardée ; l'avis du chirurgien pour le délai de 15 jours.",
            )
        )
    return out
