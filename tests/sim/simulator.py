"""The seeded whole-ensemble simulator: real Replicas, a faulty network, crashes, clients, checks.

A run is a safety phase with faults, then a healed core that must converge within a tick budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
from dataclasses import dataclass, field
from random import Random
from typing import Any

from tests.sim.checkers import Checker, Violation, cut_links, take_due
from tests.sim.node import Handled, SimNode
from zkcore import limits
from zkcore.zab import (
    Config,
    Message,
    Phase,
    Replica,
    Role,
    decode_message,
    encode_message,
)

TICK_UNITS = 10  # simulated time units per tick; message delays are in units
EVENTS_MAX = 1_000_000  # a run this busy is a message storm, which is a bug in itself
_DELIVER, _TICK, _FSYNC, _WORLD, _IMAGE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Options:
    """Everything a run varies, all drawn from the seed (swarm testing: each seed its own mix)."""

    voters: int
    observers: int
    loss: float
    duplicate: float
    delay_max: int
    crash: float
    restart: float
    partition: float
    one_way: bool
    writes: float
    sync_delay_max: int
    snapshot: float
    drift: bool
    wire: bool
    safety_ticks: int
    liveness_ticks: int
    init_limit_ticks: int
    sync_limit_ticks: int
    election_resend_ticks: int
    election_finalize_ticks: int
    diff_entries_max: int
    zxid_counter_max: int
    image_delay_max: int = 0  # > 0: a leader's SNAP image is made in the background, this slow
    transfer_entries_max: int = limits.zab_sync_entries_max
    proposals_outstanding_bytes_max: int = limits.zab_proposals_outstanding_bytes_max


def options_for(
    seed: int, voters: int | None = None, observers: int | None = None, long: bool = False
) -> Options:
    """The seed's options; `long` runs four times as many faulty ticks with faults at least as
    frequent as the harsher draws (the soak mode behind --long and the slow marker)."""
    options = _draw_options(seed, voters, observers)
    if not long:
        return options
    return dataclasses.replace(
        options,
        safety_ticks=options.safety_ticks * 4,
        crash=max(options.crash, 0.05) * 2,
        partition=max(options.partition, 0.05) * 2,
        sync_delay_max=max(options.sync_delay_max, 20),
        snapshot=max(options.snapshot, 0.05),
    )


def _draw_options(seed: int, voters: int | None, observers: int | None) -> Options:
    rng = Random(f"options-{seed}")
    init_limit, sync_limit = rng.choice([(10, 5), (6, 3), (15, 8)])
    return Options(
        voters=voters if voters is not None else rng.choice([3, 5, 7]),
        observers=observers if observers is not None else rng.choice([0, 0, 1, 2]),
        loss=rng.choice([0.0, 0.01, 0.05, 0.15, 0.3]),
        duplicate=rng.choice([0.0, 0.0, 0.02, 0.1]),
        delay_max=rng.choice([2, 5, 10, 30]),
        crash=rng.choice([0.0, 0.005, 0.02, 0.05]),
        restart=rng.choice([0.05, 0.2, 0.5]),
        partition=rng.choice([0.0, 0.02, 0.05, 0.1]),
        one_way=rng.random() < 0.3,
        writes=rng.choice([0.1, 0.3, 1.0, 2.0]),
        sync_delay_max=rng.choice([0, 3, 10, 30]),
        snapshot=rng.choice([0.0, 0.0, 0.02, 0.1]),
        drift=rng.random() < 0.3,
        wire=rng.random() < 0.25,
        safety_ticks=rng.choice([60, 100, 150]),
        liveness_ticks=300,
        init_limit_ticks=init_limit,
        sync_limit_ticks=sync_limit,
        election_resend_ticks=rng.choice([1, 2, 3]),
        election_finalize_ticks=rng.choice([0, 1, 2]),
        diff_entries_max=rng.choice([limits.zab_diff_entries_max, 20, 3]),
        zxid_counter_max=rng.choice([limits.zab_zxid_counter_max] * 3 + [25, 60]),
        # Drawn apart, so that adding it changed no other option of an existing seed.
        image_delay_max=Random(f"image-{seed}").choice([0, 0, 3, 10, 40]),
        transfer_entries_max=Random(f"transfer-{seed}").choice([limits.zab_sync_entries_max] * 2 + [1, 4]),
        # Writes are "w<n>" (2-5 bytes): 256 keeps some 60 in flight, less than the 1,000 allowed.
        proposals_outstanding_bytes_max=Random(f"in-flight-{seed}").choice(
            [limits.zab_proposals_outstanding_bytes_max] * 2 + [256]
        ),
    )


@dataclass
class Result:
    seed: int
    options: Options
    violation: str | None
    trace_hash: str
    ticks: int
    events: int
    trace: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class ClientWrite:
    payload: bytes
    server_id: int
    due_tick: int


class Simulation:
    """One seeded run. `replica_class` lets tests plug in deliberately broken replicas."""

    def __init__(self, seed: int, options: Options, replica_class: type[Replica] = Replica) -> None:
        self.seed = seed
        self.options = options
        self.rng = Random(seed)
        voters = tuple(range(1, options.voters + 1))
        observers = tuple(range(options.voters + 1, options.voters + options.observers + 1))
        self.config = Config(
            voters,
            observers,
            init_limit_ticks=options.init_limit_ticks,
            sync_limit_ticks=options.sync_limit_ticks,
            election_resend_ticks=options.election_resend_ticks,
            election_finalize_ticks=options.election_finalize_ticks,
            diff_entries_max=options.diff_entries_max,
            zxid_counter_max=options.zxid_counter_max,
            transfer_entries_max=options.transfer_entries_max,
            proposals_outstanding_bytes_max=options.proposals_outstanding_bytes_max,
        )
        self.nodes = {sid: SimNode(sid, self.config, replica_class, seed) for sid in voters + observers}
        for node in self.nodes.values():
            node.images_in_background = options.image_delay_max > 0
        self.checker = Checker()
        self.trace: list[tuple[Any, ...]] = []
        self.now = 0
        self.tick = 0
        self.events = 0
        self._queue: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._link_time: dict[tuple[int, int], int] = {}
        self._blocked: set[tuple[int, int]] = set()
        self._loss = options.loss
        self._duplicate = options.duplicate
        self._delay_max = options.delay_max
        self._writes = 0
        self.pending: dict[bytes, ClientWrite] = {}
        self.liveness = False
        self.end_tick = 0  # set by _run, extended by _heal
        self.core: tuple[int, ...] = ()

    # --- the event loop ---------------------------------------------------------------------

    def run(self) -> Result:
        violation = None
        try:
            self._run()
        except Violation as e:
            violation = str(e)
        except AssertionError as e:
            violation = f"assertion: {e}"
        self.trace.append(("end", self.now, violation))
        digest = hashlib.sha256(repr(self.trace).encode()).hexdigest()[:16]
        return Result(self.seed, self.options, violation, digest, self.tick, self.events, self.trace)

    def _run(self) -> None:
        for sid, node in self.nodes.items():
            node.start()
            self._handle(node)
            period = TICK_UNITS + (self.rng.choice([-2, -1, 0, 1, 2]) if self.options.drift else 0)
            self._push(self.rng.randrange(TICK_UNITS), _TICK, (sid, period))
        self._push(TICK_UNITS // 2, _WORLD, None)
        self.end_tick = self.options.safety_ticks + self.options.liveness_ticks
        while self._queue:
            time, _, kind, data = heapq.heappop(self._queue)
            self.now = time
            self.events += 1
            if kind == _DELIVER:
                self._deliver(data)
            elif kind == _TICK:
                self._node_tick(*data)
            elif kind == _FSYNC:
                self._fsync(*data)
            elif kind == _IMAGE:
                self._image(*data)
            elif self._world():
                return
            if self.tick > self.end_tick:
                budget = self.end_tick - self.options.safety_ticks
                raise Violation(f"liveness: no convergence {budget} ticks after healing")
            if self.events > EVENTS_MAX:
                raise Violation(f"runaway: over {EVENTS_MAX} events by tick {self.tick} (a message storm)")

    def _push(self, time: int, kind: int, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, data))

    def _deliver(self, data: tuple[int, int, Any]) -> None:
        """A message arrives, with those due at the same moment for the same server right
        behind it: a node steps what one poll brought together (step_many)."""
        source, target, payload = data
        due = take_due(self._queue, self.now, _DELIVER, lambda data: data[1] == target)
        self.events += len(due)
        arrived = [(source, payload), *((s, p) for s, _, p in due)]
        node = self.nodes[target]
        if node.replica is None:
            return
        messages: list[Message] = []
        for s, p in arrived:
            if (s, target) not in self._blocked:
                message: Message = decode_message(p) if self.options.wire else p
                self.trace.append((self.now, "recv", s, target, type(message).__name__))
                messages.append(message)
        if messages:
            node.replica.step_many(messages)
            self._handle(node)

    def _node_tick(self, sid: int, period: int) -> None:
        self._push(self.now + period, _TICK, (sid, period))
        node = self.nodes[sid]
        if node.replica is not None:
            node.replica.tick()
            self._handle(node)

    def _fsync(self, sid: int, incarnation: int) -> None:
        node = self.nodes[sid]
        if node.replica is None or node.incarnation != incarnation:
            return
        node.fsync()
        self.trace.append((self.now, "fsync", sid, node.storage.durable_zxid))
        self._handle(node)

    def _image(self, sid: int, incarnation: int) -> None:
        node = self.nodes[sid]
        if node.replica is None or node.incarnation != incarnation:
            return
        failed = self.rng.random() < 0.2  # the child died: a full disk, say
        self.trace.append((self.now, "image", sid, failed, node.image_made(failed)))
        self._handle(node)

    # --- a node's outputs -------------------------------------------------------------------

    def _handle(self, node: SimNode) -> None:
        while True:
            if node.image_wanted:  # the SnapshotSource said it is making one: it takes a while
                node.image_wanted = False
                delay = self.rng.randint(0, self.options.image_delay_max)
                self._push(self.now + delay, _IMAGE, (node.server_id, node.incarnation))
            handled = node.handle()
            if handled is None:
                return
            self._after(node, handled)

    def _after(self, node: SimNode, handled: Handled) -> None:
        ready, sid = handled.ready, node.server_id
        if handled.replaced:
            self.checker.replaced(sid, node.applied)
        if ready.committed:
            self.checker.applied(sid, node.applied, handled.applied_from)
            self._ack_clients(node, handled.applied_from)
        if ready.entries and not node.sync_pending:
            node.sync_pending = True
            delay = self.rng.randint(0, self.options.sync_delay_max)
            self._push(self.now + delay, _FSYNC, (sid, node.incarnation))
        for change in ready.roles:
            self.trace.append(
                (
                    self.now,
                    "role",
                    sid,
                    change.role.name,
                    change.phase.name,
                    change.leader,
                    change.epoch,
                    change.reason,
                )
            )
            if change.role == Role.LEADING and change.phase == Phase.BROADCAST:
                self.checker.established(change.epoch, sid, node.history())
        for message in ready.messages:
            self._send(message)

    def _send(self, message: Message) -> None:
        source, target = message.source, message.target
        if (source, target) in self._blocked or self.rng.random() < self._loss:
            return
        payload: Any = encode_message(message) if self.options.wire else message
        link = (source, target)
        time = max(self.now + self.rng.randint(1, self._delay_max), self._link_time.get(link, 0))
        self._link_time[link] = time
        self._push(time, _DELIVER, (source, target, payload))
        if self.rng.random() < self._duplicate:
            self._push(time, _DELIVER, (source, target, payload))

    def _ack_clients(self, node: SimNode, start: int) -> None:
        for zxid, payload in node.applied[start:]:
            write = self.pending.get(payload)
            if write is not None and write.server_id == node.server_id:
                del self.pending[payload]
                self.checker.acked_write(zxid, payload)
                self.trace.append((self.now, "acked", node.server_id, zxid, payload))

    # --- the world: faults and clients, once per tick ---------------------------------------

    def _world(self) -> bool:
        """Returns True when the run is over (liveness reached)."""
        self.tick += 1
        self._push(self.now + TICK_UNITS, _WORLD, None)
        if self.tick == self.options.safety_ticks:
            self._heal()
        if not self.liveness:
            self._faults()
            self._client_writes()
        self._client_retries()
        return self.liveness and self._converged()

    def _faults(self) -> None:
        rng, options = self.rng, self.options
        for sid, node in self.nodes.items():
            if node.replica is not None and rng.random() < options.crash:
                node.crash()
                self.trace.append((self.now, "crash", sid))
            elif node.replica is None and rng.random() < options.restart:
                self._restart(node)
            elif node.replica is not None and rng.random() < options.snapshot:
                node.take_snapshot()
        if rng.random() < options.partition:
            self._repartition()

    def _restart(self, node: SimNode) -> None:
        node.start()
        self.trace.append((self.now, "restart", node.server_id))
        self.checker.replaced(node.server_id, node.applied)
        self._handle(node)

    def _repartition(self) -> None:
        rng = self.rng
        self._blocked = set()
        if rng.random() < 0.3:
            self.trace.append((self.now, "heal"))
            return
        ids = sorted(self.nodes)
        side = {sid for sid in ids if rng.random() < 0.5}
        self._blocked = cut_links(ids, side, self.options.one_way)
        self.trace.append((self.now, "partition", tuple(sorted(side)), self.options.one_way))

    def _client_writes(self) -> None:
        rng = self.rng
        count = int(self.options.writes) + (1 if rng.random() < self.options.writes % 1 else 0)
        for _ in range(count):
            self._writes += 1
            payload = b"w%d" % self._writes
            self.pending[payload] = ClientWrite(payload, 0, self.tick)

    def _client_retries(self) -> None:
        """A client whose write is unacked (or never went anywhere) tries a random server."""
        up = [sid for sid in (self.core or tuple(self.nodes)) if self.nodes[sid].replica is not None]
        if not up:
            return
        chosen: dict[int, list[ClientWrite]] = {}
        for write in self.pending.values():
            if write.due_tick > self.tick:
                continue
            write.server_id = self.rng.choice(up)
            chosen.setdefault(write.server_id, []).append(write)
        for sid, writes in chosen.items():  # a server takes those it got in a turn together
            replica = self.nodes[sid].replica
            assert replica is not None
            if len(writes) == 1:
                went = int(replica.propose(writes[0].payload))
            else:
                went = replica.propose_many([write.payload for write in writes])
            for i, write in enumerate(writes):
                write.due_tick = self.tick + (8 if i < went else 2)
            self._handle(self.nodes[sid])

    # --- liveness ---------------------------------------------------------------------------

    def _heal(self) -> None:
        """Keep a core of at least a quorum of voters (and the observers) up and connected."""
        rng, config = self.rng, self.config
        size = rng.randint(config.quorum_size, len(config.voters))
        core = tuple(sorted(rng.sample(config.voters, size))) + config.observers
        self.core = core
        self.liveness = True
        self._blocked = set()
        self._loss = 0.0
        self._duplicate = 0.0
        self._delay_max = min(self._delay_max, TICK_UNITS // 2)
        for sid, node in self.nodes.items():
            if sid in core and node.replica is None:
                self._restart(node)
            elif sid not in core and node.replica is not None:
                node.crash()
        # A small zxid_counter_max forces a new epoch every that many writes: allow an election
        # (a few init limits) per that many writes still pending, on top of the base budget.
        epochs = len(self.pending) // self.config.zxid_counter_max
        self.end_tick += epochs * 3 * self.config.init_limit_ticks
        self.trace.append((self.now, "heal-core", core, len(self.pending), self.end_tick))

    def _converged(self) -> bool:
        if self.pending:
            return False
        statuses = [self.nodes[sid].replica for sid in self.core]
        leaders = [r.status() for r in statuses if r is not None and r.status().role == Role.LEADING]
        if len(leaders) != 1 or leaders[0].phase != Phase.BROADCAST:
            return False
        lead = leaders[0]
        if lead.zxid_committed != lead.zxid_last:
            return False
        for replica in statuses:
            if replica is None:
                return False
            status = replica.status()
            if (
                status.phase != Phase.BROADCAST
                or status.leader != lead.server_id
                or status.epoch != lead.epoch
            ):
                return False
            if status.zxid_applied != lead.zxid_committed:
                return False
        return True


def run_seed(
    seed: int,
    voters: int | None = None,
    observers: int | None = None,
    replica_class: type[Replica] = Replica,
    long: bool = False,
) -> Result:
    return Simulation(seed, options_for(seed, voters, observers, long), replica_class).run()


def format_trace(result: Result, last: int | None = 200) -> str:
    lines = [f"seed {result.seed}: {result.options}"]
    events = result.trace if last is None else result.trace[len(result.trace) - last :]
    lines.extend(" ".join(str(part) for part in event) for event in events)
    return "\n".join(lines)
