"""The simulator's own tests: the CI seed budget, reproducibility, and proof that the checks bite.

Soak runs carry @pytest.mark.slow and run only when selected: `pytest -m slow tests/sim`.
"""

from __future__ import annotations

import pytest

from tests.sim.__main__ import main
from tests.sim.broken import VARIANTS
from tests.sim.checkers import Checker, Violation, check_prefixes
from tests.sim.simulator import run_seed
from zkcore import limits
from zkcore.zab import make_zxid

SAFETY_CHECKS = ("prefix", "primary order", "one leader", "durability")
CI_SEEDS = 510  # 170 each for 3, 5 and 7 voters


def _voters(seed: int) -> int:
    return (3, 5, 7)[seed % 3]


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("soak run: select it with -m slow")


def test_ci_seed_budget() -> None:
    failures = []
    for seed in range(CI_SEEDS):
        result = run_seed(seed, _voters(seed))
        if result.violation is not None:
            failures.append(f"seed {seed} (python -m tests.sim --seed {seed}): {result.violation}")
    assert not failures, "\n".join(failures)


# Seeds that once caught a bug in zkcore/zab (see each fix's scenario test in tests/zab).
REGRESSION_SEEDS = [
    (114276, 3),  # an observer and a voter answering each other's notifications forever
]


@pytest.mark.parametrize(("seed", "voters"), REGRESSION_SEEDS)
def test_regression_seeds(seed: int, voters: int) -> None:
    result = run_seed(seed, voters)
    assert result.violation is None, result.violation


def test_same_seed_same_trace() -> None:
    first, second = run_seed(41, 5), run_seed(41, 5)
    assert first.trace == second.trace and first.trace_hash == second.trace_hash
    assert run_seed(42, 5).trace_hash != first.trace_hash


@pytest.mark.parametrize("kept_bytes_max", [0, 120])
def test_entries_kept_as_appended_or_copied_out_of_the_log_make_the_same_trace(
    monkeypatch: pytest.MonkeyPatch, kept_bytes_max: int
) -> None:
    """A replica hands out what it commits from the entries it kept as they were appended, or,
    past limits.zab_uncommitted_kept_bytes_max of them, copied out of its log: the same runs."""
    seeds = range(33, 61)  # truncations among them (seeds 33, 39, 55, 57, 60)
    kept = [run_seed(seed, _voters(seed)).trace_hash for seed in seeds]
    monkeypatch.setattr(limits, "zab_uncommitted_kept_bytes_max", kept_bytes_max)
    assert [run_seed(seed, _voters(seed)).trace_hash for seed in seeds] == kept


@pytest.mark.parametrize(
    ("variant", "seeds_max"),
    [("early-commit", 40), ("short-history", 40), ("gap-blind", 20)],
)
def test_broken_variant_is_caught(variant: str, seeds_max: int) -> None:
    """Each broken rule is caught by a checker (not only by zkcore's own assertions) within a
    bounded number of seeds."""
    for seed in range(seeds_max):
        result = run_seed(seed, _voters(seed), replica_class=VARIANTS[variant])
        if result.violation is not None and result.violation.startswith(SAFETY_CHECKS):
            return
    pytest.fail(f"{variant} survived {seeds_max} seeds without a checker reporting a safety violation")


def test_broken_election_alone_is_caught_as_liveness() -> None:
    """With only the vote order broken, discovery still refuses to lead newer histories: the
    ensemble stays safe but cannot converge, and the liveness check says so."""
    for seed in range(60):
        result = run_seed(seed, _voters(seed), replica_class=VARIANTS["short-history-election-only"])
        if result.violation is not None:
            assert result.violation.startswith("liveness"), result.violation
            return
    pytest.fail("the broken election survived 60 seeds")


CHECKER_CASES = [
    ("gap in an epoch", [(1, 1), (1, 3)], "primary order"),
    ("epoch goes back", [(2, 1), (1, 2)], "primary order"),
    ("new epoch not at 1", [(1, 1), (2, 2)], "primary order"),
    ("first not at 1", [(1, 2)], "primary order"),
]


@pytest.mark.parametrize(("name", "zxids", "message"), CHECKER_CASES, ids=[c[0] for c in CHECKER_CASES])
def test_checker_order_rules(name: str, zxids: list[tuple[int, int]], message: str) -> None:
    applied = [(make_zxid(e, c), b"x") for e, c in zxids]
    with pytest.raises(Violation, match=message):
        Checker().applied(1, applied, 0)


def test_checker_prefix_and_leaders() -> None:
    checker = Checker()
    checker.applied(1, [(make_zxid(1, 1), b"a")], 0)
    with pytest.raises(Violation, match="prefix"):
        checker.applied(2, [(make_zxid(1, 1), b"b")], 0)
    checker.established(2, 1, {make_zxid(1, 1): b"a"})
    with pytest.raises(Violation, match="one leader"):
        checker.established(2, 3, {make_zxid(1, 1): b"a"})
    checker.acked_write(make_zxid(1, 1), b"a")
    with pytest.raises(Violation, match="durability: acked write"):
        checker.established(3, 2, {})
    with pytest.raises(Violation, match="prefix"):
        check_prefixes([[(1, b"a")], [(1, b"b"), (2, b"c")]])


def test_cli_reports_a_failing_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "5", "--variant", "gap-blind"]) == 1
    out = capsys.readouterr().out
    assert "FAILED seed" in out and "trace hash" in out
    assert main(["--seed", "3", "--nodes", "3", "--observers", "1"]) == 0
    assert "trace hash" in capsys.readouterr().out


@pytest.mark.slow
def test_soak(slow_selected: None) -> None:
    """3000 long, harsher seeds across 3/5/7 voters (several minutes)."""
    failures = []
    for seed in range(10_000, 13_000):
        result = run_seed(seed, _voters(seed), long=True)
        if result.violation is not None:
            failures.append(f"seed {seed} (python -m tests.sim --seed {seed} --long): {result.violation}")
    assert not failures, "\n".join(failures[:20])
