"""Client-centric guarantees, judged per client (one session of one process) in program order
from the zxids and versions the server returned: monotonic reads, read your writes, monotonic
writes and writes follow reads. Ops without the zxid a rule needs are skipped by that rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from checker._result import CheckResult, Violation, violation, zxid_text
from checker.history import CHANGE_KINDS, READ_KINDS, Kind, Op, number

Client = tuple[int, int | None]


def programs(history: Sequence[Op]) -> dict[Client, list[Op]]:
    """Each client's ok ops in program order: the order it issued them, which is start order."""
    out: dict[Client, list[Op]] = {}
    for op in sorted(number(history), key=lambda op: (op.start, op.index)):
        if op.ok:
            out.setdefault(op.client, []).append(op)
    return out


def _is_read(op: Op) -> bool:
    return op.kind in READ_KINDS


def _is_change(op: Op) -> bool:
    return op.kind in CHANGE_KINDS and op.zxid is not None


def _read_state(op: Op) -> int | None:
    """The newest state a read shows: the state it was served from, else the znode's last change."""
    return op.zxid if op.zxid is not None else op.mzxid


def _key_older(op: Op, before: Op) -> bool:
    """Whether a read of a znode shows an older version of it than an earlier read did."""
    if op.mzxid is not None and before.mzxid is not None:
        return op.mzxid < before.mzxid
    if (
        op.kind is Kind.READ
        and before.kind is Kind.READ
        and op.version is not None
        and before.version is not None
    ):
        return op.version < before.version
    return False


def check_monotonic_reads(history: Sequence[Op]) -> CheckResult:
    """A client never reads an older state than one it read before: the zxid of the state serving
    its reads never goes back, nor the version (mzxid) of any znode it reads again."""
    found: list[Violation] = []
    checked = 0
    for ops in programs(history).values():
        newest: Op | None = None
        per_key: dict[str, Op] = {}
        for op in filter(_is_read, ops):
            checked += 1
            if op.zxid is not None and op.mzxid is not None and op.mzxid > op.zxid:
                found.append(
                    violation("monotonic reads: a read shows a change newer than the state serving it", [op])
                )
            if op.zxid is not None:
                if newest is not None and newest.zxid is not None and op.zxid < newest.zxid:
                    summary = f"monotonic reads: state {zxid_text(op.zxid)} read after state {zxid_text(newest.zxid)}"
                    found.append(violation(summary, [newest, op]))
                elif newest is None or newest.zxid is None or op.zxid > newest.zxid:
                    newest = op
            before = per_key.get(op.key)
            if before is not None and _key_older(op, before):
                found.append(
                    violation(
                        f"monotonic reads: {op.key} read older than an earlier read of it", [before, op]
                    )
                )
            elif op.mzxid is not None or op.version is not None:
                per_key[op.key] = op
    return CheckResult("monotonic reads", checked, tuple(found))


def check_read_your_writes(history: Sequence[Op]) -> CheckResult:
    """After a client's change with zxid z, its later reads are served from a state at least z,
    and its reads of that znode show that change or a newer one."""
    found: list[Violation] = []
    checked = 0
    for ops in programs(history).values():
        newest: Op | None = None
        own: dict[str, Op] = {}
        for op in ops:
            if op.kind in CHANGE_KINDS:
                if op.zxid is not None and (newest is None or newest.zxid is None or op.zxid > newest.zxid):
                    newest = op
                own[op.created] = op
                continue
            if not _is_read(op):
                continue
            checked += 1
            if (
                newest is not None
                and newest.zxid is not None
                and op.zxid is not None
                and op.zxid < newest.zxid
            ):
                summary = f"read your writes: read served from state {zxid_text(op.zxid)} after this client's change"
                found.append(violation(summary + f" {zxid_text(newest.zxid)}", [newest, op]))
                continue
            mine = own.get(op.key)
            if mine is not None and op.kind is Kind.READ and _misses_write(op, mine):
                found.append(
                    violation(f"read your writes: read of {op.key} misses this client's change", [mine, op])
                )
    return CheckResult("read your writes", checked, tuple(found))


def _misses_write(read: Op, write: Op) -> bool:
    if read.mzxid is not None and write.zxid is not None:
        return read.mzxid < write.zxid
    return read.version is not None and write.version is not None and read.version < write.version


def check_monotonic_writes(history: Sequence[Op]) -> CheckResult:
    """A client's changes take effect in the order it issued them: their zxids increase."""
    found: list[Violation] = []
    checked = 0
    for ops in programs(history).values():
        before: Op | None = None
        for op in filter(_is_change, ops):
            checked += 1
            assert op.zxid is not None
            if before is not None and before.zxid is not None and op.zxid <= before.zxid:
                summary = f"monotonic writes: zxid {zxid_text(op.zxid)} for a change issued after {zxid_text(before.zxid)}"
                found.append(violation(summary, [before, op]))
            before = op
    return CheckResult("monotonic writes", checked, tuple(found))


def check_writes_follow_reads(history: Sequence[Op]) -> CheckResult:
    """A change a client issues after reading state z is ordered after z: its zxid is above z."""
    found: list[Violation] = []
    checked = 0
    for ops in programs(history).values():
        newest: Op | None = None
        for op in ops:
            state = _read_state(op) if _is_read(op) else None
            if state is not None:
                newest_state = _read_state(newest) if newest is not None else None
                if newest_state is None or state > newest_state:
                    newest = op
            elif _is_change(op):
                checked += 1
                assert op.zxid is not None
                seen = _read_state(newest) if newest is not None else None
                if newest is not None and seen is not None and op.zxid <= seen:
                    summary = (
                        f"writes follow reads: zxid {zxid_text(op.zxid)} for a change issued after reading"
                    )
                    found.append(violation(summary + f" state {zxid_text(seen)}", [newest, op]))
    return CheckResult("writes follow reads", checked, tuple(found))
