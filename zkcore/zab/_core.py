"""The state every role shares (log, epochs, commit and durability points) and the pending outputs.

Roles change durable state only through Core, which records each change as a Ready output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from zkcore import limits
from zkcore._storage import LogEntry
from zkcore.zab._log import ReplicaLog
from zkcore.zab._messages import Message, Role
from zkcore.zab._quorum import Config
from zkcore.zab._ready import Phase, Ready, RoleChange, Snapshot, SnapshotSource
from zkcore.zab._zxid import zxid_text


class Rng(Protocol):
    """The randomness a replica may use: pass a seeded random.Random (zkcore imports no random)."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...


# The leader's prep stage, from a client write to the txn it logs: (zxid, request) -> txn bytes,
# or None when the request makes no txn (it was consumed, e.g. a learner's session report). It
# is called only once the state machine has applied every txn of earlier epochs, and must not
# propose itself (a leader stamps a run of writes before it logs them together).
Prepare = Callable[[int, bytes], bytes | None]

_T = TypeVar("_T")


class Core:
    """Shared state of one replica and the outputs that Ready will carry.

    zxid_persisted: every logged entry at or below it is durable (reported by the shell).
    zxid_committed: every entry at or below it is committed (known from a quorum or the leader).
    zxid_applied: entries at or below it have been handed out to apply; never above the other two.
    """

    def __init__(
        self,
        config: Config,
        server_id: int,
        rng: Rng,
        log: ReplicaLog,
        snapshots: SnapshotSource,
        accepted_epoch: int,
        current_epoch: int,
        zxid_applied: int,
        prepare: Prepare | None = None,
    ) -> None:
        self.config = config
        self.prepare = prepare
        self.server_id = server_id
        self.rng = rng
        self.log = log
        self.snapshots = snapshots
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.zxid_persisted = log.last()
        self.zxid_committed = zxid_applied
        self.zxid_applied = zxid_applied
        # What the shell's state machine has applied: with a prepare hook the shell reports it
        # (Replica.applied), and a new leader preps nothing until it covers earlier epochs.
        self.zxid_tree = zxid_applied
        self.ticks = 0
        self.abandon_reason: str | None = None
        self.messages_dropped = 0
        # The highest zxid the shell's storage may hold: persisted() reports are clipped to it.
        self._zxid_written = log.last()
        self._zxid_handed = log.last()
        self._fence_pending: int | None = None
        self._fence_handed: int | None = None
        # Every entry of the log above _kept_after, as it was appended (up to
        # limits.zab_uncommitted_kept_bytes_max of them): what _release hands out to apply is
        # taken from here, not copied back out of the log, while it starts at zxid_applied.
        self._kept: deque[LogEntry] = deque()
        self._kept_after = log.last()
        self._kept_bytes = 0
        # Pending outputs.
        self._snapshot: Snapshot | None = None
        self._truncate_zxid: int | None = None
        self._epochs_dirty = False
        self._entries: list[LogEntry] = []
        self._messages: list[Message] = []
        self._committed: list[LogEntry] = []
        self._roles: list[RoleChange] = []
        self._synced: list[tuple[int, int]] = []
        self._refused: list[bytes] = []

    # --- outputs ----------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        if len(self._messages) >= limits.zab_outbox_messages_max:
            self.messages_dropped += 1
            return
        self._messages.append(message)

    def emit_role(self, role: Role, phase: Phase, leader: int, epoch: int, reason: str) -> None:
        self._roles.append(RoleChange(role, phase, leader, epoch, reason))

    def synced(self, token: int, zxid: int) -> None:
        self._synced.append((token, zxid))

    def refused(self, payload: bytes) -> None:
        self._refused.append(payload)

    def abandon(self, reason: str) -> None:
        """Ask the replica to drop its role and go LOOKING once this input is done."""
        if self.abandon_reason is None:
            self.abandon_reason = reason

    def set_accepted_epoch(self, epoch: int) -> None:
        self.accepted_epoch = epoch
        self._epochs_dirty = True

    def set_current_epoch(self, epoch: int) -> None:
        assert epoch <= self.accepted_epoch, (
            f"current epoch {epoch} above accepted epoch {self.accepted_epoch}"
        )
        self.current_epoch = epoch
        self._epochs_dirty = True

    # --- log --------------------------------------------------------------------------------

    def append(self, zxid: int, payload: bytes) -> None:
        self.log.append(zxid, payload)
        entry = (zxid, payload)
        self._entries.append(entry)
        self._keep(entry)

    def append_many(self, entries: list[LogEntry]) -> None:
        """append() of each entry, in order (one by append(): a run's bookkeeping costs a lone
        entry, a leader's most common proposal at 3 servers, more than it saves)."""
        if len(entries) == 1:
            self.append(*entries[0])
            return
        self.log.append_many(entries)
        self._entries += entries
        size = sum(len(payload) for _, payload in entries)
        if self._kept_bytes + size <= limits.zab_uncommitted_kept_bytes_max:
            self._kept += entries
            self._kept_bytes += size
        else:
            for entry in entries:
                self._keep(entry)

    def _keep(self, entry: LogEntry) -> None:
        """An entry just logged, kept for its apply while the kept bytes stay in bounds."""
        size = len(entry[1])
        if self._kept_bytes + size <= limits.zab_uncommitted_kept_bytes_max:
            self._kept.append(entry)
            self._kept_bytes += size
        else:  # too much in flight: from here on, what is applied is copied out of the log
            self._forget_kept(entry[0])

    def _forget_kept(self, after: int) -> None:
        self._kept.clear()
        self._kept_after, self._kept_bytes = after, 0

    def truncate(self, zxid: int) -> None:
        assert zxid >= self.zxid_committed, (
            f"truncate to {zxid_text(zxid)} would drop committed {zxid_text(self.zxid_committed)}"
        )
        self.log.truncate(zxid)
        while self._entries and self._entries[-1][0] > zxid:
            self._entries.pop()
        kept = self._kept
        while kept and kept[-1][0] > zxid:
            self._kept_bytes -= len(kept.pop()[1])
        self._kept_after = min(self._kept_after, zxid)
        if not self._entries or self._truncate_zxid is not None:
            self._truncate_zxid = zxid if self._truncate_zxid is None else min(self._truncate_zxid, zxid)
        self._lower_durable(zxid)

    def install_snapshot(self, snapshot: Snapshot, entries: Sequence[LogEntry]) -> None:
        """The history is now `snapshot` then `entries`; anything pending before it is void.

        The shell replaces its durable state with both at once (see Ready): dropping the old log
        before the new entries were durable would let a crash lose txns this server had acked.
        """
        self.log.reset(snapshot.zxid)
        self._forget_kept(snapshot.zxid)
        self._snapshot = snapshot
        self._truncate_zxid = None
        self._entries.clear()
        self._committed.clear()
        self.zxid_committed = snapshot.zxid
        self.zxid_applied = snapshot.zxid
        self.zxid_tree = snapshot.zxid  # the shell's state machine becomes the snapshot's
        self._lower_durable(snapshot.zxid)
        for zxid, payload in entries:
            self.append(zxid, payload)
        self.zxid_persisted = self.log.last()

    def _lower_durable(self, zxid: int) -> None:
        self.zxid_persisted = min(self.zxid_persisted, zxid)
        self._zxid_written = min(self._zxid_written, zxid)
        self._zxid_handed = min(self._zxid_handed, zxid)
        self._fence_pending = zxid if self._fence_pending is None else min(self._fence_pending, zxid)

    def compact(self, zxid: int) -> None:
        assert zxid <= self.zxid_applied, f"compact to {zxid_text(zxid)} above applied"
        self.log.compact(zxid)

    # --- commit and durability --------------------------------------------------------------

    def commit(self, zxid: int) -> None:
        """Everything through `zxid` is committed (durable on a quorum): hand it out to apply,
        whether or not this server's own disk has it yet."""
        zxid = min(zxid, self.log.last())
        if zxid > self.zxid_committed:
            self.zxid_committed = zxid
            self._release()

    def committed_point(self, zxid: int) -> bool:
        """Whether `zxid` is a committed point of the log: a snapshot through it brings a learner
        up to date (one made a while ago may predate a compaction since)."""
        return zxid <= self.zxid_committed and self.log.contains(zxid)

    def tree_caught_up(self, zxid: int) -> bool:
        """Whether the state machine has applied through `zxid` (always, without prepare)."""
        return self.prepare is None or self.zxid_tree >= zxid

    def on_persisted(self, zxid: int) -> None:
        """What the acks count (a leader's own, a learner's to its leader); applying does not
        wait for it."""
        zxid = min(zxid, self._zxid_written)
        for fence in (self._fence_pending, self._fence_handed):
            if fence is not None:
                zxid = min(zxid, fence)
        self.zxid_persisted = max(self.zxid_persisted, zxid)

    def _release(self) -> None:
        through = self.zxid_committed
        if through <= self.zxid_applied:
            return
        kept = self._kept
        if kept and kept[-1][0] <= through:  # all of them, as a leader's group commit has it
            taken = list(kept)
            kept.clear()
            self._kept_bytes = 0
        else:
            taken = []
            while kept and kept[0][0] <= through:
                entry = kept.popleft()
                self._kept_bytes -= len(entry[1])
                taken.append(entry)
        # Kept from right above what is applied: the committed entries as they were appended;
        # else (the cap was reached, or the log was reset higher) copied out of the log.
        entries = (
            taken
            if self._kept_after == self.zxid_applied
            else self.log.entries_after(self.zxid_applied, through)
        )
        self._kept_after = max(self._kept_after, through)
        assert entries and entries[-1][0] == through, f"commit {zxid_text(through)} not in the log"
        self._committed.extend(entries)
        self.zxid_applied = through

    # --- Ready ------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(
            self._messages
            or self._entries
            or self._committed
            or self._roles
            or self._synced
            or self._refused
            or self._epochs_dirty
            or self._snapshot is not None
            or self._truncate_zxid is not None
        )

    def take_ready(self) -> Ready:
        # Once per loop turn, and most lists are empty most turns: only the full ones are copied
        # (and looked at first here, not in a call each).
        ready = Ready(
            snapshot=self._snapshot,
            truncate_zxid=self._truncate_zxid,
            accepted_epoch=self.accepted_epoch if self._epochs_dirty else None,
            current_epoch=self.current_epoch if self._epochs_dirty else None,
            entries=_taken(self._entries) if self._entries else (),
            messages=_taken(self._messages) if self._messages else (),
            committed=_taken(self._committed) if self._committed else (),
            roles=_taken(self._roles) if self._roles else (),
            synced=_taken(self._synced) if self._synced else (),
            refused=_taken(self._refused) if self._refused else (),
        )
        self._snapshot = None
        self._truncate_zxid = None
        self._epochs_dirty = False
        self._zxid_handed = self.log.last()
        self._fence_handed = self._fence_pending
        self._fence_pending = None
        return ready

    def advance(self) -> None:
        """The shell has acted on the last Ready: storage now holds what it carried."""
        self._zxid_written = self._zxid_handed
        self._fence_handed = None


def _taken(items: list[_T]) -> tuple[_T, ...]:
    """The items of a list that has some, as a tuple; the list emptied."""
    taken = tuple(items)
    items.clear()
    return taken
