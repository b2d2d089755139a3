"""Issue 22: the marks a changelog record carries (shared/runtime/changelog.py `Writer`): per patient and input
partition, the highest offset of its records the process handled and has not committed."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import TopicPartition

from shared.runtime.changelog import Writer


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int


def test_a_batchs_records_count_only_once_its_transaction_succeeded() -> None:
    w = Writer("svc")
    first = w.handled([(Rec("a", 0, 3), "p"), (Rec("a", 0, 5), "p"), (Rec("b", 1, 7), "p"), (Rec("a", 0, 4), "q")])
    assert first == {"p": {"a:0": 5, "b:1": 7}, "q": {"a:0": 4}}
    assert w.marks_for(["p"], first) == {"p": {"a:0": 5, "b:1": 7}}  # what this batch's record says
    assert w.marks_for(["p"], {}) == {"p": {}}  # the batch was stopped (a lost state): nothing kept
    w.remember(first)
    later = w.handled([(Rec("c", 2, 1), "p")])
    assert w.marks_for(["p"], later) == {"p": {"a:0": 5, "b:1": 7, "c:2": 1}}  # the earlier batch's marks kept


def test_marks_keep_the_highest_offset_and_end_with_the_commit() -> None:
    w = Writer("svc")
    w.remember({"p": {"a:0": 9}, "q": {"a:0": 2, "b:0": 4}})
    w.remember({"p": {"a:0": 6}})  # delivered again after a restore: lower
    assert w.marks_for(["p"], {}) == {"p": {"a:0": 9}}
    w.committed({TopicPartition("a", 0): 5})  # below 5: never delivered again
    assert w.marks_for(["p", "q"], {}) == {"p": {"a:0": 9}, "q": {"b:0": 4}}
    w.committed({TopicPartition("a", 0): 10, TopicPartition("b", 0): 5})
    assert w.marks_for(["p", "q"], {}) == {"p": {}, "q": {}}
