"""Plan items of conventional radiotherapy: RT-MSCC, RT-POSTOP, RT-PAIN, RT-FRACT-PALL / RT-FRACTURE-RISK, RT-DRUG
(pure; French texts written for this project)."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from contracts.base import Severity
from contracts.hospital import MetabolicRadiotherapy, RadiotherapyCourse, Surgery, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from contracts.plan import ItemStatus
from services.radiotherapy_planner.facts import (
    DrugUse,
    Lesion,
    LocalState,
    SurgicalOpinionFact,
    drug_uses_of,
    level_of,
    matches,
    of_kind,
)
from services.radiotherapy_planner.items_base import Inp, Item, inp, item, reference_date
from services.radiotherapy_planner.rules import conventional as conv
from services.radiotherapy_planner.rules.common import LONG_BONES, scheme_fr
from services.radiotherapy_planner.rules.drugs import drug_rt_window
from services.radiotherapy_planner.rules.surgery import surgery_excluded
from shared.clinical.dates import HOSPITAL_TZ, local_day
from shared.clinical.facts import Fact
from shared.clinical.irradiation import SegmentHistory
from shared.clinical.life_expectancy import Remaining
from shared.clinical.treatments import effective_treatments


@dataclass(frozen=True)
class Patient:
    """Patient-level facts the items read."""

    s: LocalState
    alpha_beta: float = 2.0  # cord alpha/beta for RT-REIRR (settings)
    le_current: bool = True  # the life-expectancy estimate is recent enough to decide on (domain.LE_VALID)
    tz: ZoneInfo = HOSPITAL_TZ  # calendar days are the hospital's local days
    now: datetime | None = None  # the decision time: what is left of the life-expectancy estimate is counted to it

    @functools.cached_property
    def today(self) -> date:
        """The hospital-local day of the decision time (no bound without one: tests of the pure rules); once per
        plan (every family's key reads it)."""
        return date.max if self.now is None else self.day(self.now)

    def day(self, at: datetime) -> date:
        """The hospital-local calendar day of a time (a result drawn at 00:30 in Paris is of that day, not the
        previous UTC day)."""
        return local_day(at, self.tz)

    # computed once per treatments table (every lesion's items read them; most events do not change the table)
    @functools.cached_property
    def _treated(self) -> Treated:
        return treated(self.s)

    @property
    def treatment_events(self) -> list[TreatmentEvent]:
        """The effective treatment events (corrections applied)."""
        return self._treated.events

    @property
    def surgeries(self) -> list[tuple[TreatmentEvent, Surgery]]:
        return self._treated.surgeries

    @property
    def rt_courses(self) -> list[tuple[TreatmentEvent, RadiotherapyCourse]]:
        return self._treated.rt_courses

    @property
    def metabolic(self) -> list[tuple[TreatmentEvent, MetabolicRadiotherapy]]:
        return self._treated.metabolic

    @property
    def segments(self) -> dict[tuple[str, str | None, str, int, date], SegmentHistory]:
        """items_local.segment's histories by lesion (ID, level, site), request and date: the SBRT and
        re-irradiation families of one request read the same one (issue 25), kept with the treatments table (they
        read only its RT courses)."""
        return self._treated.segments

    def drug_uses(self, reference: date) -> list[DrugUse]:
        return self._treated.drug_uses(reference)

    def fact(self, name: str) -> Fact[bool | float | str] | None:
        return self.s.assessed.get(name)

    def value(self, name: str) -> Any:
        f = self.s.assessed.get(name)
        return None if f is None else f.value

    def used(self, name: str, unit: str | None = None) -> list[Inp]:
        f = self.s.assessed.get(name)
        return [] if f is None else [f.used(name, unit)]

    def pain(self, lesion_id: str, name: str) -> Fact[bool | float | str] | None:
        """The lesion's own pain when recorded, else the patient's overall pain."""
        return self.s.assessed.get(f"{name}@{lesion_id}") or self.s.assessed.get(name)

    def pain_value(self, lesion_id: str, name: str) -> Any:
        f = self.pain(lesion_id, name)
        return None if f is None else f.value

    def pain_used(self, lesion_id: str, name: str) -> list[Inp]:
        f = self.pain(lesion_id, name)
        return [] if f is None else [f.used(name)]

    @functools.cached_property
    def remaining(self) -> Remaining | None:
        """What is left of the clinician's estimate now (shared clinical context), unless the estimate is too old
        (or dated in the future) to decide on."""
        f = self.fact("life_expectancy_months")
        if f is None or not self.le_current:
            return None
        return Remaining.at(float(f.value), f.occurred_at, self.now or f.occurred_at)

    @property
    def life_expectancy(self) -> float | None:
        """What is left of the estimate (months): every threshold (6 weeks, 3 months, 1 year) applies to it, never
        to the estimate as entered (issue 18.4)."""
        r = self.remaining
        return None if r is None else r.remaining

    def le_used(self) -> list[Inp]:
        """The estimate and what is left of it, as inputs (rounded as the memo key rounds it: domain.le_key)."""
        f, r = self.fact("life_expectancy_months"), self.remaining
        if f is None or r is None:
            return []
        return [
            f.used("life_expectancy_months", "months"),
            inp(
                name="life_expectancy_remaining",
                value=round(r.remaining, 1),
                unit="months",
                occurred_at=f.occurred_at,
                source_event_id=f.event_id,
            ),
        ]

    @property
    def le_missing(self) -> str:
        return (
            "life expectancy estimate"
            if self.le_current
            else "life expectancy estimate (the last one is older than 3 months: estimate again)"
        )

    def opinion(self, lesion_id: str) -> SurgicalOpinionFact | None:
        return self.s.opinions.get(lesion_id) or self.s.opinions.get("*")


class Treated:
    """What a state's treatments table gives the items (issue 25): the effective events, each kind's, the drug uses
    per reference date and the segments' histories, computed once per table, not once per plan. A table is never
    changed once the event that made it is applied (fold.merge copies the one an event changes; retention makes new
    tables), so what is derived from it holds for every plan that reads it. Each value is made on first use; two
    threads (the worker deciding, GET local-plan on the loop) may both make one: the same value, either kept."""

    __slots__ = ("__dict__", "_drug_uses", "segments", "size", "table")

    def __init__(self, table: dict[str, TreatmentEvent]) -> None:
        self.table = table  # held: its ID is not reused while it is here
        self.size = len(table)
        self._drug_uses: dict[date, list[DrugUse]] = {}
        self.segments: dict[tuple[str, str | None, str, int, date], SegmentHistory] = {}

    @functools.cached_property
    def events(self) -> list[TreatmentEvent]:
        return effective_treatments(self.table.values())

    @functools.cached_property
    def surgeries(self) -> list[tuple[TreatmentEvent, Surgery]]:
        return of_kind(self.events, Surgery)

    @functools.cached_property
    def rt_courses(self) -> list[tuple[TreatmentEvent, RadiotherapyCourse]]:
        return of_kind(self.events, RadiotherapyCourse)

    @functools.cached_property
    def metabolic(self) -> list[tuple[TreatmentEvent, MetabolicRadiotherapy]]:
        return of_kind(self.events, MetabolicRadiotherapy)

    def drug_uses(self, reference: date) -> list[DrugUse]:
        found = self._drug_uses.get(reference)
        if found is None:
            found = self._drug_uses[reference] = drug_uses_of(self.events, reference)
        return found


#: tables kept (least recently used out): a few per patient of those seen recently
TREATED_SIZE: Final = 2048
_TREATED: OrderedDict[int, Treated] = OrderedDict()
_TREATED_LOCK: Final = threading.Lock()


def treated(s: LocalState) -> Treated:
    table = s.treatments
    with _TREATED_LOCK:
        hit = _TREATED.get(id(table))
        if hit is not None and hit.table is table and hit.size == len(table):
            _TREATED.move_to_end(id(table))
            return hit
        made = _TREATED[id(table)] = Treated(table)
        if len(_TREATED) > TREATED_SIZE:
            _TREATED.popitem(last=False)
        return made


def clear_treated() -> None:
    with _TREATED_LOCK:
        _TREATED.clear()


def where(lesion: Lesion) -> str:
    return f"{lesion.level} ({lesion.lesion_id})" if lesion.level else lesion.lesion_id


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
