"""The values derived from the results held: the corrected calcium (LAB-CA-CORR, L316) and the creatinine clearance
(LAB-CRCL, L1153-1156), derived again when a partner arrives, is corrected or is withdrawn. Pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from contracts.base import derived_id
from contracts.clinical import Analyte, NormalisedLab, SourceRef
from contracts.hospital import Comparator
from services.lab_normalisation.retention import _bar, _beyond, _stamp
from services.lab_normalisation.rules import (
    age_in_years,
    closest_within,
    cockcroft_gault,
    combine_bounds,
    corrected_calcium,
    flip,
)
from services.lab_normalisation.state import (
    _FIRST_OF,
    SERVICE,
    Fact,
    LabConfig,
    LabState,
    Status,
    StoredResult,
    _active,
    _Held,
    _near_slice,
    _surely_within,
)


def _derived_status(sources: list[StoredResult]) -> Status:
    if sources[0].status == "withdrawn":
        return "withdrawn"
    return "amended" if any(x.status == "amended" for x in sources) else "final"


def _recompute_corrected_calcium(
    s: LabState,
    patient_id: str,
    calcium_draws: set[str],
    window: timedelta,
    since: datetime | None = None,
    held: _Held | None = None,
) -> list[NormalisedLab]:
    """LAB-CA-CORR for the given calcium draws; publish only what changed."""
    albumins, ionised = _active(s, "albumin", held=held), _active(s, "ionised_calcium", held=held)
    out: list[NormalisedLab] = []
    # review RQ: equal draw times by result ID, never in the set's (hash seed's) order: a replay publishes the same
    for ca in sorted((s.results[r] for r in calcium_draws), key=lambda r: (r.occurred_at, r.result_id)):
        # issue 25: among those drawn near it (bisection), the same closest as among all (closest_within's order)
        near_alb = albumins[_near_slice(albumins, ca.occurred_at, window, _FIRST_OF)]
        near_ion = ionised[_near_slice(ionised, ca.occurred_at, window, _FIRST_OF)]
        alb = closest_within(ca.occurred_at, _surely_within(ca, near_alb, window), window)
        ion = closest_within(ca.occurred_at, _surely_within(ca, near_ion, window), window)
        # HAZ-25-LAB-R01: a closer one in force was dropped: "albumin missing" (insufficient data), never a farther
        # one (LAB-CA-CORR L316); the usual text, which notification translates
        if _unproven(s, ca, "albumin", alb, window):
            alb = None
        if _unproven(s, ca, "ionised_calcium", ion, window):
            ion = None
        key = (ca.event_id, ca.status, alb and alb.event_id, ion and ion.event_id)
        if _unchanged(s, f"corrected:{ca.result_id}", key):  # issue 25: nothing to publish, so nothing to make
            continue
        sources = [x for x in (ca, alb, ion) if x is not None and x.value is not None]
        value: float | None = None
        missing: list[str] = []
        comparator: Comparator | None = None
        if ca.value is not None and alb is not None and alb.value is not None:
            # unrounded: LAB-CA-CRISIS is a strict > 3.5 mmol/L (3.504 is a crisis); display rounding only
            value = corrected_calcium(ca.value, alb.value)
            # increasing in calcium, decreasing in albumin: a censored input gives a bound, or nothing
            comparator, bounded = combine_bounds([ca.comparator, flip(alb.comparator)])
            if not bounded:
                value = None
                missing.append("exact calcium or albumin (censored results in opposite directions give no bound)")
        elif ca.value is not None:
            missing.append(f"albumin drawn within {int(window.total_seconds() // 3600)} h of the calcium")
        out += _publish_derived(
            s,
            patient_id,
            "corrected_calcium",
            f"corrected:{ca.result_id}",
            ca,
            sources,
            value,
            "mmol/L",
            "LAB-CA-CORR",
            missing,
            key=key,
            comparator=comparator,
            since=since,
        )
    return out


def _unproven(s: LabState, ca: StoredResult, analyte: Analyte, paired: StoredResult | None, window: timedelta) -> bool:
    bar = _bar(s, ca, analyte, window)
    if bar is None:
        return False
    return paired is None or _beyond(ca, paired.occurred_at, paired.recorded_at, paired.result_id, bar)


def _weights(s: LabState, held: _Held | None = None) -> list[Fact[float]]:
    """The weights known, from lab results and patient records (once per derivation, issue 25)."""
    candidates: list[Fact[float]] = [
        Fact[float](value=r.value, occurred_at=r.occurred_at, recorded_at=r.recorded_at, event_id=r.event_id)
        for _, r in _active(s, "body_weight", held=held)
        if r.value is not None
    ]
    if s.weight_kg is not None:
        candidates.append(s.weight_kg)
    return candidates


def _weight_for(s: LabState, at: datetime, weights: list[Fact[float]] | None = None) -> Fact[float] | None:
    """The weight measured closest in time to `at` (ties: the later), from lab results and patient records."""
    candidates = _weights(s) if weights is None else weights
    return min(candidates, key=lambda w: (abs(w.occurred_at - at), -w.occurred_at.timestamp()), default=None)


def _weighed(s: LabState, held: _Held | None = None) -> dict[uuid.UUID, StoredResult]:
    """The weights sent as lab results, by event ID (the first held of each; issue 25: once per derivation)."""
    out: dict[uuid.UUID, StoredResult] = {}
    for r in s.results.values() if held is None else held.of("body_weight"):
        if r.analyte == "body_weight":
            out.setdefault(r.event_id, r)
    return out


def _weight_rid(s: LabState, weight: Fact[float], weighed: dict[uuid.UUID, StoredResult]) -> str | None:
    """The result ID of a weight sent as a lab result; None for a patient record's."""
    if s.weight_kg is not None and weight.event_id == s.weight_kg.event_id:
        return None
    held = weighed.get(weight.event_id)
    return None if held is None else held.result_id


def _weight_comparator(weight: Fact[float] | None, weighed: dict[uuid.UUID, StoredResult]) -> Comparator | None:
    """The comparator of a weight sent as a (censored) lab result; a patient record's weight is exact."""
    held = None if weight is None else weighed.get(weight.event_id)
    return None if held is None else held.comparator


def _unchanged(s: LabState, result_id: str, key: tuple[object, ...]) -> bool:
    """The derived value `result_id` was last published from the inputs `key` (`_publish_derived`'s signature): it
    would publish nothing (issue 25: checked before its value and references are made)."""
    return s.published_derived.get(result_id) == "|".join(map(str, key))


def _recompute_clearance(
    s: LabState,
    patient_id: str,
    cfg: LabConfig,
    since: datetime | None = None,
    only: set[str] | None = None,
    held: _Held | None = None,
) -> list[NormalisedLab]:
    """LAB-CRCL for every creatinine held (not only the newest: a planner reads the clearance at the start of
    an anti-resorptive, so an earlier one must not keep naming inputs that are now known); withdraws the
    clearance of a withdrawn creatinine. Publishes only what changed. `only`: the creatinines a delivery brought
    when it brought no weight and no patient record (issue 25: no other clearance's inputs changed)."""
    out: list[NormalisedLab] = []
    if only is not None and len(only) == 1:  # issue 25: the one creatinine a delivery brought
        brought = [s.results[rid] for rid in only if rid in s.results]
    elif only is not None:
        brought = [r for r in s.results.values() if r.result_id in only]
    else:  # every creatinine, in the table's order
        brought = held.of("creatinine") if held is not None else list(s.results.values())
    for r in brought:  # clearances derived from a creatinine that is now withdrawn
        if r.analyte == "creatinine" and r.status == "withdrawn":
            out += _publish_derived(
                s,
                patient_id,
                "creatinine_clearance",
                f"crcl:{r.result_id}",
                r,
                [],
                None,
                "mL/min",
                "LAB-CRCL",
                [],
                key=(r.event_id, "withdrawn"),
                since=since,
            )
    weights, weighed = _weights(s, held), _weighed(s, held)
    creatinines = _active(s, "creatinine", brought if only is not None else None, held)
    memo: dict[tuple[object, ...], SourceRef] = {}  # weight, age and sex references, while the facts stay the same
    for _, creat in sorted(creatinines, key=lambda tr: (tr[0], tr[1].recorded_at)):
        out += _clearance(s, patient_id, creat, cfg, since, weights, weighed, memo)
    return out


def _clearance(
    s: LabState,
    patient_id: str,
    creat: StoredResult,
    cfg: LabConfig,
    since: datetime | None = None,
    weights: list[Fact[float]] | None = None,
    weighed: dict[uuid.UUID, StoredResult] | None = None,
    memo: dict[tuple[object, ...], SourceRef] | None = None,
) -> list[NormalisedLab]:
    weighed = _weighed(s) if weighed is None else weighed
    weight = _weight_for(s, creat.occurred_at, weights)
    missing: list[str] = []
    # HAZ-25-LAB-R01: a closer weight in force was dropped: "weight" missing (insufficient data), never a farther
    # one (LAB-CRCL L1153-1156: "when any of them is missing, say so. Do not guess")
    if (bar := _bar(s, creat, "body_weight")) is not None and (
        weight is None or _beyond(creat, weight.occurred_at, weight.recorded_at, _weight_rid(s, weight, weighed), bar)
    ):
        weight = None
    if weight is None:
        missing.append("weight")
    elif abs(weight.occurred_at - creat.occurred_at) > cfg.weight_max_age:
        # LAB-CRCL: a weight that old no longer describes the patient (issue 9.9): never dosed from
        when = "before" if weight.occurred_at < creat.occurred_at else "after"
        missing.append(
            f"weight to measure again (last measured {weight.occurred_at.date()}, over {cfg.weight_max_age.days} "
            f"days {when} the creatinine)"
        )
    missing += [name for name, f in (("age (birth date)", s.birth_date), ("sex", s.sex)) if f is None]
    if s.sex is not None and s.sex.value not in ("female", "male"):
        missing.append("sex (female or male, for the Cockcroft-Gault factor)")
    # issue 12: inversely proportional to the creatinine, proportional to the weight; a censored input gives a bound
    weight_cmp = _weight_comparator(weight, weighed)
    comparator, bounded = combine_bounds([flip(creat.comparator), weight_cmp])
    if weight is not None and not missing and weight.value <= 0:
        missing.append("weight")
    if not missing and not bounded:
        missing.append("exact creatinine or weight (censored results in opposite directions give no bound)")
    key: tuple[object, ...] = (creat.event_id, creat.status, *(f and f.event_id for f in (weight, s.birth_date, s.sex)))
    if missing:
        key += ("|".join(missing),)
    result_id = f"crcl:{creat.result_id}"
    if _unchanged(s, result_id, key):  # issue 25: nothing to publish, so nothing to make
        return []
    refs = [creat.ref()]
    value: float | None = None
    if not missing:
        assert weight is not None and s.birth_date is not None and s.sex is not None
        age = age_in_years(s.birth_date.value, creat.occurred_at.date())
        assert creat.value is not None
        # unrounded: LAB-CRCL thresholds are strict (< 30 mL/min); rounding is for display only (issue 9.10)
        value = cockcroft_gault(age, weight.value, creat.value, s.sex.value == "female")
        # issue 25: the references of one derivation's inputs (frozen) made once for all its creatinines
        memo = {} if memo is None else memo
        refs += [
            memo.get(("weight", id(weight), weight_cmp))
            or memo.setdefault(
                ("weight", id(weight), weight_cmp),
                SourceRef(
                    event_id=weight.event_id,
                    analyte="body_weight",
                    value=weight.value,
                    unit="kg",
                    occurred_at=weight.occurred_at,
                    comparator=weight_cmp,
                ),
            ),
            memo.get(("age", age))
            or memo.setdefault(
                ("age", age),
                SourceRef(
                    event_id=s.birth_date.event_id,
                    analyte="age",
                    value=age,
                    unit="years",
                    occurred_at=s.birth_date.occurred_at,
                ),
            ),
            memo.get(("sex",))
            or memo.setdefault(
                ("sex",),
                SourceRef(
                    event_id=s.sex.event_id,
                    analyte="sex",
                    value=str(s.sex.value),
                    unit=None,
                    occurred_at=s.sex.occurred_at,
                ),
            ),
        ]
    return _publish_derived(
        s,
        patient_id,
        "creatinine_clearance",
        result_id,
        creat,
        [creat],
        value,
        "mL/min",
        "LAB-CRCL",
        missing,
        key=key,
        refs=refs,
        also_recorded=[f.recorded_at for f in (weight, s.birth_date, s.sex) if f is not None],
        comparator=comparator if value is not None else None,
        since=since,
    )


def _publish_derived(
    s: LabState,
    patient_id: str,
    analyte: Analyte,
    result_id: str,
    anchor: StoredResult,
    sources: list[StoredResult],
    value: float | None,
    unit: str,
    rule_id: str,
    missing: list[str],
    key: tuple[object, ...],
    refs: list[SourceRef] | None = None,
    also_recorded: list[datetime] | None = None,
    comparator: Comparator | None = None,
    since: datetime | None = None,
) -> list[NormalisedLab]:
    """Publish a derived value if its inputs changed. Its recorded_at is the newest of all its inputs' and of the
    delivery that made it change (`since`), so a re-derivation (e.g. when the weight arrives after the creatinine, or
    is withdrawn) is never older than what it replaces; and its event ID names that version, so a value that returns
    to an earlier state is not taken downstream for a second delivery of the earlier one (LAB-CORRECTION)."""
    signature = "|".join(map(str, key))
    if s.published_derived.get(result_id) == signature:
        return []
    if anchor.status == "withdrawn" and result_id not in s.published_derived and _stamp(s, anchor.result_id) is None:
        return []  # nothing was derived from it (a dropped result's derived value was: withdrawn with it, issue 25)
    s.published_derived[result_id] = signature
    recorded_at = max(
        [x.recorded_at for x in [anchor, *sources]] + (also_recorded or []) + ([since] if since is not None else [])
    )
    eid = derived_id(analyte, signature, recorded_at.isoformat())  # the same text as from `key`
    status = _derived_status([anchor, *sources])
    return [
        NormalisedLab(
            event_id=eid,
            patient_id=patient_id,
            occurred_at=anchor.occurred_at,
            recorded_at=recorded_at,
            source=SERVICE,
            analyte=analyte,
            result_id=result_id,
            value=None if status == "withdrawn" else value,
            unit=unit,
            status=status,
            rule_ids=[rule_id],
            derived_from=refs if refs is not None else [x.ref() for x in sources],
            missing=[] if status == "withdrawn" else missing,
            comparator=None if status == "withdrawn" else comparator,
            occurred_at_precision=anchor.precision,
        )
    ]
