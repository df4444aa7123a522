"""Client-centric guarantees, as tables: each history is judged by one check, and a violating one
must name the two ops that show it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from checker import (
    CheckResult,
    check_monotonic_reads,
    check_monotonic_writes,
    check_read_your_writes,
    check_writes_follow_reads,
)
from checker.history import Kind, Op
from tests.checker.build import UNKNOWN, history, indices, op, read, write

Check = Callable[[Sequence[Op]], CheckResult]
Z = 0x100000000
S1, S2 = 0x51, 0x52  # sessions

CASES: list[tuple[str, Check, list[Op], set[int] | None]] = [
    # monotonic reads
    ("state grows", check_monotonic_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 3), read(1, "/b", "1", 2, 3, zxid=Z + 5)), None),
    ("state goes back", check_monotonic_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 5), read(1, "/b", "1", 2, 3, zxid=Z + 3)), {0, 1}),
    ("other clients may be behind", check_monotonic_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 5), read(2, "/a", "0", 2, 3, zxid=Z + 3)), None),
    ("a new session starts afresh", check_monotonic_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 5, session=S1), read(1, "/a", "0", 2, 3, zxid=Z + 3, session=S2)), None),
    ("znode version goes back", check_monotonic_reads, history(read(1, "/a", "2", 0, 1, version=2), read(1, "/a", "1", 2, 3, version=1)), {0, 1}),
    ("znode mzxid goes back", check_monotonic_reads, history(op(Kind.EXISTS, 1, "/a", 0, 1, exists=True, mzxid=Z + 4), read(1, "/a", "1", 2, 3, mzxid=Z + 2)), {0, 1}),
    ("change newer than the state", check_monotonic_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 2, mzxid=Z + 3)), {0}),
    # read your writes
    ("sees own write", check_read_your_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 4, version=3), read(1, "/a", "1", 2, 3, zxid=Z + 4, mzxid=Z + 4, version=3)), None),
    ("sees a newer write", check_read_your_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 4), read(1, "/a", "2", 2, 3, zxid=Z + 6, mzxid=Z + 6)), None),
    ("misses own write (mzxid)", check_read_your_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 4), read(1, "/a", "0", 2, 3, mzxid=Z + 2)), {0, 1}),
    ("misses own write (version)", check_read_your_writes, history(write(1, "/a", "1", 0, 1, version=3), read(1, "/a", "0", 2, 3, version=2)), {0, 1}),
    ("state older than own write", check_read_your_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 4), read(1, "/b", "0", 2, 3, zxid=Z + 3)), {0, 1}),
    ("unknown write promises nothing", check_read_your_writes, history(write(1, "/a", "1", 0, status=UNKNOWN), read(1, "/a", "0", 2, 3, mzxid=Z + 2)), None),
    ("pipelined read behind a write", check_read_your_writes, history(write(1, "/a", "1", 0, 5, zxid=Z + 4), read(1, "/a", "0", 1, 2, mzxid=Z + 2)), {0, 1}),
    # monotonic writes
    ("zxids in program order", check_monotonic_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 1), op(Kind.CREATE_SEQ, 1, "/s/n-", 2, 3, path="/s/n-0000000001", zxid=Z + 2)), None),
    ("zxids against program order", check_monotonic_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 2), write(1, "/b", "1", 2, 3, zxid=Z + 1)), {0, 1}),
    ("other clients interleave", check_monotonic_writes, history(write(1, "/a", "1", 0, 1, zxid=Z + 2), write(2, "/b", "1", 2, 3, zxid=Z + 1)), None),
    # writes follow reads
    ("write after the read state", check_writes_follow_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 5), write(1, "/b", "1", 2, 3, zxid=Z + 6)), None),
    ("write before the read state", check_writes_follow_reads, history(read(1, "/a", "1", 0, 1, zxid=Z + 5), write(1, "/b", "1", 2, 3, zxid=Z + 5)), {0, 1}),
    ("only mzxid known", check_writes_follow_reads, history(read(1, "/a", "1", 0, 1, mzxid=Z + 7), write(1, "/b", "1", 2, 3, zxid=Z + 6)), {0, 1}),
]  # fmt: skip


@pytest.mark.parametrize("name, check, ops, culprits", CASES, ids=[case[0] for case in CASES])
def test_session_guarantees(name: str, check: Check, ops: list[Op], culprits: set[int] | None) -> None:
    result = check(ops)
    if culprits is None:
        assert result.ok, result.counterexample()
    else:
        assert result.violations, name
        assert indices(result) == culprits, result.counterexample()
        assert result.name in result.counterexample()
