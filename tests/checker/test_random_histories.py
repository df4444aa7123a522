"""Histories from a simulated correct service must pass every check; the same histories with one
fault put in must fail the check for that fault, with the faulty op in the counterexample."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from checker import check_all, check_linearizability, check_sequential_consistency
from tests.checker.corrupt import CORRUPTIONS
from tests.checker.simulate import REGISTER_MIX, Config, simulate

SEEDS = st.integers(0, 2**32 - 1)


def zookeeper_config(rng: random.Random) -> Config:
    """A small ZooKeeper-like run: lagging followers, syncs, every kind of op."""
    return Config(
        clients=rng.randint(1, 5),
        keys=rng.randint(1, 3),
        ops=rng.choice([40, 120, 200]),
        servers=rng.randint(1, 4),
        unknown_p=rng.choice([0.0, 0.05, 0.2]),
        sync_p=rng.random(),
    )


def register_config(rng: random.Random) -> Config:
    """A linearizable register service: every client talks to the leader."""
    return Config(clients=rng.randint(1, 6), keys=rng.randint(1, 2), ops=rng.choice([40, 150]), stale=False,
                  unknown_p=rng.choice([0.0, 0.1, 0.3]), mix=dict(REGISTER_MIX))  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(SEEDS)
def test_zookeeper_like_histories_pass(seed: int) -> None:
    history = simulate(seed, zookeeper_config(random.Random(seed)))
    report = check_all(history)
    assert report.ok, report.text()


@settings(max_examples=60, deadline=None)
@given(SEEDS)
def test_linearizable_register_histories_pass(seed: int) -> None:
    history = simulate(seed, register_config(random.Random(seed)))
    report = check_all(history, all_reads=True)
    assert report.ok, report.text()


# The check that must catch each fault; a fault often breaks other rules too.
CAUGHT_BY = {
    "stale_read": ("linearizability", True),
    "lost_own_write": ("read your writes", False),
    "read_goes_back": ("monotonic reads", False),
    "swap_zxids": ("monotonic writes", False),
    "write_below_read": ("writes follow reads", False),
    "duplicate_sequential_name": ("sequential nodes", False),
    "ephemeral_after_end": ("ephemerals", False),
    "lost_watch_event": ("watch order", False),
}
ALSO_NOT_SEQUENTIAL = {"lost_own_write", "read_goes_back"}


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS)
def test_faults_are_caught(fault: str, seed: int) -> None:
    check, linearizable = CAUGHT_BY[fault]
    rng = random.Random(seed)
    config = register_config(rng) if linearizable else zookeeper_config(rng)
    config.ops = max(config.ops, 150)
    broken = CORRUPTIONS[fault](simulate(seed, config), rng)
    assume(broken is not None)
    assert broken is not None
    history, culprit = broken
    report = check_all(history, all_reads=linearizable)
    result = report.result(check)
    assert result.violations, f"{fault} not caught:\n{report.text()}"
    assert culprit in {op.index for v in result.violations for op in v.ops}, result.counterexample()
    if fault in ALSO_NOT_SEQUENTIAL:
        assert report.result("sequential consistency").violations


def test_stale_read_counterexample_is_three_ops() -> None:
    """In a long history, the counterexample is the stale read, the write it saw and the write
    that had replaced it."""
    history = simulate(3, Config(ops=3000, clients=5, keys=1, stale=False, mix=dict(REGISTER_MIX)))
    broken = CORRUPTIONS["stale_read"](history, random.Random(0))
    assert broken is not None
    (violation,) = check_linearizability(broken[0], all_reads=True).violations
    assert len(violation.ops) <= 4 and broken[1] in {op.index for op in violation.ops}


def test_many_unknown_outcomes_stay_fast() -> None:
    """Thousands of ops with one in ten outcomes unknown: decided well inside the step budget."""
    history = simulate(
        11, Config(ops=4000, clients=5, keys=1, stale=False, unknown_p=0.1, mix=dict(REGISTER_MIX))
    )
    assert check_linearizability(history, all_reads=True, steps_max=100_000).ok
    assert check_sequential_consistency(history, steps_max=100_000).ok
