"""A follower's or observer's side of Zab: register, accept the epoch, sync, then follow broadcast.

Anything out of sequence (a gap, a foreign epoch) sends the learner back to register again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

from zkcore._storage import LogEntry
from zkcore.zab._core import Core
from zkcore.zab._election import Election
from zkcore.zab._messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    Inform,
    LeaderInfo,
    Message,
    NewLeader,
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
)
from zkcore.zab._ready import Phase, Snapshot
from zkcore.zab._zxid import make_zxid, zxid_epoch, zxid_text


class LearnerPhase(enum.IntEnum):
    INFO_SENT = 1  # FOLLOWERINFO/OBSERVERINFO sent; waiting for LEADERINFO
    EPOCH_ACKED = 2  # ACKEPOCH sent; waiting for DIFF, TRUNC or SNAP
    TRANSFERRED = 3  # the DIFF/TRUNC/SNAP is logged; waiting for NEWLEADER
    NEWLEADER = 4  # NEWLEADER matched our log; acking once durable, waiting for UPTODATE
    BROADCAST = 5  # UPTODATE: following proposals and commits


_PHASE_OF = {
    LearnerPhase.INFO_SENT: Phase.DISCOVERY,
    LearnerPhase.EPOCH_ACKED: Phase.DISCOVERY,
    LearnerPhase.TRANSFERRED: Phase.SYNCHRONISATION,
    LearnerPhase.NEWLEADER: Phase.SYNCHRONISATION,
    LearnerPhase.BROADCAST: Phase.BROADCAST,
}


class Learner:
    """Following (or observing) one leader; `epoch` is the epoch it offered us (0 until then)."""

    def __init__(self, core: Core, election: Election, leader: int) -> None:
        self.core = core
        self.election = election
        self.leader = leader
        self.observer = not core.config.is_voter(core.server_id)
        self.role = Role.OBSERVING if self.observer else Role.FOLLOWING
        self.epoch = 0
        self.phase = LearnerPhase.INFO_SENT
        self.deadline_tick = 0
        self.registered_tick = core.ticks
        self.heard_tick = core.ticks
        self.sent_tick = core.ticks
        self.zxid_newleader = 0
        self.zxid_acked = 0
        self.newleader_acked = False
        self.fresh_epoch = -1
        # A SNAP and the DIFFs that go on from it, held until NEWLEADER says the sync is whole:
        # installed piecemeal, it would leave a log shorter than the one we had (and acked).
        self._snap: Snapshot | None = None
        self._snap_entries: list[LogEntry] = []
        self._snap_committed = 0
        self._moved_on = False  # a sync step was taken in since the last tick (see _progress)
        self._handlers: dict[type[Message], Callable[[Any], None]] = {
            LeaderInfo: self._on_leader_info,
            Diff: self._on_transfer,
            Trunc: self._on_transfer,
            Snap: self._on_transfer,
            NewLeader: self._on_newleader,
            UpToDate: self._on_uptodate,
            Proposal: self._on_proposal,
            Commit: self._on_commit,
            Inform: self._on_inform,
            Ping: self._on_ping,
            Sync: self._on_client_synced,
            Refused: self._on_refused,
        }

    def start(self) -> None:
        self._register("elected leader")

    def phase_name(self) -> Phase:
        return _PHASE_OF[self.phase]

    # --- inputs -----------------------------------------------------------------------------

    def on_message(self, message: Message) -> None:
        if message.source != self.leader:
            return
        handler = self._handlers.get(type(message))
        if handler is not None:
            handler(message)

    def stalled(self, ticks: int) -> None:
        """This server's own loop stood still for `ticks` ticks (a long apply, a snapshot to
        load, a pause): it heard nothing then, and what its leader sent meanwhile waits for it,
        so those ticks count towards no silence and no deadline. (ZooKeeper's learner, too,
        times out only while it waits on its socket.) A leader that was silent all along is
        found sync_limit_ticks later."""
        self.heard_tick += ticks
        self.registered_tick += ticks
        self.deadline_tick += ticks

    def on_tick(self) -> None:
        core, config = self.core, self.core.config
        ticks = core.ticks
        if self._moved_on:
            self._moved_on = False
            self.heard_tick = ticks
            self.deadline_tick = max(self.deadline_tick, ticks + config.init_limit_ticks)
        if self.phase == LearnerPhase.BROADCAST:
            if ticks - self.heard_tick > config.sync_limit_ticks:
                core.abandon(f"leader {self.leader} silent for {config.sync_limit_ticks} ticks")
            return
        if (
            self.phase == LearnerPhase.INFO_SENT
            and ticks - self.registered_tick > config.discovery_limit_ticks
        ):
            core.abandon(f"leader {self.leader} did not answer within discovery_limit_ticks")
        elif ticks > self.deadline_tick:
            core.abandon(f"not up to date with leader {self.leader} within init_limit_ticks")
        elif ticks - self.sent_tick >= config.learner_retry_ticks:
            if self.phase == LearnerPhase.INFO_SENT:
                self._send_info()
            elif self.phase == LearnerPhase.EPOCH_ACKED:
                self._send_ack_epoch(self.fresh_epoch)

    def on_persisted(self) -> None:
        self._maybe_ack()

    def propose_many(self, payloads: Sequence[bytes]) -> int:
        """Forward client writes to the leader: all of them, or none before it is up to date."""
        if self.phase != LearnerPhase.BROADCAST:
            return 0
        core = self.core
        for payload in payloads:
            core.send(Request(core.server_id, self.leader, self.epoch, payload))
        return len(payloads)

    def sync(self, token: int) -> bool:
        """Ask the leader for its commit point on behalf of a client's sync."""
        if self.phase != LearnerPhase.BROADCAST:
            return False
        self.core.send(Sync(self.core.server_id, self.leader, self.epoch, token, 0))
        return True

    def _on_client_synced(self, message: Sync) -> None:
        if message.epoch == self.epoch and self.phase == LearnerPhase.BROADCAST:
            self.core.synced(message.token, message.zxid)

    def _on_refused(self, message: Refused) -> None:
        if message.epoch == self.epoch:
            self.core.refused(message.payload)

    # --- discovery --------------------------------------------------------------------------

    def _register(self, reason: str) -> None:
        """(Re)start the handshake with our leader: from here on we must sync afresh."""
        core = self.core
        self.phase = LearnerPhase.INFO_SENT
        self.epoch = 0
        self.zxid_newleader = 0
        self.zxid_acked = 0
        self.newleader_acked = False
        self._snap, self._snap_entries = None, []
        self.deadline_tick = core.ticks + core.config.init_limit_ticks
        self.registered_tick = core.ticks
        core.emit_role(self.role, Phase.DISCOVERY, self.leader, 0, reason)
        self._send_info()

    def _send_info(self) -> None:
        core = self.core
        info = ObserverInfo if self.observer else FollowerInfo
        core.send(info(core.server_id, self.leader, core.accepted_epoch, core.log.last()))
        self.sent_tick = core.ticks

    def _on_leader_info(self, message: LeaderInfo) -> None:
        if self.phase != LearnerPhase.INFO_SENT:
            return
        core = self.core
        self.heard_tick = core.ticks
        epoch = message.epoch
        # An observer never votes or acks, so the epochs it accepts do not matter for safety.
        if self.observer:
            if epoch > core.accepted_epoch:
                core.set_accepted_epoch(epoch)
            self.fresh_epoch = -1
        elif epoch > core.accepted_epoch:
            core.set_accepted_epoch(epoch)
            self.fresh_epoch = core.current_epoch
        elif epoch == core.accepted_epoch:
            self.fresh_epoch = -1  # accepted before: do not count us again for this epoch
        else:
            core.abandon(
                f"leader {self.leader} offers epoch {epoch} below our accepted {core.accepted_epoch}"
            )
            return
        self.epoch = epoch
        self.phase = LearnerPhase.EPOCH_ACKED
        self._send_ack_epoch(self.fresh_epoch)

    def _send_ack_epoch(self, current_epoch: int) -> None:
        core = self.core
        core.send(AckEpoch(core.server_id, self.leader, self.epoch, current_epoch, core.log.last()))
        self.sent_tick = core.ticks

    # --- synchronisation --------------------------------------------------------------------

    def _on_transfer(self, message: Diff | Trunc | Snap) -> None:
        if message.epoch != self.epoch:
            return
        if self.phase == LearnerPhase.TRANSFERRED and isinstance(message, Diff):
            self._continue_transfer(message)
            return
        if self.phase != LearnerPhase.EPOCH_ACKED:
            return
        core = self.core
        self._progress()
        log = core.log
        if isinstance(message, Snap):
            self._snap = Snapshot(message.zxid, message.snapshot)
            self._snap_entries = [(entry.zxid, entry.payload) for entry in message.entries]
            self._snap_committed = message.zxid_committed
        elif isinstance(message, Trunc):
            if not log.contains(message.zxid) or message.zxid < core.zxid_committed:
                self._register(f"cannot truncate to {zxid_text(message.zxid)}")
                return
            core.truncate(message.zxid)
        elif log.last() != message.zxid:
            self._register(f"diff starts at {zxid_text(message.zxid)}, log ends at {zxid_text(log.last())}")
            return
        if not isinstance(message, Snap):
            for entry in message.entries:
                core.append(entry.zxid, entry.payload)
            core.commit(message.zxid_committed)
        self.phase = LearnerPhase.TRANSFERRED
        core.emit_role(
            self.role, Phase.SYNCHRONISATION, self.leader, self.epoch, type(message).__name__.upper()
        )

    def _continue_transfer(self, message: Diff) -> None:
        """A sync longer than one message goes on in DIFFs, each from where the last ended."""
        core = self.core
        last = self._transferred_last()
        if message.zxid < last:
            return  # a duplicate: we have it (one leader's epoch names each txn once)
        if message.zxid > last:
            self._register(f"sync goes on from {zxid_text(message.zxid)}, it ends at {zxid_text(last)}")
            return
        self._progress()
        if self._snap is not None:
            self._snap_entries.extend((entry.zxid, entry.payload) for entry in message.entries)
            self._snap_committed = max(self._snap_committed, message.zxid_committed)
            return
        for entry in message.entries:
            core.append(entry.zxid, entry.payload)
        core.commit(message.zxid_committed)

    def _progress(self) -> None:
        """The sync moves on: init_limit_ticks is how long we wait for each step of it, as
        ZooKeeper's learner socket times out on each read, not on the whole (the leader may
        take a while to make a SNAP's image, and a big one takes a while to arrive). Taking
        in a step may take us a while too (loading a SNAP, applying a long DIFF): the wait
        for the next counts from the tick after it, not from before our own stall."""
        self._moved_on = True  # on_tick counts heard_tick and the deadline from there

    def _transferred_last(self) -> int:
        """Where the sync received so far ends: the held SNAP's last txn, or our log's."""
        if self._snap is None:
            return self.core.log.last()
        return self._snap_entries[-1][0] if self._snap_entries else self._snap.zxid

    def _on_newleader(self, message: NewLeader) -> None:
        if self.phase != LearnerPhase.TRANSFERRED or message.epoch != self.epoch:
            if self.phase == LearnerPhase.EPOCH_ACKED and message.epoch == self.epoch:
                self._register("NEWLEADER without a sync: the sync was lost")
            return
        core = self.core
        self._progress()
        if self._transferred_last() != message.zxid:
            self._register(
                f"NEWLEADER at {zxid_text(message.zxid)}, the sync ends at {zxid_text(self._transferred_last())}"
            )
            return
        if self._snap is not None:  # the whole sync is here: it replaces our history at once
            core.install_snapshot(self._snap, self._snap_entries)
            core.commit(self._snap_committed)
            self._snap, self._snap_entries = None, []
        self.phase = LearnerPhase.NEWLEADER
        self.zxid_newleader = message.zxid
        self._maybe_ack()

    def _maybe_ack(self) -> None:
        """Ack what is durable, once NEWLEADER matched; observers ack only NEWLEADER."""
        core = self.core
        if self.phase < LearnerPhase.NEWLEADER or (self.observer and self.phase == LearnerPhase.BROADCAST):
            return
        persisted = core.zxid_persisted
        if persisted >= self.zxid_newleader and (not self.newleader_acked or persisted > self.zxid_acked):
            if not self.newleader_acked:
                # Only now is the new epoch's history durable here: a current epoch written any
                # earlier would, after a crash, vouch for a log that lost its tail.
                core.set_current_epoch(self.epoch)
            self.newleader_acked = True
            self.zxid_acked = persisted
            core.send(Ack(core.server_id, self.leader, self.epoch, persisted))

    def _on_uptodate(self, message: UpToDate) -> None:
        if self.phase != LearnerPhase.NEWLEADER or message.epoch != self.epoch:
            return
        core = self.core
        self.heard_tick = core.ticks
        if not self.newleader_acked:
            return  # not ours: we have not acked NEWLEADER yet
        if message.zxid_committed > core.log.last():
            self._register(f"UPTODATE commits {zxid_text(message.zxid_committed)} beyond our log")
            return
        core.commit(message.zxid_committed)
        self._progress()  # applying what the sync brought may take a while, too
        self.phase = LearnerPhase.BROADCAST
        self.election.update_epoch(self.epoch)
        core.emit_role(self.role, Phase.BROADCAST, self.leader, self.epoch, "UPTODATE")

    # --- broadcast --------------------------------------------------------------------------

    def next_zxid(self, zxid: int) -> bool:
        """Whether `zxid` is the very next txn of our leader's history after our last."""
        last = self.core.log.last()
        if zxid_epoch(last) == self.epoch:
            return zxid == last + 1
        return zxid == make_zxid(self.epoch, 1)

    def _following(self) -> bool:
        return self.phase >= LearnerPhase.NEWLEADER

    def _on_proposal(self, message: Proposal) -> None:
        if self.observer or not self._following():
            return
        self.heard_tick = self.core.ticks
        zxid = message.zxid
        if zxid_epoch(zxid) == self.epoch and self.next_zxid(zxid):
            self.core.append(zxid, message.payload)
        elif zxid_epoch(zxid) != self.epoch or not self.core.log.contains(zxid):
            self._register(
                f"proposal {zxid_text(zxid)} out of sequence after {zxid_text(self.core.log.last())}"
            )

    def _on_commit(self, message: Commit) -> None:
        if self.observer or not self._following() or message.epoch != self.epoch:
            return
        self._commit(message.zxid, "commit")

    def _commit(self, zxid: int, what: str) -> None:
        core = self.core
        self.heard_tick = core.ticks
        if zxid > core.log.last():
            self._register(f"{what} {zxid_text(zxid)} beyond our log at {zxid_text(core.log.last())}")
        else:
            core.commit(zxid)

    def _on_inform(self, message: Inform) -> None:
        if not self.observer or not self._following():
            return
        zxid = message.zxid
        if zxid_epoch(zxid) == self.epoch and self.next_zxid(zxid):
            self.core.append(zxid, message.payload)
        elif zxid_epoch(zxid) != self.epoch or not self.core.log.contains(zxid):
            self._register(
                f"inform {zxid_text(zxid)} out of sequence after {zxid_text(self.core.log.last())}"
            )
            return
        self._commit(zxid, "inform")

    def _on_ping(self, message: Ping) -> None:
        if message.epoch != self.epoch or self.phase < LearnerPhase.EPOCH_ACKED:
            return
        core = self.core
        self.heard_tick = core.ticks
        if self.phase == LearnerPhase.EPOCH_ACKED:
            # It is alive and has our ack of its epoch: it waits for a quorum of them, or makes
            # the image of its tree that our SNAP needs. As long as it says so, we wait.
            self.deadline_tick = max(self.deadline_tick, core.ticks + core.config.init_limit_ticks)
        if self._following():
            self._commit(message.zxid_committed, "ping")
            if self.phase < LearnerPhase.EPOCH_ACKED:
                return  # the ping showed a gap: we are registering again
            if self.newleader_acked and (not self.observer or self.phase == LearnerPhase.NEWLEADER):
                # Repeat the ack: it may have been lost, and it tells the leader we are alive.
                core.send(Ack(core.server_id, self.leader, self.epoch, self.zxid_acked))
                if message.round == 0:
                    return
        # Echo the leader's round: that we still follow it now confirms client syncs.
        core.send(Ping(core.server_id, self.leader, self.epoch, core.zxid_committed, message.round))
