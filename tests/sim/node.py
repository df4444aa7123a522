"""One server's shell in the simulator: durable state, the replica while up, and the applied history.

It acts on each Ready in the documented order; a crash keeps only what was durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from zkcore._jute import Reader, Writer
from zkcore._storage import LogEntry, MemoryLog
from zkcore.zab import Config, Ready, Replica, Snapshot


def encode_history(entries: list[LogEntry] | tuple[LogEntry, ...]) -> bytes:
    """The simulator's 'tree' is the applied history itself; a snapshot is that list."""
    w = Writer()
    w.int(len(entries))
    for zxid, payload in entries:
        w.long(zxid)
        w.buffer(payload)
    return w.bytes()


def decode_history(data: bytes) -> tuple[LogEntry, ...]:
    r = Reader(data)
    entries = tuple((r.long(), r.buffer()) for _ in range(r.vector_length()))
    r.expect_end("history")
    return entries


@dataclass
class Handled:
    """What the shell did with one Ready, for the simulator's network and checkers."""

    ready: Ready
    applied_from: int  # index in node.applied where this Ready's committed entries start
    replaced: bool  # the applied history was replaced by a snapshot


class SimNode:
    """Durable: storage (MemoryLog, crash keeps the synced part), epochs, the last snapshot.
    Volatile: the replica and the applied history (rebuilt from the snapshot on restart)."""

    def __init__(self, server_id: int, config: Config, replica_class: type[Replica], seed: int) -> None:
        self.server_id = server_id
        self.config = config
        self.replica_class = replica_class
        self.seed = seed
        self.storage = MemoryLog()
        self.accepted_epoch = 0
        self.current_epoch = 0
        self.snapshot_zxid = 0
        self.snapshot_history: tuple[LogEntry, ...] = ()
        self.applied: list[LogEntry] = []
        self.replica: Replica | None = None
        self.incarnation = 0
        self.sync_pending = False
        # A SNAP's image made in the background, as a node's forked child makes it: captured
        # when asked for (the copy-on-write moment), handed over when the simulator says.
        self.images_in_background = False
        self.image_wanted = False
        self.image_making: Snapshot | None = None

    @property
    def up(self) -> bool:
        return self.replica is not None

    def start(self) -> None:
        assert self.replica is None
        self.incarnation += 1
        self.sync_pending = False
        self.applied = list(self.snapshot_history)
        self.replica = self.replica_class(
            self.config,
            self.server_id,
            rng=Random(self.seed * 1000 + self.incarnation),
            storage=self.storage,
            snapshots=self,
            accepted_epoch=self.accepted_epoch,
            current_epoch=self.current_epoch,
            zxid_snapshot=self.snapshot_zxid,
        )

    def crash(self) -> None:
        """Drop the replica and everything not durable."""
        self.replica = None
        self.storage = self.storage.crash()
        self.applied = []
        self.incarnation += 1
        self.sync_pending = False
        self.image_wanted, self.image_making = False, None

    # --- SnapshotSource ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        zxid = self.applied[-1][0] if self.applied else 0
        if not self.images_in_background:
            return Snapshot(zxid, encode_history(self.applied))
        if self.image_making is None:
            self.image_making = Snapshot(zxid, encode_history(self.applied))
            self.image_wanted = True
        return None

    def image_made(self, failed: bool = False) -> int:
        """The background image is done (or failed): the replica sends it to whoever waits;
        its zxid."""
        assert self.replica is not None and self.image_making is not None
        image, self.image_making = self.image_making, None
        if failed:
            self.replica.snapshot_failed()
        else:
            self.replica.snapshot_ready(image)
        return image.zxid

    def take_snapshot(self) -> None:
        """Persist a snapshot of the applied history and let the replica forget that log prefix."""
        assert self.replica is not None
        if not self.applied:
            return
        self.snapshot_zxid = self.applied[-1][0]
        self.snapshot_history = tuple(self.applied)
        self.replica.compact(self.snapshot_zxid)

    # --- Ready ------------------------------------------------------------------------------

    def handle(self) -> Handled | None:
        replica = self.replica
        if replica is None or not replica.has_ready():
            return None
        ready = replica.ready()
        replaced = False
        if ready.snapshot is not None:
            history = decode_history(ready.snapshot.payload)
            assert (history[-1][0] if history else 0) == ready.snapshot.zxid
            # Atomic replacement: the snapshot and the entries after it become durable together.
            self.storage.truncate(0)
            self.storage.append(ready.entries)
            self.storage.fsync()
            self.snapshot_zxid = ready.snapshot.zxid
            self.snapshot_history = history
            self.applied = list(history)
            replaced = True
        if ready.truncate_zxid is not None:
            self.storage.truncate(ready.truncate_zxid)
        if ready.accepted_epoch is not None:
            self.accepted_epoch = ready.accepted_epoch
        if ready.current_epoch is not None:
            self.current_epoch = ready.current_epoch
        if ready.entries and ready.snapshot is None:
            self.storage.append(ready.entries)
        applied_from = len(self.applied)
        self.applied.extend(ready.committed)
        replica.advance(ready)
        return Handled(ready, applied_from, replaced)

    def fsync(self) -> None:
        """The disk caught up: everything appended so far is durable."""
        assert self.replica is not None
        self.sync_pending = False
        self.replica.persisted(self.storage.fsync())

    def history(self) -> dict[int, bytes]:
        """This server's whole history (snapshot plus log), zxid -> payload."""
        merged = dict(self.snapshot_history)
        for zxid, payload in self.storage.entries(self.snapshot_zxid, self.storage.last_zxid()):
            merged[zxid] = payload
        return merged
