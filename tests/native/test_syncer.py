"""The background fdatasync (native Syncer), against the C build and the Python twin: one sync
at a time, its end told through the eventfd and taken once, its error returned, a running one
waited for by close. Real files in a temporary directory; no process of its own."""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from native import _pysync
from zkcore._errors import LocalError

try:
    from native import _csync
except ImportError:  # the C extension is not built: the twin still gets tested
    _csync = None  # type: ignore[assignment]

TWINS = [
    pytest.param(_pysync.Syncer, id="python"),
    pytest.param(getattr(_csync, "Syncer", None), id="native",
                 marks=pytest.mark.skipif(_csync is None, reason="native extension not built")),
]  # fmt: skip
IDLE, RUNNING, BUSY = _pysync.IDLE, _pysync.RUNNING, _pysync.BUSY


@pytest.fixture(params=TWINS)
def syncer(request: pytest.FixtureRequest) -> Iterator[_pysync.Syncer]:
    s = request.param()
    yield s
    s.close()


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "log", os.O_RDWR | os.O_CREAT, 0o644)
    yield fd
    os.close(fd)


def readable(s: _pysync.Syncer, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(s.fileno(), select.POLLIN)
    return bool(poller.poll(timeout_ms))


def test_one_sync_told_through_the_eventfd_and_taken_once(syncer: _pysync.Syncer, fd: int) -> None:
    assert syncer.finish(False) == (IDLE, 0) and syncer.finish(True) == (IDLE, 0), "nothing started"
    assert not readable(syncer, 0)
    os.write(fd, b"x" * 4096)
    assert syncer.start(fd) == 0
    assert syncer.start(fd) == BUSY, "one at a time: the first's result is not taken yet"
    assert readable(syncer, 10_000), "the eventfd tells when it is done"
    assert syncer.start(fd) == BUSY, "done but not taken is still busy"
    result, took_ns = syncer.finish(False)
    assert result == 0 and took_ns > 0
    assert not readable(syncer, 0), "taking the result drains the eventfd"
    assert syncer.finish(False) == (IDLE, 0), "taken once"


def test_many_syncs_in_a_row(syncer: _pysync.Syncer, fd: int) -> None:
    for i in range(200):
        os.write(fd, b"%d" % i)
        assert syncer.start(fd) == 0
        if i % 2:  # half waited for through the eventfd, half by blocking
            assert readable(syncer, 10_000)
            assert syncer.finish(False)[0] == 0
        else:
            assert syncer.finish(True)[0] == 0
        assert not readable(syncer, 0)


def test_a_failed_fdatasync_returns_its_errno(syncer: _pysync.Syncer, tmp_path: Path) -> None:
    closed = os.open(tmp_path / "gone", os.O_RDWR | os.O_CREAT, 0o644)
    os.close(closed)
    assert syncer.start(closed) == 0
    assert syncer.finish(True)[0] == errno.EBADF
    read, write = os.pipe()  # fdatasync on a pipe: EINVAL
    try:
        assert syncer.start(read) == 0
        result, _ = syncer.finish(True)
        assert result == errno.EINVAL
    finally:
        os.close(read)
        os.close(write)
    assert syncer.finish(False) == (IDLE, 0)


def test_close_waits_for_the_running_sync_and_ends_the_thread(syncer: _pysync.Syncer, fd: int) -> None:
    os.write(fd, b"y" * 65536)
    assert syncer.start(fd) == 0
    syncer.close()  # returns once the thread is gone: fd can be closed safely afterwards
    syncer.close()
    with pytest.raises(LocalError, match="closed"):
        syncer.fileno()
    with pytest.raises(LocalError, match="closed"):
        syncer.start(fd)
    assert syncer.finish(True) == (IDLE, 0)


@pytest.mark.parametrize("bad", [-1, "3", None])
def test_a_bad_fd_is_refused(syncer: _pysync.Syncer, bad: object) -> None:
    with pytest.raises(LocalError, match="fd must be"):
        syncer.start(bad)  # type: ignore[arg-type]
