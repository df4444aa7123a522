"""checker: decides whether a recorded history of client operations kept ZooKeeper's guarantees
(linearizable writes, sequential consistency, session guarantees, ephemerals, sequential names,
watch order), and whether recorded lock holds kept mutual exclusion. Pure: it reads a history and
returns verdicts, never touching a service.
"""

from checker._all import check_all
from checker._linear import check_linearizability
from checker._mutex import Hold, Silence, check_mutual_exclusion, load_holds
from checker._result import CheckResult, Report, Violation, describe
from checker._sequential import check_sequential_consistency
from checker._sessions import (
    check_monotonic_reads,
    check_monotonic_writes,
    check_read_your_writes,
    check_writes_follow_reads,
)
from checker._znodes import check_ephemerals, check_sequential_nodes, check_watch_order, check_write_order
from checker.history import HistoryError, Kind, Op, Status, from_pairs, load, number, save

__all__ = [
    "CheckResult",
    "HistoryError",
    "Hold",
    "Kind",
    "Op",
    "Report",
    "Silence",
    "Status",
    "Violation",
    "check_all",
    "check_ephemerals",
    "check_linearizability",
    "check_monotonic_reads",
    "check_mutual_exclusion",
    "check_monotonic_writes",
    "check_read_your_writes",
    "check_sequential_consistency",
    "check_sequential_nodes",
    "check_watch_order",
    "check_write_order",
    "check_writes_follow_reads",
    "describe",
    "from_pairs",
    "load",
    "load_holds",
    "number",
    "save",
]
