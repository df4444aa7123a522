"""Zab, ZooKeeper's atomic broadcast, as a deterministic sans-I/O state machine per server.

Feed a Replica messages, ticks, writes and "persisted through zxid"; act on its Ready outputs.
"""

from zkcore.zab._core import Rng
from zkcore.zab._election import Vote
from zkcore.zab._leader import TransferKind, choose_transfer
from zkcore.zab._log import ReplicaLog
from zkcore.zab._messages import (
    MESSAGE_TYPES,
    Ack,
    AckEpoch,
    Commit,
    Diff,
    Entry,
    FollowerInfo,
    Inform,
    Kind,
    LeaderInfo,
    Message,
    NewLeader,
    Notification,
    ObserverInfo,
    Ping,
    Proposal,
    Refused,
    Request,
    Role,
    Snap,
    Sync,
    Trunc,
    UpToDate,
    decode_message,
    encode_message,
    encode_message_parts,
)
from zkcore.zab._quorum import Config, is_quorum, quorum_zxid
from zkcore.zab._ready import Phase, Ready, RoleChange, Snapshot, SnapshotSource, Status
from zkcore.zab._replica import Replica
from zkcore.zab._zxid import EPOCH_MAX, ZXID_MAX, make_zxid, zxid_counter, zxid_epoch, zxid_text

__all__ = [
    "EPOCH_MAX",
    "MESSAGE_TYPES",
    "ZXID_MAX",
    "Ack",
    "AckEpoch",
    "Commit",
    "Config",
    "Diff",
    "Entry",
    "FollowerInfo",
    "Inform",
    "Kind",
    "LeaderInfo",
    "Message",
    "NewLeader",
    "Notification",
    "ObserverInfo",
    "Phase",
    "Ping",
    "Proposal",
    "Ready",
    "Refused",
    "Replica",
    "ReplicaLog",
    "Rng",
    "Request",
    "Role",
    "RoleChange",
    "Snap",
    "Snapshot",
    "SnapshotSource",
    "Status",
    "Sync",
    "TransferKind",
    "Trunc",
    "UpToDate",
    "Vote",
    "choose_transfer",
    "decode_message",
    "encode_message",
    "encode_message_parts",
    "is_quorum",
    "make_zxid",
    "quorum_zxid",
    "zxid_counter",
    "zxid_epoch",
    "zxid_text",
]
