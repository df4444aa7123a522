"""Recovery = newest valid snapshot + replay of the logged txns after it; purging keeps what that
needs; Zab's epochs survive restarts. Real files in tmp_path throughout."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from cluster.storage import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    DataDir,
    Recovered,
    StorageError,
    TxnLog,
    latest_snapshot,
    list_snapshots,
    purge,
    purge_before,
    purge_point,
    read_epoch,
    recover,
    write_epoch,
    write_snapshot,
)
from cluster.storage._segment import HEADER_BYTES
from tests.storage.helpers import cut_file, entries_for, flip_byte, segment_files
from zkcore import OPEN_ACL_UNSAFE, OpCode, Txn, TxnHeader
from zkcore._errors import LocalError
from zkcore._records import CreateTxn

E1 = 1 << 32  # zxids of epoch 1 are E1 + counter
SMALL = {"segment_bytes": 600, "preallocate_bytes": 4096}


def make_node(root: Path, codec: ModuleType, zxids: list[int], snapshots: list[int]) -> DataDir:
    """A data dir whose log holds zxids (one append each) and with a snapshot at each of snapshots."""
    data_dir = DataDir.create(root)
    with TxnLog(data_dir.log_dir, codec=codec, **SMALL) as log:
        for zxid in zxids:
            log.append(entries_for([zxid]))
        log.fsync()
    for zxid in snapshots:
        write_snapshot(data_dir.snap_dir, zxid, [b"tree up to %x" % zxid])
    return data_dir


def epoch1(first: int, last: int) -> list[int]:
    return [E1 + counter for counter in range(first, last + 1)]


def test_an_empty_data_dir(tmp_path: Path) -> None:
    assert recover(tmp_path) == Recovered(0, None, [], ())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log", "snap"]


def test_snapshot_plus_replay(tmp_path: Path, codec: ModuleType) -> None:
    make_node(tmp_path, codec, epoch1(1, 80), [E1 + 20, E1 + 50])
    recovered = recover(tmp_path)
    assert (recovered.snapshot_zxid, recovered.snapshot_payload) == (E1 + 50, b"tree up to 100000032")
    assert recovered.txns == entries_for(epoch1(51, 80)), "exactly the txns after the snapshot"
    assert recovered.report == () and recovered.last_zxid == E1 + 80


def test_no_snapshot_replays_the_whole_log(tmp_path: Path, codec: ModuleType) -> None:
    make_node(tmp_path, codec, epoch1(1, 30), [])
    recovered = recover(tmp_path)
    assert (recovered.snapshot_zxid, recovered.snapshot_payload) == (0, None)
    assert recovered.txns == entries_for(epoch1(1, 30))


def test_a_snapshot_past_the_log(tmp_path: Path, codec: ModuleType) -> None:
    make_node(tmp_path, codec, epoch1(1, 10), [E1 + 10])
    recovered = recover(tmp_path)
    assert (recovered.snapshot_zxid, recovered.txns, recovered.last_zxid) == (E1 + 10, [], E1 + 10)


def test_a_corrupt_snapshot_falls_back_to_the_previous(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 80), [E1 + 50, E1 + 70])
    flip_byte(list_snapshots(data_dir.snap_dir)[-1][1], 20)
    recovered = recover(tmp_path)
    assert recovered.snapshot_zxid == E1 + 50
    assert recovered.txns == entries_for(epoch1(51, 80))
    (report,) = recovered.report
    assert report.file.name == "snapshot.0000000100000046" and "crc" in report.reason


def test_a_torn_log_tail_is_cut_and_reported(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 40), [E1 + 20])
    last_segment = segment_files(data_dir.log_dir)[-1]
    size = last_segment.stat().st_size
    with TxnLog(data_dir.log_dir, codec=codec) as log:  # find where the last record starts
        end = log._segments[-1].data_end
    assert size >= end
    cut_file(last_segment, end - 5)
    recovered = recover(tmp_path)
    assert recovered.txns == entries_for(epoch1(21, 39))
    (report,) = recovered.report
    assert report.file == last_segment and report.offset == end - 56 and "torn" in report.reason
    with TxnLog(data_dir.log_dir, codec=codec) as log:
        log.append(entries_for([E1 + 40]))
        log.fsync()
    assert recover(tmp_path) == Recovered(
        E1 + 20, b"tree up to 100000014", entries_for(epoch1(21, 40)), ()
    ), "appends continue after the good records, and the repair is not reported again"


def test_recover_through_an_open_log(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 10), [E1 + 5])
    with TxnLog(data_dir.log_dir, codec=codec) as log:
        assert recover(tmp_path, log=log).txns == entries_for(epoch1(6, 10))
        log.append(entries_for([E1 + 11]))  # still open and usable
        assert log.fsync() == E1 + 11


def test_new_epochs_start_at_counter_one(tmp_path: Path, codec: ModuleType) -> None:
    zxids = epoch1(1, 12) + [2 * E1 + 1, 2 * E1 + 2, 5 * E1 + 1]
    make_node(tmp_path, codec, zxids, [E1 + 10])
    assert [zxid for zxid, _ in recover(tmp_path).txns] == zxids[10:]


def test_a_log_gap_after_a_snap_sync_is_fine(tmp_path: Path, codec: ModuleType) -> None:
    """A follower synced by SNAP logs on from the leader's snapshot, leaving a gap before it."""
    make_node(tmp_path, codec, epoch1(1, 10) + epoch1(51, 60), [E1 + 50])
    assert [zxid for zxid, _ in recover(tmp_path).txns] == epoch1(51, 60)


@pytest.mark.parametrize(
    ("zxids", "snapshots", "missing"),
    [
        (epoch1(20, 30), [E1 + 10], E1 + 20),  # log starts after the snapshot
        (epoch1(5, 30), [], E1 + 5),  # no snapshot, log starts inside an epoch
        (epoch1(1, 10) + epoch1(51, 60), [E1 + 5], E1 + 51),  # the SNAP-sync snapshot is gone
        (epoch1(1, 10) + [2 * E1 + 3], [], 2 * E1 + 3),  # an epoch's first txns are gone
    ],
)
def test_a_hole_in_the_history_refuses_to_recover(
    tmp_path: Path, codec: ModuleType, zxids: list[int], snapshots: list[int], missing: int
) -> None:
    make_node(tmp_path, codec, zxids, snapshots)
    with pytest.raises(StorageError, match=f"missing before {missing:#x}"):
        recover(tmp_path)


def test_a_sealed_segment_cut_at_a_record_boundary_is_caught(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 30), [])
    first = segment_files(data_dir.log_dir)[0]
    cut_file(first, HEADER_BYTES + 2 * 56)  # the segment now reads as 1, 2 and nothing more
    with pytest.raises(StorageError, match=f"missing before {E1 + 3:#x}|jumps"):
        recover(tmp_path)


def test_real_txns_round_trip(tmp_path: Path, codec: ModuleType) -> None:
    txns = [
        Txn(
            TxnHeader(0x77, i, E1 + i, 1_700_000_000_000 + i, OpCode.CREATE),
            CreateTxn(f"/n{i}", b"d", OPEN_ACL_UNSAFE, False, i),
        )
        for i in range(1, 6)
    ]
    data_dir = DataDir.create(tmp_path)
    with TxnLog(data_dir.log_dir, codec=codec) as log:
        log.append([(txn.zxid, txn.encode()) for txn in txns])
        log.fsync()
    write_snapshot(data_dir.snap_dir, E1 + 2, [b"tree"])
    assert [Txn.decode(payload) for _, payload in recover(tmp_path).txns] == txns[2:]


def test_purge_keeps_what_replay_needs(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 100), [E1 + 20, E1 + 40, E1 + 60, E1 + 80])
    before = recover(tmp_path)
    segments = segment_files(data_dir.log_dir)
    removed = purge(tmp_path, keep=2)
    assert [zxid for zxid, _ in list_snapshots(data_dir.snap_dir)] == [E1 + 60, E1 + 80]
    kept_segments = segment_files(data_dir.log_dir)
    assert set(removed) == (set(segments) - set(kept_segments)) | {
        data_dir.snap_dir / "snapshot.0000000100000014",
        data_dir.snap_dir / "snapshot.0000000100000028",
    }
    assert int(kept_segments[0].name[4:], 16) <= E1 + 61 < int(kept_segments[1].name[4:], 16)
    assert recover(tmp_path) == before
    flip_byte(list_snapshots(data_dir.snap_dir)[-1][1], 20)  # the oldest kept one must suffice
    fallback = recover(tmp_path)
    assert fallback.snapshot_zxid == E1 + 60 and fallback.txns == entries_for(epoch1(61, 100))


def test_purge_counts_only_valid_snapshots(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 100), [E1 + 20, E1 + 40, E1 + 60, E1 + 80])
    flip_byte(list_snapshots(data_dir.snap_dir)[-1][1], 20)
    purge(tmp_path, keep=2)
    assert [zxid for zxid, _ in list_snapshots(data_dir.snap_dir)] == [E1 + 40, E1 + 60, E1 + 80]
    assert recover(tmp_path).snapshot_zxid == E1 + 60
    assert purge(tmp_path, keep=5) == [], "fewer valid snapshots than keep: nothing goes"
    with pytest.raises(LocalError, match="keep"):
        purge(tmp_path, keep=0)


def test_purge_in_two_steps_decides_on_valid_snapshots_then_removes(
    tmp_path: Path, codec: ModuleType
) -> None:
    """A node's child reads the snapshots (purge_point); its loop only removes (purge_before)."""
    data_dir = make_node(tmp_path, codec, epoch1(1, 100), [E1 + 20, E1 + 40, E1 + 60, E1 + 80])
    flip_byte(list_snapshots(data_dir.snap_dir)[-1][1], 20)
    assert purge_point(tmp_path, keep=2) == E1 + 40  # the broken newest one does not count
    assert purge_point(tmp_path, keep=4) is None
    removed = purge_before(tmp_path, E1 + 40)
    assert data_dir.snap_dir / "snapshot.0000000100000014" in removed
    assert [zxid for zxid, _ in list_snapshots(data_dir.snap_dir)] == [E1 + 40, E1 + 60, E1 + 80]
    assert recover(tmp_path).snapshot_zxid == E1 + 60


def test_purge_through_an_open_log(tmp_path: Path, codec: ModuleType) -> None:
    data_dir = make_node(tmp_path, codec, epoch1(1, 100), [E1 + 50])
    with TxnLog(data_dir.log_dir, codec=codec, **SMALL) as log:
        removed = purge(tmp_path, keep=1, log=log)
        assert removed and all(not p.exists() for p in removed)
        assert log.first_zxid() <= E1 + 51
        assert log.entries(E1 + 50, E1 + 100) == entries_for(epoch1(51, 100))
        log.append(entries_for([E1 + 101]))
        log.fsync()
    assert latest_snapshot(data_dir.snap_dir) is not None
    assert recover(tmp_path).txns == entries_for(epoch1(51, 101))


def test_epochs(tmp_path: Path) -> None:
    assert read_epoch(tmp_path, ACCEPTED_EPOCH) is None
    write_epoch(tmp_path, ACCEPTED_EPOCH, 3)
    write_epoch(tmp_path, CURRENT_EPOCH, 2)
    write_epoch(tmp_path, ACCEPTED_EPOCH, 4)
    assert (read_epoch(tmp_path, ACCEPTED_EPOCH), read_epoch(tmp_path, CURRENT_EPOCH)) == (4, 2)
    assert (tmp_path / ACCEPTED_EPOCH).read_bytes() == b"4\n"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    write_epoch(tmp_path, CURRENT_EPOCH, (1 << 32) - 1)
    assert read_epoch(tmp_path, CURRENT_EPOCH) == (1 << 32) - 1


@pytest.mark.parametrize("content", [b"", b"x\n", b"-1\n", b"4294967296\n", b"1" * 100])
def test_a_damaged_epoch_file_raises(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(content)
    with pytest.raises(StorageError, match="epoch file"):
        read_epoch(tmp_path, CURRENT_EPOCH)


@pytest.mark.parametrize(("name", "epoch"), [("epoch", 1), (ACCEPTED_EPOCH, -1), (CURRENT_EPOCH, 1 << 32)])
def test_write_epoch_checks_its_input(tmp_path: Path, name: str, epoch: int) -> None:
    with pytest.raises(LocalError):
        write_epoch(tmp_path, name, epoch)
