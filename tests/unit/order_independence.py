"""Issue 22: helpers of the order-independence property tests (tests/unit/test_order_independence_*.py): the same
records in another delivery order, some delivered twice, and what a consumer holds of a service's recommendations.

The reorderings are those the runtime can produce: a patient's records on several topics fetched in any interleaving,
a batch redelivered after a crash, a rebuild replaying by record timestamp. Each record is delayed by up to a window
after its recorded time (the services' retention horizons state how late a record may arrive and still be decided
as with the whole history; the window stays well inside them). Records of one producer that name one another keep
their relative order when the test says so (`ordered`): one producer's messages stay in order on the patient's
partition (an SRE before its withdrawal)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from contracts.base import Message
from contracts.clinical import Recommendation

#: how late a record may be delivered after its recorded time in the reorderings (well inside every retention
#: horizon: 90 days scoring, 120 days the systemic planner's drugs, 183 days the radiotherapy planner)
WINDOW = timedelta(days=10)

Wording = tuple[str, str, str, str, tuple[str, ...]]


def distinct_times(events: Sequence[Message]) -> list[Message]:
    """Each record its own recorded time (versions of one request, score or result recorded in the same instant are
    told apart by delivery order: that order is the producer's, kept on the partition)."""
    out: list[Message] = []
    seen: dict[uuid.UUID, Message] = {}
    last: datetime | None = None
    for e in events:
        if e.event_id in seen:  # a second delivery: the very same record
            out.append(seen[e.event_id])
            continue
        at = e.recorded_at if last is None or e.recorded_at > last else last + timedelta(seconds=1)
        m = e.model_copy(update={"recorded_at": at})
        seen[e.event_id] = m
        out.append(m)
        last = at
    return out


def shuffled(
    events: Sequence[Message],
    seed: int,
    duplicates: int,
    window: timedelta = WINDOW,
    ordered: Callable[[Message], bool] = lambda _: False,
) -> list[Message]:
    """The records in another order: each delayed by up to `window` after its recorded time, `duplicates` of them
    delivered a second time up to `window` after the first; the records `ordered` selects keep their relative order
    (each delivered no earlier than the one before it in `events`; a second delivery never before its first)."""
    rnd = random.Random(seed)
    span = window.total_seconds()
    keyed = [(e.recorded_at + timedelta(seconds=rnd.uniform(0, span)), i, e) for i, e in enumerate(events)]
    again: list[int] = []  # the entry each second delivery repeats
    for k in range(duplicates if events else 0):
        n = rnd.choice(range(len(events)))
        keyed.append((keyed[n][0] + timedelta(seconds=rnd.uniform(0, span)), len(events) + k, events[n]))
        again.append(n)
    # HAZ-22-ORDER-05: an ordered record is held back behind the one before it (within `window` of its recorded time
    # when they are in recorded order), and its second delivery behind it. The sort's slots refilled in order moved
    # each one a slot early when the history held a second delivery; second deliveries put after every first one
    # came months late, beyond the retention horizons (a redelivery is of records past the committed offset).
    last: datetime | None = None
    for j, (at, i, e) in enumerate(keyed[: len(events)]):
        if ordered(e):
            last = at if last is None or at > last else last
            keyed[j] = (last, i, e)
    for j, n in enumerate(again, start=len(events)):
        at, i, e = keyed[j]
        if ordered(e):
            keyed[j] = (max(at, keyed[n][0]), i, e)
    return [e for _, _, e in sorted(keyed, key=lambda x: (x[0], x[1]))]


def active(outputs: Sequence[Message], text: bool = True) -> dict[str, Wording]:
    """What a consumer holds after the outputs: the active recommendations by ID (a withdrawal ends what it names),
    with their wording. Not their time nor their inputs: that is provenance, fixed when a wording is first issued (a
    planner notifies only changed decisions, so the same wording reached through other events keeps its first
    provenance; README "Chaos proof": "inputs differ"). `text=False`: the text left out too (see the calling test)."""
    held: dict[str, Wording] = {}
    for o in outputs:
        if not isinstance(o, Recommendation):
            continue
        if o.status == "withdrawn":
            for x in o.supersedes:
                held.pop(str(x), None)
        else:
            held[str(o.event_id)] = (o.rule_id, o.severity, o.title, o.text_fr if text else "", tuple(o.missing))
    return held


def one_per_key(outputs: Sequence[Message]) -> dict[str, str]:
    """The recommendations still active by `alert_key` (issue 22): fails if two of one key are active at once."""
    held: dict[str, str] = {}
    by_id: dict[str, str] = {}
    for o in outputs:
        if not isinstance(o, Recommendation):
            continue
        if o.status == "withdrawn":
            for x in o.supersedes:
                key = by_id.pop(str(x), None)
                if key is not None and held.get(key) == str(x):
                    del held[key]
            continue
        assert o.alert_key, f"{o.rule_id}: a recommendation without its identity"
        other = held.get(o.alert_key)
        assert other is None or other == str(o.event_id), f"two active recommendations of {o.alert_key}"
        held[o.alert_key], by_id[str(o.event_id)] = str(o.event_id), o.alert_key
    return held
