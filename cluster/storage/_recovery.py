"""The data dir of one node and what restarts it: the newest valid snapshot plus the logged txns
after it, purging of what no restart needs, and Zab's durable epochs.

Layout: `<data_dir>/log/` (txn log segments), `<data_dir>/snap/` (snapshots), and the files
`<data_dir>/acceptedEpoch` and `<data_dir>/currentEpoch` (one decimal number each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cluster.storage._files import DamageReport, StorageError, make_dir, remove_files, replace_atomically
from cluster.storage._snapshot import latest_snapshot, list_snapshots, remove_stale_temps, valid_snapshots
from cluster.storage._txnlog import TxnLog, segment_paths, segments_before
from zkcore._errors import LocalError
from zkcore._storage import LogEntry

ACCEPTED_EPOCH: Final = "acceptedEpoch"
CURRENT_EPOCH: Final = "currentEpoch"
EPOCH_NAMES: Final = (ACCEPTED_EPOCH, CURRENT_EPOCH)
EPOCH_LIMIT: Final = 1 << 32  # an epoch is the high 32 bits of a zxid
EPOCH_FILE_BYTES_MAX: Final = 64


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


def _check_contiguous(snapshot_zxid: int, txns: list[LogEntry]) -> None:
    """Refuse to restart on a history with a hole. Within an epoch a leader numbers txns one by
    one and every server logs them all (or takes a snapshot past them), so each replayed txn is
    the one after its predecessor (the snapshot first), or opens a new epoch at counter 0 or 1.
    A gap means a lost snapshot or log segment: the tree would silently miss committed txns."""
    previous = snapshot_zxid
    for zxid, _ in txns:
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
    if not isinstance(keep, int) or keep < 1:
        raise LocalError(f"keep must be a positive int: {keep!r}")
    layout = DataDir.create(data_dir)
    kept = valid_snapshots(layout.snap_dir, keep)
    if len(kept) < keep:
        return []
    oldest_zxid = kept[-1][0]
    old_snapshots = [path for zxid, path in list_snapshots(layout.snap_dir) if zxid < oldest_zxid]
    if log is not None:
        old_segments = log.remove_segments_before(oldest_zxid + 1)
    else:
        old_segments = segments_before(segment_paths(layout.log_dir), oldest_zxid + 1)
        remove_files(old_segments)
    remove_files(old_snapshots)
    return old_segments + old_snapshots
