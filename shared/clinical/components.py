"""The connected sets of named records (pure): a union-find over pairs "this one is linked to that one", each name
mapped to one name of its set. What links corrections to the records they name: the radiotherapy planner's retention
(a record's chain of versions, services/radiotherapy_planner/retention.py) and the lesions corrections link
(corrections.linked_lesions)."""

from __future__ import annotations

from collections.abc import Iterable


def components(pairs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Each name of `pairs` (a name paired with None: a member, alone unless another pair links it) mapped to the
    least name of its connected set, whatever the order of the pairs; in the order the names first appear."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
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
