"""Issue 25 / HAZ-27-FUTURE-HIDES: "is a fact dated ahead?" answered once per table object (shared/clinical/newest.py)
gives what scanning every record gives, for the tables the services' states hold and for their changes, compared as
the rules compare times (review R30-NEWEST: by wall clock for two times of the same ZoneInfo)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.newest import Newest, TimesAfter, instant, values_at

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _record(minutes: int, at: datetime = T0) -> SimpleNamespace:
    return SimpleNamespace(occurred_at=at + timedelta(minutes=minutes))


def test_instant_orders_as_the_times_do() -> None:
    paris = datetime(2026, 7, 1, 14, tzinfo=HOSPITAL_TZ)  # 12:00 UTC
    assert instant(paris) < instant(datetime(2026, 7, 1, 12, 0, 0, 1, tzinfo=UTC))
    assert instant(paris) == instant(paris.astimezone(UTC))


def test_same_table_same_answer_new_or_grown_table_scanned_again() -> None:
    newest = Newest[dict[str, SimpleNamespace], datetime](values_at("occurred_at"))
    table = {"a": _record(0), "b": _record(30)}
    assert newest(table) == T0 + timedelta(minutes=30)
    assert newest.after(table, T0 + timedelta(minutes=29))
    assert not newest.after(table, T0 + timedelta(minutes=30))  # "after", strictly
    table["c"] = _record(90)  # filled in place after it was first seen: its length tells
    assert newest(table) == T0 + timedelta(minutes=90)
    copy = {**table, "d": _record(120)}  # a transition's copy is another object
    assert newest(copy) == T0 + timedelta(minutes=120)
    assert newest(table) == T0 + timedelta(minutes=90)
    assert newest({}) is None and not newest.after({}, T0)
    newest.clear()
    assert newest(table) == T0 + timedelta(minutes=90)


def test_times_after_equals_a_scan_over_random_tables_and_stays_bounded() -> None:
    rng = random.Random(25)
    after = TimesAfter[dict[str, SimpleNamespace]](values_at("occurred_at"), size=8)
    tables: list[dict[str, SimpleNamespace]] = []
    for i in range(300):
        base = tables[rng.randrange(len(tables))] if tables and rng.random() < 0.7 else {}
        table = {**base, f"r{i}": _record(rng.randrange(-600, 600))}  # copy-on-write, as merge does
        tables.append(table)
        for t in rng.sample(tables, min(5, len(tables))):
            limit = T0 + timedelta(minutes=rng.randrange(-600, 600))
            assert after(t, limit) is any(x.occurred_at > limit for x in t.values())
    assert len(after.newest._seen) <= 8


def test_times_after_compares_as_the_rules_do_across_a_dst_change() -> None:
    """Review R30-NEWEST: two times of the same ZoneInfo compare by wall clock. Now 01:50 CET on the spring change
    (limit 02:05, in the skipped hour); a fact at 03:01 CEST is after the limit for the rules (wall clock) though its
    instant is before the limit's: the check must say so, as the rules would."""
    limit = datetime(2026, 3, 29, 2, 5, tzinfo=HOSPITAL_TZ)
    fact = datetime(2026, 3, 29, 3, 1, tzinfo=HOSPITAL_TZ)
    assert fact > limit and instant(fact) < instant(limit)
    after = TimesAfter[dict[str, SimpleNamespace]](values_at("occurred_at"))
    assert after({"x": SimpleNamespace(occurred_at=fact)}, limit)
    hours_before = {"x": SimpleNamespace(occurred_at=limit - timedelta(hours=4))}
    assert not after(hours_before, limit)
