"""Linearizability of registers, as a table of hand-written histories: each linearizable or not,
and when not, the ops the counterexample must name."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import check_linearizability
from checker.history import Kind, Op
from tests.checker.build import FAIL, OK, UNKNOWN, cas, history, indices, op, read, write


@dataclass
class Case:
    name: str
    ops: list[Op]
    culprits: set[int] | None = None  # None: linearizable; else ops the counterexample names
    initial: dict[str, str] | None = None
    all_reads: bool = True
    extra: dict[str, object] = field(default_factory=dict)


X = "/x"
CASES = [
    Case("sequential", history(write(1, X, "a", 0, 1), read(2, X, "a", 2, 3), write(1, X, "b", 4, 5), read(2, X, "b", 6, 7))),
    Case("concurrent writes, read either", history(write(1, X, "a", 0, 3), write(2, X, "b", 1, 4), read(3, X, "a", 5, 6))),
    Case("read overlaps the write it sees", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 6), read(3, X, "b", 3, 4))),
    Case("read overlaps a write it misses", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 6), read(3, X, "a", 3, 4))),
    Case("unknown write never seen", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, status=UNKNOWN), read(3, X, "a", 5, 6))),
    Case("unknown write seen much later", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, status=UNKNOWN), read(3, X, "a", 3, 4), read(3, X, "b", 9, 10))),
    Case("failed write had no effect", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3, status=FAIL), read(3, X, "a", 4, 5))),
    Case("cas after the version it expects", history(write(1, X, "a", 0, 1, version=1), cas(2, X, 1, "b", 2, 3, version=2), read(3, X, "b", 4, 5, version=2))),
    Case("initial value read first", history(read(1, X, "0", 0, 1), write(2, X, "a", 2, 3)), initial={X: "0"}),
    Case("create then set", history(op(Kind.CREATE, 1, X, 0, 1, value="0", version=0), write(2, X, "a", 2, 3, version=1), read(3, X, "a", 4, 5, version=1))),
    Case("plain stale read is not judged", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3), read(3, X, "a", 4, 5)), all_reads=False),
    Case("keys are independent", history(write(1, X, "a", 0, 1), write(2, "/y", "a", 2, 3), read(3, X, "a", 4, 5), read(3, "/y", "a", 4, 5))),
    # violations
    Case("stale read", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3), read(3, X, "a", 4, 5)), {0, 1, 2}),
    Case("stale sync read", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3), read(3, X, "a", 4, 5, sync=True)), {0, 1, 2}, all_reads=False),
    Case("read from the future", history(read(1, X, "b", 0, 1), write(2, X, "b", 2, 3)), {0, 1}, initial={X: "0"}),
    Case("value nobody wrote", history(write(1, X, "a", 0, 1), read(2, X, "z", 2, 3)), {1}),
    Case("initial value after a write", history(write(1, X, "a", 0, 1), read(2, X, "0", 2, 3)), {0, 1}, initial={X: "0"}),
    Case("unknown write seen before it began", history(read(1, X, "b", 0, 1), write(2, X, "b", 2, status=UNKNOWN)), {0}, initial={X: "0"}),
    Case("failed write seen", history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3, status=FAIL), read(3, X, "b", 4, 5)), {2}),
    Case("two reads disagree on the order", history(write(1, X, "a", 0, 10), write(2, X, "b", 0, 10), read(3, X, "a", 1, 2), read(3, X, "b", 3, 4), read(4, X, "a", 5, 6)), {2, 3, 4}, initial={X: "0"}),
    Case("version made twice", history(write(1, X, "a", 0, 1, version=1), write(2, X, "b", 2, 3, version=1)), {0, 1}),
    Case("cas despite a newer version", history(write(1, X, "a", 0, 1, version=1), write(2, X, "b", 2, 3, version=2), cas(3, X, 1, "c", 4, 5, version=2)), {2}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_linearizability(case: Case) -> None:
    result = check_linearizability(case.ops, initial=case.initial, all_reads=case.all_reads)
    if case.culprits is None:
        assert result.ok, result.counterexample()
        return
    assert not result.ok and len(result.violations) == 1
    named = indices(result)
    assert case.culprits <= named, result.counterexample()
    text = result.counterexample()
    assert all(f"#{i} " in text for i in case.culprits)


def test_stale_read_counterexample_is_minimal_and_readable() -> None:
    noise = [write(9, X, f"n{i}", 10 + i, 10.5 + i) for i in range(20)]
    ops = history(write(1, X, "a", 0, 1), write(2, X, "b", 2, 3), read(3, X, "a", 4, 5), *noise)
    (violation,) = check_linearizability(ops, all_reads=True).violations
    assert {o.index for o in violation.ops} == {0, 1, 2}
    lines = violation.text().splitlines()
    assert lines[0].startswith("not linearizable")
    assert lines[1].strip().startswith("#0 p1 write /x := 'a' [0.000000, 1.000000]")
    assert lines[3].strip().startswith("#2 p3 read /x -> 'a'")


def test_out_of_steps_is_inconclusive_not_ok() -> None:
    ops = history(*(write(p, X, f"v{p}", 0, 10) for p in range(12)), read(99, X, "zz", 11, 12))
    result = check_linearizability(ops, all_reads=True, steps_max=50)
    assert not result.ok and not result.violations and result.inconclusive is not None
    assert result.verdict == "inconclusive"


def linearizations(ops: list[Op], initial: str) -> bool:
    """Brute force: does some subset of the unknown ops, with all the others, have an order that
    respects real time and gives every read the last value written?"""
    unknown = [o for o in ops if o.unknown]
    for chosen in itertools.product([False, True], repeat=len(unknown)):
        taken = [o for o in ops if not o.unknown] + [
            o for o, keep in zip(unknown, chosen, strict=True) if keep
        ]
        for order in itertools.permutations(taken):
            if any(b.end < a.start for n, a in enumerate(order) for b in order[n + 1 :]):
                continue
            value, good = initial, True
            for o in order:
                if o.kind is Kind.READ:
                    good = good and o.value == value
                else:
                    value = o.value or ""
            if good:
                return True
    return False


def test_a_read_of_the_start_value_needs_no_unknown_write_of_it() -> None:
    """The one unknown write of '0' need not have happened by the time '0' was first read: that
    read may have seen the register's start, '0', and the write come later (found by the search
    test below; the search had that write take effect before the first read)."""
    ops = history(write(2, X, "a", 0, 0, status=UNKNOWN), read(1, X, "a", 1, 1), read(1, X, "0", 2, 2),
                  write(2, X, "0", 0, 0, status=UNKNOWN), read(1, X, "0", 0, 0))  # fmt: skip
    assert linearizations(ops, "0")
    assert check_linearizability(ops, initial={X: "0"}, all_reads=True).ok


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    """Up to 6 reads and writes on one key with overlapping intervals, some writes of unknown
    outcome, values from a small set."""
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 8))
        end = start + draw(st.integers(0, 3))
        value = draw(st.sampled_from("0ab"))
        if draw(st.booleans()):
            ops.append(read(1, X, value, start, end))
        else:
            ops.append(write(2, X, value, start, end, status=UNKNOWN if draw(st.integers(0, 3)) == 0 else OK))
    return history(*ops)


@settings(max_examples=200, deadline=None)
@given(small_histories())
def test_search_agrees_with_brute_force(ops: list[Op]) -> None:
    result = check_linearizability(ops, initial={X: "0"}, all_reads=True)
    assert result.ok == linearizations(ops, "0"), result.counterexample()
    if not result.ok:
        named = sorted({o.index: o for v in result.violations for o in v.ops}.values(), key=lambda o: o.index)
        assert not linearizations(named, "0"), "the counterexample must fail on its own"
