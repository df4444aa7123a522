"""The checker on hand-written histories (each check, passing and failing, with the counterexample
naming the ops), the two examples of the definition of sequential consistency, and random
histories of a correct simulated service, valid and then corrupted one way at a time."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import checker
from checker.history import HistoryError, Kind, Op, Status, load, save
from tests.checker import corrupt
from tests.checker.simulate import Config, simulate

ZERO = {"/x": "0", "/y": "0"}


def op(process: int, kind: str, key: str, start: float, end: float, status: str = "ok", **fields: Any) -> Op:
    return Op(
        process, Kind(kind), key, Status(status), start, end, session=fields.pop("session", process), **fields
    )


def names(result: checker.CheckResult) -> set[int]:
    return {o.index for v in result.violations for o in v.ops}


# --- sequential consistency: the definition's two examples -----------------------------------------


def test_sc_example_b_reads_y_3_then_x_0_is_not_sequentially_consistent() -> None:
    """A writes x=1 then y=3; B reads y=3 (A's second write), then x=0 although A wrote x first."""
    history = checker.number([
        op(1, "write", "/x", 0.0, 1.0, value="1"),
        op(1, "write", "/y", 2.0, 3.0, value="3"),
        op(2, "read", "/y", 4.0, 5.0, value="3"),
        op(2, "read", "/x", 6.0, 7.0, value="0"),
    ])  # fmt: skip
    result = checker.check_sequential_consistency(history, initial=ZERO)
    assert not result.ok
    assert {3} <= names(result)  # the read of x=0 is named
    assert "/x" in str(result)


def test_sc_example_with_several_valid_orders_is_consistent() -> None:
    """A writes x=1, B writes y=2, C reads x=0 (stale, after A's write ended) then y=2: orders
    such as [C.r(x), A.w, B.w, C.r(y)] and [B.w, C.r(x), C.r(y), A.w] both explain it."""
    history = checker.number([
        op(1, "write", "/x", 0.0, 1.0, value="1"),
        op(2, "write", "/y", 0.0, 1.0, value="2"),
        op(3, "read", "/x", 2.0, 3.0, value="0"),
        op(3, "read", "/y", 4.0, 5.0, value="2"),
    ])  # fmt: skip
    assert checker.check_sequential_consistency(history, initial=ZERO).ok
    # Sequential, not linearizable: the stale read of x breaks real-time order.
    assert not checker.check_linearizability(history, initial=ZERO, all_reads=True).ok


# --- linearizability -------------------------------------------------------------------------------


def test_unknown_writes_may_have_happened_failed_ones_did_not() -> None:
    history = checker.number([
        op(1, "write", "/x", 0.0, 0.0, status="info", value="1"),
        op(2, "read", "/x", 1.0, 2.0, value="1", sync=True),
        op(3, "write", "/y", 0.0, 1.0, status="fail", value="9"),
        op(2, "read", "/y", 3.0, 4.0, value="9", sync=True),
    ])  # fmt: skip
    result = checker.check_linearizability(history, initial=ZERO)
    assert not result.ok and names(result) >= {3}  # only the failed write's value is impossible
    assert checker.check_linearizability(history[:2], initial=ZERO).ok


def test_a_synced_read_must_see_a_write_that_completed_before_it() -> None:
    history = checker.number([
        op(1, "write", "/x", 0.0, 1.0, value="1", version=1),
        op(2, "read", "/x", 2.0, 3.0, value="0", sync=True),
    ])  # fmt: skip
    assert not checker.check_linearizability(history, initial=ZERO).ok
    assert checker.check_linearizability(checker.number([history[0], history[1].__class__(
        2, Kind.READ, "/x", Status.OK, 0.5, 3.0, session=2, value="0", sync=True)]), initial=ZERO).ok  # fmt: skip


def test_compare_and_set_follows_versions() -> None:
    ok = checker.number([
        op(1, "cas", "/x", 0.0, 1.0, value="a", expected_version=0, version=1),
        op(2, "cas", "/x", 2.0, 3.0, value="b", expected_version=1, version=2),
        op(3, "read", "/x", 4.0, 5.0, value="b", version=2, sync=True),
    ])  # fmt: skip
    assert checker.check_linearizability(ok, initial=ZERO).ok
    both_won = checker.number([
        op(1, "cas", "/x", 0.0, 1.0, value="a", expected_version=0, version=1),
        op(2, "cas", "/x", 2.0, 3.0, value="b", expected_version=0, version=1),
    ])  # fmt: skip
    assert not checker.check_linearizability(both_won, initial=ZERO).ok


# --- per-client guarantees -------------------------------------------------------------------------


def test_monotonic_reads_and_read_your_writes() -> None:
    goes_back = checker.number([
        op(1, "read", "/x", 0.0, 1.0, value="b", mzxid=7, zxid=9),
        op(1, "read", "/x", 2.0, 3.0, value="a", mzxid=5, zxid=6),
    ])  # fmt: skip
    assert not checker.check_monotonic_reads(goes_back).ok
    misses_own = checker.number([
        op(1, "write", "/x", 0.0, 1.0, value="mine", zxid=10),
        op(1, "read", "/x", 2.0, 3.0, value="old", mzxid=4, zxid=12),
    ])  # fmt: skip
    assert not checker.check_read_your_writes(misses_own).ok
    sees_own = checker.number([misses_own[0], op(1, "read", "/x", 2.0, 3.0, value="mine", mzxid=10, zxid=12)])
    assert checker.check_read_your_writes(sees_own).ok and checker.check_monotonic_reads(sees_own).ok


def test_monotonic_writes_and_writes_follow_reads() -> None:
    reordered = checker.number([
        op(1, "write", "/x", 0.0, 1.0, value="1", zxid=20),
        op(1, "write", "/y", 2.0, 3.0, value="2", zxid=15),
    ])  # fmt: skip
    assert not checker.check_monotonic_writes(reordered).ok
    before_read = checker.number([
        op(1, "read", "/x", 0.0, 1.0, value="1", mzxid=30, zxid=30),
        op(1, "write", "/y", 2.0, 3.0, value="2", zxid=25),
    ])  # fmt: skip
    assert not checker.check_writes_follow_reads(before_read).ok


# --- ephemerals, sequential names, watches -------------------------------------------------------


def test_an_ephemeral_is_gone_for_reads_after_its_session_ended() -> None:
    history = checker.number([
        op(1, "create_ephemeral", "/e", 0.0, 1.0, session=77, path="/e", zxid=3),
        op(1, "close_session", "", 2.0, 3.0, session=77),
        op(2, "exists", "/e", 4.0, 5.0, exists=True, owner=77, sync=True),
    ])  # fmt: skip
    result = checker.check_ephemerals(history)
    assert not result.ok and 2 in names(result)
    gone = [*history[:2], op(2, "exists", "/e", 4.0, 5.0, exists=False, sync=True)]
    assert checker.check_ephemerals(checker.number(gone)).ok


def test_sequential_names_are_unique_and_follow_zxid_order() -> None:
    twice = checker.number([
        op(1, "create_seq", "/q/s-", 0.0, 1.0, path="/q/s-0000000001", zxid=5),
        op(2, "create_seq", "/q/s-", 2.0, 3.0, path="/q/s-0000000001", zxid=6),
    ])  # fmt: skip
    result = checker.check_sequential_nodes(twice)
    assert not result.ok and names(result) == {0, 1} and "s-0000000001" in str(result)
    backwards = checker.number([
        op(1, "create_seq", "/q/s-", 0.0, 1.0, path="/q/s-0000000002", zxid=5),
        op(2, "create_seq", "/q/s-", 2.0, 3.0, path="/q/s-0000000001", zxid=6),
    ])  # fmt: skip
    assert not checker.check_sequential_nodes(backwards).ok


def test_a_watch_event_comes_before_a_read_that_shows_the_change() -> None:
    watched = op(1, "read", "/x", 0.0, 1.0, value="a", mzxid=5, watch=True)
    changed = op(1, "read", "/x", 3.0, 4.0, value="b", mzxid=8)
    event = op(1, "watch_event", "/x", 2.0, 2.0, event="NodeDataChanged")
    assert checker.check_watch_order(checker.number([watched, event, changed])).ok
    result = checker.check_watch_order(checker.number([watched, changed]))
    assert not result.ok and names(result) == {0, 1}


# --- files -------------------------------------------------------------------------------------------


def test_histories_round_trip_and_bad_lines_are_named(tmp_path: Path) -> None:
    history = simulate(1)
    path = tmp_path / "h.jsonl"
    save(history, path)
    assert [checker.history.op_to_record(o) for o in load(path)] == [
        checker.history.op_to_record(o) for o in history
    ]
    path.write_text(path.read_text() + '{"process": 1, "kind": "teleport", "status": "ok", "start": 0}\n')
    with pytest.raises(HistoryError, match=rf"{path.name}:{len(history) + 1}: kind must be"):
        load(path)


# --- random histories -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_histories_of_a_correct_service_pass_every_check(seed: int) -> None:
    history = simulate(seed, Config(stale=seed % 2 == 0))
    report = checker.check_all(history, all_reads=seed % 2 == 1)
    assert report.ok, str(report)


@pytest.mark.parametrize("name", sorted(corrupt.CORRUPTIONS))
def test_every_kind_of_corruption_is_caught(name: str) -> None:
    caught = tried = 0
    for seed in range(40):
        history = simulate(seed)
        broken = corrupt.CORRUPTIONS[name](history, random.Random(seed))
        if broken is None:
            continue
        tried += 1
        caught += not checker.check_all(broken[0]).ok
        if tried == 5:
            break
    assert tried, f"no history offered a place for {name}"
    assert caught == tried, f"{name}: caught {caught} of {tried}"
