"""An address a node cannot bind, named with who holds it: "Address already in use" alone sends
the person at the keyboard hunting through `ss` for which of a node's ports it was and which
process has it (often another ensemble started on the same default ports)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import zmq

from cluster._supervisor import node_args
from cluster._zkdoor import parse_address
from zkcore import LocalError


@contextmanager
def binding(address: str, what: str) -> Iterator[None]:
    """Bind inside this: an address in use becomes a LocalError that names the address, what
    it is for, the process that holds it (when this user may see it) and the way out; so does
    an address that is not this host's (a server line naming another host, or none that
    resolves)."""
    try:
        yield
    except (OSError, zmq.ZMQError) as e:
        if e.errno == errno.EADDRINUSE:
            held = holder(port_of(address))
            raise LocalError(
                f"{address} ({what}) is taken{f' by {held}' if held else ''}: Address already in use. "
                "Stop what holds it, or give this server other ports in its config"
            ) from None
        if isinstance(e, socket.gaierror) or e.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
            reason = e.strerror if isinstance(e, OSError) else zmq.strerror(e.errno or 0)
            raise LocalError(
                f"{address} ({what}) is not an address of this host ({reason}): a server listens "
                "on the addresses its own server line names, so check that line, or start this server "
                "on the host it names (--ids)"
            ) from None
        raise


def port_of(address: str) -> int | None:
    """The TCP port of host:port, [v6]:port or tcp://host:port; None for anything else (ipc)."""
    scheme, sep, rest = address.partition("://")
    if sep and scheme != "tcp":
        return None
    try:
        return parse_address(rest if sep else address)[1]
    except ValueError:
        return None


def holder(port: int | None) -> str | None:
    """Who listens on this TCP port of this host ("pid N, what it is"), or None when no listener
    is found (or its owner is another user's, hidden from this one)."""
    if port is None:
        return None
    try:
        listening = [
            c.pid
            for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        ]
    except (psutil.Error, OSError):
        return None
    return describe(listening[0]) if listening else None


def describe(pid: int) -> str:
    """A process as a person would recognise it: a zkpy node by its server id and config."""
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        return f"pid {pid}"
    node = node_args(cmdline)
    if node is not None:
        return f"pid {pid}, zkpy node {node[1]} of {node[0]}"
    if any("zookeeper" in arg.lower() for arg in cmdline):
        return f"pid {pid}, Apache ZooKeeper"
    text = " ".join(cmdline)
    return f"pid {pid}, {text[:77] + '...' if len(text) > 80 else text}"
