"""Connect strings: a comma-separated list of ZeroMQ endpoints (`tcp://h:p`, `ipc:///path`, or a
bare `host:port` meaning tcp), optionally ending in a chroot as in ZooKeeper (`h1:p,h2:p/app`).
"""

from __future__ import annotations

from dataclasses import dataclass

from zkcore._errors import BadArgumentsError
from zkcore._paths import path_problem

DEFAULT_PORT = 2181
SCHEMES = ("tcp", "ipc", "inproc", "pgm", "epgm", "ws", "wss", "tipc", "vmci")


@dataclass(frozen=True, slots=True)
class ConnectString:
    """The endpoints to try, in the order given, and the chroot ('' when there is none)."""

    endpoints: tuple[str, ...]
    chroot: str = ""


def _tcp_endpoint(address: str, entry: str) -> tuple[str, str]:
    """`host[:port][/chroot]` -> (tcp endpoint, chroot)."""
    slash = address.find("/", address.rfind("]") + 1)
    hostport, chroot = (address, "") if slash < 0 else (address[:slash], address[slash:])
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise BadArgumentsError(f"IPv6 address must be in brackets, like [::1]:2181: {entry!r}")
        host, rest = hostport[: close + 1], hostport[close + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise BadArgumentsError(f"expected ':port' after the IPv6 address: {entry!r}")
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise BadArgumentsError(f"connect string entry has no host: {entry!r}")
    port = port or str(DEFAULT_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BadArgumentsError(f"port must be a number in 1..65535: {entry!r}")
    return f"tcp://{host}:{int(port)}", chroot


def parse_hosts(hosts: str) -> ConnectString:
    """Parse a connect string; raises BadArgumentsError naming the entry and the rule it breaks.
    Only the last entry may carry a chroot, and only a tcp one (an ipc endpoint is a path)."""
    if not isinstance(hosts, str):
        raise TypeError(f"hosts must be a str, got {type(hosts).__name__}")
    entries = [e.strip() for e in hosts.split(",")]
    if not any(entries):
        raise BadArgumentsError(f"connect string has no servers: {hosts!r}")
    endpoints: list[str] = []
    chroot = ""
    for i, entry in enumerate(entries):
        if not entry:
            raise BadArgumentsError(f"connect string has an empty entry: {hosts!r}")
        scheme, sep, address = entry.partition("://")
        if sep and scheme not in SCHEMES:
            raise BadArgumentsError(
                f"unknown ZeroMQ transport {scheme!r} in {entry!r} (one of {', '.join(SCHEMES)})"
            )
        if sep and scheme != "tcp":
            if not address:
                raise BadArgumentsError(f"endpoint has no address: {entry!r}")
            endpoints.append(entry)
            continue
        endpoint, root = _tcp_endpoint(address if sep else entry, entry)
        if root and i != len(entries) - 1:
            raise BadArgumentsError(f"only the last entry of a connect string may carry a chroot: {entry!r}")
        endpoints.append(endpoint)
        chroot = root
    if chroot:
        chroot = chroot.rstrip("/") if chroot != "/" else ""
        problem = path_problem(chroot) if chroot else None
        if problem is not None:
            raise BadArgumentsError(f"bad chroot in connect string {hosts!r}: {problem}")
    return ConnectString(tuple(dict.fromkeys(endpoints)), chroot)


def prefix_root(chroot: str, path: str) -> str:
    """The server's path for a client path under `chroot`."""
    if not chroot:
        return path
    return chroot if path == "/" else chroot + path


def strip_root(chroot: str, path: str) -> str:
    """The client's path for a server path under `chroot` (paths outside it are left alone)."""
    if not chroot or not path.startswith(chroot):
        return path
    rest = path[len(chroot) :]
    if not rest:
        return "/"
    return rest if rest.startswith("/") else path
