"""The per-patient lab aggregate's transition: one delivery's demographics and results applied (LAB-CORRECTION,
LAB-VITD, LAB-CTX), what they change derived again (derived.py: LAB-CA-CORR, LAB-CRCL), then retention
(retention.py). No I/O."""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from contracts.base import derived_id
from contracts.clinical import NormalisedLab
from contracts.hospital import PatientRecord
from services.lab_normalisation.derived import _recompute_clearance, _recompute_corrected_calcium
from services.lab_normalisation.ingest import Ingested, LabInput
from services.lab_normalisation.retention import _PARTNERS_OF, _bar_dropped, _prune, _stamp
from services.lab_normalisation.rules import (
    ctx_interpretability,
    vitamin_d_bounded_class,
)
from services.lab_normalisation.state import _AT, _DAY, SERVICE, Fact, LabConfig, LabState, Status, StoredResult, _Held
from services.lab_normalisation.units import value_in
from shared.errors import Rejected

#: what the service (app.py) and tests use: the aggregate, its configuration and its transition
__all__ = ["LabConfig", "LabState", "apply_ingested"]


def _status(status: str) -> Status:
    if status == "entered-in-error":
        return "withdrawn"
    return "final" if status == "final" else "amended"


def apply_ingested(state: LabState, batch: Ingested, cfg: LabConfig) -> tuple[LabState, list[NormalisedLab]]:
    """Apply one delivery: demographics first, then results, then re-derive what they affect."""
    # A shallow copy is enough: stored results and facts are replaced, never changed in place; the stamps are copied
    # where retention changes them (_prune), so that an unchanged table keeps its stored JSON (issue 25)
    s = state.model_copy(
        update={
            "results": dict(state.results),
            "published_derived": dict(state.published_derived),
        }
    )
    out: list[NormalisedLab] = []
    for record in batch.patients:
        _apply_patient(s, record)
    calcium_draws: set[str] = set()  # calcium result_ids whose corrected value may have changed
    # the horizon of the last retention (HAZ-25-LAB-02): the newest draw held was kept (its analyte's newest)
    horizon = max(map(_AT, state.results.values()), default=None)
    unplaced: list[str] = []  # review RL (HAZ-25-LAB-02): results the evicted stamps' watermark cannot place
    for lab in batch.labs:
        try:
            published = _apply_result(s, lab, cfg, None if horizon is None else horizon - cfg.retention)
        except _Unplaced:
            unplaced.append(lab.analyte)
            continue
        if published is None:
            continue
        out.append(published)
        if lab.analyte == "total_calcium":
            calcium_draws.add(lab.result.result_id)
        elif lab.analyte in ("albumin", "ionised_calcium"):  # may re-pair any calcium drawn within the window
            t = lab.result.occurred_at
            calcium_draws |= {
                r.result_id
                for r in s.results.values()
                if r.analyte == "total_calcium" and abs(r.occurred_at - t) <= cfg.ca_albumin_window
            }
    if unplaced:  # never silently (nothing is lost): the message to the dead letter, or a note on what it published
        names = ", ".join(sorted(set(unplaced)))
        if not out:
            raise Rejected(UNPLACED.format(analyte=names))
        out = [o.model_copy(update={"notes": [*o.notes, UNPLACED_NOTE.format(analyte=names)]}) for o in out]
    # LAB-CORRECTION: a value derived again is learnt with this delivery: never recorded before it (a withdrawal
    # that returns a derived value to an earlier state is a newer fact than the value it replaces)
    since = max([x.result.recorded_at for x in batch.labs] + [p.recorded_at for p in batch.patients], default=None)
    held = _Held(s.results)  # no result changes from here until retention has read them (issue 25)
    if calcium_draws:
        out += _recompute_corrected_calcium(s, batch.patient_id, calcium_draws, cfg.ca_albumin_window, since, held)
    if batch.patients or any(x.analyte == "body_weight" for x in batch.labs):
        out += _recompute_clearance(s, batch.patient_id, cfg, since, held=held)
    elif creatinines := {x.result.result_id for x in batch.labs if x.analyte == "creatinine"}:
        out += _recompute_clearance(s, batch.patient_id, cfg, since, creatinines, held)
    _prune(s, cfg, held)
    return s, out


def _apply_patient(s: LabState, r: PatientRecord) -> None:
    """Absent fields are unknown: they leave what is known unchanged (never defaulted)."""

    prov = {"occurred_at": r.occurred_at, "recorded_at": r.recorded_at, "event_id": r.event_id}
    if r.birth_date is not None and (b := Fact[date](value=r.birth_date, **prov)).newer_than(s.birth_date):
        s.birth_date = b
    if r.sex is not None and (x := Fact[str](value=r.sex, **prov)).newer_than(s.sex):
        s.sex = x
    if r.weight_kg is not None:
        measured = r.occurred_at
        if r.weight_measured_at is not None:
            measured = datetime.combine(r.weight_measured_at, datetime.min.time(), r.occurred_at.tzinfo)
        w = Fact[float](value=r.weight_kg, occurred_at=measured, recorded_at=r.recorded_at, event_id=r.event_id)
        if w.newer_than(s.weight_kg):
            s.weight_kg = w


#: review RL (HAZ-25-LAB-02 residual): the dead letter's reason for a message whose results the evicted stamps'
#: watermark cannot place, when nothing else of it is published
UNPLACED: Final = (
    "LAB-CORRECTION: a {analyte} result with no version held, drawn and recorded no later than versions of results "
    "no longer held (more than LAB_RESULT_STAMPS of this patient's results dropped within LAB_RETENTION_DAYS), cannot "
    "be placed: it may be a late older version of one of them (which must not overwrite the newer one) or a new "
    "result. Not applied, nor the rest of this message (none of it published): check it with the laboratory; a new "
    "result sent again with its current recorded time is applied"
)
#: the same, in French, on each result published from a message that also held such a result (its other results are
#: applied: a new value is never held back for an old one)
UNPLACED_NOTE: Final = (
    "Un autre résultat de ce message ({analyte}) n'a pas pu être placé : sans version connue, prélevé et enregistré "
    "avant des résultats qui ne sont plus conservés, il peut être une version ancienne arrivée en retard ou un "
    "résultat nouveau. Il n'est pas pris en compte : à vérifier auprès du laboratoire (LAB-CORRECTION)."
)


class _Unplaced(Exception):
    """A result the evicted stamps' watermark cannot place (HAZ-25-LAB-02): see `UNPLACED`."""


def _apply_result(s: LabState, lab: LabInput, cfg: LabConfig, horizon: datetime | None = None) -> NormalisedLab | None:
    """LAB-CORRECTION: a newer version of a result_id replaces the older one (by recorded_at); an older
    version arriving late changes nothing; entered-in-error withdraws it. `horizon`: the last retention's."""
    r = lab.result
    previous = s.results.get(r.result_id)
    if previous is not None and previous.recorded_at >= r.recorded_at and not _corrects_at_tie(previous, lab):
        return None
    stamp = _stamp(s, r.result_id) if previous is None else None
    # HAZ-25-LAB-02 (LAB-CORRECTION): a result drawn where stamps were evicted (within `retention`) may be one of
    # them, whose newest version was recorded at the latest at `evicted[1]`: a version no newer is never published again
    guessed = (
        previous is None
        and stamp is None
        and s.evicted is not None
        and horizon is not None
        and horizon <= r.occurred_at <= s.evicted[0]
    )
    if guessed:
        assert s.evicted is not None
        stamp = s.evicted[1]
    # an older version of a result no longer kept whole changes nothing (issue 25); at an equal time, a correction of
    # a result dropped final (without a `revised` stamp) is the newer version
    tie_corrects = stamp == r.recorded_at and r.result_id not in s.revised and r.status != "final"
    if stamp is not None and stamp >= r.recorded_at and not tie_corrects:
        if guessed:  # review RL: never ignored silently (apply_ingested: a dead letter, or a note on the others)
            raise _Unplaced
        return None
    if guessed:  # held as a stamp would (HAZ-25-LAB-R02: its withdrawal also withdraws what was derived from it)
        s.dropped = {**s.dropped, r.result_id: (r.occurred_at, stamp or r.recorded_at)}
    # review RL (LAB-CORRECTION): the latest draw of its versions, where an earlier one was drawn later (LabState.moved)
    earlier = (
        s.moved.get(r.result_id),
        previous.occurred_at if previous else None,
        s.dropped.get(r.result_id, (None,))[0],
    )
    latest = max((t for t in earlier if t is not None), default=r.occurred_at)
    if latest > r.occurred_at:
        s.moved = {**s.moved, r.result_id: latest}
    elif r.result_id in s.moved:
        s.moved = {k: v for k, v in s.moved.items() if k != r.result_id}
    status = _status(r.status)
    value = None if status == "withdrawn" else lab.value
    # issue 24: no value (FHIR dataAbsentReason) is kept as "no value in force"; it is published only as the
    # withdrawal of a value it replaces, never as a value
    # (a result no longer kept whole held a value: withdrawn too, review of issue 25)
    forgotten = previous is None and _stamp(s, r.result_id) is not None
    silent = lab.absent is not None and not forgotten and (previous is None or previous.status == "withdrawn")
    s.results[r.result_id] = StoredResult(
        result_id=r.result_id,
        event_id=r.event_id,
        analyte=lab.analyte,
        value=value,
        unit=lab.unit,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        status=status,
        comparator=r.comparator,
        precision=r.occurred_at_precision,
    )
    if lab.analyte in _PARTNERS_OF and (previous is None or previous.occurred_at != r.occurred_at):
        _bar_dropped(s, s.results[r.result_id], cfg.ca_albumin_window + 2 * _DAY)
    if silent:
        return None
    rule_ids = ["LAB-UNITS"] + (["LAB-CORRECTION"] if status != "final" else [])
    interpretation: str | None = None
    notes: list[str] = list(lab.notes)
    if lab.absent is not None:
        notes.append(f"Pas de valeur (dataAbsentReason : {lab.absent}) : la valeur précédente ne tient plus.")
    if r.comparator is not None and value is not None:
        notes.append(f"Résultat censuré ({r.comparator} {r.value:g} {r.unit}) : une borne, jamais une valeur exacte.")
    if r.occurred_at_precision == "date":
        notes.append("Date de prélèvement sans heure : l'heure n'est pas connue (elle n'est jamais supposée).")
    if value is not None and lab.analyte == "vitamin_d_25oh":
        # Tableau 1 gives both units: a result sent in nmol/L is classed in nmol/L (issue 9.10)
        nmol = value_in("vitamin_d_25oh", r.value, r.unit, "nmol/L") if r.value is not None and r.unit else None
        interpretation = (
            vitamin_d_bounded_class(nmol, "nmol/L", r.comparator)
            if nmol is not None
            else vitamin_d_bounded_class(value, "ng/mL", r.comparator)
        )
        if interpretation is None:
            notes.append("Vitamine D censurée : la classe du Tableau 1 n'est pas déterminée par cette borne.")
        rule_ids.append("LAB-VITD")
    elif value is not None and lab.analyte == "ctx_serum":
        why: str | None = "heure de prélèvement inconnue"  # a date-only draw: LAB-CTX needs the hour
        if r.occurred_at_precision == "time":
            _, why = ctx_interpretability(r.occurred_at, r.fasting, cfg.hospital_tz)
        interpretation = "interpretable" if why is None else "not_interpretable"
        if why is not None:
            notes.append(f"CTX non interprétable : {why} (à doser à jeun avant 9 h).")
        rule_ids.append("LAB-CTX")
    elif value is not None and lab.analyte == "ntx_urine":
        notes += [
            "NTX urinaire : marqueur de résorption le plus étudié ; élevé au diagnostic, il signale un "
            "risque accru d'événement osseux et de décès."
        ]
        rule_ids.append("LAB-CTX")
    return NormalisedLab(
        event_id=derived_id("normalised", r.event_id),
        patient_id=r.patient_id,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        source=SERVICE,
        analyte=lab.analyte,
        result_id=r.result_id,
        value=value,
        unit=lab.unit,
        status=status,
        original_value=r.value,
        original_unit=r.unit,
        loinc=lab.loinc,
        rule_ids=rule_ids,
        fasting=r.fasting,
        interpretation=interpretation,
        notes=notes,
        comparator=r.comparator,
        occurred_at_precision=r.occurred_at_precision,
    )


def _corrects_at_tie(previous: StoredResult, lab: LabInput) -> bool:
    """LAB-CORRECTION at an equal recorded time (a sender that did not date the new version): a correction (amended,
    corrected, entered in error, no value) is the newer version of a final result, never the reverse."""
    same_time = previous.recorded_at == lab.result.recorded_at
    return same_time and previous.status == "final" and lab.result.status != "final"
