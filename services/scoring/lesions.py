"""Per-lesion scores: SCORE-MIRELS (long bones) and SCORE-SINS (spine). Pure. The skeletal-related events of a lesion
or a treatment (CLASS-SRE) are in sre.py.

Mirels and SINS score the pain of the lesion they score (ClinicalAssessment.lesion_pain): the text makes pain an
item of the lesion (L1318-1320, L1387), so the patient's overall pain never stands in for it; it is then missing.
A suspected lesion (IMG-ISOLATED) records no SRE; a resolved one is no longer scored.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from contracts.base import InputUsed, Severity
from contracts.clinical import Recommendation
from services.scoring import rules as r
from services.scoring import texts as t
from services.scoring.common import SERVICE, Context, Decisions, FamilyMemo, around, components, finding_inputs, score
from services.scoring.state import Lesion
from shared.clinical import life_expectancy
from shared.clinical.facts import Fact
from shared.clinical.recommend import Lazy, recommendation, recommendation_id

MIRELS_SEVERITY: dict[str, Severity] = {
    "low": "info",
    "rcp": "warning",
    "doubt": "warning",
    "fixation": "critical",
    "short_survival": "warning",
    "no_surgery": "warning",
    "survival_unknown": "warning",
}


def _lesion_pain(c: Context, fact: Fact[str] | None) -> tuple[Fact[str] | None, str, str | None]:
    """A lesion's pain as Mirels and SINS may use it: current (not dated in the future, not older than its validity
    window), else missing. Returns (the usable pain, how to name it when missing, the French note on it)."""
    pain = c.usable(fact, c.policy.lesion_pain_valid)
    if pain is not None:
        return pain, "pain", None
    if fact is not None:
        days = c.policy.lesion_pain_valid.days
        return (
            None,
            f"pain (to reassess: the last one, {fact.value}, dated {fact.occurred_at:%Y-%m-%d}, is not current)",
            t.stale_pain_note(fact.occurred_at, days),
        )
    overall = c.s.assessment.pain_intensity or c.s.assessment.pain_character
    if overall is not None:
        return None, "pain (patient-level pain is not a lesion's pain)", t.PATIENT_PAIN_NOTE
    return None, "pain", t.PATIENT_PAIN_NOTE


def _overall_read(c: Context, fact: Fact[str] | None) -> Fact[str] | None:
    """The patient's overall pain when `_lesion_pain` reads it (the lesion has no pain of its own: its note says so),
    else None (issue 25: a new overall pain decides no lesion with its own pain again)."""
    return (c.s.assessment.pain_intensity or c.s.assessment.pain_character) if fact is None else None


def _le_missing(stale: Fact[Any] | None) -> str:
    if stale is None:
        return "life expectancy estimate"
    last = f"{stale.value:g} months, dated {stale.occurred_at:%Y-%m-%d}"
    return f"a current life expectancy estimate (the last one, {last})"


#: issue 25: a lesion's Mirels by lesion and pain facts, and by where the reference time falls in the pain's window,
#: while its score is under 9 (MIRELS-LOW, MIRELS-8: the life expectancy is then neither read nor said)
MIRELS_MEMO: Final = FamilyMemo(size=16384)


def decide_mirels(c: Context, lesion: Lesion, d: Decisions) -> None:
    """SCORE-MIRELS and the attitude of Tableau 3 (`_decide_mirels`); below 9 it reads no life expectancy, and is
    decided again only when the lesion or a pain it reads changes, or the lesion's pain leaves its window (from 9
    on, every time: volatile)."""
    a, policy, lesion_id = c.s.assessment, c.policy, lesion.latest.lesion_id
    pain_fact = a.lesion_pain_intensity.get(lesion_id)
    MIRELS_MEMO.decide(
        (c.patient_id, policy, lesion_id),
        (lesion, pain_fact, _overall_read(c, pain_fact)),
        None,
        lambda: () if pain_fact is None else around(pain_fact.occurred_at, policy, policy.lesion_pain_valid),
        c.at,
        functools.partial(_decide_mirels, c, lesion),
        d,
        c.memo,
    )


def _decide_mirels(c: Context, lesion: Lesion, d: Decisions) -> None:
    """SCORE-MIRELS and the attitude of Tableau 3, decided on the bounds of an incomplete score when they suffice;
    bounds that straddle a band are a doubt (MIRELS-8, RCP-OOS) naming what is missing. The life expectancy used is
    what remains of the estimate now (the estimate minus the months since it was made)."""
    f, a = lesion.latest, c.s.assessment
    pain, pain_name, pain_note = _lesion_pain(c, a.lesion_pain_intensity.get(f.lesion_id))
    m = r.mirels(f.skeletal_site, f.cortical_involvement_fraction, f.lesion_type, pain.value if pain else None)
    lo, hi = r.mirels_bounds(m)
    # issue 25: from 9 on, the remaining life expectancy (a continuous quantity) is said: decided again every time;
    # below, `lo` reads only the lesion and its pain (the memo's parts and moments)
    d.volatile = lo >= 9
    # the newest estimate not dated in the future (one in the future never hides it), if within its window
    estimates = a.life_expectancy_estimates or ([a.life_expectancy_months] if a.life_expectancy_months else [])
    last = max((x for x in estimates if not c.future(x.occurred_at)), key=lambda x: x.order(), default=None)
    le = c.usable(last, c.policy.life_expectancy_valid)
    stale_le = last if le is None and last is not None else None
    ref = c.reference
    survival: t.Survival | None = None
    if le is not None and ref is not None:
        survival = t.Survival(le.value, le.occurred_at, life_expectancy.remaining_months(le.value, le.occurred_at, ref))
    rule_id, decision = r.mirels_decision(lo, hi, survival.remaining if survival else None)
    ct = r.ct_osteolysis_criterion(f.axial_cortical_osteolysis_pct, f.circumferential_cortical_osteolysis_pct)
    # L1340-1346: the CT note is for a Mirels >= 9, and only where fixation first is the decision (life expectancy
    # > 3 months, L1324): never beside "fixation first is not indicated" or "no surgery"
    ct_note = ct is True and decision == "fixation"
    sources = dict.fromkeys(("site", "size", "lesion_type"), f.event_id) | {"pain": pain.event_id if pain else None}
    band = "≥9" if lo >= 9 else "≤7" if hi <= 7 else "8" if lo == hi == 8 else None
    missing = [pain_name if x == "pain" else x for x in m.missing]
    note = pain_note if "pain" in m.missing else None

    def inputs() -> list[InputUsed]:
        """Made with a message only (issue 25, helper ZC: an unchanged decision builds neither inputs nor texts); the
        score and the recommendation both carry the life expectancy and CT inputs a Mirels of 9 or more adds."""
        out = finding_inputs(f) + ([pain.used(f"pain_intensity:{f.lesion_id}")] if pain else [])
        if le is not None and survival is not None and lo >= 9:
            out.append(le.used("life_expectancy", "months"))
            out.append(
                InputUsed(
                    name="life_expectancy_remaining",
                    value=round(survival.remaining, 2),
                    unit="months",
                    occurred_at=le.occurred_at,
                    source_event_id=le.event_id,
                )
            )
        if ct_note:
            out.append(
                InputUsed(
                    name="ct_cortical_osteolysis_axial_circumferential_pct",
                    value=f"{f.axial_cortical_osteolysis_pct:g}/{f.circumferential_cortical_osteolysis_pct:g}",
                    unit="%",
                    occurred_at=f.occurred_at,
                    source_event_id=f.event_id,
                )
            )
        return out

    d.scores[f"mirels:{f.lesion_id}"] = score(
        "mirels",
        f.lesion_id,
        f,
        components(m.items, sources),
        m.total,
        m.complete,
        band,
        missing,
        ["SCORE-MIRELS"],
        lambda: t.mirels_text(f.lesion_id, m, lo, hi, None, None, ct_note, note),
        inputs,
        also=[pain],
    )
    said = missing + ([_le_missing(stale_le)] if decision == "survival_unknown" else [])
    key = (f.lesion_id, decision, m.total, lo, hi, ct_note, tuple(said))  # a new wording is issued

    def build() -> Recommendation:
        if m.total is not None:
            head = f"Score de Mirels {m.total}/12"
        elif lo >= 9:
            head = f"Score de Mirels d'au moins {lo}/12"
        elif hi <= 7:
            head = f"Score de Mirels d'au plus {hi}/12"
        else:
            head = f"Score de Mirels entre {lo} et {hi}/12"
        return recommendation(
            rule_id=rule_id,
            trigger=f,
            produced_by=SERVICE,
            severity=MIRELS_SEVERITY[decision],
            title=f"{head} ({f.lesion_id})",
            text_fr=t.mirels_text(f.lesion_id, m, lo, hi, decision, survival if lo >= 9 else None, ct_note, note),
            inputs=inputs(),
            key=key,
            missing=said,
        )

    d.recommendations[f"mirels:{f.lesion_id}"] = Lazy(recommendation_id(rule_id, f.patient_id, key), build)


#: issue 25: each lesion's SINS by lesion and pain facts, and by where the reference time falls among the pain's window
SINS_MEMO: Final = FamilyMemo(size=16384)


def decide_sins(c: Context, lesion: Lesion, d: Decisions) -> None:
    """SCORE-SINS and SINS-SURGICAL for a spinal lesion (decided again when the lesion or a pain it reads changes,
    or the lesion's pain leaves its window)."""
    a, policy, lesion_id = c.s.assessment, c.policy, lesion.latest.lesion_id
    pain = a.lesion_pain_character.get(lesion_id)
    SINS_MEMO.decide(
        (c.patient_id, policy, lesion_id),
        (lesion, pain, _overall_read(c, pain)),
        None,
        lambda: () if pain is None else around(pain.occurred_at, policy, policy.lesion_pain_valid),
        c.at,
        functools.partial(_decide_sins, c, lesion),
        d,
        c.memo,
    )


def _decide_sins(c: Context, lesion: Lesion, d: Decisions) -> None:
    f = lesion.latest
    pain, pain_name, _ = _lesion_pain(c, c.s.assessment.lesion_pain_character.get(f.lesion_id))
    scored = r.sins(
        f.vertebral_level,
        pain.value if pain else None,
        f.lesion_type,
        f.alignment,
        f.vertebral_collapse,
        f.posterolateral_involvement,
    )
    sources = {i.name: f.event_id for i in scored.items} | {"pain": pain.event_id if pain else None}
    band = r.sins_band(scored.total) if scored.total is not None else None
    where = f.vertebral_level or f.lesion_id
    missing = [pain_name if x == "pain" else x for x in scored.missing]

    def inputs() -> list[InputUsed]:  # made with a message only (issue 25, helper ZC)
        return finding_inputs(f) + ([pain.used(f"pain_character:{f.lesion_id}")] if pain else [])

    d.scores[f"sins:{f.lesion_id}"] = score(
        "sins",
        f.lesion_id,
        f,
        components(scored.items, sources),
        scored.total,
        scored.complete,
        band,
        missing,
        ["SCORE-SINS", "SINS-SURGICAL"],
        lambda: t.sins_text(where, scored, band),
        inputs,
        also=[pain],
    )
    floor, _ = scored.bounds(r.SINS_ITEM_MIN, r.SINS_ITEM_MAX)  # a lower bound when incomplete
    if floor < 7:
        return
    severity: Severity = "critical" if floor >= 13 else "warning"
    key = (f.lesion_id, severity, scored.total, floor, tuple(missing))  # a new wording is issued, as Mirels

    def build() -> Recommendation:
        return recommendation(
            rule_id="SINS-SURGICAL",
            trigger=f,
            produced_by=SERVICE,
            severity=severity,
            title=(
                f"SINS {scored.total}/18 en {where} : avis chirurgical"
                if scored.total is not None
                else f"SINS d'au moins {floor}/18 en {where} : avis chirurgical"
            ),
            text_fr=t.sins_text(where, scored, band, decision=True),
            inputs=inputs(),
            key=key,
            missing=missing,
        )

    d.recommendations[f"sins:{f.lesion_id}"] = Lazy(recommendation_id("SINS-SURGICAL", f.patient_id, key), build)
