"""Review R38-SC (independent reviewer) of 3cfc719 (patient.FLARE_MEMO, Context.drug_steps: HAZ-25-SCORING-07): each
test compares, event by event, the memoised path with every memo forgotten before each event (a cold process), and
with the state parsed again. The same review broke a second change (a finding of a lesion no held correction links
folded as it is, not by refolding the lesion): two findings at the same instant in two UTC offsets, delivered out
of the fold's order, stored another `first_seen` text; it was not landed."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.hospital import ImagingFinding, TreatmentEvent
from services.scoring.domain import forget_memos
from tests.unit.test_issue25_scoring_content_memo import drive_parsed_again
from tests.unit.test_issue25_scoring_flat import drive
from tests.unit.test_issue25_scoring_history import START, _finding, _Gen, _lesion, _treatment

DAY = timedelta(days=1)
DRUGS = ("osimertinib", "carboplatin", "pembrolizumab", "denosumab", "zz-unlisted-mab", "Tagrisso", "letrozole")


def _corrected(e: Any, g: _Gen, status: str, at: datetime, **update: Any) -> Any:
    return e.model_copy(
        update={"event_id": g.uid(), "record_status": status, "corrects": e.event_id, "recorded_at": at, **update}
    )


def _adversarial(seed: int, days: int = 400, lesion_count: int = 4) -> list[Message]:
    """Dense bone scans and PETs with new foci on a few lesions; drug starts and stops (some of unknown class, some
    by brand, some dated ahead of their recording, some recorded late, after the focus they bear on); drug records
    amended (another drug, another day) or entered in error; findings amended (naming one, naming none, moved to
    another lesion), entered in error, corrections chained, corrections delivered before their record, findings
    delivered out of clinical order and again (at least once delivery)."""
    rng = random.Random(seed)
    g = _Gen(rng, 0)
    lesions = [_lesion(g, n) for n in range(1, lesion_count + 1)]
    out: list[tuple[datetime, int, Message]] = []
    n = 0

    def emit(e: Message, at: datetime | None = None) -> None:
        nonlocal n
        n += 1
        out.append((at or e.recorded_at, n, e))

    findings: list[ImagingFinding] = []
    drugs: list[TreatmentEvent] = []
    for day in range(days):
        at = START + day * DAY + timedelta(minutes=rng.randint(0, 600))
        roll = rng.random()
        if roll < 0.12:
            drug = rng.choice(DRUGS)
            action = rng.choice(("started", "started", "stopped"))
            ahead = rng.random() < 0.1
            t = _treatment(
                g,
                at + (rng.randint(2, 40) * DAY if ahead else timedelta()),
                kind="systemic_drug",
                drug=drug,
                action=action,
            )
            if ahead:  # dated ahead of its recording (a planned start)
                t = t.model_copy(update={"recorded_at": at + timedelta(minutes=5)})
            if rng.random() < 0.15:  # recorded late, after foci it bears on
                t = t.model_copy(update={"recorded_at": t.recorded_at + rng.randint(5, 60) * DAY})
            drugs.append(t)
            emit(t)
        elif roll < 0.40:
            f = _finding(g, at, rng.choice(lesions), rng.choice(("bone_scan", "fdg_pet", "ct", "mri")))
            if f.modality in ("bone_scan", "fdg_pet") and rng.random() < 0.6:
                f = f.model_copy(update={"new_focus": True})
            if rng.random() < 0.05:  # dated ahead of its recording
                f = f.model_copy(update={"occurred_at": at + rng.randint(2, 20) * DAY, "recorded_at": at})
            if rng.random() < 0.1:  # delivered late, out of clinical order
                emit(f, f.recorded_at + rng.randint(1, 30) * DAY)
            else:
                emit(f)
            if rng.random() < 0.03:
                emit(f, f.recorded_at + rng.randint(1, 5) * DAY)  # delivered again
            findings.append(f)
        elif roll < 0.52 and findings:
            target = rng.choice(findings[-8:])
            at2 = max(at, target.recorded_at) + timedelta(minutes=rng.randint(1, 600))
            kind = rng.random()
            if kind < 0.3:
                c = _corrected(target, g, "entered-in-error", at2)
            elif kind < 0.55:
                c = _corrected(
                    target,
                    g,
                    "amended",
                    at2,
                    pathological_fracture=rng.choice((True, None)),
                    size_cm=round(rng.uniform(0.5, 6), 1),
                )
            elif kind < 0.7:  # moved to another lesion
                other = rng.choice(lesions)
                c = _corrected(target, g, "amended", at2, **other)
            elif kind < 0.85:  # an amendment naming none: replaces its lesion's newest earlier record
                c = _corrected(target, g, "amended", at2, corrects=None, occurred_at=target.occurred_at + DAY)
            else:  # a chain: a correction of a correction
                first = _corrected(target, g, "amended", at2, size_cm=1.0)
                emit(first)
                findings.append(first)
                c = _corrected(first, g, rng.choice(("amended", "entered-in-error")), at2 + timedelta(hours=2))
            early = rng.random() < 0.2  # delivered before the record it corrects when that one was late
            emit(c, target.recorded_at - timedelta(minutes=1) if early else None)
            findings.append(c)
        elif roll < 0.58 and drugs:
            drug_target = rng.choice(drugs[-6:])
            at2 = max(at, drug_target.recorded_at) + timedelta(minutes=rng.randint(1, 600))
            if rng.random() < 0.5:
                dc = _corrected(drug_target, g, "entered-in-error", at2)
            else:
                tr = drug_target.treatment.model_copy(
                    update={"drug": rng.choice(DRUGS), "on": drug_target.treatment.on - rng.randint(0, 90) * DAY}
                )
                dc = _corrected(drug_target, g, "amended", at2, treatment=tr)
            emit(dc)
            drugs.append(dc)
    return [e for _, _, e in sorted(out, key=lambda x: (x[0], x[1]))]


# ---- 3cfc719: IMG-FLARE memoised -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_flare_memo_warm_decides_as_cold_on_adversarial_drug_histories(seed: int) -> None:
    """Drugs amended (another drug or day), entered in error, dated ahead (decide twice's views with the memo off),
    recorded after the focus they bear on, more than DRUGS_KEPT (retention_drugs folds them): warm as cold."""
    events = _adversarial(seed)
    assert sum(isinstance(e, TreatmentEvent) for e in events) > 30
    cold = drive(events, cold=True)
    assert sum('"rule_id":"IMG-FLARE"' in o for outs, _, _ in cold for o in outs) > 3
    forget_memos()
    assert drive(events, cold=False) == cold
    forget_memos()
    assert drive_parsed_again(events, 2) == cold  # new objects, the same content


def test_flare_is_decided_again_when_a_drug_start_is_amended_in_place() -> None:
    """The focus's lesion unchanged; the start it reads amended to another day (out of the 6-month window), then to
    another drug of unknown class: the reading follows each (progression, unknown), warm as cold."""
    g = _Gen(random.Random(3), 0)
    at = START + 300 * DAY
    start = _treatment(g, at - 60 * DAY, kind="systemic_drug", drug="osimertinib", action="started")
    focus = _finding(g, at, _lesion(g, 1), "bone_scan").model_copy(update={"new_focus": True, "status": None})
    moved = _corrected(
        start, g, "amended", at + DAY, treatment=start.treatment.model_copy(update={"on": (at - 250 * DAY).date()})
    )
    unknown = _treatment(g, at - 10 * DAY, kind="systemic_drug", drug="zz-unlisted-mab", action="started")
    unknown = unknown.model_copy(update={"recorded_at": at + 2 * DAY})
    events: list[Message] = [start, focus, moved, unknown]
    cold = drive(events, cold=True)
    forget_memos()
    assert drive(events, cold=False) == cold
    titles = [[o for o in outs if "IMG-FLARE" in o and '"title"' in o] for outs, _, _ in cold]
    assert "possible flare" in titles[1][0]
    assert "plus de 6 mois" in titles[2][-1]
    assert "indéterminé" in titles[3][-1] or "ind\\u00e9termin\\u00e9" in titles[3][-1]
