"""Zab's messages between servers: one frozen, slotted class per packet kind, each checking itself.

encode_message/decode_message frame a message as its kind number then its jute fields; decoding
raises only RemoteError, whatever the bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar

from zkcore import limits
from zkcore._errors import LocalError, RemoteError
from zkcore._jute import (
    Buffer,
    Int,
    JuteRecord,
    Long,
    PartsWriter,
    SnapshotBuffer,
    Vector,
    Writer,
    as_bytes,
    expect_end,
    int_at,
    record,
)
from zkcore.zab._zxid import EPOCH_MAX, ZXID_MAX, zxid_text

SERVER_ID_MAX = (1 << 31) - 1
ROUND_MAX = (1 << 63) - 1


class Kind(enum.IntEnum):
    """Packet numbers from ZooKeeper's Leader.java; NOTIFICATION (election) is ours."""

    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    SYNC = 7
    INFORM = 8
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    REFUSED = 19  # ours: a forwarded write the leader could not take
    NOTIFICATION = 100


class Role(enum.IntEnum):
    """A server's state, numbered as ZooKeeper's QuorumPeer.ServerState in election notifications."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


def _check(name: str, value: object, lo: int, hi: int) -> None:
    if type(value) is int and lo <= value <= hi:  # every message checks several: the usual case first
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalError(f"{name} must be an int: {value!r}")
    if not lo <= value <= hi:
        raise LocalError(f"{name} must be in [{lo}, {hi}]: {value}")


def _check_bytes(name: str, value: object, limit: int = limits.frame_bytes_max) -> None:
    if type(value) is not bytes:
        raise LocalError(f"{name} must be bytes: {type(value).__name__}")
    if len(value) > limit:
        raise LocalError(f"{name} is {len(value)} bytes, over the limit of {limit}")


def _check_route(message: Message) -> None:
    source, target = message.source, message.target
    if (
        type(source) is int
        and type(target) is int
        and 0 < source <= SERVER_ID_MAX
        and 0 < target <= SERVER_ID_MAX
    ):
        return  # every message checks its route: the usual case without _check's two calls
    _check("source", source, 1, SERVER_ID_MAX)
    _check("target", target, 1, SERVER_ID_MAX)


def _check_entries(entries: object, after: int) -> None:
    """Entries must be Entry records with zxids above `after`, strictly increasing."""
    if type(entries) is not tuple:
        raise LocalError(f"entries must be a tuple: {type(entries).__name__}")
    if len(entries) > limits.zab_sync_entries_max:
        raise LocalError(f"{len(entries)} entries, over zab_sync_entries_max {limits.zab_sync_entries_max}")
    previous = after
    for entry in entries:
        if type(entry) is not Entry:
            raise LocalError(f"entries must hold Entry records: {type(entry).__name__}")
        if entry.zxid <= previous:
            raise LocalError(
                f"entry zxids must increase: {zxid_text(entry.zxid)} after {zxid_text(previous)}"
            )
        previous = entry.zxid


@record
@dataclass(frozen=True, slots=True)
class Entry(JuteRecord):
    """One logged txn in a sync message: its zxid and the encoded txn."""

    zxid: Long
    payload: Buffer

    def __post_init__(self) -> None:
        _check("zxid", self.zxid, 1, ZXID_MAX)
        _check_bytes("payload", self.payload)


@dataclass(frozen=True, slots=True)
class Message(JuteRecord):
    """Every message names its sender and its receiver (server ids)."""

    KIND: ClassVar[Kind]
    source: Int
    target: Int


@record
@dataclass(frozen=True, slots=True)
class Notification(Message):
    """Election: the sender's state and the vote it holds (leader -1 for an observer's empty vote)."""

    KIND = Kind.NOTIFICATION
    state: Int
    leader: Int
    zxid: Long
    round: Long
    peer_epoch: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("state", self.state, Role.LOOKING, Role.OBSERVING)
        _check("leader", self.leader, -1, SERVER_ID_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)
        _check("round", self.round, 0, ROUND_MAX)
        _check("peer_epoch", self.peer_epoch, 0, EPOCH_MAX)


@record
@dataclass(frozen=True, slots=True)
class FollowerInfo(Message):
    """A follower registers with the leader it elected: its accepted epoch and last zxid."""

    KIND = Kind.FOLLOWERINFO
    accepted_epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("accepted_epoch", self.accepted_epoch, 0, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class ObserverInfo(Message):
    """An observer registers with the leader; it never counts towards a quorum."""

    KIND = Kind.OBSERVERINFO
    accepted_epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("accepted_epoch", self.accepted_epoch, 0, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class LeaderInfo(Message):
    """The leader's new epoch, above every accepted epoch of a quorum."""

    KIND = Kind.LEADERINFO
    epoch: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)


@record
@dataclass(frozen=True, slots=True)
class AckEpoch(Message):
    """A learner accepts `epoch`; current_epoch -1 means it had accepted it before (not a fresh ack)."""

    KIND = Kind.ACKEPOCH
    epoch: Long
    current_epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("current_epoch", self.current_epoch, -1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class Diff(Message):
    """Sync: the learner's log ends at `zxid`, a point of the leader's history; append `entries`."""

    KIND = Kind.DIFF
    epoch: Long
    zxid: Long
    zxid_committed: Long
    entries: Vector[Entry]

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)
        _check_entries(self.entries, self.zxid)
        _check_committed(self.zxid_committed, self.zxid, self.entries)


@record
@dataclass(frozen=True, slots=True)
class Trunc(Message):
    """Sync: drop every logged txn above `zxid`, then append `entries`."""

    KIND = Kind.TRUNC
    epoch: Long
    zxid: Long
    zxid_committed: Long
    entries: Vector[Entry]

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)
        _check_entries(self.entries, self.zxid)
        _check_committed(self.zxid_committed, self.zxid, self.entries)


@record
@dataclass(frozen=True, slots=True)
class Snap(Message):
    """Sync: replace all state with `snapshot` (committed through `zxid`), then append `entries`."""

    KIND = Kind.SNAP
    epoch: Long
    zxid: Long
    snapshot: SnapshotBuffer
    zxid_committed: Long
    entries: Vector[Entry]

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)
        _check_bytes("snapshot", self.snapshot, limits.snapshot_bytes_max)
        _check_entries(self.entries, self.zxid)
        _check_committed(self.zxid_committed, self.zxid, self.entries)
        if self.zxid_committed < self.zxid:
            raise LocalError(
                f"a snapshot is committed history: zxid_committed {zxid_text(self.zxid_committed)} "
                f"below snapshot zxid {zxid_text(self.zxid)}"
            )


def _check_committed(zxid_committed: object, zxid: int, entries: tuple[Entry, ...]) -> None:
    last = entries[-1].zxid if entries else zxid
    _check("zxid_committed", zxid_committed, 0, last)


@record
@dataclass(frozen=True, slots=True)
class NewLeader(Message):
    """End of sync: the learner's log must now end at `zxid`; it acks once that is durable."""

    KIND = Kind.NEWLEADER
    epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class UpToDate(Message):
    """A quorum acked NEWLEADER: the learner may serve, committed through `zxid_committed`."""

    KIND = Kind.UPTODATE
    epoch: Long
    zxid_committed: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid_committed", self.zxid_committed, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class Proposal(Message):
    """Broadcast: log this txn; its zxid's epoch is the leader's epoch."""

    KIND = Kind.PROPOSAL
    zxid: Long
    payload: Buffer

    def __post_init__(self) -> None:
        _check_route(self)
        _check("zxid", self.zxid, 1, ZXID_MAX)
        _check_bytes("payload", self.payload)


@record
@dataclass(frozen=True, slots=True)
class Ack(Message):
    """A learner has durably logged the leader's history through `zxid` (cumulative)."""

    KIND = Kind.ACK
    epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class Commit(Message):
    """Every txn through `zxid` is committed (cumulative)."""

    KIND = Kind.COMMIT
    epoch: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid", self.zxid, 1, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class Inform(Message):
    """To an observer: this committed txn, whole (observers never see proposals)."""

    KIND = Kind.INFORM
    zxid: Long
    payload: Buffer

    def __post_init__(self) -> None:
        _check_route(self)
        _check("zxid", self.zxid, 1, ZXID_MAX)
        _check_bytes("payload", self.payload)


@record
@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Heartbeat both ways within an epoch; carries the sender's commit point. `round` numbers
    the leader's heartbeats, and a learner echoes the last one it heard: a quorum echoing a
    round sent after a client's sync arrived proves the leader still led then (ReadIndex)."""

    KIND = Kind.PING
    epoch: Long
    zxid_committed: Long
    round: Long = 0

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("zxid_committed", self.zxid_committed, 0, ZXID_MAX)
        _check("round", self.round, 0, ROUND_MAX)


@record
@dataclass(frozen=True, slots=True)
class Request(Message):
    """A client write that a learner forwards to its leader (an encoded txn, opaque to Zab)."""

    KIND = Kind.REQUEST
    epoch: Long
    payload: Buffer

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check_bytes("payload", self.payload)


@record
@dataclass(frozen=True, slots=True)
class Sync(Message):
    """A client's sync, by `token`: a learner asks with zxid 0; the leader answers with its
    commit point, which the learner applies before it answers the client."""

    KIND = Kind.SYNC
    epoch: Long
    token: Long
    zxid: Long

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check("token", self.token, 0, ZXID_MAX)
        _check("zxid", self.zxid, 0, ZXID_MAX)


@record
@dataclass(frozen=True, slots=True)
class Refused(Message):
    """The leader could not take a forwarded client write (its backlog is full): the payload
    comes back so the learner can answer that client instead of leaving it waiting."""

    KIND = Kind.REFUSED
    epoch: Long
    payload: Buffer

    def __post_init__(self) -> None:
        _check_route(self)
        _check("epoch", self.epoch, 1, EPOCH_MAX)
        _check_bytes("payload", self.payload)


MESSAGE_TYPES: tuple[type[Message], ...] = (
    Notification,
    FollowerInfo,
    ObserverInfo,
    LeaderInfo,
    AckEpoch,
    Diff,
    Trunc,
    Snap,
    NewLeader,
    UpToDate,
    Proposal,
    Ack,
    Commit,
    Inform,
    Ping,
    Request,
    Sync,
    Refused,
)
_BY_KIND: dict[int, type[Message]] = {cls.KIND: cls for cls in MESSAGE_TYPES}
_KIND_BYTES: dict[type, bytes] = {cls: struct.pack(">i", cls.KIND) for cls in MESSAGE_TYPES}


def encode_message(message: Message) -> bytes:
    """The kind number, then the message's jute fields."""
    w = Writer()
    _write(message, w)
    return w.bytes()


def encode_message_parts(message: Message) -> tuple[bytes, ...]:
    """encode_message's bytes in parts to be sent one after another: a SNAP's tree is a part
    of its own, never copied on its way out (the leader sends it in its loop, and the tree of
    a million znodes is hundreds of megabytes)."""
    w = PartsWriter()
    _write(message, w)
    return w.parts()


def _write(message: Message, w: Writer) -> None:
    kind = _KIND_BYTES.get(type(message))
    if kind is None:
        raise LocalError(f"not a Zab message: {type(message).__name__}")
    w.buf += kind
    message.write(w)


def decode_message(data: bytes | bytearray | memoryview) -> Message:
    """One whole message; anything malformed or out of range raises RemoteError."""
    buf = as_bytes(data)
    end = len(buf)
    kind = int_at(buf, 0, end)
    cls = _BY_KIND.get(kind)
    if cls is None:
        raise RemoteError(f"unknown Zab message kind {kind}")
    try:
        message, pos = cls.read_at(buf, 4, end)
    except LocalError as e:
        raise RemoteError(f"bad {cls.__name__}: {e}") from e
    expect_end(pos, end, cls.__name__)
    return message
