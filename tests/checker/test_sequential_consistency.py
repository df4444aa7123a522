"""Sequential consistency: the two examples from the definition, zxid rules as a table, and the
search against brute force over every interleaving of small random histories."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import _sequential, check_sequential_consistency
from checker._linear import Visited
from checker.history import Kind, Op
from tests.checker.build import UNKNOWN, history, indices, read, write

ZEROS = {"x": "0", "y": "0"}


def orders(ops: Sequence[Op], initial: dict[str, str]) -> list[list[int]]:
    """Every global order of the ops that keeps each process's order and gives each read the last
    value written before it (brute force, for small histories)."""
    programs: dict[int, list[Op]] = {}
    for op in sorted(ops, key=lambda op: (op.start, op.index)):
        programs.setdefault(op.process, []).append(op)
    found = []
    labels = [p for p, program in programs.items() for _ in program]
    for interleaving in set(itertools.permutations(labels)):
        taken = {p: iter(program) for p, program in programs.items()}
        order = [next(taken[p]) for p in interleaving]
        state = dict(initial)
        good = True
        for op in order:
            if op.kind is Kind.READ:
                good = good and state.get(op.key) == op.value
            else:
                state[op.key] = op.value or ""
        if good:
            found.append([op.index for op in order])
    return found


def test_definition_example_not_sequentially_consistent() -> None:
    """A writes x=1 then y=3; B reads y=3 then x=0. B saw A's second write but not its first."""
    ops = history(
        write(1, "x", "1", 0, 1),  # A
        write(1, "y", "3", 2, 3),  # A
        read(2, "y", "3", 4, 5),  # B
        read(2, "x", "0", 6, 7),  # B
    )
    result = check_sequential_consistency(ops, initial=ZEROS)
    assert not result.ok
    assert indices(result) == {0, 1, 2, 3}
    assert orders(ops, ZEROS) == []
    assert "not sequentially consistent" in result.counterexample()


def test_definition_example_with_several_orders() -> None:
    """A writes x=1 then y=3; B reads x=0 then y=0; C reads x=1 then y=3: B's reads may go before
    or between A's writes and C's first read between or after them, so several global orders
    explain the history. Real time plays no part: by the clock C read x=1 before A wrote it."""
    ops = history(
        write(1, "x", "1", 2, 3),  # A
        write(1, "y", "3", 4, 5),  # A
        read(2, "x", "0", 6, 7),  # B
        read(2, "y", "0", 8, 9),  # B
        read(3, "x", "1", 0, 1),  # C
        read(3, "y", "3", 6, 7),  # C
    )
    assert len(orders(ops, ZEROS)) >= 3
    assert check_sequential_consistency(ops, initial=ZEROS).ok


Z = 0x100000000
ZXID_CASES = [
    ("zxids follow program order", history(write(1, "x", "1", 0, 1, zxid=Z + 1), write(1, "x", "2", 2, 3, zxid=Z + 2), read(2, "x", "1", 0, 9, zxid=Z + 1, mzxid=Z + 1)), None),
    ("writes against zxid order", history(write(1, "x", "1", 0, 1, zxid=Z + 2), write(1, "y", "1", 2, 3, zxid=Z + 1)), {0, 1}),
    ("read below its state", history(write(1, "x", "1", 0, 1, zxid=Z + 5), read(2, "x", "0", 0, 1, zxid=Z + 6)), {0, 1}),
    ("read of a change overwritten", history(write(1, "x", "1", 0, 1, zxid=Z + 1), write(1, "x", "2", 2, 3, zxid=Z + 2), read(2, "x", "1", 4, 5, zxid=Z + 2, mzxid=Z + 1)), {1, 2}),
    ("other keys' zxids order a client", history(write(1, "x", "1", 0, 1, zxid=Z + 1), write(1, "y", "1", 2, 3, zxid=Z + 2), read(2, "y", "1", 4, 5, zxid=Z + 2), read(2, "x", "0", 6, 7, zxid=Z + 2)), {0, 3}),
    ("unknown write may take effect", history(write(1, "x", "1", 0, 1, status=UNKNOWN), read(2, "x", "1", 4, 5)), None),
]  # fmt: skip


def test_zxid_rules() -> None:
    for name, ops, culprits in ZXID_CASES:
        result = check_sequential_consistency(ops, initial=ZEROS)
        if culprits is None:
            assert result.ok, (name, result.counterexample())
        else:
            assert not result.ok, name
            assert culprits <= indices(result), (name, result.counterexample())


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Up to 7 reads and writes by 3 processes on 2 keys, values from a small set so that some
    histories are consistent and some are not."""
    ops = []
    clock = 0.0
    for _ in range(draw(st.integers(1, 7))):
        process, key, value = (
            draw(st.integers(1, 3)),
            draw(st.sampled_from("xy")),
            draw(st.sampled_from("012")),
        )
        clock += 1
        make = write if draw(st.booleans()) else read
        ops.append(make(process, key, value, clock, clock + 0.5))
    return history(*ops)


@settings(max_examples=150, deadline=None)
@given(small_histories())
def test_search_agrees_with_brute_force(ops: list[Op]) -> None:
    result = check_sequential_consistency(ops, initial=ZEROS)
    assert result.ok == bool(orders(ops, ZEROS)), result.counterexample()
    if not result.ok:
        named = [o for v in result.violations for o in v.ops]
        assert orders(named, ZEROS) == [], "the counterexample must fail on its own"


def _many_sessions(sessions: int, stale: int | None = None) -> list[Op]:
    """Each session writes x once and reads its own write; with `stale`, that session's read
    returns the write before its own though it was served after its own (its zxid)."""
    ops = []
    for s in range(sessions):
        seen = s - 1 if s == stale else s
        ops += [
            write(s, "x", f"v{s}", 2 * s, 2 * s + 1, zxid=Z + s, session=s),
            read(s, "x", f"v{seen}", 2 * s + 1, 2 * s + 2, zxid=Z + s, mzxid=Z + seen, session=s),
        ]
    return history(*ops)


def test_many_sessions_are_searched_in_configurations_of_a_fixed_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long verify run opens thousands of sessions, each a client of its own. Each explored
    configuration keeps where they all stand as one 128-bit signature: a tuple of every
    client's position made a 4-minute history's search take 6.7 GB (and four times as long)."""
    keys: list[Any] = []

    class Recording(Visited):
        def first(self, key: Any, extra: int) -> bool:
            keys.append(key)
            return super().first(key, extra)

    monkeypatch.setattr(_sequential, "Visited", Recording)
    assert check_sequential_consistency(_many_sessions(2000), initial=ZEROS).ok
    assert len(keys) >= 4000 and all(type(key[0]) is int and 0 <= key[0] < 2**128 for key in keys)
    stale = check_sequential_consistency(_many_sessions(2000, stale=1500), initial=ZEROS)
    assert not stale.ok
    assert indices(stale) & {2 * 1500, 2 * 1500 + 1}, stale.counterexample()
