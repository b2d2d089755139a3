"""Treatment events as every service reads them (issue 18.3, 18.7). Pure, no I/O.

- Corrections: a radiotherapy course, surgery or drug event amended or entered in error counts no more (the same
  rule as findings and assessments: shared/clinical/corrections.py). A mistyped course must not turn a cord-compression
  emergency into "irradiated" for good.
- Drug identity: a drug event's name is read through the one vocabulary (shared/clinical/drugs.py): "Clopidogrel",
  "Plavix" and B01AC04 are the same drug in every service.
- Drug starts and stops of the same day (issue 18 reviews): `in_effect_order` gives the one order every service
  applies them in (for one drug, the order they were recorded in)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from datetime import datetime

from contracts.hospital import DrugAdministration, SystemicDrug, TreatmentEvent
from shared.clinical.corrections import effective, resolve
from shared.clinical.drugs import DrugIdentity, identify


def drug_identity(t: SystemicDrug | DrugAdministration) -> DrugIdentity:
    return identify(t.drug, t.atc_code)


def canonical(e: TreatmentEvent) -> TreatmentEvent:
    """The event with its drug named by the vocabulary's INN when the drug is known, so that every comparison
    downstream is between canonical names. An unknown drug keeps the name it was sent with: a normalised name read
    again could be taken for another drug ("Kardégic (+ clopidogrel)" is not "kardegic"; issue 18 second review).
    Other treatments are returned unchanged."""
    t = e.treatment
    if not isinstance(t, SystemicDrug | DrugAdministration):
        return e
    who = drug_identity(t)
    key = who.key
    if not who.known or key == t.drug:
        return e
    return e.model_copy(update={"treatment": t.model_copy(update={"drug": key})})


def _kind(e: TreatmentEvent) -> str:
    return e.treatment.kind


def effective_treatments(events: Iterable[TreatmentEvent]) -> list[TreatmentEvent]:
    """The treatment events that count, in clinical order: corrected and entered-in-error ones left out, one version
    of each record (the newest). A treatment correction always names the event it corrects (the contract requires
    `corrects`)."""
    return effective(events, _kind)


def corrections_to_check(events: Iterable[TreatmentEvent]) -> list[TreatmentEvent]:
    """Amended treatment events later entered in error (issue 18 review): withdrawn, and what they replaced is not
    brought back, so whether the treatment was given is for a clinician to check; in clinical order."""
    return resolve(events, _kind).to_check


def _recorded_order(first: str, step: tuple[TreatmentEvent, SystemicDrug]) -> tuple[datetime, bool, str]:
    e, d = step
    return (e.recorded_at, d.action != first, str(e.event_id))


def in_effect_order(events: Iterable[TreatmentEvent]) -> list[tuple[TreatmentEvent, SystemicDrug]]:
    """The drug starts and stops of `events` (their SystemicDrug events; others are left out) in the order they take
    effect: by day; within a day:
    - for one drug, in the order they were recorded (`recorded_at`): the clinician's last word stands, so a renewal
      then a stop is a stop (second review, SYS-DENO-STOP L1249-1253) and a stop then a start a re-prescription;
      when the recorded order cannot tell (the same `recorded_at`), a drug under way is re-prescribed (its stop
      first: it stays under way, issue 18 review) and a drug not under way was given that day only (e.g. one
      infusion: its start first);
    - between drugs, a start before a stop (a switch from one drug to another the same day leaves no gap).
    Ties beyond that follow the event ID, so the order depends only on the set of events."""
    steps = sorted(
        ((e, e.treatment) for e in events if isinstance(e.treatment, SystemicDrug)),
        key=lambda x: (x[1].on, x[0].recorded_at, str(x[0].event_id)),
    )
    out: list[tuple[TreatmentEvent, SystemicDrug]] = []
    under_way: set[str] = set()
    for _, same_day in itertools.groupby(steps, key=lambda x: x[1].on):
        queues: dict[str, list[tuple[TreatmentEvent, SystemicDrug]]] = {}
        for step in same_day:
            queues.setdefault(step[1].drug, []).append(step)
        for drug, queue in queues.items():
            first = "stopped" if drug in under_way else "started"  # when the recorded order cannot tell
            queue.sort(key=functools.partial(_recorded_order, first))
        while any(queues.values()):
            heads = [q[0] for q in queues.values() if q]
            starts = [h for h in heads if h[1].action == "started"]
            e, d = min(starts or heads, key=lambda x: (x[0].recorded_at, str(x[0].event_id)))
            queues[d.drug].pop(0)
            if d.action == "started":
                under_way.add(d.drug)
            else:
                under_way.discard(d.drug)
            out.append((e, d))
    return out
