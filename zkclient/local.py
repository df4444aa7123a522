"""Finding the ensemble when no connect string is given, as the CLI and `Client()` do: the
ZKPY_CONNECT environment variable, else the ensemble.cfg of a data dir (./zkpy-data, the
launcher's default, or the one named), else ZooKeeper's 127.0.0.1:2181.

Reads the config's server lines in both forms the launcher accepts (zkpy's
`participant;peer=...;client=<endpoint>` and zoo.cfg's `host:peer:election[:role][;[addr:]port]`)
without importing the server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from zkclient.admin import ZMTP_GREETING_FIRST, over_tcp

ENV_CONNECT = "ZKPY_CONNECT"
DEFAULT_DATA_DIR = "zkpy-data"
FALLBACK = "127.0.0.1:2181"
CONFIG_NAME = "ensemble.cfg"


def _client_endpoint(value: str, client_port: str) -> str | None:
    parts = [p.strip() for p in value.split(";")]
    for part in parts:
        if part.startswith("client="):
            return part[len("client=") :]
    host = parts[0].rsplit("]", 1)[0] + "]" if parts[0].startswith("[") else parts[0].split(":")[0]
    port = client_port
    if len(parts) > 1 and parts[1]:
        address, _, port = parts[1].rpartition(":")
        if address and address not in ("0.0.0.0", "[::]", "::"):
            host = address
    return f"tcp://{host}:{port}" if host and port.isdigit() else None


def connect_string_of(config_file: Path) -> str | None:
    """The connect string of the ensemble a config file describes (every server in id order),
    or None if it names no server."""
    servers: dict[int, str] = {}
    client_port = ""
    lines = [line.split("#", 1)[0].strip() for line in config_file.read_text().splitlines()]
    for line in lines:
        key, _, value = (x.strip() for x in line.partition("="))
        if key == "clientPort":
            client_port = value
    for line in lines:
        key, _, value = (x.strip() for x in line.partition("="))
        if key.startswith("server.") and key[7:].isdigit():
            endpoint = _client_endpoint(value, client_port)
            if endpoint:
                servers[int(key[7:])] = endpoint
    return ",".join(servers[i] for i in sorted(servers)) or None


class DefaultHosts(NamedTuple):
    hosts: str
    label: str  # a short name for them (a prompt's)
    fallback: bool  # nothing named or found: ZooKeeper's default address, for want of another


def default_hosts(data_dir: str | None = None) -> DefaultHosts:
    """The connect string to use: ZKPY_CONNECT, else data_dir's (or ./zkpy-data's) ensemble,
    else 127.0.0.1:2181. A data dir that was named but holds no ensemble is an error."""
    if data_dir is None:
        env = os.environ.get(ENV_CONNECT, "").strip()
        if env:
            return DefaultHosts(env, short_name(env), False)
    folder = Path(data_dir or DEFAULT_DATA_DIR)
    config_file = folder / CONFIG_NAME
    if config_file.is_file():
        hosts = connect_string_of(config_file)
        if hosts:
            return DefaultHosts(hosts, folder.resolve().name, False)
    if data_dir is not None:
        raise FileNotFoundError(f"--data-dir {data_dir}: no ensemble here (no {CONFIG_NAME} naming servers)")
    return DefaultHosts(FALLBACK, FALLBACK, True)


def short_name(hosts: str, width_max: int = 32) -> str:
    """A connect string short enough for a prompt: itself, or its first server and a count."""
    if len(hosts) <= width_max:
        return hosts
    entries = hosts.split(",")
    first = entries[0]
    if first.startswith("ipc://"):
        first = "ipc:…/" + "/".join(first.split("/")[-3:])
    return first + (f" +{len(entries) - 1}" if len(entries) > 1 else "")


def fallback_hint() -> tuple[bool, str]:
    """When no connect string was found (no ZKPY_CONNECT, no ./zkpy-data): (whether this client
    may find a server at 127.0.0.1:2181, what to tell the person when it does not). A local
    ensemble's 2181 is most often its ZooKeeper-protocol port, which this client (ZeroMQ) does
    not speak; asked `ruok`, that port answers in text, while a ZeroMQ one greets with 0xFF."""
    host, port = FALLBACK.split(":")
    answer = over_tcp(host, int(port), "ruok", 1.0)
    zeromq = answer is not None and answer[:1] in (b"", ZMTP_GREETING_FIRST)  # or it may be
    if answer is None:
        seen = f"nothing listens on {FALLBACK}"
    elif zeromq:
        seen = "no server there took the session"
    else:
        seen = (
            f"{FALLBACK} is a port for ZooKeeper's own clients (zkCli.sh, kazoo), as a local zkpy "
            "ensemble's is, and this client speaks ZeroMQ"
        )
    return zeromq, (
        f"no ensemble named (no {ENV_CONNECT}, no ./{DEFAULT_DATA_DIR}/{CONFIG_NAME} here), so "
        f"ZooKeeper's default address was tried, and {seen}. Name the ensemble: --data-dir D (the "
        f"launcher's), --server <its connect: line>, or {ENV_CONNECT}; or start one here: "
        "`zkpy --nodes 3 --detach`"
    )
