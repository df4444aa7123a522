"""Snapshot files: written atomically, read back verified, broken ones skipped and reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import native
from cluster.storage import (
    DamageReport,
    drop_snapshots_after,
    latest_snapshot,
    list_snapshots,
    write_snapshot,
)
from cluster.storage._snapshot import HEADER, TRAILER, WRITE_BUFFER_BYTES, remove_stale_temps
from tests.storage.helpers import cut_file, flip_byte
from zkcore._errors import LocalError


def test_write_and_read_back(tmp_path: Path) -> None:
    chunks = [b"tree:", b"", bytearray(b"/a=1;"), memoryview(b"/b=2;"), b"x" * (WRITE_BUFFER_BYTES + 5)]
    path = write_snapshot(tmp_path, 0x100000007, chunks)
    payload = b"".join(chunks)
    assert path == tmp_path / "snapshot.0000000100000007"
    raw = path.read_bytes()
    assert raw[: HEADER.size] == HEADER.pack(b"ZPYS", 1, 0x100000007)
    assert raw[HEADER.size : -TRAILER.size] == payload
    assert raw[-TRAILER.size :] == TRAILER.pack(len(payload), native.crc32c(payload))
    assert latest_snapshot(tmp_path) == (0x100000007, payload)
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temp file left behind"


def test_an_empty_payload(tmp_path: Path) -> None:
    write_snapshot(tmp_path, 0, [])
    assert latest_snapshot(tmp_path) == (0, b"")


def test_no_snapshot(tmp_path: Path) -> None:
    assert latest_snapshot(tmp_path) is None
    (tmp_path / "snapshot.0000000000000005.tmp").write_bytes(b"half written")
    (tmp_path / "snapshot.notazxid").write_bytes(b"?")
    assert latest_snapshot(tmp_path) is None and list_snapshots(tmp_path) == []


def test_the_newest_wins(tmp_path: Path) -> None:
    for zxid in (5, 0x200000001, 40):
        write_snapshot(tmp_path, zxid, [b"state at %x" % zxid])
    assert latest_snapshot(tmp_path) == (0x200000001, b"state at 200000001")
    assert [zxid for zxid, _ in list_snapshots(tmp_path)] == [5, 40, 0x200000001]


def break_by_flip(path: Path) -> None:
    flip_byte(path, HEADER.size + 3)


def break_by_crc(path: Path) -> None:
    flip_byte(path, path.stat().st_size - 1)


def break_by_cut(path: Path) -> None:
    cut_file(path, path.stat().st_size - 1)


def break_by_magic(path: Path) -> None:
    flip_byte(path, 0)


def break_to_nothing(path: Path) -> None:
    cut_file(path, 0)


def break_by_rename(path: Path) -> None:
    os.rename(path, path.with_name("snapshot.0000000000000063"))  # header says 0x64


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (break_by_flip, "payload crc"),
        (break_by_crc, "payload crc"),
        (break_by_cut, "trailer says"),
        (break_by_magic, "header must be"),
        (break_to_nothing, "too short"),
        (break_by_rename, "differs from its name"),
    ],
)
def test_a_broken_snapshot_is_skipped_for_the_previous_one(tmp_path: Path, damage, reason: str) -> None:
    write_snapshot(tmp_path, 0x10, [b"older"])
    newest = write_snapshot(tmp_path, 0x64, [b"newer ", b"state"])
    damage(newest)
    reports: list[DamageReport] = []
    assert latest_snapshot(tmp_path, reports) == (0x10, b"older")
    (report,) = reports
    assert report.file.parent == tmp_path and report.file.name.startswith("snapshot.00000000000000")
    assert reason in report.reason and report.reason.startswith("snapshot skipped")


def test_all_broken_is_none(tmp_path: Path) -> None:
    break_by_crc(write_snapshot(tmp_path, 1, [b"a"]))
    break_by_cut(write_snapshot(tmp_path, 2, [b"b"]))
    reports: list[DamageReport] = []
    assert latest_snapshot(tmp_path, reports) is None
    assert [r.file.name for r in reports] == ["snapshot.0000000000000002", "snapshot.0000000000000001"]


def test_a_failing_chunk_source_leaves_no_file(tmp_path: Path) -> None:
    def chunks():
        yield b"part"
        raise RuntimeError("serializer failed")

    with pytest.raises(RuntimeError):
        write_snapshot(tmp_path, 9, chunks())
    assert list(tmp_path.iterdir()) == []


def test_write_checks_its_input(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="zxid"):
        write_snapshot(tmp_path, -1, [b""])
    with pytest.raises(LocalError, match="chunks must be bytes"):
        write_snapshot(tmp_path, 1, ["text"])  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


def test_drop_after_and_stale_temps(tmp_path: Path) -> None:
    for zxid in (1, 2, 3):
        write_snapshot(tmp_path, zxid, [b"s"])
    (tmp_path / "snapshot.0000000000000004.tmp").write_bytes(b"crashed mid-write")
    assert [p.name for p in drop_snapshots_after(tmp_path, 1)] == [
        "snapshot.0000000000000002",
        "snapshot.0000000000000003",
    ]
    assert [p.name for p in remove_stale_temps(tmp_path)] == ["snapshot.0000000000000004.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.0000000000000001"]
