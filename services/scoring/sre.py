"""CLASS-SRE: the skeletal-related events of a lesion or a treatment (pathological fracture, cord compression, RT for
pain, preventive orthopaedic surgery). Pure. Split from lesions.py (Mirels and SINS).

A suspected lesion (IMG-ISOLATED) records no SRE.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from contracts.base import InputUsed, derived_id
from contracts.clinical import SkeletalEvent
from contracts.hospital import ImagingFinding, Treatment, TreatmentEvent
from services.scoring.common import SERVICE, Context, Decisions, FamilyMemo, around
from services.scoring.state import Lesion
from shared.clinical.dates import local_day
from shared.clinical.facts import Fact


def treats(treatment: Treatment, f: ImagingFinding) -> bool:
    """Whether a local treatment was given to this lesion: by its lesion ID when the treatment carries one, else by
    its site (the lesion ID, the skeletal site or its bone, e.g. "femur" for "femur_neck") or vertebral level."""
    lesion_id = getattr(treatment, "lesion_id", None)
    if lesion_id is not None:
        return bool(lesion_id == f.lesion_id)
    site = getattr(treatment, "site", None)
    if site is None:
        return False
    level = getattr(treatment, "vertebral_level", None)
    names = {f.lesion_id, f.skeletal_site, f.skeletal_site.split("_")[0]}
    return site in names or (f.vertebral_level is not None and f.vertebral_level in (site, level))


def _treated_by(
    local: Iterable[tuple[TreatmentEvent, str]],
    f: ImagingFinding,
    since: Fact[Any],
    kinds: set[str],
    any_date: frozenset[str] = frozenset(),
) -> list[TreatmentEvent]:
    """Treatments of this lesion of the given procedures/intents among the `local` ones (Context.local_treatments),
    given on or after the event began (those in `any_date` whatever their date: a fracture fixation fixes the
    lesion's fracture even if imaging dated after it still shows the fracture)."""
    out = []
    day = local_day(since.occurred_at)
    for e, what in local:
        tr = e.treatment
        if what in kinds and treats(tr, f) and (what in any_date or tr.on >= day):
            out.append(e)
    return sorted(out, key=lambda e: (e.treatment.on, str(e.event_id)))


def _treatment_used(e: TreatmentEvent) -> InputUsed:
    tr = e.treatment
    what = getattr(tr, "procedure", None) or getattr(tr, "intent", None)
    return InputUsed(
        name=f"{tr.kind}:{what}:{getattr(tr, 'site', '')}",
        value=tr.on.isoformat(),
        occurred_at=e.occurred_at,
        source_event_id=e.event_id,
    )


def _lesion_sre(
    c: Context,
    kind: str,
    lesion_id: str,
    first: Fact[Any],
    seen_last: Fact[Any],
    evidence: list[InputUsed],
    treated: list[TreatmentEvent],
) -> SkeletalEvent:
    """A fracture or cord compression of a lesion: current while not treated and recently seen; each version
    (current, historical) has its own ID, so a change withdraws the earlier one."""
    ref = c.reference
    fresh = ref is None or ref - seen_last.occurred_at <= c.policy.lesion_event_current
    current = fresh and not treated
    return SkeletalEvent(
        event_id=derived_id("sre", kind, c.patient_id, lesion_id, *(() if current else ("historical",))),
        patient_id=c.patient_id,
        occurred_at=first.occurred_at,
        recorded_at=first.recorded_at,
        source=SERVICE,
        kind=kind,
        rule_id="CLASS-SRE",
        evidence=evidence + [_treatment_used(e) for e in treated],
        lesion_id=lesion_id,
        current=current,
        evidence_at=seen_last.occurred_at,
        current_until=seen_last.occurred_at + c.policy.lesion_event_current if current else None,
    )


def _compression(c: Context, lesion: Lesion) -> tuple[Fact[Any], Fact[Any], list[InputUsed]] | None:
    """Cord compression (CLASS-SRE, RT-MSCC "compression médullaire avérée"): shown on imaging, or an epidural
    extension of a spinal lesion with a neurological deficit reported after any imaging that ruled compression out.
    None when it does not hold now (never shown, or resolved: a newer finding states no compression, or the lesion
    is resolved). Returns (first evidence, newest evidence, evidence inputs)."""
    f, deficit = lesion.latest, c.usable(c.s.assessment.neurological_deficit)
    stated, epidural = lesion.compression_stated, lesion.epidural_stated
    if lesion.effective_status() == "resolved":
        return None
    if stated is not None and stated.value and lesion.cord_compression and lesion.compression_seen_last:
        used = [lesion.cord_compression.used(f"cord_compression:{f.lesion_id}")]
        if epidural is not None and epidural.value:
            used.append(epidural.used(f"epidural_extension:{f.lesion_id}"))
        if deficit is not None and deficit.value:
            used.append(deficit.used("neurological_deficit"))
        return lesion.cord_compression, lesion.compression_seen_last, used
    spinal = f.skeletal_site in ("spine", "sacrum")
    if (
        spinal
        and epidural is not None
        and epidural.value
        and deficit is not None
        and deficit.value
        and (stated is None or deficit.order() > stated.order())
    ):
        older, newer = sorted((epidural, deficit), key=lambda x: x.order())
        # it began when both held (the newer); it is current only while both are recent (the older)
        return newer, older, [epidural.used(f"epidural_extension:{f.lesion_id}"), deficit.used("neurological_deficit")]
    return None


#: issue 25: each lesion's SREs by lesion, treatments and deficit, and by where the reference time falls among their
#: facts' windows; each treatment's SRE by its record, kind and lesion
SRE_MEMO: Final = FamilyMemo(size=16384)
TREATMENT_SRE_SIZE: Final = 8192
_TREATMENT_SRES: OrderedDict[tuple[str, str, str | None, str], tuple[TreatmentEvent, SkeletalEvent]] = OrderedDict()
_LOCK: Final = threading.Lock()  # the runtime applies events in its worker thread
_FIXING: Final = frozenset({"fracture_fixation", "prophylactic_fixation"})
#: per patient: its lesions table (the object), what the index is made of, and the index (one entry a patient)
INDEXES_SIZE: Final = 4096
_INDEXES: OrderedDict[str, tuple[dict[str, Lesion], tuple[tuple[str, str, str, str | None], ...], _LesionIndex]] = (
    OrderedDict()
)


def _reads_deficit(lesion: Lesion) -> bool:
    """Whether `_compression` reads the neurological deficit for this lesion: a compression shown on imaging (its
    evidence) or an epidural extension stated (an inferred compression, RT-MSCC)."""
    epidural = lesion.epidural_stated
    return lesion.cord_compression is not None or (epidural is not None and bool(epidural.value))


def decide_sres(c: Context, d: Decisions) -> None:
    """CLASS-SRE for lesions and treatments. One fracture is one SRE: a fixation of a lesion whose fracture was seen
    on imaging makes that SRE historical instead of adding a second one."""
    policy, deficit = c.policy, c.s.assessment.neurological_deficit
    merged: set[str] = set()  # fixation surgeries of a fracture seen on imaging
    # issue 25 (helper ZC): with no surgery or radiotherapy that counts (Context.local_treatments), no treatment makes a
    # lesion's SRE historical nor is an SRE itself: the lesions' index is not needed
    index = _index(c) if c.local_treatments else None
    local = {} if index is None else _local_by_lesion(c, index)
    for lesion_id, lesion in c.s.lesions.items():
        if lesion.effective_status() == "suspected":
            continue  # IMG-ISOLATED: an unconfirmed lesion starts nothing
        # issue 25: a lesion's SREs read the lesion, the local treatments of it that make them historical (by
        # object, in order) and the deficit only when they can use it: another lesion's treatment, a drug or an
        # assessment without a compression to read it for decides nothing here again
        if lesion.fracture is None and not _reads_deficit(lesion):
            continue  # issue 25 (helper ZC): never a fracture, a compression or an epidural extension: no SRE to decide
        mine = local.get(lesion_id, ())
        read = deficit if _reads_deficit(lesion) else None

        def moments(x: Lesion = lesion, read: Fact[Any] | None = read) -> list[datetime]:
            facts: list[Fact[Any] | None] = [read, x.cord_compression, x.fracture, x.fracture_seen_last]
            facts += [x.compression_seen_last, x.epidural_stated, x.compression_stated]
            window = policy.lesion_event_current
            return [m for f in facts if f is not None for m in around(f.occurred_at, policy, window)]

        found = SRE_MEMO.decide(
            (c.patient_id, policy, lesion_id),
            (lesion, mine, read),
            None,
            moments,
            c.at,
            functools.partial(_lesion_sres, c, lesion_id, lesion, mine),
            d,
            c.memo,
        )
        merged |= found.fixations
    if index is not None:
        d.sres.update(_treatment_sres(c, index, frozenset(merged)))


def _treatment_sres(c: Context, index: _LesionIndex, merged: frozenset[str]) -> dict[str, SkeletalEvent]:
    """The SREs of the treatments themselves (RT for pain, orthopaedic surgery, a fracture known from its fixation
    only), by ID; `merged`: the fixations already counted with a fracture seen on imaging. Issue 25: made again only
    when the treatments that count, the lesions' index or `merged` change (per patient)."""
    with _LOCK:
        hit = _BY_TREATMENTS.get(c.patient_id) if c.memo else None
    if hit is not None and hit.treatments is c.treatments and hit.index is index and hit.merged == merged:
        assert hit.sres is not None
        return hit.sres
    out: dict[str, SkeletalEvent] = {}
    for e in c.treatments:  # an entered-in-error or corrected record is no SRE (issue 18.7)
        key, tr = str(e.event_id), e.treatment
        kind = None
        if tr.kind == "radiotherapy" and tr.intent == "pain":
            kind = "radiotherapy_for_pain"
        elif key in merged:
            continue  # the fixation of a fracture already counted from imaging: one fracture, one SRE
        elif tr.kind == "surgery" and tr.procedure == "prophylactic_fixation":
            kind = "orthopaedic_surgery"
        elif tr.kind == "surgery" and tr.procedure == "fracture_fixation":
            kind = "pathological_fracture"  # a fracture known from its fixation only
        if kind is None:
            continue
        lesion_ids = _treated_lesions(tr, index)
        sre = _treatment_sre(c.patient_id, kind, e, next(iter(lesion_ids)) if len(lesion_ids) == 1 else None)
        out[str(sre.event_id)] = sre
    if c.memo:
        with _LOCK:  # an entry is never changed: a new one replaces it (the lock guards the table only)
            entry = _BY_TREATMENTS.get(c.patient_id)
            same = entry is not None and entry.treatments is c.treatments and entry.index is index
            local = entry.local if same and entry is not None else None
            _remember(_BY_TREATMENTS, c.patient_id, _Treated(c.treatments, index, local, merged, out))
    return out


@dataclass(frozen=True)
class _Treated:
    """Per patient, for the treatments that count (Context.treatments, by object) and the lesions' index (by
    object): each lesion's local treatments that `_lesion_sres` reads, and the treatments' own SREs for `merged`."""

    treatments: list[TreatmentEvent]
    index: _LesionIndex
    local: dict[str, tuple[tuple[TreatmentEvent, str], ...]] | None
    merged: frozenset[str] | None = None
    sres: dict[str, SkeletalEvent] | None = None


_BY_TREATMENTS: OrderedDict[str, _Treated] = OrderedDict()


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Under _LOCK: `value` for `key`, the least recently used out past INDEXES_SIZE."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > INDEXES_SIZE:
        table.popitem(last=False)


@dataclass
class _LesionIndex:
    """The lesions by what `treats` matches a treatment on: the lesion ID, a site name (the lesion ID, the skeletal
    site, its bone), a vertebral level."""

    by_id: dict[str, set[str]]
    by_name: dict[str, set[str]]
    by_level: dict[str, set[str]]


def _index(c: Context) -> _LesionIndex:
    """The patient's lesions indexed once per what it is made of (issue 25: a treatment's lesions are looked up, not
    matched against every lesion; a finding that changes no lesion's ID, site or level keeps the index)."""
    lesions = c.s.lesions
    with _LOCK:
        hit = _INDEXES.get(c.patient_id) if c.memo else None
    if hit is not None and hit[0] is lesions:  # the same table (an event other than a finding): nothing to compare
        return hit[2]
    key = tuple(
        (lid, x.latest.lesion_id, x.latest.skeletal_site, x.latest.vertebral_level) for lid, x in lesions.items()
    )
    if hit is not None and hit[1] == key:
        if c.memo:
            with _LOCK:
                _remember(_INDEXES, c.patient_id, (lesions, key, hit[2]))
        return hit[2]
    index = _LesionIndex({}, {}, {})
    for lid, lesion_id, site, level in key:
        index.by_id.setdefault(lesion_id, set()).add(lid)
        for name in (lesion_id, site, site.split("_")[0]):
            index.by_name.setdefault(name, set()).add(lid)
        if level is not None:
            index.by_level.setdefault(level, set()).add(lid)
    if c.memo:
        with _LOCK:
            _remember(_INDEXES, c.patient_id, (lesions, key, index))
    return index


#: the procedures and intents of a local treatment that make a lesion's fracture or compression SRE historical
_MAKES_HISTORICAL: Final = frozenset({*_FIXING, "decompression", "cord_compression"})


def _local_by_lesion(c: Context, index: _LesionIndex) -> dict[str, tuple[tuple[TreatmentEvent, str], ...]]:
    """Per lesion (by key), the local treatments of it (Context.local_treatments, in that order) of a procedure or
    intent `_lesion_sres` reads: `treats` holds for them (`_treated_lesions`, from the index)."""
    with _LOCK:
        hit = _BY_TREATMENTS.get(c.patient_id) if c.memo else None
    if hit is not None and hit.treatments is c.treatments and hit.index is index and hit.local is not None:
        return hit.local
    found: dict[str, list[tuple[TreatmentEvent, str]]] = {}
    for e, what in c.local_treatments:
        if what in _MAKES_HISTORICAL:
            for lesion_id in _treated_lesions(e.treatment, index):
                found.setdefault(lesion_id, []).append((e, what))
    out = {k: tuple(v) for k, v in found.items()}
    if c.memo:
        with _LOCK:
            entry = _BY_TREATMENTS.get(c.patient_id)
            same = entry is not None and entry.treatments is c.treatments and entry.index is index
            merged, sres = (entry.merged, entry.sres) if same and entry is not None else (None, None)
            _remember(_BY_TREATMENTS, c.patient_id, _Treated(c.treatments, index, out, merged, sres))
    return out


def _treated_lesions(tr: Treatment, index: _LesionIndex) -> set[str]:
    """The lesions `treats(tr, lesion.latest)` holds for, from the index."""
    lesion_id = getattr(tr, "lesion_id", None)
    if lesion_id is not None:
        return index.by_id.get(lesion_id, set())
    site = getattr(tr, "site", None)
    if site is None:
        return set()
    level = getattr(tr, "vertebral_level", None)
    found = index.by_name.get(site, set()) | index.by_level.get(site, set())
    return found | index.by_level.get(level, set()) if level is not None else found


def _treatment_sre(patient_id: str, kind: str, e: TreatmentEvent, lesion_id: str | None) -> SkeletalEvent:
    """A radiotherapy for pain or an orthopaedic surgery as an SRE (made once per record, kind and lesion)."""
    memo_key = (str(e.event_id), kind, lesion_id, patient_id)
    with _LOCK:
        hit = _TREATMENT_SRES.get(memo_key)
    if hit is not None and (hit[0] is e or hit[0] == e):
        return hit[1]
    sre = SkeletalEvent(
        event_id=derived_id("sre", kind, str(e.event_id)),
        patient_id=patient_id,
        occurred_at=e.occurred_at,
        recorded_at=e.recorded_at,
        source=SERVICE,
        kind=kind,
        rule_id="CLASS-SRE",
        evidence=[_treatment_used(e)],
        lesion_id=lesion_id,
        current=False if kind == "pathological_fracture" else None,  # already fixed
    )
    with _LOCK:
        _TREATMENT_SRES[memo_key] = (e, sre)
        _TREATMENT_SRES.move_to_end(memo_key)
        while len(_TREATMENT_SRES) > TREATMENT_SRE_SIZE:
            _TREATMENT_SRES.popitem(last=False)
    return sre


def _lesion_sres(
    c: Context, lesion_id: str, lesion: Lesion, local: Iterable[tuple[TreatmentEvent, str]], d: Decisions
) -> None:
    """A lesion's fracture and cord compression SREs; the fixations that count its fracture in `d.fixations`.
    `local`: the local treatments to look among (Context.local_treatments, or those of this lesion)."""
    f = lesion.latest
    if lesion.fracture is not None and lesion.fracture_seen_last is not None:
        fixed = _treated_by(local, f, lesion.fracture, set(_FIXING), frozenset({"fracture_fixation"}))
        d.fixations |= {str(e.event_id) for e in fixed}
        sre = _lesion_sre(
            c,
            "pathological_fracture",
            lesion_id,
            lesion.fracture,
            lesion.fracture_seen_last,
            [lesion.fracture.used(f"pathological_fracture:{lesion_id}")],
            fixed,
        )
        d.sres[str(sre.event_id)] = sre
    compression = _compression(c, lesion)
    if compression is not None:
        first, last, used = compression
        treated = _treated_by(local, f, first, {"decompression", "cord_compression"})
        sre = _lesion_sre(c, "cord_compression", lesion_id, first, last, used, treated)
        d.sres[str(sre.event_id)] = sre


def clear() -> None:
    """Forget what is memoised (a cold process)."""
    with _LOCK:
        _TREATMENT_SRES.clear()
        _INDEXES.clear()
        _BY_TREATMENTS.clear()
