"""Treatment events as every service reads them (issue 18.3, 18.7). Pure, no I/O.

- Corrections: a radiotherapy course, surgery or drug event amended or entered in error counts no more (the same
  rule as findings and assessments: shared/clinical/corrections.py). A mistyped course must not turn a cord-compression
  emergency into "irradiated" for good.
- Drug identity: a drug event's name is read through the one vocabulary (shared/clinical/drugs.py): "Clopidogrel",
  "Plavix" and B01AC04 are the same drug in every service.
- Drug starts and stops of the same day (issue 18 review): `in_effect_order` gives the one order every service
  applies them in."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

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


def in_effect_order(drugs: Sequence[SystemicDrug]) -> list[SystemicDrug]:
    """Drug starts and stops in the order they take effect: by day; within a day, a start before a stop (a switch
    from one drug to another the same day leaves no gap), except for a drug under way that is stopped and started
    the same day: its stop comes first, a re-prescription, so the drug stays under way (issue 18 review). A drug not
    under way started and stopped the same day was given that day only (e.g. one infusion). `drugs` in clinical
    order (the order of `effective_treatments`); ties keep it."""
    out: list[SystemicDrug] = []
    under_way: set[str] = set()
    for _, same_day in itertools.groupby(sorted(drugs, key=lambda d: d.on), key=lambda d: d.on):
        day = list(same_day)
        restarted = {d.drug for d in day if d.action == "started"} & under_way

        def rank(d: SystemicDrug, restarted: set[str] = restarted) -> int:
            if d.action == "stopped" and d.drug in restarted:
                return 0
            return 1 if d.action == "started" else 2

        for d in sorted(day, key=rank):
            if d.action == "started":
                under_way.add(d.drug)
            else:
                under_way.discard(d.drug)
            out.append(d)
    return out
