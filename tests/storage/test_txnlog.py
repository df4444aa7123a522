"""TxnLog on real files: append and read back, group commit, segment rollover, truncate, reopen,
the failed state, and a random run checked against zkcore's MemoryLog."""

from __future__ import annotations

import errno
import logging
import os
import random
import select
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

from cluster.storage import StorageError, TxnLog, _txnlog
from cluster.storage._segment import HEADER_BYTES, INDEX_STEP_BYTES
from native import _pylog
from tests.storage.helpers import entries_for, payload_for, segment_files
from zkcore import MemoryLog, limits
from zkcore._errors import LocalError

SMALL = {"segment_bytes": 1024, "preallocate_bytes": 4096}


def test_an_empty_log(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec) as log:
        assert (log.last_zxid(), log.first_zxid(), log.fsync(), log.fsync_count) == (0, 0, 0, 0)
        assert log.entries(0, 100) == [] and list(log.read_from(1)) == []
        assert log.reports == ()
    assert segment_files(tmp_path) == []


def test_one_log_per_directory(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec):
        with pytest.raises(StorageError, match="open elsewhere"):
            TxnLog(tmp_path, codec=codec)
    TxnLog(tmp_path, codec=codec).close()


def test_append_sync_and_read_back(tmp_path: Path, codec: ModuleType) -> None:
    entries = entries_for(range(1, 51))
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries[:20])
        log.append(entries[20:])
        assert log.last_zxid() == 50 and log.durable_zxid == 0
        assert log.fsync() == 50 and log.durable_zxid == 50
        assert log.entries(0, 50) == entries
        assert log.entries(10, 20) == entries[10:20]
        assert list(log.read_from(45)) == entries[44:]
    with TxnLog(tmp_path, codec=codec) as log:
        assert log.entries(0, 1 << 63) == entries and log.reports == ()
        assert (log.first_zxid(), log.last_zxid(), log.durable_zxid) == (1, 50, 50)


def test_the_segment_file_layout(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, preallocate_bytes=1 << 20, codec=codec) as log:
        log.append([(0x100000001, b"abc")])
        log.fsync()
    (path,) = segment_files(tmp_path)
    assert path.name == "log.0000000100000001"
    raw = path.read_bytes()
    assert len(raw) == 1 << 20, "preallocated in whole steps"
    assert raw[:16] == b"ZPYL" + (1).to_bytes(4, "big") + (0x100000001).to_bytes(8, "big")
    assert raw[16:35] == codec.log_encode([0x100000001], [b"abc"])
    assert raw[35:] == bytes(len(raw) - 35)


def test_sync_is_one_fdatasync_per_group(tmp_path: Path, codec: ModuleType, monkeypatch) -> None:
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    with TxnLog(tmp_path, codec=codec) as log:
        for zxid in range(1, 11):
            log.append([(zxid, b"x")])
        assert log.fsync() == 10
        assert log.fsync() == 10, "nothing new: no second fdatasync"
        log.append(entries_for(range(11, 1011)))
        assert log.fsync() == 1010
        assert len(calls) == 2 and log.fsync_count == 2


def test_slow_fdatasyncs_are_counted_and_logged_once_a_while(
    tmp_path: Path, codec: ModuleType, monkeypatch, caplog
) -> None:
    """A slow disk is what makes a leader lose its followers (its loop waits in fdatasync): each
    fdatasync of SLOW_FSYNC_S or more is counted (mntr's zk_fsync_threshold_exceed_count) and a
    warning logged, at most once every SLOW_FSYNC_LOG_S."""
    monkeypatch.setattr(_txnlog, "SLOW_FSYNC_S", 0.02)
    real, slow = os.fdatasync, [False, True, True, False, True]
    monkeypatch.setattr(os, "fdatasync", lambda fd: (time.sleep(0.03) if slow.pop(0) else None, real(fd))[1])
    with caplog.at_level(logging.WARNING, logger="cluster.storage"), TxnLog(tmp_path, codec=codec) as log:
        for zxid in range(1, 6):
            log.append([(zxid, b"x")])
            log.fsync()
        assert log.slow_fsyncs == 3 and log.fsync_count == 5
        assert 30 <= log.fsync_ms_max and log.fsync_ms_min < 30 and log.fsync_ms_sum >= 90, "mntr's fsynctime"
    warnings = [r.getMessage() for r in caplog.records if "an fdatasync took" in r.getMessage()]
    assert len(warnings) == 1 and "(1 of 20 ms or more so far)" in warnings[0], warnings


def _wait_readable(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    assert poller.poll(10_000), "the background sync never ended"


def test_a_background_sync_covers_what_was_appended_before_it(tmp_path: Path, codec: ModuleType) -> None:
    """sync_start hands the fdatasync to a thread; appends go on meanwhile and wait for the next
    one: sync_done reports only what the finished sync covered."""
    with TxnLog(tmp_path, codec=codec) as log:
        assert not log.sync_start(), "nothing appended: nothing to sync"
        log.append(entries_for(range(1, 11)))
        assert log.sync_start() and log.syncing
        log.append(entries_for(range(11, 21)))
        _wait_readable(log.sync_fileno())
        assert log.sync_done() == 10 and log.durable_zxid == 10 and not log.syncing
        assert log.sync_done() is None, "taken once"
        assert log.sync_start(), "the appends made meanwhile are not durable yet"
        _wait_readable(log.sync_fileno())
        assert log.sync_done() == 20 and not log.sync_start()
        assert log.fsync_count == 2
    with TxnLog(tmp_path, codec=codec) as log:
        assert log.entries(0, 20) == entries_for(range(1, 21))


@pytest.fixture
def held_fdatasync(monkeypatch) -> threading.Event:
    """The Python twin's fdatasync, held until the returned event is set (C cannot be held)."""
    release, real = threading.Event(), os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (release.wait(10), real(fd))[1])
    return release


def test_a_running_background_sync_is_waited_for_before_its_file_changes(
    tmp_path: Path, held_fdatasync: threading.Event
) -> None:
    """The sync's fd stays open and uncut while it runs: truncate, a segment roll, fsync and
    close each wait for it (and take its result) first."""
    with TxnLog(tmp_path, codec=_pylog, **SMALL) as log:
        log.append(entries_for(range(1, 6)))
        assert log.sync_start()
        time.sleep(0.05)
        assert log.sync_done() is None and log.syncing, "still running"
        threading.Timer(0.1, held_fdatasync.set).start()
        started = time.monotonic()
        log.truncate(3)
        assert time.monotonic() - started >= 0.05, "the truncate waited for the sync"
        assert not log.syncing and log.sync_done() is None and log.last_zxid() == 3
        held_fdatasync.clear()
        log.append(entries_for(range(4, 10)))
        assert log.sync_start()
        threading.Timer(0.1, held_fdatasync.set).start()
        log.append(entries_for(range(10, 40)))  # past segment_bytes: the next append rolls over
        assert log.syncing
        log.append(entries_for([40]))  # the full segment is sealed (and its fd closed)
        assert not log.syncing and len(segment_files(tmp_path)) == 2
        held_fdatasync.clear()
        assert log.sync_start()
        threading.Timer(0.1, held_fdatasync.set).start()
        assert log.fsync() == 40 and not log.syncing
        held_fdatasync.clear()
        log.append(entries_for(range(41, 43)))
        assert log.sync_start()
        threading.Timer(0.1, held_fdatasync.set).start()
    with TxnLog(tmp_path, codec=_pylog, **SMALL) as log:
        assert log.entries(0, 42) == entries_for(range(1, 43))


def test_a_forked_child_syncs_the_log_without_the_parents_thread(tmp_path: Path, codec: ModuleType) -> None:
    """A snapshot's child makes the log durable through the tree it writes: with a background
    sync running in the parent, whose thread the child does not have."""
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for(range(1, 101)))
        assert log.sync_start()
        log.append(entries_for(range(101, 201)))
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                log.fdatasync_in_child()
                code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 10
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if done[0] == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the child hung")
        assert os.waitstatus_to_exitcode(done[1]) == 0
        _wait_readable(log.sync_fileno())
        assert log.sync_done() == 100, "the parent's own sync is untouched"


def test_a_failed_background_sync_leaves_the_log_unusable(tmp_path: Path, monkeypatch) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with TxnLog(tmp_path, codec=_pylog) as log:
        log.append(entries_for(range(1, 4)))
        assert log.sync_start()
        _wait_readable(log.sync_fileno())
        with pytest.raises(StorageError, match=r"fdatasync of .*log\.0+1 failed: .*Input/output error"):
            log.sync_done()
        with pytest.raises(StorageError, match="unusable"):
            log.append(entries_for([4]))


def test_no_thread_for_the_sync_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    def no_thread() -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_pylog, "Syncer", no_thread)
    with TxnLog(tmp_path, codec=_pylog) as log:
        log.append(entries_for([1]))
        with pytest.raises(
            StorageError, match="cannot start the thread that syncs it: can't start new thread"
        ):
            log.sync_start()
        assert log.fsync() == 1, "the log itself is fine: fsync() needs no thread"


def test_a_slow_background_sync_is_counted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_txnlog, "SLOW_FSYNC_S", 0.02)
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (time.sleep(0.03), real(fd))[1])
    with TxnLog(tmp_path, codec=_pylog) as log:
        log.append(entries_for([1]))
        assert log.sync_start()
        _wait_readable(log.sync_fileno())
        assert log.sync_done() == 1 and log.slow_fsyncs == 1


def test_segments_roll_over(tmp_path: Path, codec: ModuleType) -> None:
    entries = entries_for(range(1, 201), size=100)
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        for start in range(0, 200, 7):
            log.append(entries[start : start + 7])
            log.fsync()
        paths = segment_files(tmp_path)
        assert len(paths) > 10
        firsts = [int(p.name[4:], 16) for p in paths]
        assert firsts[0] == 1 and firsts == sorted(firsts)
        for path, first in zip(paths[:-1], firsts, strict=False):
            raw = path.read_bytes()
            assert codec.log_scan(raw, HEADER_BYTES).end == len(raw), "sealed at its last record"
            assert codec.log_scan(raw, HEADER_BYTES).records[0][0] == first
        assert log.entries(0, 200) == entries
        assert log.entries(33, 150) == entries[33:150]
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        assert log.entries(0, 200) == entries and log.reports == ()
        log.append(entries_for(range(201, 260), size=100))
        assert log.entries(190, 210) == entries_for(range(191, 211), size=100)


def test_a_batch_bigger_than_a_segment(tmp_path: Path, codec: ModuleType) -> None:
    entries = entries_for(range(1, 101), size=200)
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        log.append(entries)
        log.append(entries_for([101]))
        assert [p.name for p in segment_files(tmp_path)] == ["log.0000000000000001", "log.0000000000000065"]
        assert log.entries(0, 200) == entries + entries_for([101])


def test_a_long_append_is_written_in_batches(tmp_path: Path, codec: ModuleType, monkeypatch) -> None:
    """Each batch closes with the record that takes it to APPEND_BATCH_BYTES framed; the index
    and what reads back are as if every record had been appended alone."""
    monkeypatch.setattr(_txnlog, "APPEND_BATCH_BYTES", 5000)
    writes: list[int] = []

    class Counting:
        log_scan = codec.log_scan

        @staticmethod
        def log_append(fd: int, zxids: list[int], payloads: list[bytes]) -> int:
            writes.append(len(zxids))
            return int(codec.log_append(fd, zxids, payloads))

    entries = entries_for(range(1, 601), size=400)  # 416 bytes framed: 13 make a batch
    with TxnLog(tmp_path / "batched", codec=Counting) as log:
        log.append(entries)
        assert writes == [13] * 46 + [2]
        batched = log._segments[-1]
        assert len(batched.index_offsets) == 4 and log.entries(0, 999) == entries
    with TxnLog(tmp_path / "alone", codec=codec) as log:
        for entry in entries:
            log.append([entry])
        alone = log._segments[-1]
    assert (batched.index_zxids, batched.index_offsets, batched.data_end, batched.last_zxid) == (
        alone.index_zxids, alone.index_offsets, alone.data_end, alone.last_zxid,
    )  # fmt: skip


def test_entries_use_the_sparse_index(tmp_path: Path, codec: ModuleType) -> None:
    entries = entries_for(range(1, 601), size=400)  # ~250 KB: four index steps
    rng = random.Random(7)
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries)
        assert len(log._segments[-1].index_offsets) == -(-600 * 416 // INDEX_STEP_BYTES)
        for _ in range(20):
            lo = rng.randint(0, 601)
            hi = lo + rng.randint(0, 30)
            assert log.entries(lo, hi) == entries[lo:hi]


def test_zxids_need_not_be_contiguous(tmp_path: Path, codec: ModuleType) -> None:
    zxids = [0x100000001, 0x100000002, 0x300000001, 0x300000007]
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for(zxids))
        assert log.entries(0x100000002, 0x300000006) == entries_for([0x300000001])
        assert list(log.read_from(0x200000000)) == entries_for(zxids[2:])


@pytest.mark.parametrize(
    ("cut", "left"),
    [(0, []), (1, [1]), (37, list(range(1, 38))), (59, list(range(1, 60))), (99, list(range(1, 100)))],
)
def test_truncate(tmp_path: Path, codec: ModuleType, cut: int, left: list[int]) -> None:
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        log.append(entries_for(range(1, 101), size=60))
        log.truncate(cut)
        assert log.last_zxid() == (left[-1] if left else 0) == log.durable_zxid
        assert log.entries(0, 1000) == entries_for(left, size=60)
        log.append([(cut + 1, b"after truncate")])
        log.fsync()
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        assert log.entries(0, 1000) == entries_for(left, size=60) + [(cut + 1, b"after truncate")]
        assert log.reports == ()
        assert int(segment_files(tmp_path)[-1].name[4:], 16) <= cut + 1


def test_truncate_at_or_above_the_end_changes_nothing(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for(range(1, 6)))
        log.truncate(5)
        log.truncate(99)
        assert log.entries(0, 99) == entries_for(range(1, 6))


def test_truncate_leaves_no_stale_record_to_revive(tmp_path: Path, codec: ModuleType) -> None:
    """Records of equal length written over truncated ones must not bring the old tail back."""
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for(range(1, 6)))
        log.fsync()
        log.truncate(2)
        log.append([(3, payload_for(30))])  # same length as the old record 3
        log.fsync()
    with TxnLog(tmp_path, codec=codec) as log:
        assert log.entries(0, 99) == entries_for([1, 2]) + [(3, payload_for(30))]


def test_open_drops_stale_records_beyond_the_zero_header(tmp_path: Path, codec: ModuleType) -> None:
    """A crash can leave unsynced records after a gap of zeros; a later append must not line up
    with them and revive them."""
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for(range(1, 4)))
        log.fsync()
        end = log._segments[-1].data_end
    (path,) = segment_files(tmp_path)
    with open(path, "r+b") as f:
        f.seek(end + 26)  # room for one 10-byte record, then stale records 5 and 6
        f.write(codec.log_encode([5, 6], [payload_for(5), payload_for(6)]))
    with TxnLog(tmp_path, codec=codec) as log:
        assert log.last_zxid() == 3 and log.reports == ()
        log.append([(4, b"0123456789")])
        log.fsync()
    with TxnLog(tmp_path, codec=codec) as log:
        assert log.entries(0, 99) == entries_for(range(1, 4)) + [(4, b"0123456789")]


def test_append_checks_its_input(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec) as log:
        log.append([(5, b"x")])
        with pytest.raises(AssertionError, match="out of order"):
            log.append([(5, b"y")])
        with pytest.raises(LocalError, match="payload"):
            log.append([(6, b"ok"), (7, b"")])
        with pytest.raises(LocalError, match="payload"):
            log.append([(6, b"z" * (limits.frame_bytes_max + 1))])
        assert log.entries(0, 99) == [(5, b"x")], "a rejected batch writes nothing"
    with pytest.raises(LocalError, match="segment_bytes"):
        TxnLog(tmp_path, segment_bytes=0)


class FailingCodec:
    def __init__(self, codec: ModuleType) -> None:
        self.log_scan = codec.log_scan

    def log_append(self, fd: int, zxids: object, payloads: object) -> int:
        raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_the_log_unusable(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec) as log:
        log.append(entries_for([1]))
        log.fsync()
    log = TxnLog(tmp_path, codec=FailingCodec(codec))
    with pytest.raises(StorageError, match="No space left"):
        log.append(entries_for([2]))
    for call in (log.fsync, lambda: log.append(entries_for([3])), lambda: log.entries(0, 9)):
        with pytest.raises(StorageError, match="unusable"):
            call()
    log.close()
    closed = TxnLog(tmp_path / "other", codec=codec)
    closed.close()
    with pytest.raises(StorageError, match="closed"):
        closed.append(entries_for([1]))


def test_remove_segments_before(tmp_path: Path, codec: ModuleType) -> None:
    with TxnLog(tmp_path, codec=codec, **SMALL) as log:
        for zxid in range(1, 101):
            log.append(entries_for([zxid], size=100))
        firsts = [s.first_zxid for s in log._segments]
        paths = segment_files(tmp_path)
        assert log.remove_segments_before(firsts[3]) == paths[:3], "they hold only zxids below firsts[3]"
        assert segment_files(tmp_path) == paths[3:]
        assert log.first_zxid() == firsts[3]
        assert log.entries(firsts[3] - 1, 100) == entries_for(range(firsts[3], 101), size=100)
        with pytest.raises(StorageError, match="gone"):
            log._segments.insert(0, type(log._segments[0])(paths[0], firsts[0], firsts[1] - 1))
            log.entries(0, 100)
        del log._segments[0]
        assert len(log.remove_segments_before(1 << 40)) == len(firsts) - 4, "the last one stays"
        assert log.entries(0, 100)[-1][0] == 100


def test_random_operations_match_memory_log(tmp_path: Path, codec: ModuleType) -> None:
    rng = random.Random(2024)
    model = MemoryLog()
    log = TxnLog(tmp_path, codec=codec, segment_bytes=2048, preallocate_bytes=1024)
    try:
        for _ in range(300):
            action = rng.random()
            if action < 0.6:
                start = model.last_zxid() + rng.randint(1, 3)
                batch = [
                    (start + i, payload_for(start + i, rng.randint(1, 300))) for i in range(rng.randint(1, 8))
                ]
                log.append(batch)
                model.append(batch)
            elif action < 0.75:
                assert log.fsync() == model.fsync()
            elif action < 0.85:
                cut = rng.randint(0, model.last_zxid() + 1)
                log.truncate(cut)
                model.truncate(cut)
            else:
                log.fsync()
                log.close()
                log = TxnLog(tmp_path, codec=codec, segment_bytes=2048, preallocate_bytes=1024)
                assert log.reports == ()
            assert log.last_zxid() == model.last_zxid()
            lo = rng.randint(0, model.last_zxid() + 1)
            assert log.entries(lo, lo + 20) == model.entries(lo, lo + 20)
        assert log.entries(0, 1 << 62) == model.entries(0, 1 << 62)
    finally:
        log.close()
