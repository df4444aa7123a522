"""Consistency checker throughput: linearizability of one register over a 10k-op history from the
simulated service (5 clients, reads/writes/compare-and-sets, 5% of write outcomes unknown), and
sequential consistency of the same history, reported as ops checked per second (group "checker").

Run: python -m pytest bench/bench_checker.py --benchmark-only -q
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from checker import check_linearizability, check_sequential_consistency
from checker.history import Op
from tests.checker.simulate import REGISTER_MIX, Config, simulate

OPS = 10_000
_lines: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print ops/s under pytest-benchmark's table."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not _lines:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in _lines:
            reporter.write_line(line)


@pytest.fixture(scope="module")
def history() -> list[Op]:
    config = Config(ops=OPS, clients=5, keys=1, stale=False, unknown_p=0.05, mix=dict(REGISTER_MIX))
    return simulate(7, config)


def _rate(benchmark: Any, checked: int, label: str) -> None:
    per_s = checked / benchmark.stats.stats.mean
    benchmark.extra_info["ops_per_s"] = round(per_s)
    _lines.append(f"{label:<52} {checked:>6} ops {per_s:>12,.0f} ops/s")


@pytest.mark.benchmark(group="checker")
def test_linearizability_10k(benchmark: Any, history: list[Op]) -> None:
    result = benchmark(check_linearizability, history, all_reads=True)
    assert result.ok, str(result)
    _rate(benchmark, result.ops_checked, "check_linearizability, one key, all reads")


@pytest.mark.benchmark(group="checker")
def test_sequential_consistency_10k(benchmark: Any, history: list[Op]) -> None:
    result = benchmark(check_sequential_consistency, history)
    assert result.ok, str(result)
    _rate(benchmark, result.ops_checked, "check_sequential_consistency, one key")
