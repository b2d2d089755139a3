"""Issue 22, Redis Cluster: every key a multi-key step touches is in one hash slot (shared/runtime/state.py). The
slots are computed with redis-py's own CRC16 key-slot function, the one the cluster client routes with."""

from __future__ import annotations

import random
from collections import Counter

from redis.crc import key_slot

from shared.runtime.state import BUCKETS, SLOTS, TAGS, Layout, bucket_of, bucket_tags


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


def _patients(n: int, seed: int = 22) -> list[str]:
    rng = random.Random(seed)
    shapes = ("pt-{:08x}", "demo-{:08x}", "IPP{:010d}", "{{odd}}-{:x}", "pt:{:x}:{{x}}")
    return [rng.choice(shapes).format(rng.getrandbits(32)) for _ in range(n)]


def test_every_key_of_a_patient_and_its_group_is_in_one_slot() -> None:
    layout = Layout("osteocds:scoring", cluster=True)
    for patient in _patients(2000):
        group = layout.group(patient)
        keys = [
            layout.patient_key(patient),
            layout.patient_key(patient, "outbox"),
            layout.seen_key((patient, f"ev-{patient}")),
            layout.key(group, "timers"),
            layout.key(group, "epoch"),
            layout.key(group, "seq"),
        ]
        assert len({_slot(k) for k in keys}) == 1, keys
        assert all(k.startswith("osteocds:scoring:") for k in keys)  # the per-service Redis ACL prefix still holds


def test_a_batch_split_by_group_has_one_slot_per_group_and_keeps_each_groups_order() -> None:
    layout = Layout("osteocds:notification", cluster=True)
    batch = _patients(500, seed=7)
    groups = layout.split(batch)
    assert sorted(p for ps in groups.values() for p in ps) == sorted(batch)
    for group, patients in groups.items():
        keys = [layout.patient_key(p) for p in patients] + [layout.patient_key(p, "outbox") for p in patients]
        assert {_slot(k) for k in keys} == {_slot(layout.key(group, "epoch"))}
        assert patients == [p for p in batch if layout.group(p) == group]


def test_buckets_sit_evenly_over_the_slots_so_any_master_split_gets_its_share() -> None:
    assert bucket_tags() == TAGS  # the constant is what its rule gives
    slots = [_slot(t) for t in TAGS]
    assert len(set(slots)) == BUCKETS
    for masters in (1, 2, 3, 5, 6, 8):
        # redis-cli --cluster create gives each master one contiguous range of about SLOTS/masters slots
        per_master = Counter(min(masters - 1, s * masters // SLOTS) for s in slots)
        assert max(per_master.values()) - min(per_master.values()) <= 1, (masters, per_master)
    # and patients spread over the buckets (a stable CRC-32: the same bucket in every process)
    counts = Counter(bucket_of(p) for p in _patients(32_000))
    assert min(counts.values()) > 0.85 * 1000 and max(counts.values()) < 1.15 * 1000


def test_one_redis_keeps_the_keys_it_had_before_issue_22() -> None:
    layout = Layout("osteocds:scoring", cluster=False)
    assert layout.groups == ("",)
    assert layout.patient_key("pt-1") == "osteocds:scoring:state:pt-1"
    assert layout.patient_key("pt-1", "outbox") == "osteocds:scoring:outbox:pt-1"
    assert layout.seen_key(("pt-1", "e1")) == layout.seen_key("e1") == "osteocds:scoring:seen:e1"
    assert layout.key("", "epoch") == "osteocds:scoring:epoch"
    assert layout.key("", "timers") == "osteocds:scoring:timers"
    assert layout.split(["a", "b", "c"]) == {"": ["a", "b", "c"]}


def test_the_intake_budget_counts_are_under_the_services_key_prefix() -> None:
    """The per-service Redis ACL allows `~osteocds:<service>:*` only (deploy/generate.py): a count outside it is
    refused (NOPERM), and the budget, which lets a message through when Redis fails, would be silently off."""
    from prometheus_client import CollectorRegistry

    from services.lab_normalisation.admission import Budget
    from services.lab_normalisation.intake_budget import BudgetMetrics, IntakeBudget

    name = "lab-normalisation"
    counts = IntakeBudget(None, name, Budget(60_000, 10, 10), BudgetMetrics(CollectorRegistry(), name))  # type: ignore[arg-type]
    for scope in ("patient", "source"):
        assert counts._key(scope, "pt-1", 1_000).startswith(f"osteocds:{name}:")
