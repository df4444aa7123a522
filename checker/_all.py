"""Every check on one history, gathered into a Report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from checker._linear import check_linearizability
from checker._result import Report
from checker._sequential import check_sequential_consistency
from checker._sessions import (
    check_monotonic_reads,
    check_monotonic_writes,
    check_read_your_writes,
    check_writes_follow_reads,
)
from checker._znodes import check_ephemerals, check_sequential_nodes, check_watch_order, check_write_order
from checker.history import Kind, Op, number


def check_all(
    history: Sequence[Op], *, initial: Mapping[str, str] | None = None, all_reads: bool = False
) -> Report:
    """Run every check. `initial` gives registers' values before the history; `all_reads` says
    every read is meant to be linearizable (by default only reads after a sync are)."""
    ops = number(history)
    results = (
        check_linearizability(ops, initial=initial, all_reads=all_reads),
        check_sequential_consistency(ops, initial=initial),
        check_monotonic_reads(ops),
        check_read_your_writes(ops),
        check_monotonic_writes(ops),
        check_writes_follow_reads(ops),
        check_write_order(ops, all_reads=all_reads),
        check_ephemerals(ops, all_reads=all_reads),
        check_sequential_nodes(ops),
        check_watch_order(ops),
    )
    notes: tuple[str, ...] = ()
    plain_reads = sum(1 for op in ops if op.kind is Kind.READ and op.ok and not op.sync)
    if plain_reads and not all_reads:
        notes = (
            "",
            f"{plain_reads} reads without a sync are judged by the sequential and session checks only: "
            "ZooKeeper may serve them stale",
        )
    return Report(results, len(ops), notes)
