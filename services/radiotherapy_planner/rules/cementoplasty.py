"""IR-CEMENT: cementoplasty indications, contraindications (Tableau 8) and haemostasis prerequisites. Pure, no I/O.

Radiologie interventionnelle: epiduritis (L2521-2522), indications (L2559-2582), non-indication and Tableau 8
(L2584-2622), bleeding risk (L2624-2642), long bones (L2687-2691). Never "ready" while a prerequisite is unmet
or unknown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from contracts.hospital import Comparator
from services.radiotherapy_planner.rules.common import LONG_BONES, Finding
from shared.clinical.censored import shown, side_of
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.drug_classes import ANTICOAGULANTS, ANTIPLATELETS

PLATELETS_MIN_G_L: Final = 50.0  # > 50 000/mm3 = 50 G/L (strict)
PROTHROMBIN_MIN_PCT: Final = 50.0  # TP > 50 % (strict)
#: Haemostasis results older than this before the procedure are not current (practice default; the text gives none).
LAB_RECENCY: Final = timedelta(days=7)

CLOPIDOGREL_STOP: Final = timedelta(days=5)
DOAC_STOP: Final = timedelta(hours=48)
ASPIRIN_CONTINUE_BELOW_MG: Final = 160.0  # < 160 mg/day may continue; otherwise stop 5 days before
ASPIRIN_STOP: Final = timedelta(days=5)
DOACS: Final = frozenset({"dabigatran", "rivaroxaban", "apixaban", "edoxaban"})  # "nouveaux anticoagulants oraux"
VKAS: Final = frozenset({"warfarin", "acenocoumarol", "fluindione"})  # oral anticoagulant: LMWH bridge
LMWH: Final = frozenset({"enoxaparin", "tinzaparin", "dalteparin", "heparin"})


@dataclass(frozen=True)
class CementIndication:
    indicated: bool | None
    reasons: tuple[Finding, ...]
    non_indication: Finding | None
    missing: tuple[str, ...]


def cement_indication(
    *,
    pain_resistant: bool | None,
    opioid_complications: bool | None,
    other_techniques_excluded: bool | None,
    inoperable: bool,
    stabilisation_alternative: bool,
) -> CementIndication:
    """L2568-2588. Well-controlled pain is a non-indication (L2588) whatever else is said, unless opioids are
    poorly tolerated (an indication of its own, L2572-2574). "Other techniques ineffective or not indicated"
    (L2576-2578) is surgery AND radiotherapy excluded: inoperable alone is not enough while RT remains possible."""
    controlled = pain_resistant is False and not opioid_complications
    if controlled:
        return CementIndication(
            False,
            (),
            Finding(
                "douleurs bien maîtrisées par le traitement médicamenteux : non-indication",
                "pain_resistant_to_analgesics",
                False,
            ),
            (),
        )
    reasons: list[Finding] = []
    if pain_resistant:
        reasons.append(Finding("douleur mal contrôlée par les antalgiques", "pain_resistant_to_analgesics", True))
    if opioid_complications:
        reasons.append(Finding("complication ou mauvaise tolérance des opiacés", "opioid_complications", True))
    if other_techniques_excluded:
        reasons.append(
            Finding(
                "autres techniques inefficaces ou non indiquées (chirurgie et radiothérapie exclues)",
                "other_techniques_excluded",
                True,
            )
        )
    if stabilisation_alternative:
        reasons.append(
            Finding(
                "visée antalgique et de stabilisation, alternative à une chirurgie lourde", "intent", "stabilisation"
            )
        )
    missing = []
    if pain_resistant is None:
        missing.append("pain control by analgesics (resistant or not)")
    if reasons and pain_resistant is not None:
        return CementIndication(True, tuple(reasons), None, ())
    if reasons:  # an indication, but whether the pain is controlled (a non-indication) is not known
        return CementIndication(None, tuple(reasons), None, tuple(missing))
    if opioid_complications is None:
        missing.append("opioid complications (yes/no)")
    if inoperable and other_techniques_excluded is None:
        missing.append("whether radiotherapy (or re-irradiation) is still possible for this lesion")
    return CementIndication(None, (), None, tuple(missing))


@dataclass(frozen=True)
class CementCi:
    name: str
    absolute: bool
    present: bool | None
    finding: Finding


def cement_contraindications(
    *,
    fracture: bool | None,
    painful: bool | None,
    unstable: bool | None,
    diffuse_pain: bool | None,
    infection: bool | None,
    severe_coagulation_disorder: bool | None,
    cement_allergy: bool | None,
    posterior_wall: str | None,
    radiculopathy: bool | None,
    epidural_extension: bool | None,
    joint_opening: bool | None,
    spine: bool,
) -> list[CementCi]:
    """Tableau 8, each contraindication with its input (None when that input is unknown)."""
    asymptomatic_stable: bool | None
    if fracture is False:
        asymptomatic_stable = False
    elif fracture is True and painful is False and unstable is False:
        asymptomatic_stable = True
    elif fracture is True and (painful is True or unstable is True):
        asymptomatic_stable = False
    else:
        asymptomatic_stable = None
    out = [
        CementCi(
            "asymptomatic_stable_fracture",
            True,
            asymptomatic_stable,
            Finding("fracture asymptomatique, non instable", "pathological_fracture", fracture),
        ),
        CementCi(
            "diffuse_pain",
            True,
            diffuse_pain,
            Finding("douleurs diffuses non localisées", "diffuse_pain", diffuse_pain),
        ),
        CementCi(
            "infection",
            True,
            infection,
            Finding("infection générale ou au point de ponction", "active_infection", infection),
        ),
        CementCi(
            "severe_coagulation_disorder",
            True,
            severe_coagulation_disorder,
            Finding("troubles sévères de la coagulation", "severe_coagulation_disorder", severe_coagulation_disorder),
        ),
        CementCi(
            "cement_allergy",
            True,
            cement_allergy,
            Finding("allergie au composé du ciment", "cement_allergy", cement_allergy),
        ),
        CementCi("radiculopathy", False, radiculopathy, Finding("radiculopathie", "radiculopathy", radiculopathy)),
        CementCi(
            "canal_extension_or_epiduritis",
            False,
            epidural_extension,
            Finding(
                "extension canalaire ou épidurite (prise en charge plutôt chirurgicale ou combinée à la RT)",
                "epidural_extension",
                epidural_extension,
            ),
        ),
        CementCi(
            "joint_opening", False, joint_opening, Finding("ouverture articulaire", "joint_opening", joint_opening)
        ),
    ]
    if spine:
        present = None if posterior_wall is None else posterior_wall == "extensive_or_retropulsed"
        out.append(
            CementCi(
                "posterior_wall",
                False,
                present,
                Finding("atteinte extensive ou recul du mur postérieur", "posterior_wall_involvement", posterior_wall),
            )
        )
    return out


@dataclass(frozen=True)
class LabValue:
    value: float | None
    taken_on: date | None
    comparator: Comparator | None = None  # issue 12: censored, a bound


@dataclass(frozen=True)
class HaemostasisCheck:
    name: str
    status: Literal["done", "to_do", "pending", "cannot_decide"]
    detail_fr: str
    missing: str | None = None


def haemostasis_labs(
    platelets: LabValue | None, prothrombin: LabValue | None, reference: date
) -> list[HaemostasisCheck]:
    out: list[HaemostasisCheck] = []
    for name, lab, limit, unit, label in (
        ("platelets", platelets, PLATELETS_MIN_G_L, "G/L", "Plaquettes"),
        ("prothrombin", prothrombin, PROTHROMBIN_MIN_PCT, "%", "TP"),
    ):
        need = f"{label} > {limit:g} {unit}" + (" (50 000/mm3)" if name == "platelets" else "")
        if lab is None or lab.value is None or lab.taken_on is None:
            out.append(
                HaemostasisCheck(
                    name, "cannot_decide", f"{need} : résultat inconnu, à doser.", f"{name} (current result)"
                )
            )
        elif lab.taken_on < reference - LAB_RECENCY:
            out.append(
                HaemostasisCheck(
                    name,
                    "to_do",
                    f"{need} : dernier résultat du {lab.taken_on:%d/%m/%Y}, trop ancien, à doser à nouveau.",
                    f"{name} (result within {LAB_RECENCY.days} days of the procedure)",
                )
            )
        else:
            # L2627-2628 "Plaquettes > 50 000/mm3 et le TP > 50", strict; a censored result decides only when its
            # whole interval lies on one side (issue 12)
            reported = shown(lab.value, lab.comparator, unit)
            side = side_of(lab.value, lab.comparator, limit, ">")
            if side == "above":
                out.append(HaemostasisCheck(name, "done", f"{need} : {reported} le {lab.taken_on:%d/%m/%Y}."))
            elif side == "below":
                out.append(
                    HaemostasisCheck(
                        name,
                        "to_do",
                        f"{need} : {reported} le {lab.taken_on:%d/%m/%Y}, insuffisant ; "
                        "geste non réalisable en l'état.",
                    )
                )
            else:
                out.append(
                    HaemostasisCheck(
                        name,
                        "cannot_decide",
                        f"{need} : {reported} le {lab.taken_on:%d/%m/%Y}, résultat censuré (une borne, pas une valeur "
                        "exacte) : données insuffisantes, doser une valeur exacte.",
                        f"{name}: exact value ({reported} is censored, measure again)",
                    )
                )
    return out


@dataclass(frozen=True)
class DrugUse:
    drug: str  # the vocabulary's key (shared/clinical/drugs.py)
    last_dose: date | None
    ongoing: bool
    daily_dose_mg: float | None
    drug_class: str | None = None  # None: the vocabulary does not know the drug
    last_dose_at: datetime | None = None


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The earliest moment a procedure planned on `day` can take place (its time is not known)."""
    return datetime.combine(day, time.min, tzinfo=tz)


def _doac_done(use: DrugUse, procedure_on: date, tz: ZoneInfo) -> bool:
    """48 hours between the last dose and the procedure (L2636), counted so that it holds whatever the hours:
    from the time of the last dose when known, else from the end of its day; the procedure at the start of its day
    (issue 18: 2 calendar days can be 25 hours)."""
    if use.last_dose is None or use.ongoing:
        return False
    last = use.last_dose_at or start_of_day(use.last_dose + timedelta(days=1), tz)
    return start_of_day(procedure_on, tz) - last >= DOAC_STOP


def unknown_drug_check(use: DrugUse) -> HaemostasisCheck:
    """A drug the vocabulary does not know is never taken for "no interaction" (issue 18.3): it may be an
    antiplatelet or an anticoagulant, so the procedure is not ready until someone checks."""
    name = use.drug.replace("_", " ")
    return HaemostasisCheck(
        use.drug,
        "cannot_decide",
        f"{name} : médicament non identifié par le système ; vérifier s'il s'agit d'un antiagrégant plaquettaire ou "
        "d'un anticoagulant (délai d'arrêt avant le geste).",
        f"identity of {name} (antiplatelet or anticoagulant?)",
    )


def antithrombotic_check(
    use: DrugUse, procedure_on: date | None, tz: ZoneInfo = HOSPITAL_TZ
) -> HaemostasisCheck | None:
    """The stop window of one antiplatelet or anticoagulant (by its class in the shared vocabulary, whatever its
    spelling). Done only when the last dose is known and far enough before a known procedure date."""
    d = use.drug
    if use.drug_class is None and d not in ANTIPLATELETS and d not in ANTICOAGULANTS:
        return None
    if use.drug_class is not None and use.drug_class not in ("antiplatelet", "anticoagulant"):
        return None
    name = d.replace("_", " ")
    window: timedelta | None
    if d == "clopidogrel":
        window, rule = CLOPIDOGREL_STOP, "arrêt 5 jours avant le geste"
    elif d in DOACS:
        window, rule = DOAC_STOP, "arrêt 48 h avant le geste"
    elif d == "aspirin":
        if use.daily_dose_mg is None:
            return HaemostasisCheck(
                "aspirin",
                "cannot_decide",
                "Aspirine : dose quotidienne inconnue (< 160 mg/j : peut être poursuivie ; sinon arrêt 5 jours avant).",
                "aspirin daily dose (mg/day)",
            )
        if use.daily_dose_mg < ASPIRIN_CONTINUE_BELOW_MG:
            return HaemostasisCheck(
                "aspirin", "done", f"Aspirine {use.daily_dose_mg:g} mg/j (< 160 mg/j) : peut être poursuivie."
            )
        window, rule = ASPIRIN_STOP, f"aspirine {use.daily_dose_mg:g} mg/j (≥ 160 mg/j) : arrêt 5 jours avant le geste"
    elif d in VKAS:
        return HaemostasisCheck(
            d,
            "to_do" if use.ongoing else "pending",
            f"{name} (anticoagulant oral) : relais par héparine de bas poids moléculaire, arrêtée la veille du geste.",
        )
    elif d in LMWH:
        window, rule = timedelta(days=1), "héparine arrêtée la veille du geste"
    else:
        return HaemostasisCheck(
            d,
            "cannot_decide",
            f"{name} : délai d'arrêt non donné par le référentiel ; à définir avec l'anesthésiste et le prescripteur.",
            f"stop window for {name} (anaesthesia)",
        )
    agree = " En accord avec l'équipe d'anesthésie et le prescripteur."
    if procedure_on is None:
        return HaemostasisCheck(
            d,
            "to_do",
            f"{name} : {rule} ; date du geste inconnue, dernière prise au plus tard J-{_days(window)}.{agree}",
            "planned procedure date",
        )
    if d in DOACS:
        if _doac_done(use, procedure_on, tz):
            assert use.last_dose is not None
            return HaemostasisCheck(
                d, "done", f"{name} : {rule} ; dernière prise le {use.last_dose:%d/%m/%Y}, délai respecté."
            )
        latest = procedure_on - timedelta(days=3)  # without the hour: whole days, so that 48 h hold
        return HaemostasisCheck(
            d,
            "to_do",
            f"{name} : {rule} ; sans l'heure de la dernière prise, dernière prise au plus tard le {latest:%d/%m/%Y} "
            f"pour un geste le {procedure_on:%d/%m/%Y} (ou préciser l'heure de la dernière prise).{agree}",
            None
            if use.last_dose_at is not None
            else f"time of the last {name} dose"
            if use.last_dose is not None
            else f"date and time of the last {name} dose",
        )
    latest = procedure_on - window
    if use.last_dose is not None and use.last_dose <= latest and not use.ongoing:
        return HaemostasisCheck(
            d, "done", f"{name} : {rule} ; dernière prise le {use.last_dose:%d/%m/%Y}, délai respecté."
        )
    return HaemostasisCheck(
        d,
        "to_do",
        f"{name} : {rule} ; dernière prise au plus tard le {latest:%d/%m/%Y} pour un geste le "
        f"{procedure_on:%d/%m/%Y}.{agree}",
    )


def _days(window: timedelta) -> str:
    return f"{window.days}" if window.days else f"{window.seconds // 3600} h"


def systemic_vigilance(chemotherapies: list[str], antiangiogenics: list[str]) -> str | None:
    """L746-748: a systemic treatment never stands in the way of a needed procedure, but the nadir, haemostasis and
    anti-angiogenics call for vigilance (named, not a prerequisite the text quantifies)."""
    parts = []
    if chemotherapies:
        parts.append(
            f"chimiothérapie en cours ou récente ({', '.join(d.replace('_', ' ') for d in chemotherapies)}) : "
            "programmer le geste hors de la période de nadir (numération à vérifier)"
        )
    if antiangiogenics:
        parts.append(
            f"anti-angiogénique ({', '.join(d.replace('_', ' ') for d in antiangiogenics)}) : risque hémorragique et "
            "de retard de cicatrisation à prendre en compte"
        )
    return ("Vigilance : " + " ; ".join(parts) + ".") if parts else None


def long_bone_note(site: str | None) -> str | None:
    if site in LONG_BONES:
        return (
            "Os long : le ciment seul ne résiste pas aux contraintes en torsion ; réservé au patient non candidat "
            "à une "
            "chirurgie stabilisatrice, avec un système de stabilisation percutané."
        )
    return None
