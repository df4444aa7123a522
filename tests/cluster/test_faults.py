"""Fault points: partition groups, the blocked files nodes read, and debug switch names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import faults
from zkcore import LocalError


def test_groups_name_every_server_once() -> None:
    assert faults.parse_groups("1,2/3", range(1, 6)) == [{1, 2}, {3}, {4, 5}]
    assert faults.parse_groups("3", [1, 2, 3]) == [{3}, {1, 2}]
    for bad in ("1,1/1", "1/1", "9", "a,b", "1//2"):
        with pytest.raises(LocalError):
            faults.parse_groups(bad, [1, 2, 3])


def test_partition_blocks_across_groups_and_heal_clears(tmp_path: Path) -> None:
    faults.partition(tmp_path, [{1, 2}, {3}])
    seen = {sid: faults.BlockedPeers(faults.blocked_path(tmp_path, sid)) for sid in (1, 2, 3)}
    assert {sid: b.poll() for sid, b in seen.items()} == {1: {3}, 2: {3}, 3: {1, 2}}
    faults.partition(tmp_path, [{1}, {2, 3}])
    assert seen[1].poll() == {2, 3} and seen[3].poll() == {1}
    faults.heal(tmp_path)
    assert all(b.poll() == frozenset() for b in seen.values())


def test_server_class_names_a_server_subclass() -> None:
    from cluster.node import server_class
    from verify.broken import VARIANTS, EarlyAckServer, StaleReadsServer
    from zkcore.server import Server

    assert server_class("") is Server
    assert server_class(VARIANTS["stale_reads"]) is StaleReadsServer
    assert server_class(VARIANTS["early_ack"]) is EarlyAckServer
    with pytest.raises(LocalError, match="serverClass must name"):
        server_class("zkcore:DataTree")
