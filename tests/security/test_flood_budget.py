"""Issue 25: one patient's flood over HTTP is refused beyond the intake's admission budget, visibly (429 with
Retry-After, an HL7 refusal, a metric), and other patients' crisis alerts come within the README's latency while
what was admitted goes through the five services. Measured through the real stack (tests/conftest.py `stack`)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from devstack.stack import RunningStack
from shared.web.auth import OPS
from tests.conftest import auth, wait_for
from tests.e2e.test_lab_ingestion import ALB_3_0, CA_13_6, crisis, oru, post_hl7
from tests.security.test_flood import quiet, same_partition_as

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # latencies under a flood: alone

MESSAGES, RESULTS = 42, 499  # the flood measured in issue 25: 42 messages of 499 results within a minute
PATIENT_BUDGET, WINDOW_S = 2_000, 60  # INTAKE_PATIENT_RESULTS_PER_WINDOW and INTAKE_BUDGET_WINDOW_S's defaults
CRISIS_BOUND_S = 2.0  # README, "One patient's flood does not delay another's alert"


def flood_message(patient_id: str) -> bytes:
    """One ORU with an albumin then 498 calcium results (each re-derives a corrected calcium downstream)."""
    albumin = "OBX|1|NM|1751-7^Albumine^LN||4.0|g/dL|||||F"
    calcium = [f"OBX|{i}|NM|17861-6^Ca^LN|{i}|9.{i % 10}|mg/dL|||||F" for i in range(2, RESULTS + 1)]  # OBX-4
    return oru(patient_id, f"FLOOD-{uuid.uuid4().hex[:8]}", albumin, *calcium)


async def refused_by_budget(stack: RunningStack) -> float:
    async with httpx.AsyncClient(timeout=5, headers=auth(OPS, "test-ops")) as c:
        text = (await c.get(f"{stack.urls['lab-normalisation']}/metrics")).raise_for_status().text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("osteocds_intake_budget_refused_total{")
        and 'path="http"' in line
        and 'scope="patient"' in line
    )


async def test_an_http_flood_is_refused_beyond_the_budget_and_other_patients_crises_stay_prompt(
    stack: RunningStack,
) -> None:
    a = f"pt-{uuid.uuid4().hex[:12]}"
    others = [same_partition_as(a) for _ in range(5)]  # the harshest case: queued on the flood's partitions
    refused_before = await refused_by_budget(stack)
    answers: list[httpx.Response] = []
    # the budget's window of each message (fixed windows of 60 s on the wall clock), read before it is sent and
    # after its answer: the server counts it at some moment between, so a message sent just before a window's end
    # may count in the next (CI, stop 34: a flood straddling two windows showed 6 admitted in one by the send times)
    windows: list[tuple[int, int]] = []
    if WINDOW_S - time.time() % WINDOW_S < 20:  # the flood (~5 s) within one window where it can be: start afresh
        await asyncio.sleep(WINDOW_S - time.time() % WINDOW_S + 0.1)

    async def flood() -> None:
        for _ in range(MESSAGES):
            before = int(time.time() // WINDOW_S)
            answers.append(await post_hl7(stack, flood_message(a)))
            windows.append((before, int(time.time() // WINDOW_S)))

    t0 = time.monotonic()
    flooding = asyncio.create_task(flood())
    await wait_for(lambda: asyncio.sleep(0, len(answers) >= 5), timeout=60, interval=0.01)  # admitted ones in flight
    latencies: list[float] = []
    for b in others:
        t_b = time.monotonic()
        r = await post_hl7(stack, oru(b, f"CRISIS-{uuid.uuid4().hex[:6]}", CA_13_6, ALB_3_0))
        assert r.status_code == 200 and "MSA|AA" in r.text
        [alert] = await wait_for(lambda b=b: crisis(stack, b), timeout=60, interval=0.02)  # type: ignore[misc]
        assert alert["severity"] == "critical"
        latencies.append(time.monotonic() - t_b)
    await flooding
    took = time.monotonic() - t0

    admitted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    print(
        f"\nflood of {MESSAGES} x {RESULTS} results in {took:.1f}s: {len(admitted)} admitted, {len(refused)} refused; "
        f"other patients' crisis alerts after {', '.join(f'{x:.2f}' for x in latencies)} s"
    )
    others_said = {(r.status_code, r.text[:300]) for r in answers if r.status_code not in (200, 429)}
    assert len(admitted) + len(refused) == MESSAGES, others_said
    # the budget holds in each window (the flood may straddle two): at most one message beyond it; the rest refused,
    # visibly. A message whose window is known (the same before and after) counts in it; one that straddled a
    # window's end counts in one of the two, so together they hold the bound once per window touched
    assert admitted
    known = [(b, r) for r, (b, e) in zip(answers, windows, strict=True) if b == e and r.status_code == 200]
    per_window = (PATIENT_BUDGET - 1) // RESULTS + 1  # messages admitted in one window at the most
    for window in {b for b, _ in windows}:
        taken = [r for w, r in known if w == window]
        assert (len(taken) - 1) * RESULTS < PATIENT_BUDGET, (window, len(taken))
    touched = {w for pair in windows for w in pair}
    assert len(admitted) <= per_window * len(touched), (len(admitted), sorted(touched))
    for r in refused:
        assert int(r.headers["retry-after"]) >= 1
        assert "MSA|AR" in r.text or "MSA|AE" in r.text
    assert await refused_by_budget(stack) - refused_before == len(refused)
    assert max(latencies) < CRISIS_BOUND_S, latencies
    await quiet(stack)  # the admitted part through every service before the next test
