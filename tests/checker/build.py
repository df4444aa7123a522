"""Short constructors for hand-written histories: one call per op, times as [start, end]."""

from __future__ import annotations

from typing import Any

from checker.history import INF, Kind, Op, Status, number

OK, FAIL, UNKNOWN = Status.OK, Status.FAIL, Status.UNKNOWN


def op(
    kind: Kind, process: int, key: str, start: float, end: float = INF, status: Status = OK, **fields: Any
) -> Op:
    return Op(process, kind, key, status, start, end, **fields)


def write(process: int, key: str, value: str, start: float, end: float = INF, **fields: Any) -> Op:
    return op(Kind.WRITE, process, key, start, end, value=value, **fields)


def read(process: int, key: str, value: str, start: float, end: float, **fields: Any) -> Op:
    return op(Kind.READ, process, key, start, end, value=value, **fields)


def cas(
    process: int, key: str, expected: int, value: str, start: float, end: float = INF, **fields: Any
) -> Op:
    return op(Kind.CAS, process, key, start, end, value=value, expected_version=expected, **fields)


def history(*ops: Op) -> list[Op]:
    return number(ops)


def indices(result: Any) -> set[int]:
    """The numbers of the ops a result's violations name."""
    return {o.index for violation in result.violations for o in violation.ops}
