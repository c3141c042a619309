"""The joiners' group assignor co-assigns partition ``p`` of the predictions and labels topics to one member, for any
number of members and partitions (aiokafka's default, round robin, does not); the co-partitioning check."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from streams.errors import SettingsError
from streams.performance.binding import join_spec
from streams.performance.runner import assignor, check_copartitioned
from streams.settings import Settings
from tests.unit.performance.scenario import LABELS, PREDICTIONS, contract


class Metadata:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))


def co_assigned(cls: Any, members: int, partitions: int) -> bool:
    subscriptions = {f"member-{i}": cls.metadata([PREDICTIONS, LABELS]) for i in range(members)}
    for assignment in cls.assign(Metadata(partitions), subscriptions).values():
        owned = dict(assignment.assignment)
        if sorted(owned.get(PREDICTIONS, [])) != sorted(owned.get(LABELS, [])):
            return False
    return True


def test_the_group_assignor_co_assigns_pairs() -> None:
    cases = [(m, n) for m in range(1, 6) for n in range(1, 9)]
    assert all(co_assigned(assignor(), m, n) for m, n in cases)
    # the property is the assignor's: round robin splits some pairs (e.g. 2 members, 3 partitions)
    assert not all(co_assigned(RoundRobinPartitionAssignor, m, n) for m, n in cases)


def test_topics_of_different_partition_counts_are_refused() -> None:
    spec = join_spec(contract(), Settings())
    check_copartitioned(spec, {PREDICTIONS: 4, LABELS: 4})
    with pytest.raises(SettingsError, match=r"has 6 partition\(s\) .* has 4: .*co-partitioned"):
        check_copartitioned(spec, {PREDICTIONS: 6, LABELS: 4})
