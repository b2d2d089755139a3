"""LAB-CA-CRISIS and the hypercalcaemia SRE (CLASS-SRE), decided from current data only. Pure.

An episode is a run of consecutive crisis values (corrected calcium > 3.5 mmol/L, compared unrounded) in clinical
time; each episode is one SRE. Only the episode still under way alerts (its newest value is the patient's newest
corrected calcium): critically when that value is recent, else a warning to measure again. An episode that has
ended keeps its alert. A crisis value that arrives once a clinically newer normal value is known (an episode ended
before it ever alerted) never alerts as a current crisis, but is said (info, naming both values and times) and
recorded as a historical SRE (`current` false). A value dated in
the future (beyond the clock-skew tolerance) is left out of every decision, and said.
"""

from __future__ import annotations

from typing import Final

from contracts.base import InputUsed, derived_id
from contracts.clinical import SkeletalEvent
from services.scoring import rules as r
from services.scoring import texts as t
from services.scoring.common import SERVICE, Context, Decisions, FamilyMemo, around, lab_message
from services.scoring.state import LabValue
from shared.clinical.censored import Side, shown
from shared.clinical.recommend import lazy_recommendation


def _used(v: LabValue) -> InputUsed:
    assert v.value is not None
    return InputUsed(
        name="corrected_calcium",
        value=v.value,
        unit="mmol/L",
        occurred_at=v.occurred_at,
        source_event_id=v.event_id,
        comparator=v.comparator,
    )


def _side(v: LabValue) -> Side:
    """LAB-CA-CRISIS (L304-306, "supérieure à 3,5 mmol/L") on the value as an interval (issue 12)."""
    assert v.value is not None
    return r.crisis_side(v.value, v.comparator)


def _provenance(v: LabValue) -> list[InputUsed]:
    return [
        InputUsed(
            name=x.analyte,
            value=x.value,
            unit=x.unit,
            occurred_at=x.occurred_at,
            source_event_id=x.event_id,
            comparator=x.comparator,
        )
        for x in v.sources
    ]


def _order(v: LabValue) -> tuple[object, ...]:
    return v.occurred_at, v.recorded_at, str(v.event_id)


#: issue 25: the calcium decisions by labs table and by where the reference time falls among the labs' windows
MEMO: Final = FamilyMemo()


def decide_calcium(c: Context, d: Decisions) -> None:
    """Decided again only when the labs change, a calcium window passes (clock.py: a tick then), or a crisis alert is
    published or dropped (a crisis known only after a newer normal value is late)."""
    policy = c.policy
    crises = frozenset(k for k in c.s.recommendations if k.startswith("calcium:crisis:"))
    MEMO.decide(
        (c.patient_id, policy),
        (c.s.labs,),
        crises,
        lambda: (m for v in c.s.labs.values() for m in around(v.occurred_at, policy, policy.calcium_current)),
        c.at,
        lambda into: _decide_calcium(c, into),
        d,
        c.memo,
    )


def _decide_calcium(c: Context, d: Decisions) -> None:
    s, patient_id, policy = c.s, c.patient_id, c.policy
    every = sorted(
        ((rid, v) for rid, v in s.labs.items() if v.analyte == "corrected_calcium" and not v.withdrawn),
        key=lambda kv: _order(kv[1]),
    )
    values = [(rid, v) for rid, v in every if not c.future(v.occurred_at)]
    for rid, v in every:
        if c.future(v.occurred_at):
            d.recommendations[f"calcium:future:{rid}"] = lazy_recommendation(
                rule_id="LAB-CA-CRISIS",
                trigger=lab_message(v, patient_id),
                produced_by=SERVICE,
                severity="info",
                title="Calcémie datée dans le futur : ignorée",
                text_fr=t.future_value_text(v.occurred_at),
                inputs=[
                    InputUsed(
                        name="corrected_calcium",
                        value=v.value,
                        unit="mmol/L",
                        occurred_at=v.occurred_at,
                        source_event_id=v.event_id,
                    )
                ],
                key=("future", rid),
            )
    if not values:
        return
    computed = [(rid, v) for rid, v in values if v.value is not None]  # no albumin: neither opens nor closes
    episodes: list[list[tuple[str, LabValue]]] = []
    in_crisis = False
    for rid, v in computed:
        side = _side(v)
        if side == "straddles":  # issue 12: a censored value that may or may not be a crisis neither opens nor
            continue  # closes an episode (never an emergency from uncertain data); said below when it is the newest
        crisis = side == "above"
        if crisis and not in_crisis:
            episodes.append([])
        if crisis:
            episodes[-1].append((rid, v))
        in_crisis = crisis
    reference = c.reference
    for n, episode in enumerate(episodes):
        start_id, start = episode[0]
        _, last = episode[-1]
        running = in_crisis and n == len(episodes) - 1  # its newest value is the newest corrected calcium
        # the value that ended the episode (a clinically newer, non-critical one)
        ended_by = next(
            (w for _, w in computed if _order(w) > _order(last) and w.value is not None and _side(w) == "below"),
            None,
        )
        slot = f"calcium:crisis:{start_id}"
        # ended before its crisis alert was ever issued: the crisis arrived late, after a newer normal value
        late = ended_by is not None and slot not in s.recommendations
        fresh = reference is None or reference - last.occurred_at <= policy.calcium_current
        current = running and fresh
        used = [_used(start)] + ([_used(last)] if last is not start else [])
        provenance = _provenance(start)
        # a new version whenever currency or the newest crisis value changes (the older one is then withdrawn), so
        # that `current` and `current_until` always describe the newest evidence
        last_id = episode[-1][0]
        version = ("historical",) if not current else () if last_id == start_id else ("until", last_id)
        sre = SkeletalEvent(
            event_id=derived_id("sre", "hypercalcaemia", start_id, *version),
            patient_id=patient_id,
            occurred_at=start.occurred_at,
            recorded_at=start.recorded_at,
            source=SERVICE,
            kind="hypercalcaemia",
            rule_id="CLASS-SRE",
            evidence=used,
            current=current,
            evidence_at=last.occurred_at,
            current_until=last.occurred_at + policy.calcium_current if current else None,
        )
        d.sres[str(sre.event_id)] = sre
        assert start.value is not None and last.value is not None
        if late and ended_by is not None:
            assert ended_by.value is not None
            d.recommendations[f"calcium:late:{start_id}"] = lazy_recommendation(
                rule_id="LAB-CA-CRISIS",
                trigger=lab_message(start, patient_id),
                produced_by=SERVICE,
                severity="info",
                title=f"Calcémie de crise reçue en retard ({t.calcium_shown(start.value, start.comparator)} "
                f"mmol/L, {start.occurred_at:%d/%m/%Y %H:%M}) : pas une crise actuelle",
                text_fr=t.late_crisis_text(start.value, start.occurred_at, ended_by.value, ended_by.occurred_at),
                inputs=[*used, _used(ended_by), *provenance],
                key=("late", start_id),
            )
            continue
        if not running:
            d.keep.add(slot)  # an ended episode: its alert stays as it is
            continue
        if not fresh:
            d.keep.add(slot)  # alerted while it was current: left as it is
            d.recommendations[f"calcium:stale:{start_id}"] = lazy_recommendation(
                rule_id="LAB-CA-CRISIS",
                trigger=lab_message(last, patient_id),
                produced_by=SERVICE,
                severity="warning",
                title="Dernière calcémie corrigée en crise mais ancienne : recontrôler",
                text_fr=t.stale_crisis_text(last.value, last.occurred_at, policy.calcium_current),
                inputs=used + provenance,
                key=("stale", start_id, str(last.event_id)),
                missing=["a recent corrected calcium"],
            )
            continue
        d.recommendations[slot] = lazy_recommendation(
            rule_id="LAB-CA-CRISIS",
            trigger=lab_message(start, patient_id),
            produced_by=SERVICE,
            severity="critical",
            title="Crise aiguë hypercalcémique : calcémie corrigée "
            f"{t.calcium_shown(start.value, start.comparator)} mmol/L",
            text_fr=t.crisis_text(start.value, start.comparator),
            inputs=[_used(start), *provenance],
            key=("crisis", start_id),
        )
    latest_id, latest = values[-1]
    measured = latest.measured_total_calcium
    measured_side = None if measured is None else r.crisis_side(measured, latest.measured_comparator)
    if (latest.value is not None and _side(latest) == "straddles") or (
        latest.value is None and measured_side == "straddles"
    ):
        _censored(c, d, latest_id, latest)
    elif latest.value is None and measured is not None and measured_side == "above":
        d.recommendations[f"calcium:unconfirmed:{latest_id}"] = lazy_recommendation(
            rule_id="LAB-CA-CRISIS",
            trigger=lab_message(latest, patient_id),
            produced_by=SERVICE,
            severity="warning",
            title=f"Calcémie totale {t.calcium_shown(measured, latest.measured_comparator)} mmol/L : "
            "calcémie corrigée non calculable",
            text_fr=t.unconfirmed_crisis_text(measured, latest.measured_comparator),
            inputs=[
                InputUsed(
                    name="total_calcium",
                    value=measured,
                    unit="mmol/L",
                    occurred_at=latest.occurred_at,
                    source_event_id=latest.event_id,
                    comparator=latest.measured_comparator,
                )
            ],
            key=("unconfirmed", latest_id),
            missing=["albumin drawn within 48 h of the calcium"],
        )


def _censored(c: Context, d: Decisions, rid: str, v: LabValue) -> None:
    """Issue 12, LAB-CA-CRISIS (L304-306): the newest corrected calcium comes from a censored result whose bound leaves
    the > 3.5 mmol/L threshold undecided ("> 2.5 mmol/L"): no crisis alert, a warning naming the reported value with
    its comparator and the exact value to measure."""
    censored = [x for x in v.sources if x.comparator is not None and isinstance(x.value, float)]
    reported = "; ".join(
        f"{t.SOURCE_NAMES_FR.get(x.analyte, x.analyte)} {shown(float(x.value), x.comparator, x.unit)}" for x in censored
    )
    if not reported and v.value is not None:  # the bound is known only on the corrected value
        reported = f"calcémie corrigée {t.calcium_shown(v.value, v.comparator)} mmol/L"
    corrected = None if v.value is None else t.calcium_shown(v.value, v.comparator)
    missing = [
        f"exact {x.analyte} (reported {shown(float(x.value), x.comparator, x.unit)}; censored, measure again)"
        for x in censored
    ] or ["exact total calcium (the corrected calcium is censored; measure again)"]
    d.recommendations[f"calcium:censored:{rid}"] = lazy_recommendation(
        rule_id="LAB-CA-CRISIS",
        trigger=lab_message(v, c.patient_id),
        produced_by=SERVICE,
        severity="warning",
        title=t.censored_calcium_title(reported),
        text_fr=t.censored_calcium_text(reported, corrected),
        inputs=([_used(v)] if v.value is not None else []) + _provenance(v),
        key=("censored", rid, str(v.event_id)),
        missing=missing,
    )
