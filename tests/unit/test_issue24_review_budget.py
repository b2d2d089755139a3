"""Review of issue 25's admission budget on the bus (H-review24): a record whose timestamp falls in an earlier window
than the patient's current one (replicas' clocks, a producer setting its own timestamps) must not reset the current
window's count: records alternating between two windows were all admitted, whatever the budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.lab_normalisation.admission import Budget, IntakeWindow, admit

BUDGET = Budget(window_ms=60_000, per_patient=1000, per_source=5000)


def run(records: list[tuple[int, int]], limit: int = 1000) -> list[tuple[int, int]]:
    """The (at_ms, size) records admitted, in order."""
    w: IntakeWindow | None = None
    admitted = []
    for at, size in records:
        after = admit(w, BUDGET, limit, at, size)
        if after is not None:
            admitted.append((at, size))
            w = after
    return admitted


def test_records_alternating_between_two_windows_do_not_reset_the_budget() -> None:
    now = 10 * BUDGET.window_ms + 30_000
    records = [(now - (i % 2) * BUDGET.window_ms, 400) for i in range(40)]  # 16,000 results in ~one minute
    admitted = run(records)
    # each window admits while below its budget: at most the budget plus one message in each of the two
    assert sum(size for _, size in admitted) <= 2 * (1000 + 400)
    assert sum(size for at, size in admitted if BUDGET.window(at) == 10) <= 1000 + 400


@given(
    st.lists(
        st.tuples(st.integers(0, 5 * BUDGET.window_ms - 1), st.integers(1, 500)),
        min_size=1,
        max_size=80,
    )
)
def test_however_the_timestamps_go_back_a_window_never_admits_more_than_twice_its_share(
    records: list[tuple[int, int]],
) -> None:
    """What is admitted while the newest window seen is W - from records of W or of any earlier window - is at most
    two budgets plus two messages (W's own and the earlier ones', counted together)."""
    admitted = run(records)
    newest = -1
    per_newest: dict[int, int] = {}
    seen = 0
    for at, size in records:
        newest = max(newest, BUDGET.window(at))
        if seen < len(admitted) and admitted[seen] == (at, size):
            per_newest[newest] = per_newest.get(newest, 0) + size
            seen += 1
    assert all(total <= 2 * (1000 + 500) for total in per_newest.values()), per_newest


def test_in_order_records_are_admitted_as_before() -> None:
    full = IntakeWindow(window=BUDGET.window(59_000), results=1000)
    assert admit(full, BUDGET, 1000, 59_000, 1) is None
    after = admit(full, BUDGET, 1000, 60_000, 499)
    assert after is not None and (after.window, after.results) == (1, 499)


def test_observations_written_with_json_escapes_are_counted_as_observations() -> None:
    """MAX_RESULTS_PER_MESSAGE and the admission budget count results before parsing (a pattern over the bytes);
    "Observ\\u0061tion" is the same JSON string: such a Bundle of 600 Observations counted as 1 result and was parsed
    whole. What the parser found is counted too, and the message refused when it is over the limit."""
    import json
    from zoneinfo import ZoneInfo

    from aiokafka.structs import ConsumerRecord

    from services.lab_normalisation.app import limited
    from services.lab_normalisation.common import AnalyteMap
    from services.lab_normalisation.ingest import from_fhir
    from shared.clinical.clock import NotAfter
    from shared.errors import Rejected
    from tests.unit.test_issue24_review_intake import ANALYTES, NOW, observation

    assert isinstance(ANALYTES, AnalyteMap)
    entries = [{"resource": observation(id=f"o{i}")} for i in range(600)]
    raw = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).replace(
        '"Observation"', '"Observ\\u0061tion"'
    )
    record = ConsumerRecord(
        "hospital.fhir-r4.v1", 0, 0, int(NOW.timestamp() * 1000), 0, b"P1", raw.encode(), None, 2, len(raw), ()
    )
    decode = limited(lambda r: from_fhir(r.value, ANALYTES, NotAfter(NOW), ZoneInfo("Europe/Paris")), 500)
    try:
        batch = decode(record)
    except Rejected as exc:
        assert "600 results" in str(exc)
    else:
        raise AssertionError(f"admitted as {batch.results} result(s)")
