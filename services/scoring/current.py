"""HAZ-27-FUTURE-HIDES: the folds as they stand at the reference time. Pure.

The state folds one fact per name (the newest by clinical time: state.merge_assessment, state.merge_finding); a fact
dated beyond the clock-skew tolerance (r.is_future) is left out of every decision, and it must not hide the newest
current fact of the same name or lesion (CLASS-SRE L259-296: a cord compression or fracture current from its newest
evidence; RT-MSCC L1397-1402: a compression inferred from an epidural extension with a neurological deficit;
SCORE-MIRELS L1308-1372, MIRELS-HIGH L1314-1330, SCORE-SINS L1375-1392, SURG-LE L2776-2834, CLASS-OLIGO L1472-1476,
IMG-ISOLATED L476-494 and IMG-FLARE L357-405 read a lesion's newest finding and the assessment's items). When a
record kept one by one is dated in the future, the fold is made again from the summary retention keeps
(`lesion_bases`, `assessment_base`) and the records that are not: the same fold as the state's, without them. With
none (the common case) the state's own fold is returned, the same object, so nothing else changes (memo keys
included).

Bounded: retention keeps the newest records one by one (retention.FINDINGS_KEPT, ASSESSMENTS_KEPT, by clinical time,
so future-dated ones first); past that many future-dated records, a current record may be folded into the summary
together with a future one, which then hides it: the item reads as not current (Context.usable: "donnée non
actuelle" / missing), never a wrong current value (fail-safe)."""

from __future__ import annotations

from datetime import datetime

from services.scoring import rules as r
from services.scoring.state import Assessment, Lesion, ScoringState, merge_assessment, merge_finding
from shared.clinical.corrections import effective, effective_findings


def current_lesions(s: ScoringState, ref: datetime | None, policy: r.Policy) -> dict[str, Lesion]:
    """The lesions as the findings not dated in the future fold them (`s.lesions` itself when none is). A lesion
    known only from future-dated findings is left out; a lesion with no finding kept one by one is its own summary
    (kept as it is)."""
    if ref is None:
        return s.lesions
    rows, limit = list(s.findings.values()), ref + policy.future_tolerance  # r.is_future: occurred_at > limit
    if not any(f.occurred_at > limit for f in rows) and not any(
        x.latest.occurred_at > limit for x in s.lesions.values()
    ):
        return s.lesions
    imaged = {f.lesion_id for f in rows}
    folded: dict[str, Lesion] = {k: v for k, v in s.lesion_bases.items() if k in imaged}
    for f in effective_findings(f for f in rows if f.occurred_at <= limit):
        folded[f.lesion_id] = merge_finding(folded.get(f.lesion_id), f)
    out: dict[str, Lesion] = {}
    for lesion_id, lesion in s.lesions.items():
        if lesion_id not in imaged:
            out[lesion_id] = lesion  # its own summary: nothing kept one by one to fold again
        elif lesion_id in folded:
            out[lesion_id] = folded[lesion_id]
    return out


def current_assessment(s: ScoringState, ref: datetime | None, policy: r.Policy) -> Assessment:
    """The assessment as the assessments not dated in the future fold it (`s.assessment` itself when none is); an
    item (or a lesion's pain) with no current value keeps the state's, dated in the future: the decisions then say
    it is not current (CLASS-OLIGO "not current: restage", a lesion's pain "to reassess") rather than absent."""
    if ref is None:
        return s.assessment
    rows, limit = list(s.assessments.values()), ref + policy.future_tolerance  # r.is_future: occurred_at > limit
    if not any(x.occurred_at > limit for x in rows):
        return s.assessment
    a = s.assessment_base or Assessment()
    for x in effective((x for x in rows if x.occurred_at <= limit), lambda e: e.patient_id):
        a = merge_assessment(a, x)
    # an item known only from the future stays named (Context.usable leaves it out: "not current", as before)
    full = s.assessment
    update: dict[str, object] = {name: getattr(full, name) for name in _ITEMS if getattr(a, name) is None}
    for name in ("lesion_pain_intensity", "lesion_pain_character"):
        mine: dict[str, object] = getattr(a, name)
        update[name] = dict(sorted({**getattr(full, name), **mine}.items()))
    return a.model_copy(update=update)


#: the assessment's items folded one per name (state.merge_assessment)
_ITEMS = (
    "ecog",
    "pain_character",
    "pain_intensity",
    "neurological_deficit",
    "life_expectancy_months",
    "primary_controlled",
    "extra_osseous",
)
