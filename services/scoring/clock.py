"""Scoring's own clock (issue 18): the moments a decision may change with no new event, so currency windows pass
on time. Pure. A crisis calcium stops being current (LAB-CA-CRISIS: an emergency from current data only), a
fracture or cord compression (seen, or inferred from an epidural extension with a neurological deficit) leaves its
currency window (CLASS-SRE `current_until`), a lesion's pain, the staging
or the life-expectancy estimate ages out, a future-dated fact becomes current, and what remains of the estimate
crosses 1 year, 3 months or 6 weeks (MIRELS-HIGH L1324, SURG-LE L2804-2806). A deadline at which nothing changes
costs one decision and publishes nothing (the transition only publishes differences)."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

from services.scoring import rules as r
from services.scoring.state import Assessment, LabValue, Lesion, ScoringState, same_part
from shared.clinical.facts import Fact
from shared.clinical.life_expectancy import THRESHOLDS, when_remaining_reaches
from shared.clinical.newest import instant

#: a tick comes this long after the moment it is for (a decision at the moment itself already sees the change)
AFTER: Final = timedelta(seconds=1)


def next_due(
    s: ScoringState, now: datetime, policy: r.Policy = r.DEFAULT_POLICY, patient: str | None = None
) -> datetime | None:
    """With the `patient` the state belongs to, each part's moments are remembered (per patient and part)."""
    if patient is None:
        return _scanned(s, now, policy)
    # issue 25: the moments are searched as instants (shared/clinical/newest.instant), each moment kept with its time
    after = instant(now - AFTER)
    windows: list[datetime] = []  # moments a fact becomes current or too old (a tick just after them)
    crossings: list[datetime] = []  # moments what remains of an estimate crosses a threshold (a tick just after)
    # issue 25: each lesion's moments, remembered by lesion; the first after now is the first of the firsts (the same
    # moment a sort of them all gives, lesion by lesion on ties)
    firsts = []
    for keys, moments in _lesion_windows(patient, s.lesions, policy):
        i = bisect.bisect_right(keys, after)
        if i < len(keys):
            firsts.append(moments[i])
    parts: tuple[tuple[str, Any, Callable[[Any, r.Policy], Times]], ...] = (
        ("labs", s.labs, _lab_times),
        ("assessment", s.assessment, _assessment_times),
    )
    for name, part, times in parts:
        (wk, w), (ck, c) = _memo((patient, name, policy), part, policy, times)
        i = bisect.bisect_right(wk, after)  # the first with t + AFTER > now
        if i < len(w):
            windows.append(w[i])
        if name == "labs" and firsts:
            # the lesions' between the labs' and the assessment's, as `_scanned`: `min` keeps the first of equal
            # instants, so on a tie the deadline keeps that part's offset (review RZH: the stored bytes)
            windows.append(min(firsts))
        # the first crossing with t + AFTER > now, as the windows: one at `now` exactly still changes the decision
        # just after it (strictly after now missed it: HAZ-26-LE-01)
        j = bisect.bisect_right(ck, after)
        if j < len(c):
            crossings.append(c[j])
    return min((t + AFTER for t in (*windows, *crossings)), default=None)


def _scanned(s: ScoringState, now: datetime, policy: r.Policy) -> datetime | None:
    """Issue 25 (helper ZC): `next_due` with no patient (moments not remembered: tests, a full scan), in one pass over
    them, unsorted: the first moment after a time in sorted order is the least of those after it, and among equal
    moments both give the first made (`sorted` is stable, `min` keeps the first), in the same order of parts."""
    lab, lesion, assessment = _lab_moments(s.labs, policy), _lesion_moments(s.lesions, policy), s.assessment
    after = now - AFTER
    firsts = [min((t for t in moments if t > after), default=None) for moments in (lab, lesion)]
    firsts.append(min((t for t in _assessment_moments(assessment, policy) if t > after), default=None))
    crossing = min((t for t in _crossings(assessment) if t > after), default=None)  # HAZ-26-LE-01
    return min((t + AFTER for t in (*firsts, crossing) if t is not None), default=None)


def _lab_moments(labs: dict[str, LabValue], policy: r.Policy) -> Iterator[datetime]:
    tolerance, valid = policy.future_tolerance, policy.calcium_current
    for v in labs.values():
        yield v.occurred_at - tolerance
        yield v.occurred_at + valid


def _lesion_moments(lesions: dict[str, Lesion], policy: r.Policy) -> Iterator[datetime]:
    tolerance, valid = policy.future_tolerance, policy.lesion_event_current
    for lesion in lesions.values():
        for f in (
            lesion.cord_compression,
            lesion.fracture,
            lesion.fracture_seen_last,
            lesion.compression_seen_last,
            lesion.epidural_stated,
            lesion.compression_stated,
        ):
            if f is not None:
                yield f.occurred_at - tolerance
                yield f.occurred_at + valid


def _assessment_moments(a: Assessment, policy: r.Policy) -> Iterator[datetime]:
    """`_assessment_times`' windows, in the order it makes them."""
    tolerance = policy.future_tolerance
    pains: list[Fact[Any] | None] = [
        a.pain_character,
        a.pain_intensity,
        *a.lesion_pain_intensity.values(),
        *a.lesion_pain_character.values(),
    ]
    facts = [(f.occurred_at, policy.lesion_pain_valid) for f in pains if f is not None]
    if a.neurological_deficit is not None:
        facts.append((a.neurological_deficit.occurred_at, policy.lesion_event_current))
    facts += [(g.occurred_at, policy.staging_valid) for g in (a.primary_controlled, a.extra_osseous) if g is not None]
    facts += [(le.occurred_at, policy.life_expectancy_valid) for le in a.life_expectancy_estimates]
    for at, valid in facts:
        yield at - tolerance
        yield at + valid


def _crossings(a: Assessment) -> Iterator[datetime]:
    for le in a.life_expectancy_estimates:
        for m in THRESHOLDS:
            yield when_remaining_reaches(float(le.value), le.occurred_at, m)


#: moments sorted by time, as instants (newest.instant: searched as integers) and as the times themselves
Sorted = tuple[list[int], list[datetime]]
Times = tuple[Sorted, Sorted]
#: issue 25: each part's moments (sorted), per patient and part, for the part's object: a transition copies only the
#: table it changes (state.merge), so an event computes again only its own part's (the parts are never changed in
#: place once in a state); a new object replaces the entry (the patients seen last are kept)
MEMO_SIZE: Final = 8192
_MEMO: OrderedDict[tuple[str, str, r.Policy], tuple[object, int, Times]] = OrderedDict()
_LOCK: Final = threading.Lock()  # the runtime applies events in its worker thread


def _memo(
    key: tuple[str, str, r.Policy], part: Any, policy: r.Policy, times: Callable[[Any, r.Policy], Times]
) -> Times:
    size = len(part) if isinstance(part, dict) else 0
    with _LOCK:
        hit = _MEMO.get(key)
        if hit is not None and hit[0] is part and hit[1] == size:
            _MEMO.move_to_end(key)
            return hit[2]
    if hit is not None and hit[1] == size and same_part(hit[0], part):  # by content (a state parsed again)
        return hit[2]
    found = times(part, policy)
    with _LOCK:
        _MEMO[key] = (part, size, found)
        _MEMO.move_to_end(key)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return found


def _sorted(times: Iterable[datetime]) -> Sorted:
    """The times in order (equal ones as given), with their instants."""
    pairs = sorted(((instant(t), t) for t in times), key=_first)
    return [k for k, _ in pairs], [t for _, t in pairs]


def _first(pair: tuple[int, datetime]) -> int:
    return pair[0]


def _windows(facts: Iterable[tuple[datetime, timedelta]], policy: r.Policy) -> Sorted:
    """It becomes current (future-dated, within the skew tolerance), then it is too old."""
    return _sorted(t for at, valid in facts for t in (at - policy.future_tolerance, at + valid))


def _lab_times(labs: dict[str, LabValue], policy: r.Policy) -> Times:
    return _windows(((v.occurred_at, policy.calcium_current) for v in labs.values()), policy), ([], [])


def _one_lesion_times(lesion: Lesion, policy: r.Policy) -> Sorted:
    seen: list[Fact[Any] | None] = [lesion.cord_compression, lesion.fracture, lesion.fracture_seen_last]
    # with an inferred compression's (CLASS-SRE, RT-MSCC)
    seen += [lesion.compression_seen_last, lesion.epidural_stated, lesion.compression_stated]
    return _windows(((f.occurred_at, policy.lesion_event_current) for f in seen if f is not None), policy)


#: issue 25: each lesion's moments, per patient and lesion, for the lesion's object (a finding replaces one lesion)
_BY_LESION: OrderedDict[tuple[str, str, r.Policy], tuple[Lesion, Sorted]] = OrderedDict()


def _lesion_windows(patient: str, lesions: dict[str, Lesion], policy: r.Policy) -> list[Sorted]:
    """Each lesion's moments (sorted), made again only for a lesion that changed."""
    out: list[Sorted] = []
    for lesion_id, lesion in lesions.items():
        key = (patient, lesion_id, policy)
        with _LOCK:
            hit = _BY_LESION.get(key)
        if hit is not None and hit[0] is lesion:
            out.append(hit[1])
            continue
        found = _one_lesion_times(lesion, policy)
        out.append(found)
        with _LOCK:
            _BY_LESION[key] = (lesion, found)
            _BY_LESION.move_to_end(key)
            while len(_BY_LESION) > MEMO_SIZE * 4:
                _BY_LESION.popitem(last=False)
    return out


def _assessment_times(a: Assessment, policy: r.Policy) -> Times:
    pains: list[Fact[Any] | None] = [
        a.pain_character,
        a.pain_intensity,
        *a.lesion_pain_intensity.values(),
        *a.lesion_pain_character.values(),
    ]
    facts = [(f.occurred_at, policy.lesion_pain_valid) for f in pains if f is not None]
    if a.neurological_deficit is not None:  # with an epidural extension, a cord compression current while both are
        facts.append((a.neurological_deficit.occurred_at, policy.lesion_event_current))  # (CLASS-SRE, RT-MSCC)
    facts += [(g.occurred_at, policy.staging_valid) for g in (a.primary_controlled, a.extra_osseous) if g is not None]
    facts += [(le.occurred_at, policy.life_expectancy_valid) for le in a.life_expectancy_estimates]
    crossings = _sorted(
        when_remaining_reaches(float(le.value), le.occurred_at, m)
        for le in a.life_expectancy_estimates
        for m in THRESHOLDS
    )
    return _windows(facts, policy), crossings


def clear() -> None:
    """Forget what is memoised (a cold process)."""
    with _LOCK:
        _MEMO.clear()
        _BY_LESION.clear()
