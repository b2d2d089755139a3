"""Issue 25 (helper ZH): scoring searches its memo bands and clock moments as integer instants (newest.instant), not
by comparing datetimes (a time parsed from JSON holds its own tzinfo object, so each comparison calls both tzinfos).
The instants must order and equal the times exactly as the aware datetimes do, across offsets (+01:00, +02:00, Z)."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.scoring.common import _band
from shared.clinical.newest import instant

_OFFSETS = st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(hours=2), timedelta(hours=-5, minutes=-30)])
_TIMES = st.builds(
    lambda base, offset: base.replace(tzinfo=UTC).astimezone(timezone(offset)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    _OFFSETS,
)
_PARSED = TypeAdapter(datetime)


def _parsed(t: datetime) -> datetime:
    """The time as the services hold it: parsed from JSON (pydantic's own tzinfo object, one per time)."""
    return _PARSED.validate_json(_PARSED.dump_json(t))


@settings(max_examples=300, deadline=None)
@given(_TIMES, _TIMES)
def test_instants_order_and_equal_as_the_times_do(a: datetime, b: datetime) -> None:
    pa, pb = _parsed(a), _parsed(b)
    assert (instant(pa) < instant(pb)) == (pa < pb)
    assert (instant(pa) == instant(pb)) == (pa == pb)
    assert instant(pa) == instant(a)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TIMES, max_size=12), _TIMES)
def test_a_band_is_where_the_reference_falls_among_the_moments(moments: list[datetime], reference: datetime) -> None:
    times = sorted(_parsed(m) for m in moments)
    ref = _parsed(reference)
    expected = bisect.bisect_left(times, ref), bisect.bisect_right(times, ref)
    assert _band(sorted(instant(m) for m in times), instant(ref)) == expected
    assert _band([], None) is None
