"""Treatment events as every service reads them (issue 18.3, 18.7). Pure, no I/O.

- Corrections: a radiotherapy course, surgery or drug event amended or entered in error counts no more (the same
  rule as findings and assessments: shared/clinical/corrections.py). A mistyped course must not turn a cord-compression
  emergency into "irradiated" for good.
- Drug identity: a drug event's name is read through the one vocabulary (shared/clinical/drugs.py): "Clopidogrel",
  "Plavix" and B01AC04 are the same drug in every service."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.hospital import DrugAdministration, SystemicDrug, TreatmentEvent
from shared.clinical.corrections import effective
from shared.clinical.drugs import DrugIdentity, identify


def drug_identity(t: SystemicDrug | DrugAdministration) -> DrugIdentity:
    return identify(t.drug, t.atc_code)


def canonical(e: TreatmentEvent) -> TreatmentEvent:
    """The event with its drug named by the vocabulary's key (the INN when known, else the normalised name as sent),
    so that every comparison downstream is between canonical names. Other treatments are returned unchanged."""
    t = e.treatment
    if not isinstance(t, SystemicDrug | DrugAdministration):
        return e
    key = drug_identity(t).key
    if key == t.drug:
        return e
    return e.model_copy(update={"treatment": t.model_copy(update={"drug": key})})


def effective_treatments(events: Iterable[TreatmentEvent]) -> list[TreatmentEvent]:
    """The treatment events that count, in clinical order: corrected and entered-in-error ones left out. A treatment
    correction always names the event it corrects (the contract requires `corrects`)."""
    return effective(events, lambda e: e.treatment.kind)
