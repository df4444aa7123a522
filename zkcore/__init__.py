"""zkcore: the deterministic heart of zkpy. No sockets, clocks, threads or processes: it reacts
to inputs (requests, txns, messages, ticks) and returns outputs.
"""

from zkcore import limits, zab
from zkcore._acl import allows, auth_identity, check_acl, digest_id, fixup_acl, world_readable
from zkcore._datatree import (
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    ApplyResult,
    DataTree,
    Node,
    ReadIndex,
)
from zkcore._errors import Code, KeeperError, LocalError, RemoteError, error_for_code
from zkcore._paths import join_path, parent_of, path_problem, split_path, validate_path
from zkcore._prep import Prep, Request
from zkcore._records import (
    ACL,
    OPEN_ACL_UNSAFE,
    CreateMode,
    Id,
    OpCode,
    Perms,
    Stat,
    Txn,
    TxnHeader,
)
from zkcore._snapshot import snapshot_chunks, snapshot_node_count, tree_from_snapshot
from zkcore._storage import LogEntry, MemoryLog, Storage

__all__ = [
    "ACL",
    "ApplyResult",
    "Code",
    "CreateMode",
    "DataTree",
    "Id",
    "KeeperError",
    "LocalError",
    "LogEntry",
    "MemoryLog",
    "NODE_CHILDREN_CHANGED",
    "NODE_CREATED",
    "NODE_DATA_CHANGED",
    "NODE_DELETED",
    "Node",
    "OPEN_ACL_UNSAFE",
    "OpCode",
    "Perms",
    "Prep",
    "ReadIndex",
    "RemoteError",
    "Request",
    "Stat",
    "Storage",
    "Txn",
    "TxnHeader",
    "allows",
    "auth_identity",
    "check_acl",
    "digest_id",
    "error_for_code",
    "fixup_acl",
    "join_path",
    "limits",
    "parent_of",
    "path_problem",
    "snapshot_chunks",
    "snapshot_node_count",
    "split_path",
    "tree_from_snapshot",
    "validate_path",
    "world_readable",
    "zab",
]
