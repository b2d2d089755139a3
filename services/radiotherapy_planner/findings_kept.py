"""Which imaging findings a lesion keeps (pure, issue 25): `prune_findings`, what the rules read further back than
the newest findings (RT-MSCC L1397-1402: the onset of the current compression; each sign of facts.SIGNS);
HAZ-25-LOCAL-03, HAZ-22-ORDER-01."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from services.radiotherapy_planner.facts import SIGNS, FindingFact, LocalState

#: Findings kept per lesion (the newest), beside those `prune_findings` keeps for what the rules read further back.
FINDINGS_PER_LESION: Final = 6
#: Per sign, the finals reporting it kept beyond the recent ones (prune_findings): one more than the newest, so that
#: a correction of the newest falls back to the one before, as the whole history would (retention.WRITERS_KEPT).
REPORTING_KEPT: Final = 2


def prune_findings(s: LocalState, lesion_id: str, recent: timedelta | None = None) -> None:
    """Keep, of the lesion's original ("final") findings, in the total order on the facts (clinical time, recorded
    time, event ID): the newest FINDINGS_PER_LESION, corrected or not; and of those no correction names (what Lesion
    reads), per sign: every one reporting it within `recent` (retention.HORIZON) of the lesion's newest record, and
    the REPORTING_KEPT newest older ones (what it falls back to when the recent ones are withdrawn); and the edges of
    the newest run of one answer to "cord compression?" (amendments in force included) that holds an older finding:
    of a run of "yes", its first and first older one (the onset) and the last (and last older) "no" before it; of a
    run of "no", its last older one.
    RT-MSCC (L1397-1402) reads the onset of the current run: a course or a decompression on or after it treated it.
    Corrections and late studies arrive within `recent` (retention's contract), so every finding they can withdraw or
    put between two others is kept, and the walk back to the onset ends on a finding that stands. Corrections are all
    kept (they are rare, and dropping one would let the finding it corrected count again; an original dropped stays
    withdrawn by them).
    HAZ-25-LOCAL-03: with the newest six only, a compression seen on more than six studies lost its first sighting;
    its onset moved to the oldest one kept, after the course that had irradiated it, and RT-MSCC raised the emergency
    again (the course no longer "on or after" the onset). What is kept now is bounded by the signs, one run's edges
    and the lesion's last `recent` days, not by the length of its history.
    Issue 22 (HAZ-22-ORDER-01): what is kept depends on the set of records, not on the order they came in: each rule
    is "the newest ..." or "the first of ..." over the finals, and the time is the lesion's own newest record (the
    cut only moves on), so a record arriving within `recent` never needs one dropped before. Choosing among the
    *effective* findings did not, as a finding entered in error after its original was dropped left a different
    table than the same records with the error delivered first."""
    mine = [f for f in s.findings.values() if f.lesion_id == lesion_id]
    finals = sorted((f for f in mine if f.record_status == "final"), key=_total)
    if len(finals) <= FINDINGS_PER_LESION:
        return
    # by object (each record is one object of the table) and by the integer of the IDs: a UUID's hash is Python's
    keep = {id(f) for f in finals[-FINDINGS_PER_LESION:]}
    named = {f.corrects.int for f in s.findings.values() if f.corrects is not None}  # withdrawn or replaced: silent
    standing = [f for f in finals if f.event_id.int not in named]
    amended = [f for f in mine if f.record_status == "amended"]
    cut = None if recent is None else max(f.recorded_at for f in mine) - recent
    old = {id(f): cut is None or (f.occurred_at < cut and f.recorded_at < cut) for f in (*standing, *amended)}

    for sign in SIGNS:
        reporting = [f for f in standing if getattr(f, sign) is not None]
        keep.update(id(f) for f in reporting if not old[id(f)])
        keep.update(id(f) for f in [f for f in reporting if old[id(f)]][-REPORTING_KEPT:])
    answers = sorted(  # what Lesion reads: the finals standing and the amendments in force (all kept)
        (f for f in (*standing, *amended) if f.cord_compression is not None and f.event_id.int not in named),
        key=_total,
    )
    runs: list[list[FindingFact]] = []  # the runs of one answer to "cord compression?", oldest first
    for f in answers:
        if runs and runs[-1][0].cord_compression == f.cord_compression:
            runs[-1].append(f)
        else:
            runs.append([f])
    k = next((k for k in range(len(runs) - 1, -1, -1) if any(old[id(f)] for f in runs[k])), None)
    if k is not None:  # the runs after it are recent: kept whole above
        olds = [f for f in runs[k] if old[id(f)]]
        if runs[k][0].cord_compression:
            edge = [runs[k][0], olds[0]]
            if k > 0:
                edge += [runs[k - 1][-1], *[f for f in runs[k - 1] if old[id(f)]][-1:]]
        else:
            edge = [runs[k][-1], olds[-1]]
        keep.update(id(f) for f in edge)
    for f in finals:
        if id(f) not in keep:
            del s.findings[str(f.event_id)]


def _total(f: FindingFact) -> tuple[datetime, datetime, int]:
    return (f.occurred_at, f.recorded_at, f.event_id.int)
