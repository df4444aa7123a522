"""Sequential consistency: is there one global order of all register ops that keeps every
client's program order and gives every read the value of the latest write before it?

Real time does not matter here, zxids do: writes are ordered by their zxids, a read served from
state z comes after every write up to z, and a read of a znode last changed by txn m comes after
the write m and before the next write of that znode. The search is depth-first over how far each
client has got, pruned by a set of (positions, unknown ops taken, registers) already explored.
The positions go in as one 128-bit signature, the XOR of a random tag of each op placed: a long
history has thousands of sessions (clients), and a tuple of all their positions in each
configuration made a 4-minute history's search take 6.7 GB. Two sets of placed ops share a
signature with a chance of 2**-128 per pair; if they did, the search would skip one as seen
before, and could only fail to find an order, never accept a history that has none.
A read that the registers already answer is taken at once: taking it first loses no order.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from checker._linear import Visited
from checker._register import (
    Move,
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
from checker._result import CheckResult, Violation, describe
from checker._shrink import shrink, time_windows
from checker.history import Kind, Op, number

NAME = "sequential consistency"
STEPS_MAX = 2_000_000
SHRINK_STEPS_MAX = 50_000
SMALL_HISTORY = 300  # ops: shrink from the whole history
WINDOW_OPS_MAX = 2_000  # the largest window tried around a stuck op
NO_LIMIT = 1 << 62


@dataclass
class _Plan:
    """The ops prepared for the search; op i is ops[i] everywhere."""

    ops: list[Op]
    moves: list[Move]
    keys: list[str]
    key_of: list[int]
    programs: list[list[int]]  # per client: its definite ops in program order
    client_of: list[int]
    required: list[int]  # unknown outcome, but a read shows it took effect
    optional: list[int]  # unknown outcome: may take effect once its guard holds, or never
    unread: list[list[int]]  # per key, optional plain writes no read returned: taken lowest first
    guard: dict[int, tuple[int, int]]  # op -> (client, ops of that client that must come first)
    rank: list[int]  # a write's place in zxid order, or -1
    lo: list[int]  # a read comes after this many zxid-ordered writes ...
    hi: list[int]  # ... and before more than this many
    ceiling: list[int]  # the newest version of its key an op can follow
    start: tuple[State, ...]
    tag: list[int]  # a random 128-bit tag of each op, for the signature of the ops placed


@dataclass(frozen=True)
class Outcome:
    """consistent is True, False, or None when the search ran out of steps; with the furthest point."""

    consistent: bool | None
    depth: int
    last: tuple[int, ...]
    state: tuple[State, ...]
    stuck: tuple[int, ...]


def plan(ops: Sequence[Op], initial: Mapping[str, str] | None, versions: bool) -> _Plan:
    keys = sorted({op.key for op in ops})
    key_index = {key: k for k, key in enumerate(keys)}
    n = len(ops)
    p = _Plan(
        ops=list(ops),
        moves=[],
        keys=keys,
        key_of=[key_index[op.key] for op in ops],
        programs=[],
        client_of=[-1] * n,
        required=[],
        optional=[],
        unread=[],
        guard={},
        rank=[-1] * n,
        lo=[0] * n,
        hi=[NO_LIMIT] * n,
        ceiling=[],
        start=tuple(initial_state(initial, key) for key in keys),
        tag=[],
    )
    tags = random.Random(n)  # the same tags for the same history: a search is repeatable
    p.tag = [tags.getrandbits(128) for _ in range(n)]
    unread = _plan_unknowns(p)
    p.moves = compile_moves(ops, versions, frozenset(unread))
    p.ceiling = version_ceilings(p.moves)
    _plan_programs(p)
    _plan_zxids(p)
    return p


def _plan_unknowns(p: _Plan) -> set[int]:
    """Sort the unknown ops per key (see classify_unknowns); those that cannot have happened go."""
    per_key: dict[int, list[int]] = {}
    for i in range(len(p.ops)):
        per_key.setdefault(p.key_of[i], []).append(i)
    unread: set[int] = set()
    for k, members in per_key.items():
        unknowns = classify_unknowns([p.ops[i] for i in members], real_time=False, start=p.start[k][0])
        for local, i in enumerate(members):
            if not p.ops[i].unknown or local in unknowns.dead:
                continue
            if local in unknowns.needed_by:
                p.required.append(i)
            elif local in unknowns.unread:
                unread.add(i)
            else:
                p.optional.append(i)
    p.unread = [sorted(i for i in unread if p.key_of[i] == k) for k in range(len(p.keys))]
    return unread


def _plan_programs(p: _Plan) -> None:
    clients: dict[tuple[int, int | None], list[int]] = {}
    for i in sorted(range(len(p.ops)), key=lambda i: (p.ops[i].start, p.ops[i].index)):
        if not p.ops[i].unknown:
            clients.setdefault(p.ops[i].client, []).append(i)
    client_index = {client: c for c, client in enumerate(clients)}
    p.programs = list(clients.values())
    for c, program in enumerate(p.programs):
        for i in program:
            p.client_of[i] = c
    for i in p.required + p.optional + [i for members in p.unread for i in members]:
        owner = client_index.get(p.ops[i].client)
        if owner is not None:
            starts = [p.ops[j].start for j in p.programs[owner]]
            p.guard[i] = (owner, bisect.bisect_left(starts, p.ops[i].start))


def _plan_zxids(p: _Plan) -> None:
    """Writes with a zxid of their own are placed in zxid order; reads get their window on it."""
    counts: dict[int, int] = {}
    for op in p.ops:
        if op.ok and op.kind is not Kind.READ and op.zxid is not None:
            counts[op.zxid] = counts.get(op.zxid, 0) + 1
    ordered = sorted(
        (op.zxid, i)
        for i, op in enumerate(p.ops)
        if op.ok and op.kind is not Kind.READ and op.zxid is not None and counts[op.zxid] == 1
    )
    zxids = [zxid for zxid, _ in ordered]
    per_key: dict[int, list[tuple[int, int]]] = {}
    for rank, (zxid, i) in enumerate(ordered):
        p.rank[i] = rank
        per_key.setdefault(p.key_of[i], []).append((zxid, rank))
    for i, op in enumerate(p.ops):
        if op.kind is not Kind.READ:
            continue
        if op.zxid is not None:
            p.lo[i] = bisect.bisect_right(zxids, op.zxid)
        if op.mzxid is not None:
            writes = per_key.get(p.key_of[i], [])
            at = bisect.bisect_right(writes, (op.mzxid, NO_LIMIT))
            if at:
                p.lo[i] = max(p.lo[i], writes[at - 1][1] + 1)
            if at < len(writes):
                p.hi[i] = writes[at][1]


class _Search:
    """Where the search stands: each client's position, the unknown ops taken (required ones and
    optional ones apart), the zxid-ordered writes taken, and the registers."""

    def __init__(self, p: _Plan) -> None:
        self.p = p
        self.pos = [0] * len(p.programs)
        self.open = list(range(len(p.programs)))  # the clients with ops still to place, in order
        self.signature = 0  # of the definite ops placed (see the module docstring)
        self.required, self.optional, self.written, self.placed = 0, 0, 0, 0
        self.state = p.start

    def candidates(self) -> list[int]:
        """The ops that may go next, definite ones first; a read the registers already answer goes
        alone; none when some client's next op can never go (its window or version has passed)."""
        p, state, written, pos, programs = self.p, self.state, self.written, self.pos, self.p.programs
        out = []
        for c in self.open:
            i = programs[c][pos[c]]
            register = state[p.key_of[i]]
            if written > p.hi[i] or (register[1] is not None and register[1] > p.ceiling[i]):
                return []
            if (p.rank[i] >= 0 and p.rank[i] != written) or written < p.lo[i]:
                continue
            after = step(register, p.moves[i])
            if after is None:
                continue
            if after == register and p.ops[i].kind is Kind.READ:
                return [i]
            out.append(i)
        out.extend(i for i in p.required if not self.required >> i & 1 and self._guarded(i))
        out.extend(i for i in p.optional if not self.optional >> i & 1 and self._guarded(i))
        for members in p.unread:
            first = next((i for i in members if not self.optional >> i & 1 and self._guarded(i)), None)
            if first is not None:
                out.append(first)
        return out

    def _guarded(self, i: int) -> bool:
        guard = self.p.guard.get(i)
        return guard is None or self.pos[guard[0]] >= guard[1]

    def take(self, i: int, after: State, visited: Visited) -> bool:
        """Take op i, leaving the registers at `after`; False (and nothing taken) if seen before."""
        p = self.p
        k, c, bit = p.key_of[i], p.client_of[i], 1 << i
        state = self.state[:k] + (after,) + self.state[k + 1 :]
        signature = self.signature ^ p.tag[i] if c >= 0 else self.signature
        required = self.required | bit if c < 0 and i in p.required else self.required
        optional = self.optional | bit if c < 0 and required == self.required else self.optional
        if not visited.first((signature, required, state), optional):
            return False
        self.signature, self.required, self.optional, self.state = signature, required, optional, state
        if c >= 0:
            self.pos[c] += 1
            self.placed += 1
            if self.pos[c] == len(p.programs[c]):
                self.open.remove(c)
        self.written += p.rank[i] >= 0
        return True

    def untake(self, i: int, state: tuple[State, ...]) -> None:
        p, c, bit = self.p, self.p.client_of[i], 1 << i
        if c >= 0:
            if self.pos[c] == len(p.programs[c]):
                bisect.insort(self.open, c)
            self.pos[c] -= 1
            self.placed -= 1
            self.signature ^= p.tag[i]
        elif self.required & bit:
            self.required ^= bit
        else:
            self.optional ^= bit
        self.written -= p.rank[i] >= 0
        self.state = state

    def done(self, total: int, required_all: int) -> bool:
        return self.placed == total and self.required == required_all

    def stuck(self) -> tuple[int, ...]:
        """The clients' next ops."""
        p, pos = self.p, self.pos
        return tuple(program[pos[c]] for c, program in enumerate(p.programs) if pos[c] < len(program))


def search(p: _Plan, steps_max: int) -> Outcome:
    """Depth-first search for one order of the plan's ops; see the module docstring."""
    at = _Search(p)
    total = sum(len(program) for program in p.programs)
    required_all = sum(1 << i for i in p.required)
    visited = Visited()
    frames: list[tuple[list[int], int, tuple[State, ...], int]] = []
    candidates, tried, steps = at.candidates(), 0, 0
    best = Outcome(False, -1, (), at.state, ())
    while not at.done(total, required_all):
        if steps > steps_max:
            return Outcome(None, best.depth, best.last, best.state, best.stuck)
        advanced = False
        while tried < len(candidates) and not advanced:
            i = candidates[tried]
            tried += 1
            steps += 1
            register = at.state[p.key_of[i]]
            after = step(register, p.moves[i])
            if after is None or (after == register and p.client_of[i] < 0 and i not in p.required):
                continue
            before = at.state
            if at.take(i, after, visited):
                frames.append((candidates, tried, before, i))
                candidates, tried, advanced = at.candidates(), 0, True
        if advanced:
            continue
        if len(frames) > best.depth:
            last = tuple(frame[3] for frame in frames[-4:])
            best = Outcome(False, len(frames), last, at.state, at.stuck())
        if not frames:
            return best
        candidates, tried, before, i = frames.pop()
        at.untake(i, before)
    return Outcome(True, 0, (), at.state, ())


def consistent(
    ops: Sequence[Op], initial: Mapping[str, str] | None, versions: bool, steps_max: int
) -> Outcome:
    return search(plan(ops, initial, versions), steps_max)


def check_sequential_consistency(
    history: Sequence[Op], *, initial: Mapping[str, str] | None = None, steps_max: int = STEPS_MAX
) -> CheckResult:
    """All register ops of the history, every read included, have one sequentially consistent
    order. `initial` gives values the keys held before the history (else a first read decides)."""
    ops = [op for op in number(history) if register_op(op, include_read=True)]
    outcome = consistent(ops, initial, True, steps_max)
    if outcome.consistent is None:
        return CheckResult(NAME, len(ops), (), f"search ran out of steps ({steps_max})")
    if outcome.consistent:
        return CheckResult(NAME, len(ops))
    return CheckResult(NAME, len(ops), (explain(ops, initial, outcome),))


def explain(ops: Sequence[Op], initial: Mapping[str, str] | None, outcome: Outcome) -> Violation:
    """A violation showing few ops. On values alone, any subset that keeps every read's writers is
    sound to check by itself, so look for a small failing one in time windows around the ops the
    search got stuck on, then shrink it. A small history that fails only on versions keeps all its
    writes and sheds reads. Otherwise show the ops where the search got stuck."""
    writers = writers_closure(ops)

    def close(subset: list[Op]) -> list[Op]:
        return close_over_writers(subset, writers)

    def values_fail(subset: list[Op]) -> bool:
        return _fails(subset, initial, False)

    window = _failing_window(ops, outcome, values_fail, close)
    if window is not None:
        small = shrink(window, values_fail, removable=lambda op: True, close=close)
        return Violation(
            _summary(small, "the value last written"), tuple(small), _notes(ops, initial), by_client=True
        )
    if len(ops) <= SMALL_HISTORY and _fails(ops, initial, True):
        small = shrink(
            ops,
            lambda subset: _fails(subset, initial, True),
            removable=lambda op: op.kind is Kind.READ,
            close=lambda subset: subset,
        )
        return Violation(
            _summary(small, "the version it saw"), tuple(small), _notes(ops, initial), by_client=True
        )
    context = {i: ops[i] for i in (*outcome.last, *outcome.stuck)}
    summary = _summary(list(context.values()), "the version it saw") + "; the search gets stuck here"
    return Violation(summary, tuple(context.values()), _notes(ops, initial, outcome), by_client=True)


def _failing_window(
    ops: Sequence[Op],
    outcome: Outcome,
    fails: Callable[[list[Op]], bool],
    close: Callable[[list[Op]], list[Op]],
) -> list[Op] | None:
    if len(ops) <= SMALL_HISTORY:
        return close(list(ops)) if fails(close(list(ops))) else None
    for stuck in outcome.stuck:
        for window in time_windows(ops, ops[stuck]):
            if len(window) > WINDOW_OPS_MAX:
                break
            if fails(close(window)):
                return close(window)
    return None


def _summary(ops: Sequence[Op], what: str) -> str:
    zxids = any(op.zxid is not None or op.mzxid is not None for op in ops)
    return (
        "not sequentially consistent: no single order of these ops keeps each client's order"
        + (", agrees with their zxids," if zxids else "")
        + f" and gives every read {what}"
    )


def _fails(ops: Sequence[Op], initial: Mapping[str, str] | None, versions: bool) -> bool:
    steps_max = max(SHRINK_STEPS_MAX, 20 * len(ops))
    return consistent(ops, initial, versions, steps_max).consistent is False


def _notes(
    ops: Sequence[Op], initial: Mapping[str, str] | None, outcome: Outcome | None = None
) -> tuple[str, ...]:
    keys = sorted({op.key for op in ops})
    if initial:
        shown = ", ".join(f"{key}={initial[key]!r}" for key in keys if key in initial)
        before = [f"registers before the history: {shown or 'unknown'}"]
    else:
        before = ["registers before the history: unknown"]
    if outcome is None:
        return tuple(before)
    registers = ", ".join(
        f"{key}={state_text(state)}" for key, state in zip(keys, outcome.state, strict=True)
    )
    after = "#" + ", #".join(str(ops[i].index) for i in outcome.last) if outcome.last else "none"
    notes = [
        *before,
        f"in the whole history the search got furthest ordering {outcome.depth} of {len(ops)} ops, ending {after}",
        f"with registers {registers}, where no client's next op fits:",
    ]
    notes.extend("  " + describe(ops[i]) for i in outcome.stuck[:6])
    return tuple(notes)
