"""Plan items of RT-MSCC: metastatic spinal cord compression, an epidural extension with a neurological deficit
to rule out, and the prevention of a compression (L1397-1402; issue 9.1, 9.11). Pure; French texts written for this
project."""

from __future__ import annotations

from typing import Any

from services.radiotherapy_planner.facts import Lesion
from services.radiotherapy_planner.facts_treatments import level_of, matches
from services.radiotherapy_planner.items_base import Inp, Item, inp, item
from services.radiotherapy_planner.items_patient import Patient, where
from services.radiotherapy_planner.rules import conventional as conv
from services.radiotherapy_planner.rules.surgery import surgery_excluded
from shared.clinical.facts import Fact


# ---- RT-MSCC (issue 9.1, 9.11) -----------------------------------------------------------------------------------
def to_rule_out(lesion: Lesion, deficit: Fact[Any] | None) -> bool:
    """RT-MSCC (L1397-1402) with no compression on imaging: an epidural extension of a spinal lesion with a
    neurological deficit is a compression to rule out, unless imaging made after the deficit stated none (the MRI the
    item asks for, done; scoring's CLASS-SRE `_compression` alike) or the lesion is resolved (9.11). Review RK."""
    if not lesion.spine or lesion.latest.status == "resolved" or deficit is None or deficit.value is not True:
        return False
    if lesion.value("epidural_extension") is not True:
        return False
    stated = lesion.newest("cord_compression")
    return stated is None or deficit.order() > (stated.occurred_at, stated.recorded_at, str(stated.event_id))


def inferred_not_current(p: Patient, lesion: Lesion, key: str, deficit: Fact[Any], currency: str) -> Item:
    """RT-MSCC: an epidural extension with a neurological deficit no longer current (or dated in the future) is no
    emergency on these data alone (an emergency is decided from current data only): examine again now
    (L1397-1402)."""
    epidural = lesion.newest("epidural_extension")
    assert epidural is not None
    why = (
        "datées dans le futur : dates à vérifier"
        if currency == "future"
        else f"déficit neurologique noté le {p.day(deficit.occurred_at):%d/%m/%Y}, sans examen plus récent"
    )
    return item(
        key,
        "RT-MSCC",
        "to_do",
        "warning",
        f"Épidurite et déficit neurologique en {where(lesion)} : données non actuelles",
        f"Épidurite (vue le {p.day(epidural.occurred_at):%d/%m/%Y}) et déficit neurologique ({why}) : pas d'urgence "
        "décidée sur ces seules données. Réexaminer sans délai ; un déficit actuel impose une IRM rachidienne en "
        "urgence à la recherche d'une compression médullaire.",
        inputs=[lesion.used("epidural_extension"), deficit.used("neurological_deficit")],
        missing=["a current neurological examination"],
        what_would_change_fr="Un examen neurologique récent.",
    )


def inferred_treated(p: Patient, lesion: Lesion, key: str, deficit: Fact[Any] | None) -> Item | None:
    """RT-MSCC (L1397-1402): a compression to rule out (`to_rule_out`) already treated since its deficit, by a course
    of this lesion begun by today or a decompression of it, is no longer an emergency to rule out: irradiated (done),
    or operated (adjuvant RT 2 to 3 weeks after, L1398). Review RK: it stayed critical up to COMPRESSION_CURRENT."""
    assert deficit is not None
    since = p.day(deficit.occurred_at)
    inputs = [lesion.used("epidural_extension"), deficit.used("neurological_deficit")]
    cut = [
        (e, t)
        for e, t in p.surgeries
        if t.procedure == "decompression" and since <= t.on <= p.today and matches(lesion, t)
    ]
    if cut:
        e, s = cut[-1]
        plan = conv.cord_compression_plan(s.on, p.life_expectancy, None, True, True)
        assert plan.start_between is not None
        lo, hi = plan.start_between
        return item(
            key,
            "RT-MSCC",
            "recommended",
            "warning",
            f"Épidurite et déficit neurologique en {where(lesion)} opérés : radiothérapie adjuvante",
            f"Après la décompression du {s.on:%d/%m/%Y}, radiothérapie adjuvante entre le {lo:%d/%m/%Y} et le "
            f"{hi:%d/%m/%Y} (2 à 3 semaines après le geste, selon les suites), {' ou '.join(plan.schemes)}. "
            f"{' '.join(plan.notes)}".strip(),
            inputs=[*inputs, inp(name="decompression_surgery", value=s.on.isoformat(), source_event_id=e.event_id)],
            what_would_change_fr="Des suites opératoires qui retardent la cicatrisation.",
        )
    rt = [(e, t) for e, t in p.rt_courses if since <= t.on <= p.today and matches(lesion, t)]
    if not rt:
        return None
    e, c = rt[-1]
    return item(
        key,
        "RT-MSCC",
        "done",
        "info",
        f"Épidurite et déficit neurologique en {where(lesion)} : irradiés",
        f"Radiothérapie de {c.total_dose_gy:g} Gy en {c.fractions} fractions débutée le {c.on:%d/%m/%Y}.",
        inputs=[*inputs, inp(name="radiotherapy_course", value=c.on.isoformat(), source_event_id=e.event_id)],
        what_would_change_fr="Une aggravation neurologique ou une compression à l'imagerie.",
    )


def mscc_items(p: Patient, lesion: Lesion, currency: str = "current") -> list[Item]:
    """RT-MSCC for this lesion. `currency` of the compression: current, stale (seen longer ago than the window, no
    newer imaging) or future (dated after now): an emergency is decided from current data only."""
    onset = lesion.compression_onset()
    key = f"{lesion.lesion_id}:mscc"
    deficit = p.fact("neurological_deficit")
    epidural = lesion.value("epidural_extension")
    if onset is None:
        rule_out = to_rule_out(lesion, deficit)  # once: the three branches below read it
        treated = inferred_treated(p, lesion, key, deficit) if rule_out else None
        if treated is not None:
            return [treated]
        if rule_out and currency != "current":
            assert deficit is not None
            return [inferred_not_current(p, lesion, key, deficit, currency)]
        if rule_out:
            assert deficit is not None
            return [
                item(
                    key,
                    "RT-MSCC",
                    "to_do",
                    "critical",
                    f"Épidurite et déficit neurologique en {where(lesion)} : compression médullaire à éliminer",
                    "Épidurite avec déficit neurologique : IRM rachidienne et avis neurochirurgical en urgence pour "
                    "rechercher une compression médullaire ; radiothérapie en urgence si elle est confirmée et "
                    "non opérable.",
                    inputs=[lesion.used("epidural_extension"), deficit.used("neurological_deficit")],
                    what_would_change_fr="Une imagerie qui affirme ou élimine la compression médullaire.",
                )
            ]
        if lesion.spine and epidural is True:
            return [
                item(
                    key,
                    "RT-MSCC",
                    "recommended",
                    "warning",
                    f"Épidurite en {where(lesion)} : prévention de la compression médullaire",
                    "Épidurite vertébrale sans compression : radiothérapie de prévention de la morbidité à discuter, "
                    "schéma fractionné de 30 Gy en 10 fractions à privilégier, volume adapté à l'extension sur l'IRM. "
                    + (
                        "Déficit neurologique sans compression médullaire sur l'imagerie qui l'a suivi : surveiller "
                        "son évolution (une aggravation impose une nouvelle IRM en urgence)."
                        if deficit is not None and deficit.value is True
                        else "Surveiller l'apparition d'un déficit neurologique."
                    ),
                    inputs=[lesion.used("epidural_extension"), *p.used("neurological_deficit")],
                    what_would_change_fr="Un déficit neurologique ou une compression à l'imagerie (urgence).",
                )
            ]
        return []
    onset_day = p.day(onset.occurred_at)
    seen = lesion.compression_last_seen() or onset
    inputs: list[Inp] = [
        inp(name="cord_compression", value=True, occurred_at=onset.occurred_at, source_event_id=onset.event_id),
        inp(name="vertebral_level", value=lesion.level, occurred_at=onset.occurred_at, source_event_id=onset.event_id),
    ]
    if epidural is not None:
        inputs.append(lesion.used("epidural_extension"))
    if deficit is not None:
        inputs.append(deficit.used("neurological_deficit"))
    inputs += p.le_used()
    # The decompression that treated THIS compression: same lesion or level, on or after its onset (9.1), and done
    # by today (review RK: one dated ahead, a booking or an error, is not current data; the clock ticks on its day)
    linked = [
        (e, t)
        for e, t in p.surgeries
        if t.procedure == "decompression" and onset_day <= t.on <= p.today and matches(lesion, t)
    ]
    unlinked = [
        (e, t)
        for e, t in p.surgeries
        if t.procedure == "decompression"
        and onset_day <= t.on <= p.today
        and t.lesion_id is None
        and level_of(t) is None
    ]
    irradiated = [(e, t) for e, t in p.rt_courses if onset_day <= t.on <= p.today and matches(lesion, t)]
    if irradiated and not linked:
        e, t = irradiated[-1]
        return [
            item(
                key,
                "RT-MSCC",
                "done",
                "info",
                f"Compression médullaire en {where(lesion)} : irradiée",
                f"Radiothérapie de {t.total_dose_gy:g} Gy en {t.fractions} fractions débutée le {t.on:%d/%m/%Y}.",
                inputs=[
                    *inputs,
                    inp(name="radiotherapy_course", value=t.on.isoformat(), source_event_id=e.event_id),
                ],
                what_would_change_fr="Une aggravation neurologique ou une nouvelle compression à l'imagerie.",
            )
        ]
    if currency != "current" and not linked:
        why = (
            "datée dans le futur : date à vérifier"
            if currency == "future"
            else f"vue pour la dernière fois le {p.day(seen.occurred_at):%d/%m/%Y}, sans imagerie plus récente"
        )
        return [
            item(
                key,
                "RT-MSCC",
                "to_do",
                "warning",
                f"Compression médullaire en {where(lesion)} : donnée non actuelle",
                f"Compression médullaire {why} : elle n'est pas traitée comme une urgence sur cette seule donnée. "
                "Réévaluer sans délai (examen neurologique, IRM) ; si elle persiste, urgence thérapeutique "
                "(avis neurochirurgical, radiothérapie).",
                inputs=inputs,
                missing=["current imaging of the cord compression"],
                what_would_change_fr="Une imagerie récente montrant la compression (urgence) ou sa levée.",
            )
        ]
    op = p.opinion(lesion.lesion_id)
    operated_on = linked[-1][1].on if linked else None
    plan = conv.cord_compression_plan(
        operated_on,
        p.life_expectancy,
        None if op is None else op.operable,
        None if deficit is None else bool(deficit.value),
        None if epidural is None else bool(epidural),
    )
    if op is not None:
        inputs.append(
            inp(
                name="surgical_opinion_operable",
                value=op.operable,
                occurred_at=op.occurred_at,
                source_event_id=op.event_id,
            )
        )
    notes = " ".join(plan.notes)
    missing = list(plan.missing)
    if unlinked and not linked:
        notes += (
            f" Une décompression le {unlinked[-1][1].on:%d/%m/%Y} est enregistrée sans lésion ni niveau : "
            "la rattacher à cette compression si elle l'a traitée."
        )
        missing.append("lesion or level of the decompression surgery")
    if plan.setting == "adjuvant":
        assert plan.start_between is not None and operated_on is not None
        lo, hi = plan.start_between
        e, _ = linked[-1]
        inputs.append(inp(name="decompression_surgery", value=operated_on.isoformat(), source_event_id=e.event_id))
        return [
            item(
                key,
                "RT-MSCC",
                "recommended",
                "warning",
                f"Compression médullaire en {where(lesion)} opérée : radiothérapie adjuvante",
                f"Après la décompression du {operated_on:%d/%m/%Y}, radiothérapie adjuvante entre le {lo:%d/%m/%Y} et "
                f"le {hi:%d/%m/%Y} (2 à 3 semaines après le geste, selon les suites), sur le volume opéré et le "
                f"matériel, {' ou '.join(plan.schemes)}. {notes}".strip(),
                inputs=inputs,
                missing=missing,
                what_would_change_fr="Des suites opératoires qui retardent la cicatrisation.",
            )
        ]
    first = (
        "Chirurgie de décompression à réaliser en urgence (patient jugé opérable), puis radiothérapie adjuvante "
        "2 à 3 semaines après. "
        if plan.setting == "surgery_first"
        else "Avis neurochirurgical immédiat ; en l'absence d'indication de décompression, radiothérapie exclusive "
        "en urgence. "
        if op is None and not (p.life_expectancy is not None and surgery_excluded(p.life_expectancy))
        else "Radiothérapie exclusive en urgence. "
    )
    prognosis = (
        "Pronostic défavorable : une séance unique de 8 Gy est une option raisonnable. "
        if plan.single_fraction_favoured
        else ""
    )
    return [
        item(
            key,
            "RT-MSCC",
            "recommended",
            "critical",
            f"Compression médullaire en {where(lesion)} : urgence thérapeutique",
            f"{first}Schémas : {', '.join(plan.schemes)}. {prognosis}{notes} Discuter en RCP-OOS.".replace("  ", " "),
            inputs=inputs,
            missing=missing,
            what_would_change_fr="Une décompression de cette lésion (radiothérapie adjuvante), une imagerie montrant "
            "la levée de la compression, ou l'avis chirurgical.",
        )
    ]
