"""The ensemble's config file: one file, in zoo.cfg's key=value style, read by every node and
written by the launcher. ZeroMQ endpoints replace ZooKeeper's host:port pairs.

    tickTime=50
    initLimit=40
    syncLimit=10
    snapCount=100000
    maxDataBytes=1048576
    dataDir=/var/lib/zkpy
    server.1=participant;peer=tcp://10.0.0.1:2888;client=tcp://10.0.0.1:2181
    server.6=observer;peer=ipc:///var/lib/zkpy/run/6.peer;client=ipc:///var/lib/zkpy/run/6.client

A peer endpoint may also be `shm:///<absolute path>`: peer traffic through shared-memory rings
(cluster/_shm_transport.py), for an ensemble whose servers all run on one host, all on shm.
Each node keeps its files in `<dataDir>/node<id>`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkcore import LocalError, limits

ROLES = ("participant", "observer")
TRANSPORTS = ("ipc", "tcp", "shm")  # shm: peers through shared memory, clients over ipc
# Peers on one host go through shared memory by default: on a quiet 2-core host it carried 0-10 %
# more writes at 4-13 % less CPU per write than ipc, and unloaded creates through a follower took
# 2.1-2.6 ms against 2.8 (docs/operations.md).
TRANSPORT_DEFAULT = "shm"
IPC_PATH_BYTES_MAX = 100  # sun_path is 108 bytes on Linux, with its terminating NUL
# key -> (EnsembleConfig field, smallest allowed, largest allowed)
_INT_KEYS: dict[str, tuple[str, int, int]] = {
    "tickTime": ("tick_ms", 1, 60_000),
    "initLimit": ("init_limit_ticks", 1, 100_000),
    "syncLimit": ("sync_limit_ticks", 1, 100_000),
    "snapCount": ("snap_count", 2, 2**31 - 1),
    # A snapshot also after this many KiB of txns (0: only snapCount); see zkcore's ServerConfig.
    "snapSizeLimitInKb": ("snap_size_limit_kb", 0, 2**40),
    # Txns a leader sends a learner behind it as a DIFF; further behind, the whole tree (SNAP).
    "diffEntriesMax": ("diff_entries_max", 0, limits.zab_diff_entries_max),
    "maxDataBytes": ("data_bytes_max", 1, limits.data_bytes_max * 16),
    "maxClientRequests": ("client_requests_max", 1, 1_000_000),
    "minSessionTimeout": ("session_timeout_min_ms", 1, 2**31 - 1),
    "maxSessionTimeout": ("session_timeout_max_ms", 1, 2**31 - 1),
    "containerCheckIntervalMs": ("container_check_ms", 1, 2**31 - 1),
    # ZooKeeper's autopurge: how many snapshots (and the log they need) to keep, and how many
    # hours at least between purges (0: after every snapshot).
    "autopurge.snapRetainCount": ("snap_retain_count", 3, 1000),
    "autopurge.purgeInterval": ("purge_interval_hours", 0, 24 * 365),
    # A busy node's shortest loop turn, in microseconds (0: none); see coalesce_us below.
    "coalesceMicros": ("coalesce_us", 0, 10_000),
    "coalescePipelinedMicros": ("coalesce_pipelined_us", 0, 10_000),
}
# Free-form keys zkpy reads (kept in `extra`). serverClass (module:Class) runs a Server
# subclass: the verifier's deliberately broken servers (verify/broken.py), never production.
_TEXT_KEYS = ("serverClass", "sessionSecret", "maxClientCnxns")
# zoo.cfg keys an operator may bring that mean nothing here: accepted, listed in `ignored`.
# clientPort and clientPortAddress are read for server lines without a client part.
ZOOKEEPER_KEYS_IGNORED = (
    "clientPort", "clientPortAddress", "secureClientPort", "dataLogDir",
    "4lw.commands.whitelist", "admin.enableServer", "admin.serverPort", "standaloneEnabled",
    "reconfigEnabled", "quorumListenOnAllIPs", "electionAlg", "peerType", "syncEnabled",
    "metricsProvider.className", "metricsProvider.httpPort", "preAllocSize", "globalOutstandingLimit",
    "leaderServes", "cnxTimeout", "forceSync", "skipACL",
)  # fmt: skip
KNOWN_KEYS = (*_INT_KEYS, *_TEXT_KEYS, "dataDir", *ZOOKEEPER_KEYS_IGNORED)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    id: int
    role: str
    peer: str
    client: str
    zk: str = ""  # host:port of ZooKeeper's own TCP client protocol; empty: no such port
    admin: str = ""  # host:port of the AdminServer (HTTP: /commands/<name>, /metrics); empty: off

    def __post_init__(self) -> None:
        if not 1 <= self.id <= 255:
            raise LocalError(f"server id must be in 1..255: {self.id}")
        if self.role not in ROLES:
            raise LocalError(f"server.{self.id} role must be one of {ROLES}: {self.role!r}")
        if not self.client.startswith(("tcp://", "ipc://")):
            raise LocalError(f"server.{self.id} client endpoint must be tcp:// or ipc://: {self.client!r}")
        if not self.peer.startswith(("tcp://", "ipc://", "shm://")):
            raise LocalError(
                f"server.{self.id} peer endpoint must be tcp://, ipc:// or shm://: {self.peer!r}"
            )
        if self.peer.startswith("shm://") and not self.peer.startswith("shm:///"):
            raise LocalError(
                f"server.{self.id} peer endpoint shm:// needs an absolute path, shm:///...: {self.peer!r}"
            )
        for name, address in (("zk", self.zk), ("admin", self.admin)):
            host, sep, port = address.rpartition(":")
            if address and (not sep or not port.isdigit() or not 0 < int(port) < 65536):
                raise LocalError(f"server.{self.id} {name} address must be host:port: {address!r}")

    def line(self) -> str:
        zk = f";zk={self.zk}" if self.zk else ""
        admin = f";admin={self.admin}" if self.admin else ""
        return f"server.{self.id}={self.role};peer={self.peer};client={self.client}{zk}{admin}"


@dataclass(frozen=True, slots=True)
class EnsembleConfig:
    servers: dict[int, ServerConfig]
    data_dir: Path
    # 50 ms ticks and a 10-tick sync limit: a dead leader is noticed in 0.5 s and replaced in
    # well under a second (bench/failover.py). Sessions are bounded on their own, in ms, with
    # ZooKeeper's effective defaults (2 and 20 times its 2 s tickTime).
    tick_ms: int = 50
    init_limit_ticks: int = 40
    sync_limit_ticks: int = 10
    snap_count: int = 100_000
    snap_size_limit_kb: int = 256 * 1024
    diff_entries_max: int = limits.zab_diff_entries_max
    data_bytes_max: int = limits.data_bytes_max
    client_requests_max: int = 1000
    session_timeout_min_ms: int = 4000
    session_timeout_max_ms: int = 40000
    # How often the leader deletes empty containers and expired TTL nodes (ZooKeeper's
    # znode.container.checkIntervalMs).
    container_check_ms: int = 60000
    snap_retain_count: int = 3
    purge_interval_hours: int = 0
    # While readers keep a node busy, a loop turn that answered several reads (and took no
    # other request) is followed by a nap until this long after it began: the reads that come
    # in meanwhile are taken with one recv and answered with one write per connection
    # (docs/operations.md, "Busy nodes coalesce reads").
    coalesce_us: int = 100
    # The longest nap after a turn whose reads came pipelined, two or more from a connection
    # on the whole (its clients do not await each reply): 20 µs a connection, or a quarter of
    # the time between two answers to a connection when the clients pace themselves.
    coalesce_pipelined_us: int = 2000
    extra: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = field(default=(), compare=False)  # zoo.cfg keys that mean nothing here

    def __post_init__(self) -> None:
        voters = [s for s in self.servers.values() if s.role == "participant"]
        if not voters:
            raise LocalError(
                "an ensemble needs at least one participant (voting) server: add a line like "
                "server.1=participant;peer=tcp://10.0.0.1:2888;client=tcp://10.0.0.1:2181"
            )
        if self.tick_ms < 1 or self.init_limit_ticks < 1 or self.sync_limit_ticks < 1:
            raise LocalError("tickTime, initLimit and syncLimit must be positive")
        if not 0 < self.session_timeout_min_ms <= self.session_timeout_max_ms:
            raise LocalError(
                f"minSessionTimeout={self.session_timeout_min_ms} must be at most "
                f"maxSessionTimeout={self.session_timeout_max_ms} (both in ms, above 0)"
            )
        if not 0 < self.data_bytes_max <= limits.data_bytes_max * 16:
            raise LocalError(
                f"maxDataBytes must be in 1..{limits.data_bytes_max * 16}: {self.data_bytes_max}"
            )
        shm = sorted(i for i, s in self.servers.items() if s.peer.startswith("shm://"))
        if shm and len(shm) != len(self.servers):
            others = sorted(set(self.servers) - set(shm))
            raise LocalError(
                f"shm:// peer endpoints work only when every server uses them (one host): servers {shm} "
                f"do, {others} do not"
            )
        endpoints = [e for s in self.servers.values() for e in (s.peer, s.client, s.zk, s.admin) if e]
        twice = sorted({e for e in endpoints if endpoints.count(e) > 1})
        if twice:
            raise LocalError(
                f"every peer and client endpoint must be distinct: {', '.join(twice)} is used twice"
            )

    @property
    def voters(self) -> list[int]:
        return sorted(i for i, s in self.servers.items() if s.role == "participant")

    @property
    def observers(self) -> list[int]:
        return sorted(i for i, s in self.servers.items() if s.role == "observer")

    def node_dir(self, server_id: int) -> Path:
        return self.data_dir / f"node{server_id}"

    def connect_string(self) -> str:
        return ",".join(self.servers[i].client for i in sorted(self.servers))

    def zk_connect_string(self) -> str:
        """host:port,... of the ZooKeeper-protocol ports, for ZooKeeper's own clients."""
        return ",".join(self.servers[i].zk for i in sorted(self.servers) if self.servers[i].zk)

    def render(self) -> str:
        lines = ["# zkpy ensemble config (zoo.cfg style; endpoints are ZeroMQ addresses)"]
        for key, (attr, _, _) in _INT_KEYS.items():
            lines.append(f"{key}={getattr(self, attr)}")
        lines.append(f"dataDir={self.data_dir}")
        lines += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        lines += [self.servers[i].line() for i in sorted(self.servers)]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.render())
        tmp.replace(path)


class _ConfigError(LocalError):
    """A config problem found while parsing one line (parse() adds the file and the line)."""


def _zoo_server(server_id: int, value: str, client_port: int | None) -> ServerConfig:
    """ZooKeeper's `host:peerPort:electionPort[:role][;[clientAddress:]clientPort]`. Zab's
    election shares the peer port, so the election port carries our ZeroMQ client protocol, and
    the client port speaks ZooKeeper's own, as it did."""
    address, _, client_part = (p.strip() for p in value.partition(";"))
    if address.startswith("["):  # [v6]:peer:election
        host, _, rest = address[1:].partition("]")
        host, parts = f"[{host}]", rest.lstrip(":").split(":")
    else:
        host, *parts = address.split(":")
    role = "participant"
    if len(parts) == 3:
        role = parts.pop()
    if len(parts) != 2 or not host or not all(p.isdigit() and 0 < int(p) < 65536 for p in parts):
        raise _ConfigError(
            f"server.{server_id}={value!r}: expected host:peerPort:electionPort[:participant|observer]"
            "[;[clientAddress:]clientPort] (zoo.cfg) or participant;peer=<endpoint>;client=<endpoint>"
        )
    if client_part:
        client_host, sep, port_text = client_part.rpartition(":")
        if not sep:
            client_host = ""
        if client_host in ("", "0.0.0.0", "[::]", "::"):
            client_host = host  # listening everywhere: clients reach it by the server's name
    else:
        client_host, port_text = host, "" if client_port is None else str(client_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _ConfigError(
            f"server.{server_id}={value!r}: no client port; add ';<clientPort>' to the line or "
            "clientPort=<port> to the file"
        )
    return ServerConfig(server_id, role, f"tcp://{host}:{parts[0]}", f"tcp://{host}:{parts[1]}",
                        f"{client_host}:{port_text}")  # fmt: skip


def parse_server(key: str, value: str, client_port: int | None = None) -> ServerConfig:
    try:
        server_id = int(key.split(".", 1)[1])
    except ValueError:
        raise _ConfigError(f"{key}: a server key must be server.<id>, id in 1..255") from None
    if not 1 <= server_id <= 255:
        raise _ConfigError(f"{key}: server id must be in 1..255, got {server_id}")
    if "peer=" not in value and "client=" not in value:
        return _zoo_server(server_id, value, client_port)
    role, *parts = [p.strip() for p in value.split(";")]
    fields: dict[str, str] = {}
    for part in parts:
        name, sep, endpoint = part.partition("=")
        if not sep or name not in ("peer", "client", "zk", "admin"):
            raise _ConfigError(
                f"{key}: expected peer=<endpoint>, client=<endpoint>, zk=<host:port> or admin=<host:port>, "
                f"got {part!r}"
            )
        fields[name] = endpoint
    if not {"peer", "client"} <= set(fields):
        raise _ConfigError(f"server.{server_id} needs both peer= and client= endpoints: {value!r}")
    try:
        return ServerConfig(server_id, role, fields["peer"], fields["client"], fields.get("zk", ""),
                            fields.get("admin", ""))  # fmt: skip
    except LocalError as e:
        raise _ConfigError(str(e)) from None


def _int_value(key: str, value: str) -> int:
    attr, lo, hi = _INT_KEYS[key]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not lo <= number <= hi:
        raise _ConfigError(f"{key}={value}: must be an integer in {lo}..{hi}")
    return number


def _unknown_key(key: str) -> _ConfigError:
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.6)
    hint = (
        f"did you mean {close[0]}?"
        if close
        else "known keys: " + ", ".join((*_INT_KEYS, *_TEXT_KEYS, "dataDir", "server.<id>"))
    )
    return _ConfigError(f"unknown key {key!r}; {hint}")


def parse(text: str, source: str = "config") -> EnsembleConfig:
    """Parse a config file's text; every error names the source, the line, the value and what is
    allowed: `ensemble.cfg:3: tickTme: unknown key; did you mean tickTime?`."""
    values: dict[str, int] = {}
    server_lines: list[tuple[int, str, str]] = []
    extra: dict[str, str] = {}
    ignored: dict[str, str] = {}
    data_dir: Path | None = None
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (s.strip() for s in line.partition("="))
        try:
            if not sep:
                raise _ConfigError(f"expected key=value, got {raw.strip()!r}")
            if key in seen:
                raise _ConfigError(f"{key} is set twice (first on line {seen[key]})")
            seen[key] = lineno
            if key.startswith("server."):
                server_lines.append((lineno, key, value))
            elif key in _INT_KEYS:
                values[_INT_KEYS[key][0]] = _int_value(key, value)
            elif key == "dataDir":
                if not value:
                    raise _ConfigError("dataDir=: needs a folder")
                data_dir = Path(value)
            elif key in _TEXT_KEYS:
                extra[key] = value
            elif key in ZOOKEEPER_KEYS_IGNORED:
                ignored[key] = value
            else:
                raise _unknown_key(key)
        except _ConfigError as e:
            raise LocalError(f"{source}:{lineno}: {e}") from None
    client_port = int(ignored["clientPort"]) if ignored.get("clientPort", "").isdigit() else None
    servers: dict[int, ServerConfig] = {}
    for lineno, key, value in server_lines:
        try:
            server = parse_server(key, value, client_port)
        except _ConfigError as e:
            raise LocalError(f"{source}:{lineno}: {e}") from None
        servers[server.id] = server
    if data_dir is None:
        raise LocalError(f"{source}: the config needs dataDir=<path> (where each node keeps node<id>/)")
    try:
        used = {"clientPort"}  # read above, for server lines without a client part
        return EnsembleConfig(servers, data_dir, extra=extra, ignored=tuple(k for k in ignored if k not in used),
                              **values)  # fmt: skip
    except LocalError as e:
        raise LocalError(f"{source}: {e}") from None


def load(path: Path | str) -> EnsembleConfig:
    """Read and parse a config file; a LocalError naming the file if it cannot be read."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LocalError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise LocalError(f"{path}: is a folder, not a config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LocalError(f"{path}: cannot read the config: {getattr(e, 'strerror', None) or e}") from None
    return parse(text, str(path))


BASE_PORT_DEFAULT = 2181  # ZooKeeper's client port
ADMIN_PORT_OFFSET = 6000  # a local ensemble's AdminServers: 8181, ... by default (ZooKeeper's is 8080)


def local_ensemble(
    data_dir: Path,
    voters: int,
    observers: int = 0,
    transport: str = TRANSPORT_DEFAULT,
    base_port: int = BASE_PORT_DEFAULT,
    **options: Any,
) -> EnsembleConfig:
    """An ensemble on this host: ipc sockets under <data_dir>/run; or shm, the same with peers
    through shared-memory rings (their FIFOs under <data_dir>/run, their rings in /dev/shm); or
    tcp on 127.0.0.1 from base_port (clients on base_port + i - 1, peers on base_port + 1000 +
    i - 1). Every server also gets ZooKeeper's TCP client port: base_port + i - 1 with ipc and
    shm (2181, 2182, ... by default, as ZooKeeper's), base_port + 2000 + i - 1 with tcp; and an
    AdminServer (HTTP) on base_port + 6000 + i - 1 (8181, ... by default)."""
    if voters < 1 or observers < 0 or voters + observers > 255:
        raise LocalError(
            f"need 1..255 servers with at least one voter: {voters} voters, {observers} observers"
        )
    if transport not in TRANSPORTS:
        raise LocalError(f"transport must be one of {', '.join(TRANSPORTS)}: {transport!r}")
    data_dir = data_dir.resolve()
    servers = {}
    for i in range(1, voters + observers + 1):
        role = "participant" if i <= voters else "observer"
        if transport in ("ipc", "shm"):
            run = data_dir / "run"
            peer, client = f"{transport}://{run}/{i}.peer", f"ipc://{run}/{i}.client"
            if len(client) - len("ipc://") > IPC_PATH_BYTES_MAX:
                raise LocalError(
                    f"ipc socket path {client[6:]!r} is longer than {IPC_PATH_BYTES_MAX} bytes, the "
                    "limit for Unix sockets: use a shorter --data-dir or --transport tcp"
                )
        else:
            peer, client = (
                f"tcp://127.0.0.1:{base_port + 1000 + i - 1}",
                f"tcp://127.0.0.1:{base_port + i - 1}",
            )
        zk_port = base_port + 2000 + i - 1 if transport == "tcp" else base_port + i - 1
        admin_port = base_port + ADMIN_PORT_OFFSET + i - 1
        servers[i] = ServerConfig(i, role, peer, client, f"127.0.0.1:{zk_port}", f"127.0.0.1:{admin_port}")
    return EnsembleConfig(servers, data_dir, **options)
