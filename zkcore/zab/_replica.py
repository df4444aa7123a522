"""Replica: one server's Zab as a sans-I/O state machine (raft's RawNode pattern).

Inputs are step, tick, propose, persisted and compact; outputs wait in ready() until advance().
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from zkcore._errors import LocalError
from zkcore._storage import Storage
from zkcore.zab._core import Core, Prepare, Rng
from zkcore.zab._election import Election, Vote
from zkcore.zab._leader import Leader
from zkcore.zab._learner import Learner
from zkcore.zab._log import ReplicaLog
from zkcore.zab._messages import FollowerInfo, Message, Notification, ObserverInfo, Request, Role
from zkcore.zab._quorum import Config
from zkcore.zab._ready import Phase, Ready, Snapshot, SnapshotSource, Status
from zkcore.zab._zxid import EPOCH_MAX, ZXID_MAX, zxid_text

TICKS_MAX = 1 << 32  # ticks passing in one call; far beyond any timeout


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise LocalError(f"{name} must be an int in [{lo}, {hi}]: {value!r}")
    return value


class Replica:
    """One server of a Zab ensemble, rebuilt from its durable state after every restart.

    `storage` is read once, here: the log above `zxid_snapshot`. `zxid_applied` is what the
    shell's tree already reflects (its snapshot, at least); it must hold committed txns only, so
    a shell replays its log on restart no further than a zxid it knows committed, and Zab hands
    out the rest as they commit. `snapshots` serves SNAP syncs when this server leads.
    Subclasses may swap the role classes below (tests inject faults that way).
    """

    election_class: ClassVar[type[Election]] = Election
    leader_class: ClassVar[type[Leader]] = Leader
    learner_class: ClassVar[type[Learner]] = Learner

    def __init__(
        self,
        config: Config,
        server_id: int,
        *,
        rng: Rng,
        storage: Storage,
        snapshots: SnapshotSource,
        accepted_epoch: int = 0,
        current_epoch: int = 0,
        zxid_snapshot: int = 0,
        zxid_applied: int | None = None,
        prepare: Prepare | None = None,
    ) -> None:
        """`prepare(zxid, payload)` turns a client write into the txn the leader logs (None:
        nothing to log, it was consumed); a shell that gives it reports applied(zxid)."""
        if not isinstance(config, Config):
            raise LocalError(f"config must be a zab Config: {type(config).__name__}")
        if not config.is_server(server_id):
            raise LocalError(
                f"server_id {server_id!r} is not in the ensemble {config.voters + config.observers}"
            )
        if not callable(getattr(rng, "randrange", None)):
            raise LocalError(f"rng must be a random.Random: {type(rng).__name__}")
        _check_int("accepted_epoch", accepted_epoch, 0, EPOCH_MAX)
        _check_int("current_epoch", current_epoch, 0, accepted_epoch)
        _check_int("zxid_snapshot", zxid_snapshot, 0, ZXID_MAX)
        log = ReplicaLog(zxid_snapshot, storage.entries(zxid_snapshot, storage.last_zxid()))
        applied = zxid_snapshot if zxid_applied is None else zxid_applied
        _check_int("zxid_applied", applied, zxid_snapshot, log.last())
        if not log.contains(applied):
            raise LocalError(f"zxid_applied {zxid_text(applied)} is not a zxid of the log")
        self.server_id = server_id
        self._core = Core(
            config, server_id, rng, log, snapshots, accepted_epoch, current_epoch, applied, prepare
        )
        # The outputs are the core's own: a shell asks for them several times a loop turn, and
        # a layer of calls between would be paid each time (see Ready for the protocol).
        self.has_ready: Callable[[], bool] = self._core.has_ready
        self.ready: Callable[[], Ready] = self._core.take_ready
        self._election = self.election_class(self._core)
        self._role = Role.LOOKING
        self._leader: Leader | None = None
        self._learner: Learner | None = None
        self._step: Callable[[Message], None] = self._step_looking
        self._tick: Callable[[], None] = self._tick_looking
        self._become_looking("started")

    # --- inputs -----------------------------------------------------------------------------

    def step(self, message: Message) -> None:
        """A message from a peer, addressed to us."""
        if not self._from_a_server(message):
            return
        if isinstance(message, Notification):
            self._on_notification(message)
        elif isinstance(message, (FollowerInfo, ObserverInfo)) and self._role in (
            Role.FOLLOWING,
            Role.OBSERVING,
        ):
            # Someone chose us as leader, but we follow another: say so, rather than let it
            # wait init_limit_ticks for a LEADERINFO that will never come.
            self._election.reply(message.source, self._role)
        else:
            self._step(message)
        self._settle()

    def step_many(self, messages: Sequence[Message]) -> None:
        """step() of each message in turn (what one poll brought). A leader takes a run of
        writes that one learner forwarded (Requests) together: those that go at once are
        stamped, logged and sent in one pass, as propose_many does for its own clients'."""
        i, count = 0, len(messages)
        while i < count:
            message = messages[i]
            i += 1
            if type(message) is not Request or self._leader is None:
                self.step(message)
                continue
            run = [message]
            while i < count and type(after := messages[i]) is Request and after.source == message.source:
                run.append(after)
                i += 1
            if all([self._from_a_server(request) for request in run]):
                self._leader.on_requests(run)
                self._settle()

    def _from_a_server(self, message: Message) -> bool:
        """Whether to act on `message`: False when its source is not a server of ours (it is
        ignored). A message that is not one, or is addressed to another server, is a bug."""
        if not isinstance(message, Message):
            raise LocalError(f"step takes a Zab message: {type(message).__name__}")
        if message.target != self.server_id:
            raise LocalError(f"message for server {message.target} stepped into server {self.server_id}")
        return self._core.config.is_server(message.source)

    def tick(self, ticks: int = 1) -> None:
        """`ticks` ticks of time have passed (more than one after a stall: a process stopped for
        a while learns at once how long, and a leader that lost its quorum meanwhile steps down
        before it serves anyone; a learner does not blame its leader for the ticks it was not
        listening). Timeouts, heartbeats and resends all count in ticks."""
        _check_int("ticks", ticks, 1, TICKS_MAX)
        self._core.ticks += ticks
        if ticks > 1 and self._learner is not None:
            self._learner.stalled(ticks - 1)
        self._tick()
        self._settle()

    def propose(self, payload: bytes) -> bool:
        """A client write (an encoded txn). The leader stamps it; a learner forwards it.

        False when it cannot go anywhere now (no established leader, too many in flight).
        """
        return self.propose_many((payload,)) == 1

    def propose_many(self, payloads: Sequence[bytes]) -> int:
        """propose() of each payload in turn, up to the first that cannot go: how many went (a
        leader stamps a run of them in one pass). The rest are the caller's to refuse or retry."""
        for payload in payloads:
            if type(payload) is not bytes:
                raise LocalError(f"payload must be bytes: {type(payload).__name__}")
        if self._leader is not None:
            accepted = self._leader.propose_many(payloads)
        elif self._learner is not None:
            accepted = self._learner.propose_many(payloads)
        else:
            accepted = 0
        self._settle()
        return accepted

    def sync(self, token: int) -> bool:
        """A client's sync (ZooKeeper's `sync`), named by the shell's `token`: a later Ready's
        `synced` says through which zxid this server must apply before answering it. False
        when there is no established leader to ask."""
        _check_int("token", token, 0, ZXID_MAX)
        if self._leader is not None:
            accepted = self._leader.sync(token)
        elif self._learner is not None:
            accepted = self._learner.sync(token)
        else:
            accepted = False
        self._settle()
        return accepted

    def persisted(self, zxid: int) -> None:
        """The shell's storage is durable through `zxid` (the result of Storage.fsync())."""
        _check_int("zxid", zxid, 0, ZXID_MAX)
        self._core.on_persisted(zxid)
        if self._leader is not None:
            self._leader.on_persisted()
        elif self._learner is not None:
            self._learner.on_persisted()
        self._settle()

    def peer_lost(self, server_id: int) -> None:
        """The shell's connection to a peer closed (its process died, or the network dropped
        it), which is known at once, long before a timeout would tell: a learner whose leader
        it was elects again now, a leader stops counting that learner."""
        if not self._core.config.is_server(server_id) or server_id == self.server_id:
            return
        if self._learner is not None and self._learner.leader == server_id:
            self._core.abandon(f"the connection to leader {server_id} closed")
        elif self._leader is not None:
            self._leader.on_learner_lost(server_id)
        self._settle()

    def applied(self, zxid: int) -> None:
        """The shell's state machine has applied every committed txn through `zxid`. With a
        `prepare` hook, a new leader preps no write before it has applied its predecessors'."""
        core = self._core
        _check_int("zxid", zxid, 0, core.zxid_applied)
        core.zxid_tree = max(core.zxid_tree, zxid)
        if self._leader is not None:
            self._leader.on_applied()
        self._settle()

    def compact(self, zxid: int) -> None:
        """The shell holds a durable snapshot through `zxid`: forget log entries up to it."""
        core = self._core
        _check_int("zxid", zxid, core.log.base, core.zxid_applied)
        if not core.log.contains(zxid):
            raise LocalError(f"compact zxid {zxid_text(zxid)} is not a zxid of the log")
        core.compact(zxid)

    def snapshot_ready(self, snapshot: Snapshot) -> None:
        """The SnapshotSource made the snapshot it said it was making: learners waiting for
        it get it now. Nothing keeps it: a learner that comes later asks for another."""
        if not isinstance(snapshot, Snapshot):
            raise LocalError(f"snapshot_ready takes a Snapshot: {type(snapshot).__name__}")
        if self._leader is not None:
            self._leader.snapshot_ready(snapshot)
        self._settle()

    def snapshot_failed(self) -> None:
        """The SnapshotSource could not make the snapshot it said it was making: learners
        waiting for it give up on this sync and register again."""
        if self._leader is not None:
            self._leader.snapshot_failed()
        self._settle()

    # --- outputs ----------------------------------------------------------------------------
    # has_ready() and ready() are the core's, bound in __init__.

    def advance(self, ready: Ready) -> None:
        """The shell has acted on `ready` (see Ready for the order)."""
        if not isinstance(ready, Ready):
            raise LocalError(f"advance takes the Ready from ready(): {type(ready).__name__}")
        self._core.advance()

    def broadcasting(self) -> bool:
        """Whether this server is in broadcast now (cheap; status() says more)."""
        if self._leader is not None:
            return self._leader.established
        return self._learner is not None and self._learner.phase_name() == Phase.BROADCAST

    def status(self) -> Status:
        core = self._core
        leader, epoch, phase = -1, 0, Phase.ELECTION
        if self._leader is not None:
            leader, epoch = self.server_id, self._leader.epoch
            phase = (
                Phase.BROADCAST
                if self._leader.established
                else Phase.SYNCHRONISATION
                if self._leader.epoch_quorum
                else Phase.DISCOVERY
            )
        elif self._learner is not None:
            leader, epoch = self._learner.leader, self._learner.epoch
            phase = self._learner.phase_name()
        return Status(
            server_id=self.server_id,
            role=self._role,
            phase=phase,
            leader=leader,
            epoch=epoch,
            accepted_epoch=core.accepted_epoch,
            current_epoch=core.current_epoch,
            round=self._election.round,
            zxid_last=core.log.last(),
            zxid_persisted=core.zxid_persisted,
            zxid_committed=core.zxid_committed,
            zxid_applied=core.zxid_applied,
            messages_dropped=core.messages_dropped,
            learners=len(self._leader.learners) if self._leader is not None else 0,
            learners_synced=self._leader.synced_learners() if self._leader is not None else 0,
        )

    # --- roles ------------------------------------------------------------------------------

    def _on_notification(self, n: Notification) -> None:
        learner = self._learner
        if self._role == Role.LOOKING:
            decided = self._election.on_notification(n)
            if decided is not None:
                self._decide(decided)
        elif (
            learner is not None
            and n.source == learner.leader
            and n.state in (Role.FOLLOWING, Role.OBSERVING)
            and n.leader != learner.leader
        ):
            self._core.abandon(f"server {n.source}, whom we chose to lead, follows {n.leader}")
        elif n.state == Role.LOOKING and self._core.config.is_voter(self.server_id):
            # A settled voter answers a LOOKING server with the leader it follows. Observers
            # stay silent: voters answer every observer message, so answers would ping-pong.
            self._election.reply(n.source, self._role)
            learner = self._learner
            if learner is not None and n.source == learner.leader and n.round > self._election.round:
                # Our leader started a new election (a later round than the one that chose it):
                # no need to wait for sync_limit_ticks of silence.
                self._core.abandon(f"leader {n.source} is LOOKING in round {n.round}")

    def _step_looking(self, message: Message) -> None:
        return

    def _tick_looking(self) -> None:
        decided = self._election.on_tick()
        if decided is not None:
            self._decide(decided)

    def _decide(self, vote: Vote) -> None:
        if vote.leader == self.server_id:
            self._become_leading()
        else:
            self._become_learner(vote.leader)

    def _become_looking(self, reason: str) -> None:
        core = self._core
        core.abandon_reason = None
        self._role = Role.LOOKING
        self._leader = None
        self._learner = None
        self._step = self._step_looking
        self._tick = self._tick_looking
        core.emit_role(Role.LOOKING, Phase.ELECTION, -1, core.current_epoch, reason)
        decided = self._election.start()
        if decided is not None:
            self._decide(decided)

    def _become_leading(self) -> None:
        leader = self.leader_class(self._core, self._election)
        self._role = Role.LEADING
        self._leader = leader
        self._step = leader.on_message
        self._tick = leader.on_tick
        leader.start()

    def _become_learner(self, leader_id: int) -> None:
        learner = self.learner_class(self._core, self._election, leader_id)
        self._role = learner.role
        self._learner = learner
        self._step = learner.on_message
        self._tick = learner.on_tick
        learner.start()

    def _settle(self) -> None:
        """After each input: a role that gave up hands over to a new election."""
        reason = self._core.abandon_reason
        if reason is not None:
            self._become_looking(reason)
