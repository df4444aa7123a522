"""restore_tree and replay_entries: a node's restart through the native decoder, DataTree.replay
and the columnar snapshot load gives the tree (and read index) the one-txn-at-a-time path gives;
and the bulk bookkeeping on the way (Segment.note_many, the history check) matches its loop."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import native
from cluster.storage import (
    DataDir,
    StorageError,
    _recovery,
    load_snapshot,
    recover,
    replay_entries,
    restore_tree,
)
from cluster.storage._segment import HEADER_BYTES, INDEX_STEP_BYTES, Segment
from tests.storage.test_tree_recovery import restore, run_node, writes
from tests.zkcore.test_replay import index_state, tree_state
from zkcore import DataTree, Txn, tree_from_snapshot
from zkcore import _records as rec


@pytest.mark.parametrize("snapshot_at", [0, 55, 200, 241])
def test_restore_tree_gives_the_tree_apply_gives(tmp_path: Path, snapshot_at: int) -> None:
    data_dir = DataDir.create(tmp_path / "node")
    tree, _ = run_node(data_dir, writes(120), snapshot_at)
    restored = restore_tree(recover(data_dir.root))
    assert tree_state(restored)[:-1] == tree_state(restore(data_dir))[:-1]
    assert restored.digest() == tree.digest()


@pytest.mark.parametrize("snapshot_at", [0, 200])
def test_restore_tree_fills_an_index(tmp_path: Path, snapshot_at: int) -> None:
    """Given an index, the restored tree is kept in it: loaded from the snapshot's columns and
    the log replayed into it, the same tree as one restored without and given the index after."""
    data_dir = DataDir.create(tmp_path / "node")
    run_node(data_dir, writes(120), snapshot_at)
    index = native.PathIndex()
    restored = restore_tree(recover(data_dir.root), index=index)
    assert restored.index is index
    expected = restore(data_dir)
    expected.attach_index(native.PathIndex())
    assert index_state(restored) == index_state(expected)
    assert restored.digest() == expected.digest()


def test_load_snapshot_keeps_the_tree_in_the_index_given(tmp_path: Path) -> None:
    data_dir = DataDir.create(tmp_path / "node")
    run_node(data_dir, writes(120), snapshot_at=200)
    payload = recover(data_dir.root).snapshot_payload
    assert payload is not None
    index = native.PathIndex()
    tree = load_snapshot(payload, index)
    assert tree.index is index and index_state(tree) == index_state(with_index(tree_from_snapshot(payload)))
    assert load_snapshot(payload, None).index is None
    assert load_snapshot(None, native.PathIndex()).index is not None


def with_index(tree: DataTree) -> DataTree:
    tree.attach_index(native.PathIndex())
    return tree


def test_restore_tree_stops_at_zxid_max(tmp_path: Path) -> None:
    data_dir = DataDir.create(tmp_path / "node")
    run_node(data_dir, writes(30), snapshot_at=20)
    recovered = recover(data_dir.root)
    upto = recovered.txns[5][0]
    tree = restore_tree(recovered, zxid_max=upto)
    assert tree.last_zxid == upto


def test_replay_entries_checks_the_logged_zxid(tmp_path: Path) -> None:
    header = rec.TxnHeader(0x77, 1, 0x1_0000_0002, 5, rec.OpCode.CREATE_SESSION)
    payload = Txn(header, rec.CreateSessionTxn(3000)).encode()
    with pytest.raises(StorageError, match="log entry 0x100000001 holds a txn stamped 0x100000002"):
        replay_entries(DataTree(), [(0x1_0000_0001, payload)])


def test_note_many_notes_what_note_does() -> None:
    rng = random.Random(7)
    for _ in range(50):
        count = rng.randint(1, 40)
        lengths = [rng.choice([1, 40, INDEX_STEP_BYTES // 3, INDEX_STEP_BYTES]) for _ in range(count)]
        zxids = sorted(rng.sample(range(10, 1000), count))
        one, many = Segment(Path("log.x"), zxids[0]), Segment(Path("log.x"), zxids[0])
        offset = HEADER_BYTES
        for zxid, length in zip(zxids, lengths, strict=True):
            one.note(zxid, offset, length)
            offset += 16 + length
        split = rng.randint(1, count)
        for part in (slice(0, split), slice(split, None)):
            if lengths[part]:
                many.note_many(zxids[part], lengths[part], many.data_end)
        assert (many.index_zxids, many.index_offsets) == (one.index_zxids, one.index_offsets)
        assert (many.last_zxid, many.data_end) == (one.last_zxid, one.data_end)


E1 = 1 << 32


@pytest.mark.parametrize(
    ("snapshot_zxid", "zxids", "ok"),
    [
        (E1 + 4, [E1 + 5, E1 + 6, E1 + 7], True),
        (E1 + 3, [E1 + 5, E1 + 6, E1 + 7], False),  # consecutive, but not after the snapshot
        (E1 + 4, [E1 + 5, E1 + 7, E1 + 8], False),
        (E1 + 4, [E1 + 5, 2 * E1 + 1, 2 * E1 + 2], True),  # a new epoch
        (E1 + 4, [E1 + 5, 2 * E1 + 1, 2 * E1 + 3], False),
        (0, [], True),
    ],
)
def test_the_history_check(snapshot_zxid: int, zxids: list[int], ok: bool) -> None:
    entries = [(zxid, b"") for zxid in zxids]
    if ok:
        _recovery._check_contiguous(snapshot_zxid, entries)
    else:
        with pytest.raises(StorageError, match="missing before"):
            _recovery._check_contiguous(snapshot_zxid, entries)
