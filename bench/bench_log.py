"""Txn log throughput: native vs Python log_append without fsync, and TxnLog group commit
(append a batch, then one sync) at several batch sizes, reported as records/s and syncs/s.

Run: python -m pytest bench/bench_log.py --benchmark-only -q
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cluster.storage import TxnLog
from native import _pylog

try:
    from native import _clog
except ImportError:
    _clog = None  # type: ignore[assignment]

PAYLOAD_BYTES = 100
APPEND_BATCH = 1000
REWIND_BYTES = 64 * 1024 * 1024  # rewrite the same file region, like a preallocated segment
IMPLEMENTATIONS = [
    pytest.param(_clog, id="native", marks=pytest.mark.skipif(_clog is None, reason="not built")),
    pytest.param(_pylog, id="python"),
]
_lines: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print records/s and syncs/s under pytest-benchmark's table (per-call figures only)."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not _lines:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in _lines:
            reporter.write_line(line)


def rate(benchmark: pytest.FixtureRequest, records: int, label: str, syncs: int = 0) -> None:
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    per_s = records / stats.mean
    benchmark.extra_info["records_per_s"] = round(per_s)  # type: ignore[attr-defined]
    line = f"{label:<44} {per_s:>12,.0f} records/s"
    if syncs:
        benchmark.extra_info["syncs_per_s"] = round(syncs / stats.mean)  # type: ignore[attr-defined]
        line += f" {syncs / stats.mean:>10,.0f} syncs/s"
    _lines.append(line)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_log_append_without_fsync(benchmark: Any, tmp_path: Path, impl: ModuleType) -> None:
    payloads = [os.urandom(PAYLOAD_BYTES) for _ in range(APPEND_BATCH)]
    zxids = itertools.count(1)
    fd = os.open(tmp_path / "log", os.O_RDWR | os.O_CREAT, 0o644)
    written = 0

    def append_batch() -> None:
        nonlocal written
        if written >= REWIND_BYTES:
            os.lseek(fd, 0, os.SEEK_SET)
            written = 0
        batch_zxids = list(itertools.islice(zxids, APPEND_BATCH))
        written += impl.log_append(fd, batch_zxids, payloads)

    try:
        benchmark(append_batch)
    finally:
        os.close(fd)
    rate(benchmark, APPEND_BATCH, f"log_append {impl.__name__} batch={APPEND_BATCH} no fsync")


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
def test_group_commit(benchmark: Any, tmp_path: Path, batch: int) -> None:
    payload = os.urandom(PAYLOAD_BYTES)
    zxids = itertools.count(1)
    log = TxnLog(tmp_path)

    def append_and_sync() -> int:
        log.append([(zxid, payload) for zxid in itertools.islice(zxids, batch)])
        return log.fsync()

    try:
        benchmark(append_and_sync)
    finally:
        log.close()
    rate(benchmark, batch, f"TxnLog.append({batch}) + sync()", syncs=1)
