"""Tables for the pure parts: quorum arithmetic, Config checks, the in-memory log, sync choice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkcore import LocalError
from zkcore.zab import Config, ReplicaLog, TransferKind, choose_transfer, is_quorum, make_zxid, quorum_zxid


def z(epoch: int, counter: int) -> int:
    return make_zxid(epoch, counter)


@pytest.mark.parametrize(
    ("voters", "ids", "expected"),
    [
        ((1,), [1], True),
        ((1, 2, 3), [1], False),
        ((1, 2, 3), [1, 3], True),
        ((1, 2, 3), [1, 1, 1], False),
        ((1, 2, 3), [1, 4, 5], False),  # 4 and 5 are observers
        ((1, 2, 3, 4), [1, 2], False),
        ((1, 2, 3, 4), [1, 2, 4], True),
        ((1, 2, 3, 4, 5, 6, 7), [2, 4, 6, 7], True),
        ((1, 2, 3, 4, 5, 6, 7), [2, 4, 6], False),
    ],
)
def test_is_quorum(voters: tuple[int, ...], ids: list[int], expected: bool) -> None:
    config = Config(voters, (4, 5) if len(voters) == 3 else ())
    assert is_quorum(config, ids) is expected


@pytest.mark.parametrize(
    ("voters", "acked", "expected"),
    [
        ((1,), {1: 9}, 9),
        ((1, 2, 3), {1: 9}, 0),
        ((1, 2, 3), {1: 9, 2: 4}, 4),
        ((1, 2, 3), {1: 9, 2: 4, 3: 7}, 7),
        ((1, 2, 3, 4, 5), {1: 5, 2: 5, 3: 1, 4: 9, 5: 2}, 5),
        ((1, 2, 3, 4, 5), {1: 5, 3: 1, 4: 9, 6: 100}, 1),  # 6 is not a voter
    ],
)
def test_quorum_zxid(voters: tuple[int, ...], acked: dict[int, int], expected: int) -> None:
    assert quorum_zxid(Config(voters), acked) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"voters": ()}, "at least one voter"),
        ({"voters": [1, 2]}, "must be a tuple"),
        ({"voters": (0, 1)}, "server ids must be ints"),
        ({"voters": (1, 2), "observers": (2,)}, "unique"),
        ({"voters": (1,), "init_limit_ticks": 0}, "init_limit_ticks"),
        ({"voters": (1,), "diff_entries_max": 10**6}, "diff_entries_max"),
        ({"voters": (1,), "zxid_counter_max": 0}, "zxid_counter_max"),
        ({"voters": tuple(range(1, 300))}, "zab_servers_max"),
    ],
)
def test_config_checks(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LocalError, match=message):
        Config(**kwargs)  # type: ignore[arg-type]


def test_replica_log_operations() -> None:
    log = ReplicaLog(0, [(z(1, 1), b"a"), (z(1, 2), b"b"), (z(2, 1), b"c")])
    assert log.last() == z(2, 1) and len(log) == 3
    assert log.contains(0) and log.contains(z(1, 2)) and not log.contains(z(1, 3))
    assert log.floor(z(1, 9)) == z(1, 2)
    assert log.floor(z(0, 5)) == 0
    assert log.count_after(z(1, 1)) == 2
    assert log.after(z(1, 1)) == (2, 2) and log.after(0) == (3, 3) and log.after(z(2, 1)) == (0, 0)
    assert log.entries_after(z(1, 1), z(1, 2)) == [(z(1, 2), b"b")]
    log.truncate(z(1, 2))
    assert log.last() == z(1, 2)
    log.compact(z(1, 1))
    assert log.base == z(1, 1) and log.floor(0) is None and log.entries_after(0) == [(z(1, 2), b"b")]
    log.reset(z(3, 3))
    assert log.last() == z(3, 3) and len(log) == 0
    with pytest.raises(AssertionError, match="append out of order"):
        log.append(z(3, 3), b"x")


def test_first_after_is_the_first_entries_that_fit_in_bytes_max() -> None:
    log = ReplicaLog(z(1, 1), [(z(1, 2), b"aaaa"), (z(1, 3), b"bbbb"), (z(2, 1), b"cccccccc")])
    log.compact(z(1, 2))  # the arena's origin moves: offsets stay right
    log.append(z(2, 2), b"d")
    assert log.first_after(z(1, 2), 12) == [(z(1, 3), b"bbbb"), (z(2, 1), b"cccccccc")]
    assert log.first_after(z(1, 2), 11) == [(z(1, 3), b"bbbb")]
    assert log.first_after(z(1, 3), 1) == [(z(2, 1), b"cccccccc")]  # one, however big
    assert log.first_after(z(2, 1), 100) == [(z(2, 2), b"d")]
    assert log.first_after(z(2, 2), 100) == []


LEADER = [(z(1, 1), b""), (z(1, 2), b""), (z(1, 3), b""), (z(3, 1), b""), (z(3, 2), b"")]


@pytest.mark.parametrize(
    ("base", "learner", "entries_max", "expected"),
    [
        (0, z(3, 2), 500, (TransferKind.DIFF, z(3, 2))),  # in step: empty diff
        (0, z(1, 2), 500, (TransferKind.DIFF, z(1, 2))),  # behind, on our history
        (0, 0, 500, (TransferKind.DIFF, 0)),  # empty learner, our log starts at the beginning
        (0, z(1, 2), 2, (TransferKind.SNAP, 0)),  # too far behind for a diff
        (0, z(1, 5), 500, (TransferKind.TRUNC, z(1, 3))),  # uncommitted epoch-1 tail
        (0, z(3, 4), 500, (TransferKind.TRUNC, z(3, 2))),  # ahead of us within our epoch
        (0, z(2, 7), 500, (TransferKind.SNAP, 0)),  # an epoch we never saw: no safe truncation point
        (0, z(4, 1), 500, (TransferKind.SNAP, 0)),
        (z(1, 2), z(1, 1), 500, (TransferKind.SNAP, 0)),  # below our compacted base
        (z(1, 2), 0, 500, (TransferKind.SNAP, 0)),
        (z(1, 2), z(1, 2), 500, (TransferKind.DIFF, z(1, 2))),  # exactly at the base
    ],
)
def test_choose_sync(base: int, learner: int, entries_max: int, expected: tuple[TransferKind, int]) -> None:
    log = ReplicaLog(base, LEADER)
    assert choose_transfer(log, learner, entries_max) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=30, unique=True), st.integers(0, 45), st.integers(0, 5))
def test_count_after_is_the_entries_above_a_zxid(steps: list[int], probe: int, base: int) -> None:
    zxids = sorted({base + s for s in steps})
    log = ReplicaLog(base, [(zxid, b"") for zxid in zxids])
    assert log.count_after(probe) == sum(1 for zxid in zxids if zxid > probe)


# One step on a log and on a list of its entries: (kind, a number that picks the zxid or payload).
log_steps = st.lists(
    st.tuples(st.sampled_from(["append", "truncate", "compact", "reset", "read"]), st.integers(0, 1 << 20)),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(log_steps)
def test_replica_log_is_its_entries_in_a_list(steps: list[tuple[str, int]]) -> None:
    """The log keeps zxids and payload bytes packed; every answer is the one a plain list of
    (zxid, payload) gives, through appends, truncations, compactions and resets."""
    log, base, model = ReplicaLog(), 0, []
    for kind, n in steps:
        points = [base] + [zxid for zxid, _ in model]
        if kind == "append":
            zxid = points[-1] + 1 + n % (1 << 33)  # sometimes across an epoch
            payload = bytes([n % 251]) * (n % 300)
            log.append(zxid, payload)
            model.append((zxid, payload))
        elif kind == "truncate":
            zxid = points[n % len(points)]
            log.truncate(zxid)
            model = [(z, p) for z, p in model if z <= zxid]
        elif kind == "compact":
            zxid = points[n % len(points)]
            log.compact(zxid)
            base, model = zxid, [(z, p) for z, p in model if z > zxid]
        elif kind == "reset":
            base = points[-1] + n
            log.reset(base)
            model = []
        else:
            lo, hi = sorted((n % (points[-1] + 2), (n >> 7) % (points[-1] + 2)))
            assert log.entries_after(lo, hi) == [(z, p) for z, p in model if lo < z <= hi]
            assert log.count_after(lo) == sum(1 for z, _ in model if z > lo)
            assert log.contains(lo) == (lo in points)
            assert log.floor(lo) == (
                max((p for p in points if p <= lo), default=None) if lo >= base else None
            )
        assert log.entries_after(0) == model and log.base == base
        assert len(log) == len(model) and log.last() == (model[-1][0] if model else base)
        assert all(type(p) is bytes for _, p in log.entries_after(0))
