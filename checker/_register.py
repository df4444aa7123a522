"""A znode's data as the order searches see it: a register holding (value, version) that reads
observe and writes replace. Either half may be unknown until a read shows it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from checker.history import REGISTER_KINDS, Kind, Op, Status


class _Token(Enum):
    UNKNOWN = "?"
    UNREAD = "unread"


UNKNOWN = _Token.UNKNOWN
UNREAD = _Token.UNREAD  # written by an op of unknown outcome, and no read returned it
# The value None means the znode does not exist; a version None means "not known yet".
Value = str | None | _Token
State = tuple[Value, int | None]
START: State = (UNKNOWN, None)

READ, WRITE, CAS, CREATE = 0, 1, 2, 3
NO_VERSION_LIMIT = 1 << 62
# (what, value, expected version, version after): an op reduced to what the register needs.
Move = tuple[int, Value, int | None, int | None]


def initial_state(initial: Mapping[str, str] | None, key: str) -> State:
    """The register's state before the history: the given value with its version unknown, or unknown."""
    if initial is not None and key in initial:
        return (initial[key], None)
    return START


def register_op(op: Op, include_read: bool) -> bool:
    """Whether the order searches take this op: a register op that may have taken effect.

    Failed ops had no effect, and a read whose outcome is unknown returned nothing to check.
    """
    if op.kind not in REGISTER_KINDS or op.status is Status.FAIL:
        return False
    if op.kind is Kind.READ:
        return op.ok and include_read
    return True


@dataclass(frozen=True)
class Unknowns:
    """What the reads tell about the ops of unknown outcome, so the searches need not guess.

    `needed_by`: an op whose value a read returned, and no other op wrote, took effect before
    that read ended: it is an op like any other, with that end. `unread`: a plain write whose
    value no read returned; such writes differ only in when they started, so the searches take
    them earliest first and never try one in place of another. `dead`: a cas that cannot have
    taken effect, because it started after some op had seen a later version (versions only
    grow), or because an op that surely took effect made or saw the version it would have made,
    with another value (each version is made by one write).
    """

    needed_by: dict[int, float]
    unread: frozenset[int]
    dead: frozenset[int]


def classify_unknowns(ops: Sequence[Op], real_time: bool = True, start: Value = UNKNOWN) -> Unknowns:
    """Classify the unknown ops of one key's ops; without `real_time`, for an order that need not
    follow real time, no rule leans on when an op started or ended. `start`: the register's value
    before the history, when known: it is one more writer of that value (a read of it may have
    read the start, not an unknown write of the same value). An unknown start is taken to be
    written by an op of the history, as a verification's own creates are."""
    read_ends: dict[str | None, float] = {}
    writers: dict[str | None, int] = {}
    if not isinstance(start, _Token):
        writers[start] = 1
    for op in ops:
        if op.kind is Kind.READ:
            read_ends[op.value] = min(op.end, read_ends.get(op.value, op.end))
        else:
            writers[_written(op)] = writers.get(_written(op), 0) + 1
    needed_by: dict[int, float] = {}
    unread: set[int] = set()
    dead: set[int] = set()
    versions_seen = sorted((op.end, op.version) for op in ops if op.ok and op.version is not None)
    newest_by = list(itertools.accumulate((version for _, version in versions_seen), max))
    values_at: dict[int, set[str | None]] = {}
    for op in ops:
        if op.ok and op.version is not None:
            values_at.setdefault(op.version, set()).add(_written(op))
    for i, op in enumerate(ops):
        if not op.unknown or op.kind is Kind.READ:
            continue
        if op.kind is Kind.CAS and op.expected_version is not None:
            n = bisect.bisect_left(versions_seen, (op.start, -1))
            made = values_at.get(op.expected_version + 1, {op.value})
            if (real_time and n and newest_by[n - 1] > op.expected_version) or made != {op.value}:
                dead.add(i)
                continue
        seen_by = read_ends.get(_written(op))
        if seen_by is None:
            if op.kind is Kind.WRITE:
                unread.add(i)
        elif writers[_written(op)] == 1 and (seen_by >= op.start or not real_time):
            needed_by[i] = seen_by
    return Unknowns(needed_by, frozenset(unread), frozenset(dead))


def _written(op: Op) -> str | None:
    return "" if op.kind is Kind.CREATE and op.value is None else op.value


def version_ceilings(moves: Sequence[Move]) -> list[int]:
    """The newest version the register may have just before each move, or NO_VERSION_LIMIT:
    versions only grow, so a register past it can never take the move."""
    out = []
    for what, _, expected, result_version in moves:
        if what == CAS and expected is not None:
            out.append(expected)
        elif result_version is not None:
            out.append(result_version if what == READ else result_version - 1)
        else:
            out.append(NO_VERSION_LIMIT)
    return out


def compile_move(op: Op, versions: bool, unread: bool = False) -> Move:
    """The op as a Move. Without versions, a cas is a plain write and nothing checks a version,
    so that any subset of a failing history that keeps every read's writers still fails."""
    if unread:
        return (WRITE, UNREAD, None, None)
    result_version = op.version if versions and op.ok else None
    if op.kind is Kind.READ:
        return (READ, op.value, None, result_version)
    if op.kind is Kind.CAS and versions:
        return (CAS, op.value, op.expected_version, result_version)
    if op.kind is Kind.CREATE and versions:
        return (CREATE, "" if op.value is None else op.value, None, 0)
    return (WRITE, op.value, None, result_version)


def compile_moves(ops: Sequence[Op], versions: bool, unread: frozenset[int] = frozenset()) -> list[Move]:
    return [compile_move(op, versions, i in unread) for i, op in enumerate(ops)]


def step(state: State, move: Move) -> State | None:
    """The register after the move, or None when the move cannot happen in this state."""
    value, version = state
    what, new_value, expected, result_version = move
    if what == READ:
        if value is not UNKNOWN and value != new_value:
            return None
        if result_version is None:
            return state if value is not UNKNOWN else (new_value, version)
        if version is not None and version != result_version:
            return None
        return (new_value, result_version)
    if what == CREATE:
        if value is not UNKNOWN and value is not None:
            return None
        return (new_value, 0)
    if value is None:
        return None  # setData on a znode that is not there fails
    if what == CAS:
        if version is not None and version != expected:
            return None
        version = expected
    next_version = None if version is None else version + 1
    if result_version is not None:
        if next_version is not None and next_version != result_version:
            return None
        next_version = result_version
    return (new_value, next_version)


def state_text(state: State) -> str:
    value, version = state
    if isinstance(value, _Token):
        shown = "unknown" if value is UNKNOWN else "a value no read returned"
    else:
        shown = "absent" if value is None else repr(value)
    return shown + ("" if version is None else f" v{version}")


def writers_closure(universe: Sequence[Op]) -> dict[tuple[str, str | None], list[Op]]:
    """For each (key, value), the ops of `universe` that write it: a subset that keeps every
    read's possible writers is a sound counterexample (see `shrink`)."""
    writers: dict[tuple[str, str | None], list[Op]] = {}
    for op in universe:
        if op.kind is not Kind.READ:
            writers.setdefault((op.key, _written(op)), []).append(op)
    return writers


def close_over_writers(
    subset: Sequence[Op], writers: Mapping[tuple[str, str | None], Sequence[Op]]
) -> list[Op]:
    """The subset plus every write of a value one of its reads returned, in history order."""
    chosen = {op.index: op for op in subset}
    for op in subset:
        if op.kind is Kind.READ:
            for writer in writers.get((op.key, op.value), ()):
                chosen.setdefault(writer.index, writer)
    return [chosen[i] for i in sorted(chosen)]
