"""Storage on disk for one node: the segmented, checksummed txn log (zkcore's Storage), snapshot
files, recovery = newest valid snapshot + log replay, purging, and Zab's durable epochs.
"""

from cluster.storage._files import DamageReport, StorageError, free_space_text
from cluster.storage._recovery import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    DataDir,
    Recovered,
    load_snapshot,
    purge,
    purge_before,
    purge_point,
    read_epoch,
    recover,
    replay_entries,
    restore_tree,
    write_epoch,
)
from cluster.storage._segment import LogCodec
from cluster.storage._snapshot import (
    drop_snapshots_after,
    latest_snapshot,
    list_snapshots,
    valid_snapshots,
    write_snapshot,
)
from cluster.storage._txnlog import TxnLog

__all__ = [
    "ACCEPTED_EPOCH",
    "CURRENT_EPOCH",
    "DamageReport",
    "DataDir",
    "LogCodec",
    "Recovered",
    "StorageError",
    "TxnLog",
    "drop_snapshots_after",
    "free_space_text",
    "latest_snapshot",
    "list_snapshots",
    "load_snapshot",
    "purge",
    "purge_before",
    "purge_point",
    "read_epoch",
    "recover",
    "replay_entries",
    "restore_tree",
    "valid_snapshots",
    "write_epoch",
    "write_snapshot",
]
