"""A scripted ensemble for scenario tests: N replicas on a network that moves only when told to.

In the manner of raft's test `network`: deliver, cut, isolate, drop, recover, crash, restart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from tests.sim.checkers import Checker
from tests.sim.node import SimNode
from zkcore._storage import MemoryLog
from zkcore.zab import Config, Message, Phase, Replica, Role, RoleChange, Status


class Ensemble:
    """Servers 1..voters vote, the next `observers` ids observe. Every input is followed by the
    shell's work (persist, queue messages, apply) and the simulator's safety checks.

    auto_sync: storage syncs as soon as entries are appended; otherwise call sync(i).
    """

    def __init__(
        self,
        voters: int = 3,
        observers: int = 0,
        *,
        replica_class: type[Replica] = Replica,
        auto_sync: bool = True,
        seed: int = 0,
        **config: int,
    ) -> None:
        voter_ids = tuple(range(1, voters + 1))
        observer_ids = tuple(range(voters + 1, voters + observers + 1))
        self.config = Config(voter_ids, observer_ids, **config)
        self.nodes = {sid: SimNode(sid, self.config, replica_class, seed) for sid in voter_ids + observer_ids}
        self.queues: dict[tuple[int, int], deque[Message]] = {}
        self.cut_links: set[tuple[int, int]] = set()
        self.checker = Checker()
        self.auto_sync = auto_sync
        self.established: list[tuple[int, int]] = []  # (epoch, leader) in order
        self.roles: list[tuple[int, RoleChange]] = []  # every role change, in order
        self.sent: list[Message] = []  # every message sent, in order, delivered or not
        self.synced: list[tuple[int, int, int]] = []  # (server, token, zxid) from Ready.synced
        for sid, node in self.nodes.items():
            node.start()
            self._handle(sid)

    # --- the network ------------------------------------------------------------------------

    def pending(self, source: int | None = None, target: int | None = None) -> list[Message]:
        """Queued messages, link by link in id order, FIFO within each link."""
        return [
            m for (s, t), queue in sorted(self.queues.items()) if _match(s, t, source, target) for m in queue
        ]

    def deliver(
        self,
        source: int | None = None,
        target: int | None = None,
        kind: type[Message] | None = None,
    ) -> int:
        """Deliver every queued message that matches, once each, FIFO per link; replies stay
        queued. A `kind` filter delivers just those messages (reordering within a link)."""
        batch: list[Message] = []
        for (s, t), queue in sorted(self.queues.items()):
            if not _match(s, t, source, target):
                continue
            keep: deque[Message] = deque()
            for message in queue:
                (batch if kind is None or isinstance(message, kind) else keep).append(message)
            self.queues[(s, t)] = keep
        for message in batch:
            self._step(message)
        return len(batch)

    def step(self, message: Message) -> None:
        """Deliver a message that was never queued (a crafted, stale or duplicate one)."""
        self._step(message)

    def run(self, rounds_max: int = 1000) -> int:
        """Deliver until no message is left; returns how many were delivered."""
        total = 0
        for _ in range(rounds_max):
            delivered = self.deliver()
            if not delivered:
                return total
            total += delivered
        raise AssertionError(f"the network did not go quiet in {rounds_max} rounds")

    def drop(
        self, source: int | None = None, target: int | None = None, kind: type[Message] | None = None
    ) -> int:
        dropped = 0
        for (s, t), queue in self.queues.items():
            if _match(s, t, source, target):
                keep = deque(m for m in queue if kind is not None and not isinstance(m, kind))
                dropped += len(queue) - len(keep)
                self.queues[(s, t)] = keep
        return dropped

    def cut(self, a: int, b: int) -> None:
        """No message passes between a and b either way, queued ones included."""
        self.cut_links |= {(a, b), (b, a)}
        self.drop(a, b)
        self.drop(b, a)

    def cut_one_way(self, source: int, target: int) -> None:
        self.cut_links.add((source, target))
        self.drop(source, target)

    def isolate(self, server_id: int) -> None:
        for other in self.nodes:
            if other != server_id:
                self.cut(server_id, other)

    def recover(self) -> None:
        self.cut_links.clear()

    # --- the servers ------------------------------------------------------------------------

    def replica(self, server_id: int) -> Replica:
        replica = self.nodes[server_id].replica
        assert replica is not None, f"server {server_id} is down"
        return replica

    def status(self, server_id: int) -> Status:
        return self.replica(server_id).status()

    def up(self) -> list[int]:
        return [sid for sid, node in self.nodes.items() if node.up]

    def tick(self, *server_ids: int, n: int = 1) -> None:
        for _ in range(n):
            for sid in server_ids or tuple(self.up()):
                if self.nodes[sid].up:
                    self.replica(sid).tick()
                    self._handle(sid)

    def propose(self, server_id: int, payload: bytes) -> bool:
        accepted = self.replica(server_id).propose(payload)
        self._handle(server_id)
        return accepted

    def client_sync(self, server_id: int, token: int) -> bool:
        """A client's sync on this server; the answer lands in `synced`."""
        accepted = self.replica(server_id).sync(token)
        self._handle(server_id)
        return accepted

    def sync(self, server_id: int) -> None:
        self.nodes[server_id].fsync()
        self._handle(server_id)

    def crash(self, server_id: int) -> None:
        self.nodes[server_id].crash()
        for link in list(self.queues):
            if link[1] == server_id:
                self.queues[link].clear()

    def restart(self, server_id: int) -> None:
        node = self.nodes[server_id]
        node.start()
        self.checker.replaced(server_id, node.applied)
        self._handle(server_id)

    def load(
        self,
        server_id: int,
        entries: list[tuple[int, bytes]],
        accepted_epoch: int,
        current_epoch: int,
    ) -> None:
        """Give a server this durable state (crashing it first) and start it: the way to script
        elections from arbitrary histories."""
        node = self.nodes[server_id]
        if node.up:
            self.crash(server_id)
        node.storage = MemoryLog(entries)
        node.accepted_epoch, node.current_epoch = accepted_epoch, current_epoch
        node.snapshot_zxid, node.snapshot_history = 0, ()
        self.restart(server_id)

    def settle(self, ticks_max: int = 100, servers: Iterable[int] | None = None) -> int:
        """Tick and deliver until one leader is established and every listed server (default:
        every server up) is in BROADCAST under it; returns the leader's id."""
        for _ in range(ticks_max):
            self.run()
            leader = self.leader(servers)
            if leader is not None:
                return leader
            self.tick()
        raise AssertionError(
            f"no settled leader within {ticks_max} ticks: {[self.status(s) for s in self.up()]}"
        )

    def leader(self, servers: Iterable[int] | None = None) -> int | None:
        """The established leader every listed server follows in BROADCAST, if there is one."""
        ids = list(servers) if servers is not None else self.up()
        statuses = [self.status(sid) for sid in ids if self.nodes[sid].up]
        leaders = {s.leader for s in statuses}
        if (
            len(statuses) != len(ids)
            or len(leaders) != 1
            or any(s.phase != Phase.BROADCAST for s in statuses)
        ):
            return None
        (leader,) = leaders
        if not self.nodes[leader].up or self.status(leader).role != Role.LEADING:
            return None
        if any(s.epoch != self.status(leader).epoch for s in statuses):
            return None  # someone still follows an earlier reign of the same server
        return leader

    def reasons(self, server_id: int) -> list[str]:
        """Why `server_id` changed role or phase, oldest first."""
        return [change.reason for sid, change in self.roles if sid == server_id]

    def applied(self, server_id: int) -> list[bytes]:
        return [payload for _, payload in self.nodes[server_id].applied]

    # --- plumbing ---------------------------------------------------------------------------

    def _step(self, message: Message) -> None:
        node = self.nodes[message.target]
        if node.up and (message.source, message.target) not in self.cut_links:
            self.replica(message.target).step(message)
            self._handle(message.target)

    def _handle(self, server_id: int) -> None:
        node = self.nodes[server_id]
        while True:
            handled = node.handle()
            if handled is None:
                if self.auto_sync and node.up and node.storage.durable_zxid < node.storage.last_zxid():
                    node.fsync()
                    continue
                return
            ready = handled.ready
            if handled.replaced:
                self.checker.replaced(server_id, node.applied)
            if ready.committed:
                self.checker.applied(server_id, node.applied, handled.applied_from)
            for change in ready.roles:
                self.roles.append((server_id, change))
                if change.role == Role.LEADING and change.phase == Phase.BROADCAST:
                    self.checker.established(change.epoch, server_id, node.history())
                    self.established.append((change.epoch, server_id))
            self.synced.extend((server_id, token, zxid) for token, zxid in ready.synced)
            self.sent.extend(ready.messages)
            for message in ready.messages:
                link = (message.source, message.target)
                if link not in self.cut_links:
                    self.queues.setdefault(link, deque()).append(message)


def _match(source: int, target: int, want_source: int | None, want_target: int | None) -> bool:
    return (want_source is None or source == want_source) and (want_target is None or target == want_target)
