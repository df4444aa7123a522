"""How long a node takes to come back from its data dir: a log of N txns and no snapshot, and a
snapshot of N znodes. Each phase is timed apart: reading the log or snapshot, and rebuilding the
tree (with the native path index) from it.

    python -m bench.recovery --txns 1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import native
from cluster.storage import DataDir, TxnLog, recover, write_snapshot
from zkcore import DataTree, Txn
from zkcore import _records as rec

EPOCH = 1 << 32


def make_txns(n: int) -> list[tuple[int, bytes]]:
    """A create-heavy workload: 100-byte znodes spread over 1000 parents."""
    out = []
    header = rec.TxnHeader
    for i in range(1, n + 1):
        if i <= 1000:
            body = rec.CreateTxn(f"/p{i:04d}", b"", rec.OPEN_ACL_UNSAFE, False, 1)
        else:
            parent = i % 1000 + 1
            body = rec.CreateTxn(
                f"/p{parent:04d}/n{i}", b"x" * 100, rec.OPEN_ACL_UNSAFE, False, i // 1000 + 1
            )
        out.append(
            (EPOCH | i, Txn(header(0, i, EPOCH | i, 1_700_000_000_000 + i, rec.OpCode.CREATE), body).encode())
        )
    return out


def timed(label: str, fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args)
    print(f"  {label}: {time.perf_counter() - started:.2f} s", flush=True)
    return value


def replay(payloads: list[tuple[int, bytes]]) -> DataTree:
    tree = DataTree()
    for _, payload in payloads:
        tree.apply(Txn.decode(payload))
    return tree


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--txns", type=int, default=1_000_000)
    args = p.parse_args()
    print(f"native core: {native.IMPLEMENTATION}; {args.txns} txns / znodes")
    with tempfile.TemporaryDirectory(prefix="zkrec") as tmp:
        data_dir = DataDir.create(Path(tmp))
        txns = make_txns(args.txns)
        log = TxnLog(data_dir.log_dir)
        for i in range(0, len(txns), 10_000):
            log.append(txns[i : i + 10_000])
        log.sync()
        log.close()
        del txns
        print("from the log alone:")
        recovered = timed("read and check the log (recover)", recover, data_dir.root)
        tree = timed("apply every txn to a new tree", replay, recovered.txns)
        timed("build the native read index", tree.attach_index, native.PathIndex())
        print(f"  -> {len(tree)} znodes")
        print("from a snapshot:")
        timed("write the snapshot", write_snapshot, data_dir.snap_dir, tree.last_zxid, tree.snapshot_chunks())
        del tree, recovered
        recovered = timed("read and check the snapshot (recover)", recover, data_dir.root)
        tree = timed("load the tree from it", DataTree.from_snapshot, recovered.snapshot_payload)
        timed("build the native read index", tree.attach_index, native.PathIndex())
        print(f"  -> {len(tree)} znodes, {len(recovered.txns)} txns after the snapshot")


if __name__ == "__main__":
    main()
