"""Review R29-RT (of branch dt-rt, HAZ-27-FUTURE-HIDES "decide twice"): what was tried and held.

- With NO fact dated beyond `now + FUTURE_TOLERANCE` at any decision (facts at now, now + 5 min, now + tolerance - 1
  us and exactly now + tolerance; three lesions, courses and decompressions recorded ahead of their day, platelets
  and prothrombin, every request modality, amendments / entered-in-error, the clock moving on by minutes to days),
  every published message and every next_due, and the final state and rebuilt plan, hash to the digest computed on
  982e00c with this very generator (300 histories, 5,000+ events, 1,900+ plans; RT-MSCC critical in 969 items).
- The tolerance edge: a compression re-confirmed at exactly now + tolerance is current (the single decision), and at
  now + tolerance + 1 us it is future: both publish today's emergency (RT-MSCC, L1397-1402) unmarked, next_due > now.
- Forty facts dated ahead on four lesions: next_due strictly increases tick to tick, never at or before the tick,
  never later than the first future fact's becoming current, and warm (memo) equals cold at every tick."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner import domain, memo
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import plan_items, request, vertebra
from tests.unit.test_review_r28rt_future_left_out import _assessment

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
TOL = timedelta(minutes=15)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
LES: dict[str, dict[str, str]] = {
    "t8": {"skeletal_site": "spine", "vertebral_level": "T8", "modality": "mri"},
    "l2": {"skeletal_site": "spine", "vertebral_level": "L2", "modality": "mri"},
    "fem": {"skeletal_site": "femur_shaft", "modality": "ct"},
}
#: sha256 of the 300 histories' hashes, computed on 982e00c (main before the change) with this generator
DIGEST_982E00C = "3aaa7a4fcdfd63407a0f4ca8f2fb3abcfcec6bb40a571b1294823bb7fa8021b7"


def env(rnd: random.Random, at: datetime, rec: datetime | None = None) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "patient_id": "pt-r29",
        "occurred_at": at.isoformat(),
        "recorded_at": (rec or at).isoformat(),
        "source": "test",
    }


def pick(rnd: random.Random, ch: Any) -> dict[str, Any]:
    return {k: v for k, vs in ch if (v := rnd.choice(vs)) is not None}


def event(rnd: random.Random, at: datetime, rec: datetime, today: Any) -> Message:
    k = rnd.choice("fffaaatslr")
    if k == "f":
        lid = rnd.choice(["t8", "t8", "l2", "fem"])
        f = pick(
            rnd,
            (
                ("epidural_extension", (None, True, False)),
                ("cord_compression", (None, None, True, False)),
                ("pathological_fracture", (None, True, False)),
                ("canal_narrowing_pct", (None, 10.0, 40.0)),
                ("tumour_cord_distance_mm", (None, 2.0, 8.0)),
                ("status", ("confirmed", None, "resolved", "suspected")),
            ),
        )
        return ImagingFinding.model_validate({**env(rnd, at, rec), "lesion_id": lid, **LES[lid], **f})
    if k == "a":
        f = pick(
            rnd,
            (
                ("neurological_deficit", (None, True, False)),
                ("life_expectancy_months", (None, 1.0, 3.0, 7.0, 24.0)),
                ("frail", (None, True, False)),
                ("hard_to_move", (None, True, False)),
                ("mri_contraindicated", (None, True, False)),
                ("cement_allergy", (None, None, True, False)),
                ("active_infection", (None, None, True, False)),
            ),
        )
        if rnd.random() < 0.3:
            f["surgical_opinion"] = {
                "operable": rnd.random() < 0.5,
                "on": (today - rnd.randint(0, 5) * DAY).isoformat(),
                "lesion_id": rnd.choice(["t8", "l2", "fem"]),
            }
        if rnd.random() < 0.2:
            f["pain"] = {"resistant_to_analgesics": rnd.random() < 0.6, "intensity": "functional"}
        return ClinicalAssessment.model_validate({**env(rnd, at, rec), **f})
    if k == "t":
        t: dict[str, Any]
        on = (today + rnd.choice([-3, -1, 0, 0, 1, 2]) * DAY).isoformat()  # courses recorded ahead of their date: legit
        lvl = rnd.choice(["T8", "L2"])
        if rnd.random() < 0.6:
            t = {
                "kind": "radiotherapy",
                "site": "spine",
                "vertebral_level": lvl,
                "total_dose_gy": rnd.choice([8.0, 20.0, 30.0]),
                "fractions": rnd.choice([1, 5, 10]),
                "on": on,
                "cord_dmax_gy": rnd.choice([8.0, 30.0, 45.0]),
            }
        else:
            t = {"kind": "surgery", "procedure": "decompression", "site": "spine", "vertebral_level": lvl, "on": on}
        return TreatmentEvent.model_validate({**env(rnd, at, rec), "treatment": t})
    if k == "l":
        return NormalisedLab.model_validate(
            {
                **env(rnd, at, rec),
                "source": "lab-normalisation",
                "analyte": rnd.choice(["platelets", "platelets", "prothrombin_pct"]),
                "result_id": f"r-{rnd.getrandbits(16)}",
                "unit": "G/L",
                "value": rnd.choice([30.0, 80.0, 180.0]),
            }
        )
    lid = rnd.choice(["t8", "l2", "fem"])
    return LocalTreatmentRequest.model_validate(
        {
            **env(rnd, at, rec),
            "request_id": f"req-{lid}-{rnd.randint(0, 1)}",
            "lesion_id": lid,
            "modality": rnd.choice(["sbrt", "palliative_rt", "cementoplasty", "surgery", "reirradiation"]),
            "planned_on": (today + rnd.randint(0, 4) * DAY).isoformat(),
            **({"urgent": True} if rnd.random() < 0.3 else {}),
        }
    )


def run(seed: int) -> list[str]:
    rnd = random.Random(seed)
    memo.clear()
    s, h = LocalState(), list[str]()
    now = NOW - 60 * DAY
    evs: list[Message] = []
    for _ in range(rnd.randint(6, 22)):
        now += rnd.choice([timedelta(minutes=rnd.randint(0, 90)), timedelta(hours=rnd.randint(1, 200))])
        today = now.date()
        at = rnd.choice(
            [now - timedelta(hours=rnd.randint(0, 400)), now, now + TOL, now + TOL - US, now + timedelta(minutes=5)]
        )
        try:
            e = event(rnd, at, min(at, now), today)
        except ValueError:  # a combination the contract rejects
            continue
        if evs and rnd.random() < 0.15:  # a correction of an earlier finding/assessment, dated <= now + TOL
            tgt = rnd.choice(evs)
            if isinstance(tgt, (ImagingFinding, ClinicalAssessment)):
                when = rnd.choice([tgt.occurred_at + timedelta(minutes=1), now, now + TOL])
                when = min(when, now + TOL)
                upd = {
                    "event_id": uuid.UUID(int=rnd.getrandbits(128), version=4),
                    "occurred_at": when,
                    "recorded_at": min(when, now),
                    "corrects": tgt.event_id,
                    "record_status": rnd.choice(["amended", "entered-in-error"]),
                }
                e = tgt.model_copy(update=upd)
        evs.append(e)
        s, out = domain.apply_event(s, e, now=now)
        h.append(
            hashlib.sha256(("\n".join(m.model_dump_json() for m in out) + "|" + str(s.next_due)).encode()).hexdigest()[
                :16
            ]
        )
    plan = domain.current_plan(LocalState.model_validate_json(s.model_dump_json()), "pt-r29")
    h.append(hashlib.sha256((s.model_dump_json() + (plan.model_dump_json() if plan else "")).encode()).hexdigest()[:16])
    return h


def test_review_r29rt_with_no_fact_dated_ahead_every_output_is_982e00cs() -> None:
    assert hashlib.sha256(json.dumps([run(s) for s in range(300)]).encode()).hexdigest() == DIGEST_982E00C


def _mscc_at(occurred: datetime) -> tuple[list[tuple[str, str, str]], datetime | None]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in (
        vertebra(at=NOW - DAY, cord_compression=True),
        vertebra(at=occurred, cord_compression=True).model_copy(update={"recorded_at": NOW}),
    ):
        s, o = domain.apply_event(s, e, now=NOW)
        out += o
    return [(i.status, i.severity, i.text_fr) for i in plan_items(out) if i.rule_id == "RT-MSCC"], s.next_due


def test_review_r29rt_a_compression_re_confirmed_at_the_tolerance_edge_plus_minus_1us_keeps_the_emergency() -> None:
    for occurred in (NOW + TOL - US, NOW + TOL, NOW + TOL + US):
        [(status, severity, text)], due = _mscc_at(occurred)
        assert (status, severity) == ("recommended", "critical"), occurred
        assert "À vérifier" not in text, occurred  # B and C agree: the current decision, unmarked
        assert due is not None and due > NOW, occurred


def test_review_r29rt_forty_facts_dated_ahead_tick_forward_and_warm_equals_cold() -> None:
    lids = [("t8", "T8"), ("t9", "T9"), ("l2", "L2"), ("l3", "L3")]
    events: list[Message] = [_assessment(NOW - DAY, neurological_deficit=True, life_expectancy_months=24.0)]
    for j, (lid, lvl) in enumerate(lids):
        events.append(vertebra(lid, lvl, at=NOW - 10 * DAY, epidural_extension=True, cord_compression=True))
        events.append(request(lid, ["sbrt", "palliative_rt", "cementoplasty", "surgery"][j]))
    hour = timedelta(hours=1)
    for k in range(40):
        lid, lvl = lids[k % 4]
        for ahead in (
            vertebra(lid, lvl, at=NOW + (k + 1) * hour, cord_compression=bool(k % 2)),
            _assessment(NOW + (k + 1) * hour, neurological_deficit=bool(k % 3), life_expectancy_months=float(2 + k)),
        ):
            events.append(ahead.model_copy(update={"recorded_at": NOW}))
    memo.clear()
    s = LocalState()
    for e in events:
        s, _ = domain.apply_event(s, e, now=NOW)
    assert s.next_due is not None and NOW < s.next_due <= NOW + hour - TOL + timedelta(seconds=1)
    t = NOW
    for _ in range(12):
        due = s.next_due
        assert due is not None and due > t
        t = due
        warm = [x.model().model_dump_json() for x in domain.build_plan(s, now=t)]
        memo.clear()
        cold = [
            x.model().model_dump_json()
            for x in domain.build_plan(LocalState.model_validate_json(s.model_dump_json()), now=t)
        ]
        assert warm == cold, t
        s, _ = domain.apply_event(
            s, events[0].model_copy(update={"event_id": uuid.uuid5(events[0].event_id, str(t))}), now=t
        )
