"""How long a node takes to come back from its data dir: a log of N txns and no snapshot, and a
snapshot of N znodes. Each phase is timed apart: reading the log or snapshot, rebuilding the tree,
building the native read index. The fast path (cluster.storage.restore_tree: native batch decode
and DataTree.replay, or the columnar snapshot load; the index filled in one call) and the old one
(Txn.decode + apply one txn at a time, a per-record snapshot loop, one index put per node) run
in the same process on the same files and must give the same tree; the speedup is old / new.

    python -m bench.recovery --txns 1000000
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import native
from cluster.progress import Progress
from cluster.storage import DataDir, TxnLog, list_snapshots, recover, restore_tree, write_snapshot
from zkcore import DataTree, Node, Txn, snapshot_chunks, tree_from_snapshot, world_readable
from zkcore import _records as rec
from zkcore._jute import Reader

EPOCH = 1 << 32
T = TypeVar("T")


def make_txns(n: int) -> list[tuple[int, bytes]]:
    """A create-heavy workload: 100-byte znodes spread over 1000 parents."""
    out = []
    header = rec.TxnHeader
    progress = Progress("making txns")
    for i in range(1, n + 1):
        if i % 10_000 == 0:
            progress.update(txns=f"{i:,}/{n:,}")
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
    progress.done()
    return out


def write_log(log: TxnLog, txns: list[tuple[int, bytes]]) -> None:
    progress = Progress("writing the log")
    for i in range(0, len(txns), 10_000):
        log.append(txns[i : i + 10_000])
        progress.update(txns=f"{i + 10_000:,}/{len(txns):,}")
    log.fsync()
    log.close()
    progress.done()


class Phases:
    """Times phases and sums them per path ("new", "old")."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def run(self, path: str, label: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        took = time.perf_counter() - started
        self.totals[path] = self.totals.get(path, 0.0) + took
        print(f"  {path}: {label}: {took:.2f} s", flush=True)
        return value

    def report(self, shared: float) -> None:
        new, old = self.totals["new"] + shared, self.totals["old"] + shared
        print(
            f"  => restart: new {new:.2f} s, old {old:.2f} s (both with the read above): {old / new:.1f}x faster"
        )


class Spent:
    """Time spent in native's decoders and index fills while a restore runs, to split its phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed

    def index(self) -> Any:
        spent = self

        class TimedIndex(native.PathIndex):  # type: ignore[misc]
            __slots__ = ()

            def put_batch(self, *args: Any) -> None:
                spent.wrap("fill the read index (PathIndex.put_batch)", super().put_batch)(*args)

        return TimedIndex()

    def restore(self, recovered: Any, **kwargs: Any) -> DataTree:
        """restore_tree, with native's decoders timed on the way."""
        saved = native.decode_txns, native.scan_snapshot_nodes
        native.decode_txns = self.wrap("decode txns (native.decode_txns)", native.decode_txns)
        native.scan_snapshot_nodes = self.wrap("scan the records (native.scan_snapshot_nodes)", saved[1])
        try:
            return restore_tree(recovered, **kwargs)
        finally:
            native.decode_txns, native.scan_snapshot_nodes = saved

    def report(self, total_label: str, total: float) -> None:
        for name, seconds in self.seconds.items():
            print(f"       of which {name}: {seconds:.2f} s")
            total -= seconds
        print(f"       of which {total_label}: {total:.2f} s")


# --- the old path, kept here to measure against ------------------------------------------------


def old_replay(entries: list[tuple[int, bytes]]) -> DataTree:
    tree = DataTree()
    for _, payload in entries:
        tree.apply(Txn.decode(payload))
    return tree


def old_index(tree: DataTree) -> Any:
    """The read index the way attach_index built it before: one put per node."""
    index = native.PathIndex()
    readable: dict[int, bool] = {}
    for path, node in tree.nodes.items():
        flag = readable.get(id(node.acl))
        if flag is None:
            flag = readable[id(node.acl)] = world_readable(node.acl)
        index.put(path, tree.node_data(path, node), node.stat_bytes(), flag)
    return index


_NODE = struct.Struct(">iqqqqiiiqq")


def old_from_snapshot(payload: bytes) -> DataTree:
    """The snapshot loader as it was before the columnar one: one record at a time in Python."""
    r = Reader(payload)
    r.pos = 8
    tree = DataTree(populate=False)
    tree.last_zxid = r.long()
    acls = [tuple(rec.ACL.read(r) for _ in range(r.vector_length())) for _ in range(r.vector_length())]
    buf, pos = r.buf, r.pos + 4
    nodes: dict[str, Node] = {}
    for _ in range(struct.unpack_from(">i", buf, r.pos)[0]):
        n = struct.unpack_from(">i", buf, pos)[0]
        path = str(buf[pos + 4 : pos + 4 + n], "utf-8", "surrogatepass")
        pos += 4 + n
        n = struct.unpack_from(">i", buf, pos)[0]
        data = bytes(buf[pos + 4 : pos + 4 + n])
        pos += 4 + n
        acl_no, czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid = _NODE.unpack_from(
            buf, pos
        )
        pos += _NODE.size
        node = Node(data, acls[acl_no], czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid)
        if path != "/":
            cut = path.rfind("/")
            nodes[path[:cut] or "/"].add_child(path[cut + 1 :])
        nodes[path] = node
        if owner:
            tree.ephemerals.setdefault(owner, {})[path] = None  # the bench's trees have none
    tree.nodes = nodes
    r.pos = pos
    for _ in range(r.int()):
        session = r.long()
        tree.sessions[session] = r.int()
    return tree


# --- the runs -------------------------------------------------------------------------------------


def from_log(data_dir: DataDir) -> DataTree:
    print("from the log alone:")
    started = time.perf_counter()
    recovered = recover(data_dir.root)
    shared = time.perf_counter() - started
    print(f"  read and check the log (recover): {shared:.2f} s")
    phases = Phases()
    spent = Spent()
    tree = phases.run("new", "restore_tree: decode in batches and replay", spent.restore, recovered)
    spent.report("replay (DataTree.replay) and the rest", phases.totals["new"])
    phases.run(
        "new", "build the read index in one call (attach_index)", tree.attach_index, native.PathIndex()
    )
    old = phases.run(
        "old", "decode and apply one txn at a time (Txn.decode + apply)", old_replay, recovered.txns
    )
    old_read_index = phases.run("old", "build the read index one put per node", old_index, old)
    phases.report(shared)
    assert_same(tree, old, old_read_index)
    print(f"  -> {len(tree)} znodes, same tree and read index both ways")
    return tree


def from_snapshot(data_dir: DataDir) -> None:
    print("from a snapshot:")
    started = time.perf_counter()
    recovered = recover(data_dir.root)
    shared = time.perf_counter() - started
    print(f"  read and check the snapshot (recover): {shared:.2f} s")
    assert recovered.snapshot_payload is not None and not recovered.txns
    phases = Phases()
    spent = Spent()
    tree = phases.run(
        "new", "restore_tree: the tree and its read index", spent.restore, recovered, index=spent.index()
    )
    spent.report("build the tree from the columns and the rest", phases.totals["new"])
    old = phases.run(
        "old", "load the tree one record at a time", old_from_snapshot, recovered.snapshot_payload
    )
    old_read_index = phases.run("old", "build the read index one put per node", old_index, old)
    phases.report(shared)
    assert_same(tree, old, old_read_index)
    started = time.perf_counter()
    twin = tree_from_snapshot(recovered.snapshot_payload)
    print(f"  (the pure-Python scanner, what ZKPY_NATIVE=0 gets: {time.perf_counter() - started:.2f} s)")
    assert_same(tree, twin)
    print(f"  -> {len(tree)} znodes, same tree and read index every way")


def assert_same(tree: DataTree, other: DataTree, other_index: Any = None) -> None:
    """The same tree, and (on every 997th znode) the same read index."""
    assert tree.last_zxid == other.last_zxid and tree.sessions == other.sessions
    assert tree.digest() == other.digest(), "the trees differ"
    if other_index is None:
        return
    index: Any = tree.index
    assert len(index) == len(other_index) == len(tree)
    for path in list(tree.nodes)[::997]:
        assert index.get(path) == other_index.get(path) and index.children(path) == other_index.children(path)


def node_restart(n: int) -> None:
    """A real node process (a one-node ensemble) started on a data dir holding the log, timed
    from the launcher's start to serving; then started again on the snapshot it took."""
    from cluster import config
    from cluster.harness import Harness, wait_for
    from cluster.launch import config_path
    from cluster.storage import ACCEPTED_EPOCH, CURRENT_EPOCH, write_epoch

    with tempfile.TemporaryDirectory(prefix="zknode") as tmp:
        root = Path(tmp) / "e"
        root.mkdir()
        # A snapshot after catching up, as with 100,000 (ZooKeeper's snapCount) for a big log.
        conf = config.local_ensemble(root, 1, snap_count=min(100_000, max(2, n // 2)))
        conf.write(config_path(root))
        data_dir = DataDir.create(conf.node_dir(1))
        log = TxnLog(data_dir.log_dir)
        txns = make_txns(n)
        write_log(log, txns)
        del txns
        for name in (ACCEPTED_EPOCH, CURRENT_EPOCH):
            write_epoch(data_dir.root, name, 1)
        for what in ("the log", "its snapshot"):
            print(f"starting a node on {what} ...", flush=True)
            started = time.perf_counter()
            e = Harness(root, 1)
            elapsed = time.perf_counter() - started
            znodes = e.mntr(1).get("zk_znode_count")
            if what == "the log":  # let the node finish the snapshot it forked after catching up
                wait_for(lambda: list_snapshots(data_dir.snap_dir), 300, "the node's snapshot")
            e.stop()
            print(
                f"node restart from {what}: serving {znodes} znodes {elapsed:.2f} s after the launcher started"
            )
        lines = (conf.node_dir(1) / "node.log").read_text().splitlines()
        for line in lines:
            if any(word in line for word in ("in bulk", "loaded snapshot", "read index")):
                print("  " + line.split(" INFO ", 1)[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--txns", type=int, default=1_000_000)
    p.add_argument("--node", action="store_true", help="time a real node process restarting instead")
    args = p.parse_args()
    print(f"native core: {native.IMPLEMENTATION}; {args.txns} txns / znodes")
    if args.node:
        node_restart(args.txns)
        return
    with tempfile.TemporaryDirectory(prefix="zkrec") as tmp:
        data_dir = DataDir.create(Path(tmp))
        txns = make_txns(args.txns)
        log = TxnLog(data_dir.log_dir)
        write_log(log, txns)
        del txns
        tree = from_log(data_dir)
        started = time.perf_counter()
        write_snapshot(data_dir.snap_dir, tree.last_zxid, snapshot_chunks(tree))
        print(f"write the snapshot: {time.perf_counter() - started:.2f} s")
        del tree
        from_snapshot(data_dir)


if __name__ == "__main__":
    main()
