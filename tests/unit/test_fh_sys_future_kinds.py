"""HAZ-27-FUTURE-HIDES (systemic planner), one case per fold: a fact dated beyond the clock-skew tolerance (recorded
now, a hospital clock ahead of ours) neither counts nor hides the current one until its date; then it does."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TypeVar

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from contracts.hospital import ImagingFinding
from services.systemic_planner import rules as r
from services.systemic_planner.inputs import SystemicState
from tests.unit.test_systemic_rules import NOW, drug, env, items, lab, le, met, oligo, ready, run

TOL = r.Recency().future_tolerance
TOMORROW = NOW + timedelta(days=1)  # beyond the tolerance
EFFECTIVE = TOMORROW - TOL  # the instant it stops being in the future (a deadline)


M = TypeVar("M", bound=Message)


def _ahead(e: M) -> M:
    return e.model_copy(update={"occurred_at": TOMORROW, "recorded_at": NOW})


def _pet(minutes: int = 0) -> ImagingFinding:
    body = {"lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "fdg_pet"}
    return ImagingFinding.model_validate({**env(minutes), **body})


def test_fh_sys_a_ct_dated_tomorrow_does_not_confirm_a_lesion_seen_on_pet_today() -> None:
    """IMG-ISOLATED (L489-491), SYS-AR-START (L1070-1074): a lesion seen on PET only is suspected until a CT is."""
    s, _ = run([_pet(), le(0, 12.0), *ready(), _ahead(met())])
    assert "antiresorptive-start" not in items(s, NOW)
    assert s.next_due is not None and s.next_due <= EFFECTIVE
    assert items(s, EFFECTIVE)["antiresorptive-start"].status == "recommended"


def test_fh_sys_a_confirmation_dated_tomorrow_keeps_todays_suspected_status() -> None:
    """A stated "suspected" today, "confirmed" dated tomorrow: no start before tomorrow."""
    suspected = met().model_copy(update={"status": "suspected"})
    confirmed = _ahead(met().model_copy(update={"status": "confirmed"}))
    s, _ = run([suspected, le(0, 12.0), *ready(), confirmed])
    assert "antiresorptive-start" not in items(s, NOW)
    assert items(s, EFFECTIVE)["antiresorptive-start"].status == "recommended"


def test_fh_sys_a_good_response_dated_tomorrow_does_not_space_zoledronic_acid_today() -> None:
    """SYS-SCHEDULE (L1138-1140): monthly until a good response is known; one dated tomorrow hides no current one."""
    base = [met(), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic"), *ready()]
    s, _ = run([*base, le(1, 12, oncological_response="progression"), _ahead(le(5, 12, oncological_response="good"))])
    assert items(s, NOW)["antiresorptive"].orders[0].interval == "P1M"
    assert items(s, EFFECTIVE)["antiresorptive"].orders[0].interval == "P3M"
    s, _ = run([*base, le(1, 12, oncological_response="good"), _ahead(le(5, 12, oncological_response="stable"))])
    assert items(s, NOW)["antiresorptive"].orders[0].interval == "P3M"  # the current good response still read
    assert items(s, EFFECTIVE)["antiresorptive"].orders[0].interval == "P1M"


def test_fh_sys_an_sre_dated_tomorrow_is_no_input_and_no_oncology_item_today() -> None:
    """SYS-ONCO (issue 25: shown when a metastasis or an SRE is known) and SYS-AR-START's inputs: an SRE dated in the
    future is not known yet (a patient on zoledronic acid and an immunotherapy, no metastasis finding)."""
    body = {"kind": "pathological_fracture", "rule_id": "CLASS-SRE", "evidence": []}
    sre = SkeletalEvent.model_validate({**env(0), **body})
    treated = [drug(0, "zoledronic_acid", "started", "2026-10-01"), drug(0, "pembrolizumab", "started", "2026-10-01")]
    s, _ = run([*treated, _ahead(sre)])
    now = items(s, NOW)
    assert "oncology" not in now
    assert not [i for i in now["antiresorptive-start"].inputs if i.name.startswith("sre:")]
    later = items(s, EFFECTIVE)
    assert later["oncology"].status == "warning"  # an urgent SRE under way (SYS-ONCO)
    assert [i.name for i in later["antiresorptive-start"].inputs if i.name.startswith("sre:")] == [
        "sre:pathological_fracture"
    ]


def test_fh_sys_a_state_stored_before_the_change_loads_and_decides_the_same() -> None:
    """A stored state without `statuses`, `seen` (per lesion) and `responses` (defaults: the newest stated status and
    response, every modality at the first sighting) decides as before; merging into it fills them."""
    s, _ = run([_pet(), met(5).model_copy(update={"status": "confirmed"}), le(1, 12, oncological_response="good")])
    doc = json.loads(s.model_dump_json())
    for lesion in doc["lesions"].values():
        del lesion["statuses"], lesion["seen"]
    del doc["responses"]
    old = SystemicState.model_validate(doc)
    assert old.lesions["a"].statuses == [] and old.responses == []
    assert items(old, NOW) == items(s, NOW)
    again, _ = run([met(6)], old)
    assert [f.value for f in again.lesions["a"].statuses] == ["confirmed"] and set(again.lesions["a"].seen) == {
        "ct",
        "fdg_pet",
    }
