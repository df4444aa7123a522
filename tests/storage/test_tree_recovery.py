"""A node's whole restart path: txns applied to a tree and logged with group commit, a snapshot
taken mid-stream, a crash that tears the log's tail; recovery rebuilds the same tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.storage import DataDir, TxnLog, recover, write_snapshot
from zkcore import DataTree, Prep, Request, Txn, snapshot_chunks, tree_from_snapshot
from zkcore import _records as rec

SESSION = 0x77


def writes(n: int) -> list[tuple[int, object]]:
    ops: list[tuple[int, object]] = [(rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(6000))]
    ops.append((rec.OpCode.CREATE, rec.CreateRequest("/app", b"", rec.OPEN_ACL_UNSAFE, 0)))
    for i in range(n):
        flags = [0, 1, 2, 3][i % 4]
        ops.append(
            (
                rec.OpCode.CREATE,
                rec.CreateRequest(f"/app/n{i % 7}-", b"x" * (i % 50), rec.OPEN_ACL_UNSAFE, flags),
            )
        )
        ops.append((rec.OpCode.SET_DATA, rec.SetDataRequest("/app", str(i).encode(), -1)))
    return ops


def run_node(data_dir: DataDir, ops: list[tuple[int, object]], snapshot_at: int) -> tuple[DataTree, int]:
    """Apply ops as a leader would: prep, log, sync in groups of 10, apply; snapshot once."""
    tree = DataTree()
    prep = Prep(tree)
    log = TxnLog(data_dir.log_dir)
    epoch = 1 << 32
    durable_zxid = 0
    batch: list[Txn] = []
    for i, (opcode, body) in enumerate(ops, start=1):
        txn, _ = prep.prep(Request(SESSION, i, opcode, body), epoch | i, 1000 + i)
        batch.append(txn)
        if len(batch) == 10 or i == len(ops):
            log.append([(t.zxid, t.encode()) for t in batch])
            durable_zxid = log.fsync()
            for t in batch:
                tree.apply(t)
                prep.applied(t.zxid)
            batch.clear()
        if i == snapshot_at:
            write_snapshot(data_dir.snap_dir, tree.last_zxid, snapshot_chunks(tree))
    log.close()
    return tree, durable_zxid


def restore(data_dir: DataDir) -> DataTree:
    recovered = recover(data_dir.root)
    if recovered.snapshot_payload is None:
        tree = DataTree()
    else:
        tree = tree_from_snapshot(recovered.snapshot_payload)
    for _, payload in recovered.txns:
        tree.apply(Txn.decode(payload))
    return tree


@pytest.mark.parametrize("snapshot_at", [0, 55, 200])
def test_restart_rebuilds_the_same_tree(tmp_path: Path, snapshot_at: int) -> None:
    data_dir = DataDir.create(tmp_path / "node")
    tree, durable = run_node(data_dir, writes(120), snapshot_at)
    assert durable == tree.last_zxid
    restored = restore(data_dir)
    assert restored.last_zxid == tree.last_zxid
    assert restored.digest() == tree.digest()


def test_torn_tail_loses_only_the_unsynced_txn(tmp_path: Path) -> None:
    data_dir = DataDir.create(tmp_path / "node")
    tree, _ = run_node(data_dir, writes(30), snapshot_at=20)
    segment = sorted(data_dir.log_dir.glob("log.*"))[-1]
    # Find the end of the last record, then cut into it: a crash mid-write of the last group.
    recovered = recover(data_dir.root)
    last_zxid = recovered.txns[-1][0]
    with open(segment, "rb") as f:
        raw = f.read()
    end = raw.rstrip(b"\0")
    os.truncate(segment, len(end) - 3)
    restored = restore(data_dir)
    assert restored.last_zxid == last_zxid - 1
    # Re-applying the lost txn to the restored tree gives back the original tree.
    restored.apply(Txn.decode(recovered.txns[-1][1]))
    assert restored.digest() == tree.digest()
