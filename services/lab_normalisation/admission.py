"""Issue 25: the intake's admission budget, per patient and per source, so that one patient's flood or one noisy
feed cannot put every other patient's emergency behind it (measured: 42 messages of 499 results for one patient
within a minute were all accepted, and other patients' crisis alerts came up to 100 s late).

The budget counts results (HL7 OBX, FHIR Observations; a JSON event is one) in fixed windows of
INTAKE_BUDGET_WINDOW_S. A message is admitted while what was admitted before it in its window is below the budget
(so one message is always admitted in an empty window, and a window admits at most the budget plus one message's
results, MAX_RESULTS_PER_MESSAGE); the excess is refused visibly, never dropped:

- HTTP (POST /fhir, /hl7v2) and MLLP: per source (the token's subject, the MLLP client certificate) before parsing,
  per patient after; 429 with Retry-After (FHIR OperationOutcome "throttled", HL7 AR with the reason; MLLP: AR
  with the reason), counted in `osteocds_intake_budget_refused_total`. The counts are in Redis, shared by every
  replica; if Redis cannot be reached the message is admitted (the budget is about fairness; the consumer needs
  Redis anyway) and the failure logged.
- Kafka (the hospital.* topics): per patient, in the patient's lab aggregate, by the record's timestamp, so a
  rebuild makes the same decisions; an excess record is dead-lettered with the reason. Its budget is the HTTP
  one plus one message (MAX_RESULTS_PER_MESSAGE): what HTTP and MLLP admitted and published is never refused
  again there, whatever order concurrent requests reached the topic in. No per-source budget on the bus: a
  rebuild must reproduce every decision from one patient's records alone, and the runtime already interleaves
  patients fairly (MAX_RECORDS_PER_PATIENT_PER_BATCH).

This module is pure (the budget's arithmetic); `intake_budget.py` keeps the HTTP and MLLP counts in Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

Scope = Literal["patient", "source"]
Path = Literal["http", "mllp", "kafka"]


@dataclass(frozen=True)
class Budget:
    window_ms: int
    #: results per patient (per source) per window; 0: no budget
    per_patient: int
    per_source: int

    def window(self, at_ms: int) -> int:
        return at_ms // self.window_ms

    def retry_after_s(self, at_ms: int) -> int:
        """Seconds until the next window opens (at least 1)."""
        return max(1, math.ceil(((self.window(at_ms) + 1) * self.window_ms - at_ms) / 1000))

    def reason(self, scope: Scope, admitted: int, limit: int, at_ms: int) -> str:
        return (
            f"admission budget exceeded: {admitted} results already admitted for this {scope} in the "
            f"{self.window_ms / 1000:g}-s window (INTAKE_{scope.upper()}_RESULTS_PER_WINDOW={limit}); refused, "
            f"send it again in {self.retry_after_s(at_ms)} s"
        )


class IntakeWindow(BaseModel):
    """A patient's results admitted from the bus in the current window (in the lab aggregate), and those of records
    stamped in an earlier window that arrived after it began (`earlier`), so that a timestamp going back never
    resets the current count (review of issue 25)."""

    window: int = -1
    results: int = 0
    earlier: int = 0

    def spent(self, budget: Budget, at_ms: int) -> int:
        """What a record at `at_ms` is checked against: its window's count, or the earlier records' count."""
        window = budget.window(at_ms)
        if window > self.window:
            return 0
        return self.results if window == self.window else self.earlier


def admit(current: IntakeWindow | None, budget: Budget, limit: int, at_ms: int, size: int) -> IntakeWindow | None:
    """Pure: the patient's window after admitting `size` results at `at_ms`, or None when refused (what was admitted
    before it in this window has reached `limit`). A record of an earlier window than the current one is counted with
    the earlier records (at most `limit` plus one message of them while the current window lasts), never as a new
    window: records alternating between two windows' timestamps were all admitted."""
    current = current or IntakeWindow()
    window = budget.window(at_ms)
    before = current.spent(budget, at_ms)
    if before >= limit:
        return None
    if window > current.window:
        return IntakeWindow(window=window, results=size)
    if window == current.window:
        return current.model_copy(update={"results": before + size})
    return current.model_copy(update={"earlier": before + size})
