"""A correct ZooKeeper-like service simulated in one process, to make valid histories for the
checker's tests: a leader's txn log, followers that lag behind it, clients with sessions that
issue one request at a time over overlapping real-time intervals, some outcomes unknown, watches,
ephemerals and sequential names. Everything comes from the seed.

With `stale=False` every client talks to the leader, so every read is linearizable.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass, field

from checker.history import Kind, Op, Status, number

EPOCH = 1 << 32
REGISTER_ROOT, SEQ_PARENT, EPH_ROOT = "/r", "/seq", "/eph"
MIX = {"read": 30, "write": 15, "cas": 10, "watch": 10, "create_seq": 8, "ephemeral": 6, "exists": 8,
       "children": 5, "close": 2}  # fmt: skip
REGISTER_MIX = {"read": 50, "write": 30, "cas": 20}
WRITES = {"write", "cas", "create_seq", "ephemeral"}
START, EFFECT, COMPLETE = 0, 1, 2
AFTER_REPLY_S = 1e-7  # a watch event leaves after the reply the connection is already sending


@dataclass
class Config:
    """What to simulate; every field has a default small enough for a unit test."""

    clients: int = 4
    keys: int = 2
    ops: int = 200
    servers: int = 3
    stale: bool = True
    unknown_p: float = 0.05
    sync_p: float = 0.2
    latency_s: float = 0.002
    mix: dict[str, int] = field(default_factory=lambda: dict(MIX))


@dataclass
class _Client:
    process: int
    session: int
    server: int
    last_zxid: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    ephemerals: int = 0
    reply_at: float = 0.0  # when the reply to the request in flight reaches the client


@dataclass
class _Watch:
    client: _Client
    session: int
    path: str
    cls: str  # "data" or "child"
    server: int
    zxid: int  # the state it was left at


@dataclass
class _Request:
    """A request between its start and its completion; `fields` fill in as it runs."""

    client: _Client
    action: str
    kind: Kind
    key: str
    start: float
    fields: dict[str, object] = field(default_factory=dict)
    status: Status = Status.OK
    unknown: bool = False
    seen: int = 0  # the zxid the reply carries: the client's server must have it first


class Service:
    """The replicated tree. Each znode keeps its versions by zxid, so a lagging server reads the past."""

    def __init__(self, rng: random.Random, config: Config) -> None:
        self.rng, self.config = rng, config
        self.zxid = EPOCH
        self.applied = [EPOCH] * config.servers  # server 0 leads and is always up to date
        self.data: dict[str, list[tuple[int, str, int]]] = {}  # path -> [(zxid, value, version)]
        self.owners: dict[str, list[tuple[int, int]]] = {}  # ephemeral path -> [(zxid, owner or 0)]
        self.touches: list[tuple[int, str, str]] = []  # (zxid, path, event type), in zxid order
        self.watches: list[_Watch] = []
        self.sequence = 0
        self.sessions = 0x1000
        self.events: list[Op] = []
        self.now = 0.0

    def new_session(self) -> int:
        self.sessions += 1
        return self.sessions

    def commit(self, touches: list[tuple[str, str]]) -> int:
        self.zxid += 1
        self.applied[0] = self.zxid
        self.touches.extend((self.zxid, path, event) for path, event in touches)
        self.fire(0, self.zxid - 1, self.zxid)
        return self.zxid

    def data_at(self, path: str, zxid: int) -> tuple[int, str, int]:
        versions = self.data[path]
        return versions[bisect.bisect_right(versions, (zxid, "\uffff", 1 << 60)) - 1]

    def owner_at(self, path: str, zxid: int) -> tuple[int, int] | None:
        owners = self.owners.get(path, [])
        n = bisect.bisect_right(owners, (zxid, 1 << 60))
        return owners[n - 1] if n and owners[n - 1][1] else None

    def catch_up(self, server: int, zxid: int) -> None:
        before = self.applied[server]
        if zxid > before:
            self.applied[server] = zxid
            self.fire(server, before, zxid)

    def fire(self, server: int, before: int, upto: int) -> None:
        """Deliver the watches the server's clients left on what txns (before, upto] changed."""
        lo = bisect.bisect_right(self.touches, (before, "\uffff", "\uffff"))
        for zxid, path, event in self.touches[lo:]:
            if zxid > upto:
                break
            cls = "child" if event == "NodeChildrenChanged" else "data"
            for watch in [w for w in self.watches if (w.path, w.cls, w.server) == (path, cls, server)]:
                if zxid > watch.zxid:
                    self.watches.remove(watch)
                    client = watch.client
                    when = max(self.now, client.reply_at + AFTER_REPLY_S)
                    self.events.append(Op(client.process, Kind.WATCH_EVENT, path, Status.OK, when, when,
                                          session=watch.session, event=event, zxid=zxid))  # fmt: skip

    def drift(self) -> None:
        """Followers catch up a little, at random."""
        for server in range(1, self.config.servers):
            if self.applied[server] < self.zxid and self.rng.random() < 0.3:
                self.catch_up(server, min(self.zxid, self.applied[server] + self.rng.randint(1, 3)))


def simulate(seed: int, config: Config | None = None) -> list[Op]:
    """A valid history: setup creates, then `config.ops` requests from the clients, then the
    watch events, all numbered."""
    config = config or Config()
    rng = random.Random(seed)
    service = Service(rng, config)
    history = _setup(service, config)
    clients = [
        _Client(p, service.new_session(), rng.randrange(config.servers) if config.stale else 0)
        for p in range(1, config.clients + 1)
    ]
    queue: list[tuple[float, int, int, _Client | _Request]] = []
    for n, client in enumerate(clients):
        queue.append((0.001 + rng.random() * config.latency_s, n, START, client))
    heapq.heapify(queue)
    issued, tiebreak = 0, len(clients)
    while queue:
        now, _, phase, item = heapq.heappop(queue)
        service.now = now
        service.drift()
        tiebreak += 1
        if phase == START and isinstance(item, _Client) and issued < config.ops:
            issued += 1
            request = _begin(service, item, now)
            heapq.heappush(queue, (now + rng.expovariate(1 / config.latency_s), tiebreak, EFFECT, request))
        elif phase == EFFECT and isinstance(item, _Request):
            end = now + rng.expovariate(1 / config.latency_s)
            _effect(service, item)
            item.client.reply_at = end  # events raised from now on reach the client after the reply
            heapq.heappush(queue, (end, tiebreak, COMPLETE, item))
        elif phase == COMPLETE and isinstance(item, _Request):
            history.append(_complete(service, item, now))
            gap = rng.random() * config.latency_s
            heapq.heappush(queue, (now + gap, tiebreak, START, item.client))
    return number(history + service.events)


def _setup(service: Service, config: Config) -> list[Op]:
    ops = []
    for k in range(config.keys):
        key = f"{REGISTER_ROOT}/{k}"
        zxid = service.commit([(key, "NodeCreated")])
        service.data[key] = [(zxid, "0", 0)]
        ops.append(Op(0, Kind.CREATE, key, Status.OK, k * 1e-4, (k + 0.5) * 1e-4, session=1, value="0",
                      version=0, zxid=zxid))  # fmt: skip
    for server in range(config.servers):
        service.catch_up(server, service.zxid)
    return ops


KINDS = {"read": Kind.READ, "watch": Kind.READ, "write": Kind.WRITE, "cas": Kind.CAS,
         "create_seq": Kind.CREATE_SEQ, "ephemeral": Kind.CREATE_EPHEMERAL, "exists": Kind.EXISTS,
         "children": Kind.READ_CHILDREN, "close": Kind.CLOSE_SESSION}  # fmt: skip


def _begin(service: Service, client: _Client, now: float) -> _Request:
    rng, config = service.rng, service.config
    action = rng.choices(list(config.mix), list(config.mix.values()))[0]
    if action == "exists" and not service.owners:
        action = "read"
    key = f"{REGISTER_ROOT}/{rng.randrange(config.keys)}"
    if action == "create_seq":
        key = f"{SEQ_PARENT}/n-"
    elif action == "ephemeral":
        client.ephemerals += 1
        key = f"{EPH_ROOT}/{client.process}-{client.ephemerals}"
    elif action == "exists":
        key = rng.choice(sorted(service.owners))
    elif action == "children":
        key = EPH_ROOT
    elif action == "close":
        key = ""
    request = _Request(client, action, KINDS[action], key, now)
    request.unknown = action in WRITES and rng.random() < config.unknown_p
    if action == "write":
        request.fields["value"] = f"{client.process}-{rng.getrandbits(40):x}"
    elif action == "cas":
        request.fields.update(value=f"{client.process}-{rng.getrandbits(40):x}",
                              expected_version=client.versions.get(key, 0))  # fmt: skip
    elif action in ("read", "watch", "exists", "children"):
        request.fields["sync"] = config.stale and rng.random() < config.sync_p
        request.fields["watch"] = action == "watch" or (action != "read" and rng.random() < 0.5)
    return request


def _effect(service: Service, request: _Request) -> None:
    """The request takes effect now: a write commits at the leader, a read is served by the
    client's server (caught up to what the client has seen, or to the leader after a sync)."""
    if request.unknown and service.rng.random() < 0.5:
        return  # lost before it reached the leader
    client, key, f = request.client, request.key, request.fields
    if request.kind in (Kind.READ, Kind.EXISTS, Kind.READ_CHILDREN):
        server = client.server
        service.catch_up(server, max(client.last_zxid, service.zxid if f["sync"] else 0))
        request.seen = state = service.applied[server]
        f["zxid"] = state
        _serve_read(service, request, state)
        if f["watch"]:
            cls = "child" if request.kind is Kind.READ_CHILDREN else "data"
            service.watches.append(_Watch(client, client.session, key, cls, server, state))
    elif request.kind in (Kind.WRITE, Kind.CAS):
        zxid0, _, version = service.data[key][-1]
        if request.kind is Kind.CAS and f["expected_version"] != version:
            request.status = Status.FAIL
            return
        request.seen = zxid = service.commit([(key, "NodeDataChanged")])
        service.data[key].append((zxid, str(f["value"]), version + 1))
        f.update(version=version + 1, zxid=zxid)
    elif request.kind is Kind.CREATE_SEQ:
        service.sequence += 1
        path = f"{key}{service.sequence:010d}"
        request.seen = zxid = service.commit([(path, "NodeCreated"), (SEQ_PARENT, "NodeChildrenChanged")])
        f.update(path=path, zxid=zxid)
    elif request.kind is Kind.CREATE_EPHEMERAL:
        request.seen = zxid = service.commit([(key, "NodeCreated"), (EPH_ROOT, "NodeChildrenChanged")])
        service.owners.setdefault(key, []).append((zxid, client.session))
        f.update(path=key, zxid=zxid)
    else:
        _close(service, request)


def _serve_read(service: Service, request: _Request, state: int) -> None:
    f, key = request.fields, request.key
    if request.kind is Kind.READ:
        mzxid, value, version = service.data_at(key, state)
        f.update(value=value, version=version, mzxid=mzxid, owner=0)
    elif request.kind is Kind.EXISTS:
        owner = service.owner_at(key, state)
        f.update(exists=owner is not None)
        if owner is not None:
            f.update(owner=owner[1], mzxid=owner[0])
    else:
        live = [path for path in sorted(service.owners) if service.owner_at(path, state) is not None]
        f["children"] = tuple(path.rsplit("/", 1)[1] for path in live)


def _close(service: Service, request: _Request) -> None:
    client = request.client
    mine = [path for path in sorted(service.owners) if service.owners[path][-1][1] == client.session]
    touches = [(path, "NodeDeleted") for path in mine] + ([(EPH_ROOT, "NodeChildrenChanged")] if mine else [])
    request.seen = zxid = service.commit(touches)
    for path in mine:
        service.owners[path].append((zxid, 0))
    service.watches = [w for w in service.watches if w.session != client.session]
    if service.rng.random() < 0.7:
        request.fields["zxid"] = zxid
    if service.rng.random() < 0.3:
        request.kind = Kind.SESSION_EXPIRED


def _complete(service: Service, request: _Request, now: float) -> Op:
    client, f = request.client, request.fields
    status = Status.UNKNOWN if request.unknown else request.status
    if status is Status.OK:
        service.catch_up(client.server, request.seen)
        client.last_zxid = max(client.last_zxid, request.seen)
        if isinstance(f.get("version"), int):
            client.versions[request.key] = f["version"]  # type: ignore[assignment]
    if status is not Status.OK:
        f = {name: f[name] for name in ("value", "expected_version", "sync", "watch") if name in f}
    op = Op(client.process, request.kind, request.key, status, request.start, now, session=client.session,
            **f)  # type: ignore[arg-type]  # fmt: skip
    if request.kind in (Kind.CLOSE_SESSION, Kind.SESSION_EXPIRED):
        client.session = service.new_session()
        client.server = service.rng.randrange(service.config.servers) if service.config.stale else 0
        client.last_zxid, client.versions = 0, {}
    return op
