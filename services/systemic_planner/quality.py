"""Quality of care and the bone biopsy: QUAL-PATHWAY (Exigences de qualité, L1-57) and MOL-BIOPSY (Techniques
d'histologie et de biologie moléculaire, L496-634), from hospital.care-events.v1. Pure."""

from __future__ import annotations

from typing import Final

from contracts.base import InputUsed
from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.plan import Check, PlanItem
from services.systemic_planner import rules as r
from services.systemic_planner import texts_quality as t
from services.systemic_planner.inputs import SystemicState, item

#: QUAL-PATHWAY: what every patient should be offered (L1-57), in the text's order.
PATHWAY: Final = (
    "multidisciplinary_decision",
    "patient_information",
    "smoking_cessation",
    "pain_management",
    "palliative_supportive_care",
    "psychologist",
    "social_worker",
    "occupational_exposure",
    "oncogenetics",
    "clinical_trial",
)
_STATUS = {"done": "done", "to_do": "to_do", "declined": "declined", "not_applicable": "done"}

#: MOL-BIOPSY (L603-611): adenocarcinoma, priority biomarkers on a bone metastasis (the whole panel of the primary
#: tumour applies, L601-603); PD-L1 by immunohistochemistry is reliable on bone (L568-570).
ADENOCARCINOMA_MARKERS: Final = ("EGFR", "ALK", "KRAS", "PD-L1")
#: at resistance to a tyrosine-kinase inhibitor the resistance mutations are searched (L611-613)
RESISTANCE_MARKER: Final = "TKI resistance mutations"


def _steps(s: SystemicState, at: r.AsOf) -> dict[str, tuple[PathwayStep, CareEvent]]:
    latest: dict[str, tuple[PathwayStep, CareEvent]] = {}
    for e in sorted(s.care.values(), key=lambda e: (e.occurred_at, e.recorded_at, str(e.event_id))):
        if isinstance(e.event, PathwayStep) and e.event.on <= at.today:
            latest[e.event.item] = (e.event, e)
    return latest


def pathway(s: SystemicState, at: r.AsOf) -> PlanItem:
    """QUAL-PATHWAY: one line per item, done / to do / declined (not applicable counts as done)."""
    steps = _steps(s, at)
    checks = []
    inputs = []
    for name in PATHWAY:
        found = steps.get(name)
        if found is None:
            checks.append(Check(name=name, status="to_do", detail_fr=t.PATHWAY_FR[name] + " : à proposer."))
            continue
        step, e = found
        checks.append(Check(name=name, status=_STATUS[step.status], detail_fr=t.pathway_line(name, step)))
        inputs.append(InputUsed(name=f"pathway:{name}", value=step.status, source_event_id=e.event_id))
    todo = [c.name for c in checks if c.status == "to_do"]
    return item(
        "care-pathway",
        "QUAL-PATHWAY",
        "info",
        "info",
        f"Parcours de soins : {len(PATHWAY) - len(todo)}/{len(PATHWAY)} éléments traités",
        t.pathway_text(todo),
        inputs=inputs,
        checks=checks,
        what_would_change_fr="Chaque élément proposé, réalisé ou refusé et enregistré met la ligne à jour.",
    )


def _biopsy(s: SystemicState, at: r.AsOf) -> tuple[BoneBiopsy, CareEvent] | None:
    found = [
        (e.event, e) for e in s.care.values() if isinstance(e.event, BoneBiopsy) and not at.is_future(e.occurred_at)
    ]
    found.sort(key=lambda x: (x[0].on, x[0].status == "reported", x[1].recorded_at, str(x[1].event_id)))
    return found[-1] if found else None


def expected_markers(b: BoneBiopsy) -> tuple[str, ...] | None:
    """The molecular tests expected for the reported histology; None when the text gives no rule for it."""
    if b.histology == "squamous_cell":
        return ()  # L613-615: no molecular testing for a squamous carcinoma
    if b.histology == "adenocarcinoma":
        extra = (RESISTANCE_MARKER,) if b.context == "tki_resistance" else ()
        return ADENOCARCINOMA_MARKERS + extra
    return None


def bone_biopsy(s: SystemicState, at: r.AsOf) -> PlanItem | None:
    found = _biopsy(s, at)
    if found is None:
        return None
    b, e = found
    used = [InputUsed(name="bone_biopsy", value=f"{b.status} {b.on.isoformat()}", source_event_id=e.event_id)]
    if b.status == "planned":
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "recommended",
            "info",
            f"Biopsie osseuse prévue le {b.on:%d/%m/%Y} : conditionnement pour la biologie moléculaire",
            t.biopsy_planned_text(b.context == "tki_resistance"),
            inputs=used,
        )
    if b.decalcification == "strong_acid":
        used.append(InputUsed(name="decalcification", value="strong_acid", source_event_id=e.event_id))
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "warning",
            "warning",
            "Biopsie osseuse décalcifiée par un acide fort : ADN probablement inutilisable",
            t.BIOPSY_STRONG_ACID_TEXT,
            inputs=used,
            what_would_change_fr="Une nouvelle biopsie décalcifiée à l'EDTA ou à l'acide formique.",
        )
    expected = expected_markers(b)
    if b.histology is not None:
        used.append(InputUsed(name="histology", value=b.histology, source_event_id=e.event_id))
    if expected is None:
        return item(
            "bone-biopsy",
            "MOL-BIOPSY",
            "cannot_decide",
            "info",
            "Biopsie osseuse : tests moléculaires à préciser",
            t.biopsy_unknown_histology_text(b.histology),
            inputs=used,
            missing=[] if b.histology else ["histology of the bone biopsy"],
        )
    results = {k.upper(): v for k, v in b.molecular_results.items()}
    done = [m for m in expected if results.get(m.upper(), "failed") != "failed"]
    missing = [f"{m} result" for m in expected if m not in done]
    return item(
        "bone-biopsy",
        "MOL-BIOPSY",
        "to_do" if missing else "done",
        "info",
        t.biopsy_reported_title(b.histology, bool(expected)),
        t.biopsy_reported_text(b.histology, expected, results, missing),
        inputs=used + [InputUsed(name=f"marker:{m}", value=results[m.upper()]) for m in done],
        missing=missing,
        what_would_change_fr="Chaque résultat reçu retire le test de la liste des manquants." if missing else None,
    )
