"""zkcore: the deterministic heart of zkpy. No sockets, clocks, threads or processes: it reacts
to inputs (requests, txns, messages, ticks) and returns outputs.
"""

from zkcore import limits
from zkcore._errors import Code, KeeperError, LocalError, RemoteError, error_for_code
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
from zkcore._storage import LogEntry, MemoryLog, Storage

__all__ = [
    "ACL",
    "Code",
    "CreateMode",
    "Id",
    "KeeperError",
    "LocalError",
    "LogEntry",
    "MemoryLog",
    "OPEN_ACL_UNSAFE",
    "OpCode",
    "Perms",
    "RemoteError",
    "Stat",
    "Storage",
    "Txn",
    "TxnHeader",
    "error_for_code",
    "limits",
]
