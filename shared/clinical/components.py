"""The connected sets of named records (pure): a union-find over pairs "this one is linked to that one", each name
mapped to one name of its set. What links corrections to the records they name: the planners' retention (a record's
chain of versions: services/radiotherapy_planner/retention.py, services/systemic_planner/retention_chains.py) and the
lesions corrections link (corrections.linked_lesions)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeVar

#: a record's name: its ID as text, or as a UUID
N = TypeVar("N", str, uuid.UUID)


def components(pairs: Iterable[tuple[N, N | None]]) -> dict[N, N]:
    """Each name of `pairs` (a name paired with None: a member, alone unless another pair links it) mapped to the
    least name of its connected set, whatever the order of the pairs; in the order the names first appear."""
    parent: dict[N, N] = {}

    def find(x: N) -> N:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for name, other in pairs:
        find(name)
        if other is not None:
            a, b = find(name), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in list(parent)}
