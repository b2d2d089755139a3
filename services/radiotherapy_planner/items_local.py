"""Plan items of cementoplasty (IR-CEMENT) and surgery (SURG-LE). Pure; French texts written for this project.
SBRT: items_sbrt.py; re-irradiation: items_reirr.py."""

from __future__ import annotations

from contracts.local import LocalTreatmentRequest
from contracts.plan import Check
from services.radiotherapy_planner.facts import Lesion
from services.radiotherapy_planner.facts_treatments import latest_lab, matches
from services.radiotherapy_planner.items_base import Item, finding_used, inp, item, reference_date
from services.radiotherapy_planner.items_patient import Patient, where
from services.radiotherapy_planner.rules import cementoplasty as cem
from services.radiotherapy_planner.rules import surgery as surg
from shared.clinical.life_expectancy import surgery_excluded


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
            + [finding_used(c.finding) for c in cis if c.present is not None]
            + [finding_used(r) for r in ind.reasons]
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
