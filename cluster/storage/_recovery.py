"""The data dir of one node and what restarts it: the newest valid snapshot plus the logged txns
after it, the tree rebuilt from them, purging of what no restart needs, and Zab's durable epochs.

Layout: `<data_dir>/log/` (txn log segments), `<data_dir>/snap/` (snapshots), and the files
`<data_dir>/acceptedEpoch` and `<data_dir>/currentEpoch` (one decimal number each).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import compress
from operator import eq, itemgetter, ne
from pathlib import Path
from typing import Final

import native
from cluster.storage._files import DamageReport, StorageError, make_dir, remove_files, replace_atomically
from cluster.storage._snapshot import latest_snapshot, list_snapshots, remove_stale_temps, valid_snapshots
from cluster.storage._txnlog import TxnLog, segment_paths, segments_before
from zkcore import DataTree, ReadIndex, tree_from_snapshot
from zkcore._errors import LocalError
from zkcore._restore import TXN_HEADER_BYTES, collector_paused
from zkcore._storage import LogEntry

ACCEPTED_EPOCH: Final = "acceptedEpoch"
CURRENT_EPOCH: Final = "currentEpoch"
EPOCH_NAMES: Final = (ACCEPTED_EPOCH, CURRENT_EPOCH)
EPOCH_LIMIT: Final = 1 << 32  # an epoch is the high 32 bits of a zxid
EPOCH_FILE_BYTES_MAX: Final = 64
# Txns decoded per native call while replaying: bounds the columns held at once.
REPLAY_BATCH_TXNS: Final = 16384


@dataclass(frozen=True, slots=True)
class DataDir:
    """Where one node keeps its files."""

    root: Path

    @classmethod
    def create(cls, root: Path | str) -> DataDir:
        """The layout under root, with its folders made."""
        data_dir = cls(Path(root))
        make_dir(data_dir.log_dir)
        make_dir(data_dir.snap_dir)
        return data_dir

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def snap_dir(self) -> Path:
        return self.root / "snap"

    def epoch_path(self, name: str) -> Path:
        if name not in EPOCH_NAMES:
            raise LocalError(f"epoch name must be one of {EPOCH_NAMES}: {name!r}")
        return self.root / name


def write_epoch(data_dir: Path | str, name: str, epoch: int) -> None:
    """Durably record Zab's acceptedEpoch or currentEpoch; a crash keeps the old or the new value."""
    if not isinstance(epoch, int) or not 0 <= epoch < EPOCH_LIMIT:
        raise LocalError(f"epoch must be an int in [0, 2**32): {epoch!r}")
    layout = DataDir.create(data_dir)
    replace_atomically(layout.epoch_path(name), b"%d\n" % epoch)


def read_epoch(data_dir: Path | str, name: str) -> int | None:
    """The recorded epoch, or None when it was never written."""
    path = DataDir(Path(data_dir)).epoch_path(name)
    try:
        with open(path, "rb") as f:
            raw = f.read(EPOCH_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    text = raw.decode("ascii", errors="replace").strip()
    if len(raw) > EPOCH_FILE_BYTES_MAX or not text.isdigit() or int(text) >= EPOCH_LIMIT:
        raise StorageError(
            f"epoch file {path} must hold one number below 2**32: {raw[:EPOCH_FILE_BYTES_MAX]!r}"
        )
    return int(text)


@dataclass(frozen=True, slots=True)
class Recovered:
    """What a node restarts from: the snapshot payload (None: start from an empty tree), the
    logged txns after it in order, and the damage found and repaired on the way."""

    snapshot_zxid: int
    snapshot_payload: bytes | None
    txns: list[LogEntry]
    report: tuple[DamageReport, ...]

    @property
    def last_zxid(self) -> int:
        """The zxid the node is at once the txns are applied."""
        return self.txns[-1][0] if self.txns else self.snapshot_zxid


def recover(data_dir: Path | str, *, log: TxnLog | None = None) -> Recovered:
    """The newest snapshot that verifies plus the logged txns above its zxid. Opening the log
    cuts a torn or corrupt tail (reported); a hole in the zxid sequence raises StorageError.
    Pass the node's open `log` to reuse it; otherwise one is opened on data_dir and closed."""
    layout = DataDir.create(data_dir)
    remove_stale_temps(layout.snap_dir)
    reports: list[DamageReport] = []
    snapshot = latest_snapshot(layout.snap_dir, reports)
    snapshot_zxid, payload = snapshot if snapshot is not None else (0, None)
    opened = log if log is not None else TxnLog(layout.log_dir)
    try:
        txns = list(opened.read_from(snapshot_zxid + 1))
    finally:
        if log is None:
            opened.close()
    _check_contiguous(snapshot_zxid, txns)
    return Recovered(snapshot_zxid, payload, txns, (*opened.reports, *reports))


def restore_tree(
    recovered: Recovered, *, index: ReadIndex | None = None, zxid_max: int | None = None
) -> DataTree:
    """The tree a node restarts with: the snapshot, then the logged txns up to zxid_max (all of
    them by default), decoded and applied in native batches. Give an empty `index` to get the
    tree back kept in it: filled from the snapshot's columns, and the log replayed into it (at
    300,000 created znodes that replay takes 0.69 s, against 1.2 s for a replay into a tree
    without index and an attach_index after).

    The garbage collector is held off meanwhile, and what the process holds then goes to its
    permanent generation (gc.freeze): a tree holds no reference cycles, and otherwise the first
    collections after a restart of a million znodes would each walk all of them."""
    entries = recovered.txns
    if zxid_max is not None:
        entries = [entry for entry in entries if entry[0] <= zxid_max]
    with collector_paused():
        tree = load_snapshot(recovered.snapshot_payload, index)
        replay_entries(tree, entries)
        gc.freeze()
    return tree


def load_snapshot(payload: bytes | None, index: ReadIndex | None) -> DataTree:
    """The tree of a snapshot (None: the empty tree), its records scanned natively, kept in
    `index` (an empty one) when given."""
    if payload is None:
        return DataTree(index)
    return tree_from_snapshot(payload, index, scan=native.scan_snapshot_nodes)


def replay_entries(tree: DataTree, entries: Sequence[LogEntry]) -> None:
    """Apply logged txns to tree in order through DataTree.replay, as apply() would, checking
    that each txn carries the zxid it was logged under."""
    for start in range(0, len(entries), REPLAY_BATCH_TXNS):
        batch = entries[start : start + REPLAY_BATCH_TXNS]
        zxids = [zxid for zxid, _ in batch]
        payloads = [payload for _, payload in batch]
        txns = native.decode_txns(payloads)
        for i in compress(range(len(batch)), map(ne, txns.zxids, zxids)):
            if len(payloads[i]) >= TXN_HEADER_BYTES:  # a shorter one fails to decode in replay
                raise StorageError(f"log entry {zxids[i]:#x} holds a txn stamped {txns.zxids[i]:#x}")
        tree.replay(txns)


def _check_contiguous(snapshot_zxid: int, txns: list[LogEntry]) -> None:
    """Refuse to restart on a history with a hole. Within an epoch a leader numbers txns one by
    one and every server logs them all (or takes a snapshot past them), so each replayed txn is
    the one after its predecessor (the snapshot first), or opens a new epoch at counter 0 or 1.
    A gap means a lost snapshot or log segment: the tree would silently miss committed txns."""
    zxids = list(map(itemgetter(0), txns))
    if zxids and zxids[-1] - zxids[0] == len(zxids) - 1 and zxids[-1] >> 32 == zxids[0] >> 32:
        # The usual case, checked in bulk: one epoch, counting up by one from the first txn.
        if all(map(eq, zxids, range(zxids[0], zxids[-1] + 1))):
            zxids = zxids[:1]  # ... so only the first one's step from the snapshot is left
    previous = snapshot_zxid
    for zxid in zxids:
        same_epoch = zxid >> 32 == previous >> 32
        follows = zxid == previous + 1 if same_epoch else zxid & 0xFFFFFFFF <= 1
        if not follows:
            raise StorageError(
                f"txns are missing before {zxid:#x}: the history jumps there from {previous:#x} "
                f"(replaying from snapshot {snapshot_zxid:#x}); restore the files or resync this node"
            )
        previous = zxid


def purge(data_dir: Path | str, keep: int = 3, *, log: TxnLog | None = None) -> list[Path]:
    """Keep the `keep` newest snapshots that verify and the log segments needed to replay from
    the oldest of them; remove older snapshots and segments. Returns the removed files. With
    fewer valid snapshots than `keep`, nothing is removed. Pass the node's open log, if any."""
    point = purge_point(data_dir, keep)
    return [] if point is None else purge_before(data_dir, point, log=log)


def purge_point(data_dir: Path | str, keep: int = 3) -> int | None:
    """The zxid of the oldest of the `keep` newest snapshots that verify, or None when fewer
    verify: what purge_before may remove below. It reads every byte of those snapshots (a
    node has a forked child do it, not its loop)."""
    if not isinstance(keep, int) or keep < 1:
        raise LocalError(f"keep must be a positive int: {keep!r}")
    kept = valid_snapshots(DataDir.create(data_dir).snap_dir, keep)
    return kept[-1][0] if len(kept) == keep else None


def purge_before(data_dir: Path | str, oldest_zxid: int, *, log: TxnLog | None = None) -> list[Path]:
    """Remove the snapshots older than `oldest_zxid` (see purge_point) and the log segments
    that only they need. Returns the removed files. Pass the node's open log, if any."""
    layout = DataDir.create(data_dir)
    old_snapshots = [path for zxid, path in list_snapshots(layout.snap_dir) if zxid < oldest_zxid]
    if log is not None:
        old_segments = log.remove_segments_before(oldest_zxid + 1)
    else:
        old_segments = segments_before(segment_paths(layout.log_dir), oldest_zxid + 1)
        remove_files(old_segments)
    remove_files(old_snapshots)
    return old_segments + old_snapshots
