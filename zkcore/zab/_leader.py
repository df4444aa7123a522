"""The leader's side of Zab: discovery (a new epoch), synchronisation (DIFF/TRUNC/SNAP), broadcast.

One LearnerHandler per learner plays ZooKeeper's LearnerHandler thread as plain state.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zkcore import limits
from zkcore._errors import LocalError
from zkcore._storage import LogEntry
from zkcore.zab._core import Core
from zkcore.zab._election import Election
from zkcore.zab._log import ReplicaLog
from zkcore.zab._messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    Entry,
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
from zkcore.zab._quorum import is_quorum, quorum_zxid
from zkcore.zab._ready import Phase, Snapshot
from zkcore.zab._zxid import EPOCH_MAX, make_zxid, zxid_counter, zxid_epoch, zxid_text


class HandlerPhase(enum.IntEnum):
    """Where the leader's handler of one learner is (the learner keeps its own LearnerPhase)."""

    REGISTERED = 1  # FOLLOWERINFO or OBSERVERINFO arrived; the epoch is not chosen yet
    EPOCH_SENT = 2  # LEADERINFO sent
    EPOCH_ACKED = 3  # ACKEPOCH arrived; waiting for a quorum of epoch acks
    TRANSFER_SENT = 4  # DIFF/TRUNC/SNAP and NEWLEADER sent; new proposals are forwarded
    NEWLEADER_ACKED = 5  # waiting for the leader to be established
    BROADCAST = 6  # UPTODATE sent


# What a leader sends again at most, a tick, to a follower that acked nothing (_resend_unacked).
RESEND_BYTES_MAX = 1024 * 1024


@dataclass(slots=True)
class LearnerHandler:
    server_id: int
    voter: bool
    phase: HandlerPhase
    accepted_epoch: int
    heard_tick: int
    zxid_last: int = 0
    zxid_newleader: int = 0
    round_heard: int = 0  # the last heartbeat round it echoed
    sent_tick: int = 0  # when NEWLEADER last went to it
    progress_tick: int = 0  # when a proposal last went to it, or its ack last moved on


class TransferKind(enum.Enum):
    DIFF = "DIFF"
    TRUNC = "TRUNC"
    SNAP = "SNAP"


def choose_transfer(log: ReplicaLog, zxid_learner: int, entries_max: int) -> tuple[TransferKind, int]:
    """How to bring a learner whose log ends at `zxid_learner` to `log` (the state transfer
    of Zab's synchronisation phase, not a client's sync): (kind, zxid).

    DIFF from zxid_learner when it is a point of our history (log matching: the same zxid means
    the same history up to it); TRUNC to the highest point of ours below it when that point is
    in the same epoch as zxid_learner (epochs are contiguous runs, so the learner has it too);
    otherwise, or when more than entries_max txns would go, SNAP.
    """
    if zxid_learner == log.last():
        return TransferKind.DIFF, zxid_learner
    if log.contains(zxid_learner):
        if log.count_after(zxid_learner) <= entries_max:
            return TransferKind.DIFF, zxid_learner
        return TransferKind.SNAP, 0
    point = log.floor(zxid_learner)
    if point is not None and point > 0 and zxid_epoch(point) == zxid_epoch(zxid_learner):
        if log.count_after(point) <= entries_max:
            return TransferKind.TRUNC, point
    return TransferKind.SNAP, 0


class Leader:
    """Leading one epoch: first discovery and sync, then broadcast once a quorum acked NEWLEADER."""

    def __init__(self, core: Core, election: Election) -> None:
        self.core = core
        self.election = election
        self.epoch = 0
        self.epoch_quorum = False
        self.established = False
        self.learners: dict[int, LearnerHandler] = {}
        self.summary = (core.current_epoch, core.log.last())
        self.zxid_initial = core.log.last()
        self.started_tick = core.ticks
        self._epoch_acks: dict[int, bool] = {core.server_id: True}
        self._acked: dict[int, int] = {}
        self.backlog: deque[bytes] = deque()  # writes waiting for room in the pipeline, in order
        self.backlog_bytes = 0
        # What _room found, less what went since: while both are above 0 another proposal may
        # go without a look at the log (commits only make more room). And whether the tree has
        # applied the previous epochs (it never goes back).
        self._room_count = 0
        self._room_bytes = 0
        self._caught_up = False
        # Client syncs waiting for a quorum to confirm a heartbeat round sent after they arrived:
        # (round needed, token, learner id or 0 for our own client), in arrival order.
        self.round = 0
        self._round_open = False  # a round went out and is not confirmed yet
        self._syncs: deque[tuple[int, int, int]] = deque()
        self._handlers: dict[type[Message], Callable[[Any], None]] = {
            FollowerInfo: self._on_info,
            ObserverInfo: self._on_info,
            AckEpoch: self._on_ack_epoch,
            Ack: self._on_ack,
            Ping: self._on_ping,
            Request: self._on_request,
            Sync: self._on_client_sync,
        }

    def start(self) -> None:
        core = self.core
        core.emit_role(Role.LEADING, Phase.DISCOVERY, core.server_id, 0, "elected")
        self._try_choose_epoch()

    # --- inputs -----------------------------------------------------------------------------

    def on_message(self, message: Message) -> None:
        handler = self._handlers.get(type(message))
        if handler is not None:
            handler(message)

    def on_tick(self) -> None:
        core, config = self.core, self.core.config
        ticks = core.ticks
        for sid, h in list(self.learners.items()):
            limit = config.sync_limit_ticks if h.phase == HandlerPhase.BROADCAST else config.init_limit_ticks
            if ticks - h.heard_tick > limit:
                del self.learners[sid]
            elif h.phase >= HandlerPhase.EPOCH_SENT:
                core.send(Ping(core.server_id, sid, self.epoch, core.zxid_committed, self.round))
                if (
                    h.phase == HandlerPhase.TRANSFER_SENT
                    and ticks - h.sent_tick >= config.learner_retry_ticks
                ):
                    # NEWLEADER (or the sync before it) may have been lost: a learner that has the
                    # sync takes it again, one that lost the sync registers afresh.
                    core.send(NewLeader(core.server_id, sid, self.epoch, h.zxid_newleader))
                    h.sent_tick = ticks
        if not self.established:
            if not self.epoch and ticks - self.started_tick > config.discovery_limit_ticks:
                core.abandon("no quorum chose us within discovery_limit_ticks: the votes split")
            elif ticks - self.started_tick > config.init_limit_ticks:
                core.abandon("no quorum acked NEWLEADER within init_limit_ticks")
            return
        alive = [core.server_id] + [
            sid
            for sid, h in self.learners.items()
            if h.voter
            and h.phase >= HandlerPhase.NEWLEADER_ACKED
            and ticks - h.heard_tick <= config.sync_limit_ticks
        ]
        if not is_quorum(config, alive):
            core.abandon("lost quorum: too few followers heard within sync_limit_ticks")
            return
        self._resend_unacked()

    def _resend_unacked(self) -> None:
        """Send a follower again what it has not acked when for learner_retry_ticks it was sent
        no proposal and acked nothing more: from the first proposal after its ack, at most
        RESEND_BYTES_MAX (one proposal at least). The transport may drop a message; a follower
        that lost a proposal finds the gap at the next one, but when the lost ones were the last
        no next one comes, and if the quorum needs that follower, the writes would wait for
        good (a write, then none for a while, with one of three servers down). One that has
        them ignores them, and acks once they are durable (a slow disk, not a loss)."""
        core, log = self.core, self.core.log
        ticks, last = core.ticks, log.last()
        for sid, h in self.learners.items():
            acked = self._acked.get(sid, 0)
            if (
                not h.voter
                or h.phase != HandlerPhase.BROADCAST
                or acked >= last
                or ticks - h.progress_tick < core.config.learner_retry_ticks
                or acked < log.base
            ):
                continue
            h.progress_tick = ticks
            for zxid, payload in log.first_after(acked, RESEND_BYTES_MAX):
                core.send(Proposal(core.server_id, sid, zxid, payload))

    def on_learner_lost(self, server_id: int) -> None:
        """Its connection closed: it registers afresh when it comes back. Without it, a leader
        may have lost its quorum, and then steps down now."""
        if self.learners.pop(server_id, None) is None or not self.established:
            return
        core = self.core
        alive = [core.server_id] + [
            sid for sid, h in self.learners.items() if h.voter and h.phase >= HandlerPhase.NEWLEADER_ACKED
        ]
        if not is_quorum(core.config, alive):
            core.abandon(f"lost quorum: the connection to server {server_id} closed")

    def on_applied(self) -> None:
        """The state machine applied more: writes held until it covered earlier epochs go."""
        if self.established:
            self._drain_backlog()

    def on_persisted(self) -> None:
        if self.established:
            self._advance_commit()
        elif not self.epoch_quorum:
            self._try_epoch_quorum()
        else:
            self._try_establish()

    def propose(self, payload: bytes) -> bool:
        """Take a client write: proposed now, or queued in arrival order while the pipeline is
        full (proposed as commits make room). False: no established leader, or the backlog is
        full too."""
        if not self.established:
            return False
        if self.backlog or not self._room() or not self._tree_caught_up():
            if len(self.backlog) >= limits.zab_backlog_max or (
                self.backlog_bytes + len(payload) > limits.zab_backlog_bytes_max
            ):
                return False
            self.backlog.append(payload)
            self.backlog_bytes += len(payload)
            return True
        return self._propose_run((payload,), 0) == 1

    def propose_many(self, payloads: Sequence[bytes]) -> int:
        """propose() of each payload in turn, up to the first it refuses: how many it took. The
        writes that go out at once (no backlog, room in the pipeline) are stamped and prepped
        in one pass and logged together, and each learner gets their proposals in order."""
        taken, count = 0, len(payloads)
        while taken < count and self.established and self.core.abandon_reason is None:
            if self.backlog or not self._room() or not self._tree_caught_up():
                if not self.propose(payloads[taken]):
                    break
                taken += 1
            else:
                taken += self._propose_run(payloads, taken)
        return taken

    def _room(self) -> bool:
        """Whether another proposal may go: fewer than proposals_outstanding_max in flight, and
        fewer bytes than proposals_outstanding_bytes_max (or none at all, so that a write
        bigger than that still goes)."""
        if self._room_count > 0 and self._room_bytes > 0:
            return True
        core = self.core
        config = core.config
        count, size = core.log.after(core.zxid_committed)
        self._room_count = config.proposals_outstanding_max - count
        self._room_bytes = config.proposals_outstanding_bytes_max - size
        return self._room_count > 0 and self._room_bytes > 0

    def _tree_caught_up(self) -> bool:
        """Whether the tree has applied what earlier epochs committed (see Replica.applied);
        asked of the core until it is so, then remembered (it never goes back)."""
        if not self._caught_up:
            self._caught_up = self.core.tree_caught_up(self.zxid_initial)
        return self._caught_up

    def _drain_backlog(self) -> None:
        core = self.core
        while self.backlog and self._room() and core.abandon_reason is None and self._tree_caught_up():
            payload = self.backlog.popleft()
            self.backlog_bytes -= len(payload)
            self._propose_run((payload,), 0)

    def _propose_run(self, payloads: Sequence[bytes], start: int) -> int:
        """Stamp the next zxids on payloads[start:] while the pipeline has room (as _room()
        last found it), append their entries together and send them to every synced follower:
        how many it took (none only when the zxid counter ran out). The prepare hook sees them
        in order, as it would one at a time; it never proposes itself, so nothing else is
        logged meanwhile."""
        core = self.core
        last = core.log.last()
        counter = zxid_counter(last) if zxid_epoch(last) == self.epoch else 0
        counter_max = core.config.zxid_counter_max
        epoch_zxid = make_zxid(self.epoch, 0)
        prepare = core.prepare
        entries: list[LogEntry] = []
        room_count, room_bytes = self._room_count, self._room_bytes
        i, count = start, len(payloads)
        while i < count and room_count > 0 and room_bytes > 0:
            if counter >= counter_max:
                core.abandon(
                    f"zxid counter rolled over after {zxid_text(epoch_zxid + counter)}: a new epoch must start"
                )
                break
            zxid = epoch_zxid + counter + 1
            payload = payloads[i]
            i += 1
            if prepare is not None:
                prepared = prepare(zxid, payload)
                if prepared is None:
                    continue  # consumed without a txn
                payload = prepared
            counter += 1
            room_count -= 1
            room_bytes -= len(payload)
            entries.append((zxid, payload))
        self._room_count, self._room_bytes = room_count, room_bytes
        if entries:
            core.append_many(entries)
            ticks = core.ticks
            for sid, h in self.learners.items():
                if h.voter and h.phase >= HandlerPhase.TRANSFER_SENT:
                    for zxid, payload in entries:
                        core.send(Proposal(core.server_id, sid, zxid, payload))
                    h.progress_tick = ticks
        return i - start

    # --- discovery --------------------------------------------------------------------------

    def _on_info(self, message: FollowerInfo | ObserverInfo) -> None:
        core = self.core
        sid = message.source
        voter = isinstance(message, FollowerInfo)
        if voter != core.config.is_voter(sid):
            return
        if voter and self.epoch and message.accepted_epoch > self.epoch:
            # It can never join this epoch; a new election picks an epoch above its.
            core.abandon(f"server {sid} accepted epoch {message.accepted_epoch}, above ours {self.epoch}")
            return
        h = LearnerHandler(sid, voter, HandlerPhase.REGISTERED, message.accepted_epoch, core.ticks)
        self.learners[sid] = h
        if self.epoch:
            self._send_epoch(h)
        else:
            self._try_choose_epoch()

    def _try_choose_epoch(self) -> None:
        """Once a quorum registered: an epoch above every accepted epoch we have heard of."""
        core = self.core
        registered = [core.server_id] + [sid for sid, h in self.learners.items() if h.voter]
        if self.epoch or not is_quorum(core.config, registered):
            return
        epoch = max([core.accepted_epoch] + [h.accepted_epoch for h in self.learners.values()]) + 1
        if epoch > EPOCH_MAX:
            core.abandon(f"epoch {epoch} over EPOCH_MAX")
            return
        self.epoch = epoch
        core.set_accepted_epoch(epoch)
        for h in self.learners.values():
            self._send_epoch(h)
        self._try_epoch_quorum()

    def _send_epoch(self, h: LearnerHandler) -> None:
        self.core.send(LeaderInfo(self.core.server_id, h.server_id, self.epoch))
        h.phase = HandlerPhase.EPOCH_SENT

    def learner_more_recent(self, current_epoch: int, zxid: int) -> bool:
        """Whether a learner's history is newer than ours: then we must not lead it (ZooKeeper's
        'Follower is ahead of the leader'); a second guard behind the election's vote order."""
        return (current_epoch, zxid) > self.summary

    def _on_ack_epoch(self, message: AckEpoch) -> None:
        h = self.learners.get(message.source)
        if h is not None and h.phase == HandlerPhase.EPOCH_ACKED and message.epoch == self.epoch:
            h.heard_tick = self.core.ticks  # it repeats its ack while it waits for its sync
            return
        if h is None or h.phase != HandlerPhase.EPOCH_SENT or message.epoch != self.epoch:
            return
        h.heard_tick = self.core.ticks
        h.zxid_last = message.zxid
        fresh = message.current_epoch >= 0
        if fresh and not self.established and self.learner_more_recent(message.current_epoch, message.zxid):
            del self.learners[message.source]
            return
        h.phase = HandlerPhase.EPOCH_ACKED
        if fresh and h.voter:
            self._epoch_acks[message.source] = True
        if self.epoch_quorum:
            self._transfer(h)
        else:
            self._try_epoch_quorum()

    def _try_epoch_quorum(self) -> None:
        core = self.core
        if self.epoch_quorum or not is_quorum(core.config, self._epoch_acks):
            return
        if core.zxid_persisted < self.zxid_initial:
            return  # our current epoch must never vouch for a log tail that a crash can lose
        self.epoch_quorum = True
        core.set_current_epoch(self.epoch)
        core.emit_role(
            Role.LEADING, Phase.SYNCHRONISATION, core.server_id, self.epoch, "a quorum acked the epoch"
        )
        for h in list(self.learners.values()):
            if h.phase == HandlerPhase.EPOCH_ACKED:
                self._transfer(h)
        self._try_establish()

    # --- synchronisation --------------------------------------------------------------------

    def _transfer(self, h: LearnerHandler, made: Snapshot | None = None) -> None:
        """Sync a learner whose epoch ack we have; a SNAP from `made` (one the source has just
        made) while that is still a committed point of our log, else from the source."""
        core = self.core
        log = core.log
        me, sid = core.server_id, h.server_id
        kind, zxid = choose_transfer(log, h.zxid_last, core.config.diff_entries_max)
        snapshot = None
        if kind == TransferKind.SNAP:
            usable = made is not None and core.committed_point(made.zxid)
            snapshot = made if usable else core.snapshots.snapshot()
            if snapshot is None:
                return  # the source is making one and calls snapshot_ready(); the learner waits
            if not core.committed_point(snapshot.zxid):
                raise LocalError(
                    f"snapshot zxid {zxid_text(snapshot.zxid)} must be a committed point of the log "
                    f"(base {zxid_text(log.base)}, committed {zxid_text(core.zxid_committed)})"
                )
            zxid = snapshot.zxid
        entries = _entries(log, zxid)
        most = core.config.transfer_entries_max
        # More than one message holds: the rest follows in DIFFs, each from where the last ended
        # (a SNAP made in the background brings every txn committed while it was being made).
        # A message commits no further than it reaches; the last one commits what we have.
        for at in range(0, max(len(entries), 1), most):
            chunk = entries[at : at + most]
            last = at + most >= len(entries)
            committed = min(core.zxid_committed, log.last() if last else chunk[-1].zxid)
            message: Message
            if at:
                message = Diff(me, sid, self.epoch, entries[at - 1].zxid, committed, chunk)
            elif snapshot is not None:
                message = Snap(me, sid, self.epoch, zxid, snapshot.payload, committed, chunk)
            elif kind == TransferKind.TRUNC:
                message = Trunc(me, sid, self.epoch, zxid, committed, chunk)
            else:
                message = Diff(me, sid, self.epoch, zxid, committed, chunk)
            core.send(message)
        core.send(NewLeader(me, sid, self.epoch, log.last()))
        h.phase = HandlerPhase.TRANSFER_SENT
        h.zxid_newleader = log.last()
        h.sent_tick = core.ticks

    def snapshot_failed(self) -> None:
        """The SnapshotSource could not make the snapshot it was making: the learners waiting
        for it are dropped (no more pings), so they time out and register again, and the
        first of them to need a SNAP asks for a new one."""
        if self.epoch_quorum:
            for sid, h in list(self.learners.items()):
                if h.phase == HandlerPhase.EPOCH_ACKED:
                    del self.learners[sid]

    def snapshot_ready(self, snapshot: Snapshot) -> None:
        """The SnapshotSource made the snapshot it was making: the learners waiting get it (or,
        if a compaction since has left it behind our log, ask the source for another)."""
        if self.epoch_quorum:
            for h in list(self.learners.values()):
                if h.phase == HandlerPhase.EPOCH_ACKED:
                    self._transfer(h, snapshot)

    def _on_ack(self, message: Ack) -> None:
        h = self.learners.get(message.source)
        if h is None or message.epoch != self.epoch:
            return
        h.heard_tick = self.core.ticks
        # Any ACK in our epoch is true: the learner logged our history through that zxid.
        if h.voter and message.zxid > self._acked.get(message.source, 0):
            self._acked[message.source] = min(message.zxid, self.core.log.last())
            h.progress_tick = self.core.ticks
        if h.phase == HandlerPhase.TRANSFER_SENT and message.zxid >= h.zxid_newleader:
            h.phase = HandlerPhase.NEWLEADER_ACKED
            if self.established:
                self._send_uptodate(h)
            else:
                self._try_establish()
        if self.established:
            self._advance_commit()

    def _try_establish(self) -> None:
        core = self.core
        if self.established or not self.epoch_quorum:
            return
        synced = [core.server_id] + [
            sid for sid, h in self.learners.items() if h.voter and h.phase >= HandlerPhase.NEWLEADER_ACKED
        ]
        if not is_quorum(core.config, synced):
            return
        self.established = True
        core.emit_role(Role.LEADING, Phase.BROADCAST, core.server_id, self.epoch, "a quorum acked NEWLEADER")
        self.election.update_epoch(self.epoch)
        core.commit(self.zxid_initial)
        for h in self.learners.values():
            if h.phase == HandlerPhase.NEWLEADER_ACKED:
                self._send_uptodate(h)

    def _send_uptodate(self, h: LearnerHandler) -> None:
        core = self.core
        core.send(UpToDate(core.server_id, h.server_id, self.epoch, core.zxid_committed))
        h.phase = HandlerPhase.BROADCAST

    # --- broadcast --------------------------------------------------------------------------

    def commit_point(self) -> int:
        """The highest zxid durably logged by a quorum, the leader counted once it is durable."""
        reached = dict(self._acked)
        reached[self.core.server_id] = self.core.zxid_persisted
        return quorum_zxid(self.core.config, reached)

    def _advance_commit(self) -> None:
        core = self.core
        zxid = min(self.commit_point(), core.log.last())
        before = core.zxid_committed
        if zxid <= before:
            return
        core.commit(zxid)
        informs: list[tuple[int, bytes]] | None = None
        for sid, h in self.learners.items():
            if h.phase < HandlerPhase.TRANSFER_SENT:
                continue
            if h.voter:
                core.send(Commit(core.server_id, sid, self.epoch, zxid))
                continue
            if informs is None:
                informs = core.log.entries_after(before, zxid)
            for entry_zxid, payload in informs:
                core.send(Inform(core.server_id, sid, entry_zxid, payload))
        self._drain_backlog()

    def _on_ping(self, message: Ping) -> None:
        h = self.learners.get(message.source)
        if h is not None and message.epoch == self.epoch:
            h.heard_tick = self.core.ticks
            if message.round > h.round_heard:
                h.round_heard = min(message.round, self.round)
                self._confirm_round()

    def synced_learners(self) -> int:
        return sum(1 for h in self.learners.values() if h.phase >= HandlerPhase.BROADCAST)

    def _on_request(self, message: Request) -> None:
        self.on_requests((message,))

    def on_requests(self, messages: Sequence[Request]) -> None:
        """One learner's forwarded writes, in order (those of another epoch dropped): the
        writes that go at once are stamped, logged and sent in one pass (propose_many). A write
        that cannot go is refused (Refused goes back to its learner) and the next tried: a
        smaller one may still fit the backlog. Once the leader gives up (its zxid counter ran
        out), the rest are left unanswered, as they would reach a replica that no longer
        leads."""
        epoch = self.epoch
        run = [m for m in messages if m.epoch == epoch]
        payloads = [m.payload for m in run]
        done, count = 0, len(run)
        while done < count:
            done += self.propose_many(payloads[done:] if done else payloads)
            if done == count:
                return
            self._refuse(run[done])
            done += 1
            if self.core.abandon_reason is not None:
                return

    def _refuse(self, message: Request) -> None:
        h = self.learners.get(message.source)
        if h is not None and h.phase >= HandlerPhase.TRANSFER_SENT:
            self.core.send(Refused(self.core.server_id, message.source, self.epoch, message.payload))

    # --- client syncs (ReadIndex) -----------------------------------------------------------

    def sync(self, token: int) -> bool:
        """A client of ours synced. It is answered with our commit point once a quorum has
        echoed a heartbeat round sent after now: a deposed leader never answers one."""
        if not self.established:
            return False
        self._add_sync(token, 0)
        return True

    def _on_client_sync(self, message: Sync) -> None:
        """A learner's client synced: once a round confirms that we still lead, the learner gets
        our commit point to apply through before it answers (commits went out before it, on the
        same channel)."""
        h = self.learners.get(message.source)
        if message.epoch == self.epoch and h is not None and h.phase >= HandlerPhase.TRANSFER_SENT:
            self._add_sync(message.token, message.source)

    def _add_sync(self, token: int, learner: int) -> None:
        if len(self._syncs) >= limits.zab_syncs_max:
            return  # the client's request times out; a sync is safe to retry
        # A round already out was sent before this sync arrived, so it needs the next one.
        self._syncs.append((self.round + 1, token, learner))
        if not self._round_open:
            self._start_round()

    def _start_round(self) -> None:
        core = self.core
        self.round += 1
        self._round_open = True
        for sid, h in self.learners.items():
            if h.voter and h.phase >= HandlerPhase.NEWLEADER_ACKED:
                core.send(Ping(core.server_id, sid, self.epoch, core.zxid_committed, self.round))
        self._confirm_round()

    def _confirm_round(self) -> None:
        """Answer the syncs whose round a quorum (us included) has echoed."""
        core = self.core
        if not self._round_open:
            return
        echoed = [core.server_id] + [
            sid
            for sid, h in self.learners.items()
            if h.voter and h.phase >= HandlerPhase.NEWLEADER_ACKED and h.round_heard >= self.round
        ]
        if not is_quorum(core.config, echoed):
            return
        self._round_open = False
        while self._syncs and self._syncs[0][0] <= self.round:
            _, token, learner = self._syncs.popleft()
            if learner == 0:
                core.synced(token, core.zxid_committed)
            else:
                core.send(Sync(core.server_id, learner, self.epoch, token, core.zxid_committed))
        if self._syncs:
            self._start_round()


def _entries(log: ReplicaLog, after: int) -> tuple[Entry, ...]:
    return tuple(Entry(zxid, payload) for zxid, payload in log.entries_after(after))
