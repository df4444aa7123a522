"""What a replica hands its shell (Ready) and what it needs from it (a SnapshotSource).

Ready says, in the order the shell must act: snapshot, truncate, epochs, entries, send, apply.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from zkcore._storage import LogEntry
from zkcore.zab._messages import Message, Role


class Phase(enum.IntEnum):
    """Where a server is in Zab: electing, discovering the epoch, syncing history, broadcasting."""

    ELECTION = 0
    DISCOVERY = 1
    SYNCHRONISATION = 2
    BROADCAST = 3


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Committed state through `zxid`, as opaque bytes (the shell's serialised tree)."""

    zxid: int
    payload: bytes


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot | None:
        """The shell's applied state, for a learner too far behind for a DIFF: everything
        applied through the zxid it reports, a committed point of the replica's log. None when
        it has none now and is making one (a copy of the tree written in the background, so
        that the leader keeps serving meanwhile): it then hands it to Replica.snapshot_ready(),
        and the learners waiting get it (or, if it cannot, calls Replica.snapshot_failed(),
        and they register again)."""


@dataclass(frozen=True, slots=True)
class RoleChange:
    """The server changed role or phase; `leader` is -1 while LOOKING; `reason` says why."""

    role: Role
    phase: Phase
    leader: int
    epoch: int
    reason: str


@dataclass(slots=True)  # not frozen, as ServerReady: one is made per loop turn
class Ready:
    """Outputs since the last ready(). The shell acts in field order, then calls advance(ready):

    1. snapshot: replace the whole durable state (tree and log) with the snapshot followed by
       `entries`, atomically and durably (write both, fsync, then drop the old log). The old
       log may hold txns this server acked; it must survive until the new history is durable.
    2. truncate_zxid: drop every logged entry above it, durably.
    3. accepted_epoch, current_epoch: write durably (fsync) before sending anything.
    4. entries: append to the log (after a snapshot, as part of installing it). Otherwise they
       need not be durable yet: sync when convenient and report it with persisted(zxid); Zab
       sends no ack for an entry before that, so the shell may as well append them after it
       sent the messages (a leader's PROPOSALs then leave before its own write).
    5. messages: send, each to message.target.
    6. committed: apply to the tree in this order. They are durable on a quorum, not always
       here yet (a server applies what its quorum committed without waiting for its own disk,
       as ZooKeeper's do): a snapshot of the tree must not outlive the log it came from, so
       make the log durable through the snapshot's zxid before the snapshot is kept.
    7. roles: role and phase changes, for serving and monitoring (serve reads only in BROADCAST).
    8. synced: (token, zxid) for each client sync asked for with sync(token): answer that
       client once the tree has applied through zxid. A leader answers only after a quorum
       confirmed, after the sync arrived, that it still leads its epoch.
    9. refused: payloads of writes this learner forwarded that the leader could not take
       (its backlog was full): answer their clients with an error.
    """

    snapshot: Snapshot | None
    truncate_zxid: int | None
    accepted_epoch: int | None
    current_epoch: int | None
    entries: tuple[LogEntry, ...]
    messages: tuple[Message, ...]
    committed: tuple[LogEntry, ...]
    roles: tuple[RoleChange, ...]
    synced: tuple[tuple[int, int], ...] = ()
    refused: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    """A read-only picture of a replica, for shells, tests and admin commands."""

    server_id: int
    role: Role
    phase: Phase
    leader: int
    epoch: int
    accepted_epoch: int
    current_epoch: int
    round: int
    zxid_last: int
    zxid_persisted: int
    zxid_committed: int
    zxid_applied: int
    messages_dropped: int
    learners: int = 0  # leader only: learners connected, and those in broadcast
    learners_synced: int = 0
