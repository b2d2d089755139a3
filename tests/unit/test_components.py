"""shared/clinical/components.py: the one union-find of correction chains (the lesions corrections link, the
radiotherapy and systemic planners' retention), checked against a plain graph search, for names as text and as UUIDs."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Hashable

import pytest

from shared.clinical.components import components


def _reference(pairs: list[tuple[Hashable, Hashable | None]]) -> dict[Hashable, frozenset[Hashable]]:
    """Each name's connected set, by a breadth-first search over the links."""
    links: dict[Hashable, set[Hashable]] = defaultdict(set)
    for a, b in pairs:
        links[a]
        if b is not None:
            links[a].add(b)
            links[b].add(a)
    out: dict[Hashable, frozenset[Hashable]] = {}
    for start in links:
        if start in out:
            continue
        seen, todo = {start}, [start]
        while todo:
            for n in links[todo.pop()] - seen:
                seen.add(n)
                todo.append(n)
        for n in seen:
            out[n] = frozenset(seen)
    return out


@pytest.mark.parametrize("kind", ["text", "uuid"])
def test_each_name_maps_to_the_least_name_of_its_connected_set(kind: str) -> None:
    rng = random.Random(7)
    for _ in range(500):
        pool = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(rng.randint(1, 10))]
        names: list[Hashable] = [str(u) for u in pool] if kind == "text" else list(pool)
        pairs = [(rng.choice(names), rng.choice([None, None, *names])) for _ in range(rng.randint(1, 12))]
        got = components(pairs)  # type: ignore[type-var]
        expected = _reference(pairs)
        assert set(got) == set(expected)
        for name, root in got.items():
            assert root == min(expected[name])  # type: ignore[type-var]
        rng.shuffle(pairs)
        assert components(pairs) == got  # type: ignore[type-var]  # whatever the order of the pairs
