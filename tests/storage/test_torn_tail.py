"""Crash damage on real files: a log cut at every byte of its tail record and of its header, or
with a flipped byte, reopens at the last good record, reports the damage, and appends after it.
Damage in a sealed (earlier) segment refuses to open instead of dropping committed history."""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType

import pytest

from cluster.storage import DamageReport, StorageError, TxnLog
from cluster.storage._segment import HEADER_BYTES
from tests.storage.helpers import cut_file, entries_for, flip_byte, segment_files

RECORD_BYTES = 16 + 40
TAIL_START = HEADER_BYTES + 4 * RECORD_BYTES  # records 1..4 come before the tail record 5
TAIL_END = TAIL_START + RECORD_BYTES
SMALL = {"segment_bytes": 2 * RECORD_BYTES + HEADER_BYTES, "preallocate_bytes": 4096}


@pytest.fixture
def pristine(tmp_path_factory: pytest.TempPathFactory, codec: ModuleType) -> bytes:
    """The bytes of a closed one-segment log holding records 1..5 (then preallocated zeros)."""
    directory = tmp_path_factory.mktemp("pristine")
    with TxnLog(directory, codec=codec, preallocate_bytes=4096) as log:
        log.append(entries_for(range(1, 6)))
        log.fsync()
    (path,) = segment_files(directory)
    return path.read_bytes()


def reopen_and_append(directory: Path, codec: ModuleType, good: list[int]) -> tuple[DamageReport, ...]:
    """Open the damaged log, check it holds exactly `good`, append after it, check a reopen."""
    with TxnLog(directory, codec=codec, preallocate_bytes=4096) as log:
        assert log.entries(0, 99) == entries_for(good)
        assert log.last_zxid() == (good[-1] if good else 0)
        next_zxid = log.last_zxid() + 1
        log.append([(next_zxid, b"written after recovery")])
        log.fsync()
        reports = log.reports
    with TxnLog(directory, codec=codec, preallocate_bytes=4096) as log:
        assert log.reports == ()
        assert log.entries(0, 99) == entries_for(good) + [(next_zxid, b"written after recovery")]
    return reports


def test_cut_at_every_byte_of_the_tail_record(tmp_path: Path, codec: ModuleType, pristine: bytes) -> None:
    for cut in range(TAIL_START, TAIL_END + 1):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        path = directory / "log.0000000000000001"
        path.write_bytes(pristine[:cut])
        if cut == TAIL_END:
            assert reopen_and_append(directory, codec, [1, 2, 3, 4, 5]) == ()
        elif cut == TAIL_START:
            assert reopen_and_append(directory, codec, [1, 2, 3, 4]) == (), "a clean record boundary"
        else:
            (report,) = reopen_and_append(directory, codec, [1, 2, 3, 4])
            assert (report.file, report.offset) == (path, TAIL_START)
            assert "torn" in report.reason, (cut, report)


def test_cut_at_every_byte_of_the_segment_header(tmp_path: Path, codec: ModuleType, pristine: bytes) -> None:
    for cut in range(0, HEADER_BYTES + 17):  # the file header, then into the first record
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        path = directory / "log.0000000000000001"
        path.write_bytes(pristine[:cut])
        if cut == HEADER_BYTES:
            assert reopen_and_append(directory, codec, []) == (), "a header alone: an empty segment"
            continue
        (report,) = reopen_and_append(directory, codec, [])
        assert report.file == path
        assert report.offset == (0 if cut < HEADER_BYTES else HEADER_BYTES)


def test_flip_every_byte_of_the_tail_record(tmp_path: Path, codec: ModuleType, pristine: bytes) -> None:
    for at in range(TAIL_START, TAIL_END):
        directory = tmp_path / f"flip{at}"
        directory.mkdir()
        path = directory / "log.0000000000000001"
        path.write_bytes(pristine)
        flip_byte(path, at)
        (report,) = reopen_and_append(directory, codec, [1, 2, 3, 4])
        assert (report.file, report.offset) == (path, TAIL_START)
        assert "corrupt" in report.reason or "torn" in report.reason or "zxid" in report.reason


def test_a_bad_record_inside_the_last_segment_cuts_there(
    tmp_path: Path, codec: ModuleType, pristine: bytes
) -> None:
    path = tmp_path / "log.0000000000000001"
    path.write_bytes(pristine)
    flip_byte(path, HEADER_BYTES + 2 * RECORD_BYTES + 20)
    (report,) = reopen_and_append(tmp_path, codec, [1, 2])
    assert report.offset == HEADER_BYTES + 2 * RECORD_BYTES and "corrupt" in report.reason


def test_a_record_out_of_zxid_order_is_damage(tmp_path: Path, codec: ModuleType, pristine: bytes) -> None:
    path = tmp_path / "log.0000000000000001"
    stale = codec.log_encode([3], [b"stale"])
    path.write_bytes(pristine[:TAIL_END] + stale + bytes(64))
    (report,) = reopen_and_append(tmp_path, codec, [1, 2, 3, 4, 5])
    assert report.offset == TAIL_END and "does not follow" in report.reason


def test_a_first_record_that_does_not_match_the_name(
    tmp_path: Path, codec: ModuleType, pristine: bytes
) -> None:
    path = tmp_path / "log.0000000000000001"
    path.write_bytes(pristine[:HEADER_BYTES] + pristine[HEADER_BYTES + RECORD_BYTES :])
    (report,) = reopen_and_append(tmp_path, codec, [])
    assert report.offset == HEADER_BYTES and "differs from the segment name" in report.reason
    assert [p.name for p in segment_files(tmp_path)] == ["log.0000000000000001"]


def two_segments(directory: Path, codec: ModuleType) -> list[Path]:
    with TxnLog(directory, codec=codec, **SMALL) as log:
        for zxid in range(1, 5):
            log.append(entries_for([zxid]))
        log.fsync()
    paths = segment_files(directory)
    assert [p.name[4:] for p in paths] == ["0000000000000001", "0000000000000003"]
    return paths


def test_a_torn_header_of_a_new_last_segment(tmp_path: Path, codec: ModuleType) -> None:
    """A crash right after rollover: the new segment lost its header; the sealed one is whole."""
    first, second = two_segments(tmp_path, codec)
    cut_file(second, 7)
    (report,) = reopen_and_append(tmp_path, codec, [1, 2])
    assert (report.file, report.offset) == (second, 0) and "header torn" in report.reason


def test_an_empty_last_segment_is_removed_quietly(tmp_path: Path, codec: ModuleType) -> None:
    first, second = two_segments(tmp_path, codec)
    cut_file(second, HEADER_BYTES)
    assert reopen_and_append(tmp_path, codec, [1, 2]) == ()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: flip_byte(p, HEADER_BYTES + 20), "corrupt record"),
        (lambda p: flip_byte(p, HEADER_BYTES + RECORD_BYTES + 6), "corrupt record"),
        (lambda p: cut_file(p, HEADER_BYTES + RECORD_BYTES + 10), "torn record"),
        (lambda p: p.write_bytes(p.read_bytes() + bytes(16)), "bytes after its records"),
        (lambda p: flip_byte(p, 0), "magic"),
        (lambda p: cut_file(p, HEADER_BYTES), "holds no record"),
    ],
)
def test_damage_in_a_sealed_segment_refuses_to_open(
    tmp_path: Path, codec: ModuleType, damage, message: str
) -> None:
    # A sealed segment cut exactly at a record boundary reads cleanly here; recovery catches the
    # hole it leaves in the zxid sequence (test_recovery.py).
    first, _ = two_segments(tmp_path, codec)
    damage(first)
    with pytest.raises(StorageError, match=message):
        TxnLog(tmp_path, codec=codec)


def test_an_unknown_format_version_refuses_to_open(
    tmp_path: Path, codec: ModuleType, pristine: bytes
) -> None:
    path = tmp_path / "log.0000000000000001"
    path.write_bytes(pristine[:4] + struct.pack(">I", 99) + pristine[8:])
    with pytest.raises(StorageError, match="format version 99"):
        TxnLog(tmp_path, codec=codec)
