"""Plan items of re-irradiation (RT-REIRR, L2060-2095) and the irradiated segment's history they read (SBRT too,
items_sbrt.py). Pure; French texts written for this project."""

from __future__ import annotations

from datetime import date

from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner.facts import Lesion
from services.radiotherapy_planner.items_base import Item, inp, item, reference_date
from services.radiotherapy_planner.items_patient import Patient, where
from services.radiotherapy_planner.rules import reirradiation as reirr
from services.radiotherapy_planner.rules.common import Criterion
from shared.clinical.irradiation import Course, SegmentHistory, relation, segment_history

VERDICT_FR = {"pass": "respecté", "fail": "NON respecté", "unknown": "inconnu"}


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


def criterion_line(c: Criterion) -> str:
    value = "inconnu" if c.value is None else f"{c.value}"
    return f"{c.text_fr} : {value} (seuil {c.limit}) → {VERDICT_FR[c.verdict]}"


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
    lines += [criterion_line(c) for c in a.criteria]
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
