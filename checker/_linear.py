"""Linearizability of each znode's register: is there one order of its ops, each taking effect at
an instant inside its real-time interval, that a single register would have produced?

The search is the Wing & Gong / Lowe depth-first search over linearization points: the ops sit in
a doubly linked list of call and return events in time order; at each step any op whose call comes
before the first remaining return may take effect next, and taking one lifts its two events out
of the list. A set of (ops taken, register state) pairs already explored prunes repeats; the ops
taken are bitsets in ints. Keys are independent, so each key is searched alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from checker._register import (
    State,
    classify_unknowns,
    close_over_writers,
    compile_moves,
    initial_state,
    register_op,
    state_text,
    step,
    version_ceilings,
    writers_closure,
)
from checker._result import CheckResult, Violation, describe, time_text
from checker._shrink import shrink, time_windows
from checker.history import Op, number

NAME = "linearizability"
STEPS_MAX = 2_000_000  # per key; beyond it the key's verdict is inconclusive
SHRINK_STEPS_MAX = 50_000  # per trial while shrinking a counterexample
TAIL = -1  # the list's end


@dataclass(frozen=True)
class Frontier:
    """Where the search got furthest: how many ops it had taken, the last few, the register then,
    the ops that could have gone next, and the op whose completion it could not get past (or
    whose version had passed)."""

    depth: int
    last: tuple[int, ...]
    state: State
    candidates: tuple[int, ...]
    blocker: int | None
    suspects: tuple[int, ...] = ()  # the ops that blocked the deepest dead ends, deepest first


@dataclass(frozen=True)
class Outcome:
    """A search's answer: linearizable (True), not (False), or out of steps (None)."""

    linearizable: bool | None
    frontier: Frontier | None
    steps: int


DEFINITE, UNREAD, OPTIONAL = 0, 1, 2  # how an op may be taken: must be, earliest-first, may be


class _Events:
    """The call and return events of the ops as a doubly linked list; node 2i is op i's call,
    2i+1 its return, and the last node is the head."""

    def __init__(self, starts: Sequence[float], ends: Sequence[float], left_out: frozenset[int]) -> None:
        n = len(starts)
        live = [i for i in range(n) if i not in left_out]
        calls = [(starts[i], 0, 2 * i) for i in live]
        returns = [(ends[i], 1, 2 * i + 1) for i in live]
        order = sorted(calls + returns)  # a call at the same instant as a return overlaps it
        self.head = 2 * n
        self.next = [TAIL] * (2 * n + 1)
        self.prev = [TAIL] * (2 * n + 1)
        node = self.head
        for _, _, event in order:
            self.next[node] = event
            self.prev[event] = node
            node = event

    def lift(self, i: int) -> None:
        nxt, prv = self.next, self.prev
        for node in (2 * i, 2 * i + 1):
            after = nxt[node]
            nxt[prv[node]] = after
            if after != TAIL:
                prv[after] = prv[node]

    def unlift(self, i: int) -> None:
        nxt, prv = self.next, self.prev
        for node in (2 * i + 1, 2 * i):
            after = nxt[node]
            nxt[prv[node]] = node
            if after != TAIL:
                prv[after] = node

    def frontier(
        self, how: Sequence[int], need: Sequence[int], version: int | None
    ) -> tuple[list[int], int | None]:
        """The ops that may be taken next, definite ones first, then the earliest unread write,
        then the other optional ones; and the op whose return comes first.

        None may be taken when a definite one needs an older version than the register has
        (`need`): versions only grow, so that op could never be taken.
        """
        first: list[int] = []
        later: list[int] = []
        unread = -1
        nxt = self.next
        node = nxt[self.head]
        while node != TAIL:
            i = node >> 1
            if node & 1:
                break
            if how[i] == DEFINITE:
                if version is not None and need[i] < version:
                    return [], i
                first.append(i)
            elif how[i] == OPTIONAL:
                later.append(i)
            elif unread < 0:
                unread = i
            node = nxt[node]
        if unread >= 0:
            first.append(unread)
        return first + later, (node >> 1 if node != TAIL else None)


class Visited:
    """The configurations a search explored: a key (what must happen, what has, the registers)
    -> the sets of optional ops taken with it. Taking fewer optional ops leaves more choices, so a
    configuration is new only when no explored one with its key took a subset of its optional ops."""

    def __init__(self) -> None:
        self.extras: dict[Hashable, list[int]] = {}

    def first(self, key: Hashable, extra: int) -> bool:
        """Record the configuration; False when it, or one that can do all it can, was seen."""
        known = self.extras.setdefault(key, [])
        if any((explored & ~extra) == 0 for explored in known):
            return False
        known.append(extra)
        return True


def search(ops: Sequence[Op], versions: bool, start: State, steps_max: int) -> Outcome:
    """Depth-first search for a linearization of `ops` (one key) from register state `start`.

    An op with an unknown outcome ends at +inf and need not be taken at all, unless a read shows
    it took effect (see `classify_unknowns`).
    """
    unknowns = classify_unknowns(ops, start=start[0])
    moves = compile_moves(ops, versions, unknowns.unread)
    how = [DEFINITE if not op.unknown or i in unknowns.needed_by else OPTIONAL for i, op in enumerate(ops)]
    for i in unknowns.unread:
        how[i] = UNREAD
    definite = [h == DEFINITE for h in how]
    ends = [unknowns.needed_by.get(i, op.end) for i, op in enumerate(ops)]
    events = _Events([op.start for op in ops], ends, unknowns.dead)
    remaining = sum(definite)
    state, done, extra, steps = start, 0, 0, 0
    visited = Visited()
    stuck: dict[int, int] = {}  # op blocking a dead end -> the deepest such dead end
    frames: list[tuple[list[int], int, State, int]] = []  # candidates, next to try, state before, op
    need = version_ceilings(moves)
    candidates, blocker = events.frontier(how, need, start[1])
    tried = 0
    best: Frontier | None = None
    while remaining:
        if steps > steps_max:
            return Outcome(None, best, steps)
        advanced = False
        while tried < len(candidates):
            i = candidates[tried]
            tried += 1
            steps += 1
            after = step(state, moves[i])
            if after is None or (after == state and how[i] != DEFINITE):
                continue  # an optional op that changes nothing only narrows what may follow
            bit = 1 << i
            if definite[i]:
                if not visited.first((done | bit, after), extra):
                    continue
                done, remaining = done | bit, remaining - 1
            else:
                if not visited.first((done, after), extra | bit):
                    continue
                extra |= bit
            frames.append((candidates, tried, state, i))
            events.lift(i)
            state = after
            candidates, blocker = events.frontier(how, need, after[1])
            tried, advanced = 0, True
            break
        if advanced:
            continue
        if blocker is not None:
            stuck[blocker] = max(stuck.get(blocker, 0), len(frames))
        if best is None or len(frames) > best.depth:
            last = tuple(frame[3] for frame in frames[-4:])
            best = Frontier(len(frames), last, state, tuple(candidates), blocker)
        if not frames:
            suspects = tuple(sorted(stuck, key=lambda i: (-stuck[i], -ends[i]))[:3])
            return Outcome(False, dataclasses.replace(best, suspects=suspects), steps)
        candidates, tried, state, i = frames.pop()
        events.unlift(i)
        if definite[i]:
            done, remaining = done ^ (1 << i), remaining + 1
        else:
            extra ^= 1 << i
    return Outcome(True, None, steps)


def linearizable(ops: Sequence[Op], start: State, versions: bool, steps_max: int) -> Outcome:
    return search(ops, versions, start, steps_max)


def check_linearizability(
    history: Sequence[Op],
    *,
    initial: Mapping[str, str] | None = None,
    all_reads: bool = False,
    steps_max: int = STEPS_MAX,
) -> CheckResult:
    """Each key's writes, compare-and-sets, creates and linearizable reads form a linearizable
    register. Reads count when they followed a sync, or all of them with `all_reads` (for a
    service that promises linearizable reads; ZooKeeper's plain reads may be stale)."""
    by_key: dict[str, list[Op]] = {}
    for op in number(history):
        if register_op(op, include_read=all_reads or op.sync):
            by_key.setdefault(op.key, []).append(op)
    violations: list[Violation] = []
    undecided: list[str] = []
    for key in sorted(by_key):
        ops = by_key[key]
        start = initial_state(initial, key)
        outcome = linearizable(ops, start, True, steps_max)
        if outcome.linearizable is None:
            undecided.append(key)
        elif not outcome.linearizable:
            violations.append(explain(key, ops, start, outcome))
    checked = sum(len(ops) for ops in by_key.values())
    why = f"search ran out of steps ({steps_max}) on {', '.join(undecided)}" if undecided else None
    return CheckResult(NAME, checked, tuple(violations), why)


def explain(key: str, ops: Sequence[Op], start: State, outcome: Outcome) -> Violation:
    """A violation showing few ops. When values alone show it, the smallest failing window of ops
    around where the search got stuck, shrunk further; else the ops around that point."""
    frontier = outcome.frontier
    assert frontier is not None
    notes = _frontier_notes(ops, start, frontier)
    writers = writers_closure(ops)

    def fails(subset: list[Op]) -> bool:
        return linearizable(subset, start, False, SHRINK_STEPS_MAX).linearizable is False

    def close(subset: list[Op]) -> list[Op]:
        return close_over_writers(subset, writers)

    window = None
    for suspect in frontier.suspects or (frontier.blocker,):
        window = _failing_window(ops, suspect, fails, close)
        if window is not None:
            break
    if window is not None:
        small = shrink(window, fails, removable=lambda op: True, close=close)
        summary = f"not linearizable: no order of these ops on {key} gives every read the value last written"
        return Violation(summary, tuple(small), notes[:1])
    context = {i: ops[i] for i in (*frontier.last, *frontier.candidates)}
    if frontier.blocker is not None:
        context[frontier.blocker] = ops[frontier.blocker]
    summary = f"not linearizable: the ops on {key} have no order that agrees with the versions they saw"
    return Violation(summary + "; the search gets stuck here", tuple(context.values()), notes)


def _failing_window(
    ops: Sequence[Op],
    blocker: int | None,
    fails: Callable[[list[Op]], bool],
    close: Callable[[list[Op]], list[Op]],
) -> list[Op] | None:
    """The smallest of a growing series of time windows up to the stuck op that still fails on
    values alone, with every read's writers added back; None if even all of it does not.

    On values alone any subset that keeps each read's writers is sound to check by itself: in a
    linearization of the whole, each read's writer is the last write before it, and stays so.
    """
    if blocker is None:
        return close(list(ops)) if fails(close(list(ops))) else None
    for window in time_windows(ops, ops[blocker]):
        if fails(close(window)):
            return close(window)
    return None


def _frontier_notes(ops: Sequence[Op], start: State, frontier: Frontier) -> tuple[str, ...]:
    notes = [
        f"register before the history: {state_text(start)}",
        f"the longest linearizable start of {frontier.depth} of the key's {len(ops)} ops leaves the register "
        f"{state_text(frontier.state)} after #{', #'.join(str(ops[i].index) for i in frontier.last) or '-'}",
    ]
    if frontier.blocker is not None:
        blocker = ops[frontier.blocker]
        notes.append(
            f"and then nothing can take effect before #{blocker.index} completes at {time_text(blocker.end)}:"
        )
        notes.extend("  " + describe(ops[i]) for i in (frontier.candidates or (frontier.blocker,))[:6])
    return tuple(notes)
