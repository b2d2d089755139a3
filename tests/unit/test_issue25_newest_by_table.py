"""Issue 25 / HAZ-27-FUTURE-HIDES: "is a fact dated ahead?" answered once per table object (shared/clinical/newest.py)
gives what scanning every record gives, for the tables the services' states hold and for their changes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.newest import Newest, instant, instants

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _record(minutes: int) -> SimpleNamespace:
    return SimpleNamespace(occurred_at=T0 + timedelta(minutes=minutes))


def test_instant_orders_as_the_times_do() -> None:
    paris = datetime(2026, 7, 1, 14, tzinfo=HOSPITAL_TZ)
    utc = datetime(2026, 7, 1, 12, 0, 0, 1, tzinfo=UTC)
    assert instant(paris) < instant(utc)  # 14:00 +02:00 is 12:00:00.000000 UTC
    assert instant(paris) == instant(paris.astimezone(UTC))


def test_same_table_same_answer_new_or_grown_table_scanned_again() -> None:
    newest = Newest[dict[str, SimpleNamespace], int](instants("occurred_at"))
    table = {"a": _record(0), "b": _record(30)}
    assert newest(table) == instant(T0 + timedelta(minutes=30))
    assert newest.after(table, instant(T0 + timedelta(minutes=29)))
    assert not newest.after(table, instant(T0 + timedelta(minutes=30)))  # "after", strictly
    table["c"] = _record(90)  # filled in place after it was first seen: its length tells
    assert newest(table) == instant(T0 + timedelta(minutes=90))
    copy = {**table, "d": _record(120)}  # a transition's copy is another object
    assert newest(copy) == instant(T0 + timedelta(minutes=120))
    assert newest(table) == instant(T0 + timedelta(minutes=90))
    assert newest({}) is None and not newest.after({}, 0)


def test_bounded_and_equal_to_a_scan_over_random_tables() -> None:
    rng = random.Random(25)
    newest = Newest[dict[str, SimpleNamespace], int](instants("occurred_at"), size=8)
    tables: list[dict[str, SimpleNamespace]] = []
    for i in range(200):
        base = tables[rng.randrange(len(tables))] if tables and rng.random() < 0.7 else {}
        table = {**base, f"r{i}": _record(rng.randrange(-10_000, 10_000))}  # copy-on-write, as merge does
        tables.append(table)
        for t in rng.sample(tables, min(5, len(tables))):
            limit = instant(T0 + timedelta(minutes=rng.randrange(-10_000, 10_000)))
            scanned = any(instant(x.occurred_at) > limit for x in t.values())
            assert newest.after(t, limit) is scanned
    assert len(newest._seen) <= 8
