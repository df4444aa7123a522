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

Each node keeps its files in `<dataDir>/node<id>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkcore import LocalError, limits

ROLES = ("participant", "observer")
IPC_PATH_BYTES_MAX = 100  # sun_path is 108 bytes on Linux, with its terminating NUL
_INT_KEYS = {
    "tickTime": "tick_ms",
    "initLimit": "init_limit_ticks",
    "syncLimit": "sync_limit_ticks",
    "snapCount": "snap_count",
    "maxDataBytes": "data_bytes_max",
    "maxClientRequests": "client_requests_max",
    "minSessionTimeout": "session_timeout_min_ms",
    "maxSessionTimeout": "session_timeout_max_ms",
    "containerCheckIntervalMs": "container_check_ms",
}


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
        for name, endpoint in (("peer", self.peer), ("client", self.client)):
            if not endpoint.startswith(("tcp://", "ipc://")):
                raise LocalError(f"server.{self.id} {name} endpoint must be tcp:// or ipc://: {endpoint!r}")

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
    data_bytes_max: int = limits.data_bytes_max
    client_requests_max: int = 1000
    session_timeout_min_ms: int = 4000
    session_timeout_max_ms: int = 40000
    # How often the leader deletes empty containers and expired TTL nodes (ZooKeeper's
    # znode.container.checkIntervalMs).
    container_check_ms: int = 60000
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        voters = [s for s in self.servers.values() if s.role == "participant"]
        if not voters:
            raise LocalError("an ensemble needs at least one participant (voting) server")
        if self.tick_ms < 1 or self.init_limit_ticks < 1 or self.sync_limit_ticks < 1:
            raise LocalError("tickTime, initLimit and syncLimit must be positive")
        if not 0 < self.session_timeout_min_ms <= self.session_timeout_max_ms:
            raise LocalError("need 0 < minSessionTimeout <= maxSessionTimeout (ms)")
        if not 0 < self.data_bytes_max <= limits.data_bytes_max * 16:
            raise LocalError(
                f"maxDataBytes must be in 1..{limits.data_bytes_max * 16}: {self.data_bytes_max}"
            )
        endpoints = [e for s in self.servers.values() for e in (s.peer, s.client, s.zk, s.admin) if e]
        if len(set(endpoints)) != len(endpoints):
            raise LocalError("every peer and client endpoint must be distinct")

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
        for key, attr in _INT_KEYS.items():
            lines.append(f"{key}={getattr(self, attr)}")
        lines.append(f"dataDir={self.data_dir}")
        lines += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        lines += [self.servers[i].line() for i in sorted(self.servers)]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.render())
        tmp.replace(path)


def parse_server(key: str, value: str, lineno: int) -> ServerConfig:
    try:
        server_id = int(key.split(".", 1)[1])
    except ValueError:
        raise LocalError(f"line {lineno}: server key must be server.<id>: {key!r}") from None
    role, *parts = [p.strip() for p in value.split(";")]
    fields: dict[str, str] = {}
    for part in parts:
        name, sep, endpoint = part.partition("=")
        if not sep or name not in ("peer", "client", "zk", "admin"):
            raise LocalError(
                f"line {lineno}: expected peer=<endpoint>, client=<endpoint>, zk=<host:port> or "
                f"admin=<host:port>, got {part!r}"
            )
        fields[name] = endpoint
    if not {"peer", "client"} <= set(fields):
        raise LocalError(f"line {lineno}: server.{server_id} needs both peer= and client= endpoints")
    return ServerConfig(server_id, role, fields["peer"], fields["client"], fields.get("zk", ""),
                        fields.get("admin", ""))  # fmt: skip


def parse(text: str) -> EnsembleConfig:
    """Parse a config file's text; errors name the line and the rule."""
    values: dict[str, object] = {}
    servers: dict[int, ServerConfig] = {}
    extra: dict[str, str] = {}
    data_dir: Path | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (s.strip() for s in line.partition("="))
        if not sep:
            raise LocalError(f"line {lineno}: expected key=value, got {raw.strip()!r}")
        if key.startswith("server."):
            server = parse_server(key, value, lineno)
            if server.id in servers:
                raise LocalError(f"line {lineno}: server.{server.id} is defined twice")
            servers[server.id] = server
        elif key in _INT_KEYS:
            try:
                values[_INT_KEYS[key]] = int(value)
            except ValueError:
                raise LocalError(f"line {lineno}: {key} must be an integer, got {value!r}") from None
        elif key == "dataDir":
            data_dir = Path(value)
        else:
            extra[key] = value
    if data_dir is None:
        raise LocalError("the config needs dataDir=<path>")
    return EnsembleConfig(servers, data_dir, extra=extra, **values)  # type: ignore[arg-type]


def load(path: Path | str) -> EnsembleConfig:
    return parse(Path(path).read_text())


def local_ensemble(
    data_dir: Path,
    voters: int,
    observers: int = 0,
    transport: str = "ipc",
    base_port: int = 2181,
    **options: Any,
) -> EnsembleConfig:
    """An ensemble on this host: ipc sockets under <data_dir>/run, or tcp on 127.0.0.1 from
    base_port (clients on base_port + i - 1, peers on base_port + 1000 + i - 1). Every server
    also gets ZooKeeper's TCP client port: base_port + i - 1 with ipc (2181, 2182, ... by
    default, as ZooKeeper's), base_port + 2000 + i - 1 with tcp; and an AdminServer (HTTP) on
    base_port + 6000 + i - 1 (8181, ... by default)."""
    if voters < 1 or observers < 0 or voters + observers > 255:
        raise LocalError(
            f"need 1..255 servers with at least one voter: {voters} voters, {observers} observers"
        )
    if transport not in ("ipc", "tcp"):
        raise LocalError(f"transport must be ipc or tcp: {transport!r}")
    data_dir = data_dir.resolve()
    servers = {}
    for i in range(1, voters + observers + 1):
        role = "participant" if i <= voters else "observer"
        if transport == "ipc":
            run = data_dir / "run"
            peer, client = f"ipc://{run}/{i}.peer", f"ipc://{run}/{i}.client"
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
        zk_port = base_port + i - 1 if transport == "ipc" else base_port + 2000 + i - 1
        admin_port = base_port + 6000 + i - 1
        servers[i] = ServerConfig(i, role, peer, client, f"127.0.0.1:{zk_port}", f"127.0.0.1:{admin_port}")
    return EnsembleConfig(servers, data_dir, **options)
