"""A node's bind that finds its address taken says which address, what it is for and who holds
it (real sockets on this host, held by this very process)."""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator

import pytest
import zmq

from cluster._ports import binding, describe, port_of
from cluster._supervisor import node_args, node_command
from zkcore import LocalError


@pytest.fixture
def held() -> Iterator[int]:
    """A port of 127.0.0.1 that this process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_port_names_its_address_use_and_holder(held: int) -> None:
    with pytest.raises(LocalError) as caught, binding(f"127.0.0.1:{held}", "its port for ZooKeeper clients"):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the ZooKeeper door binds
            s.bind(("127.0.0.1", held))
    said = str(caught.value)
    assert said.startswith(
        f"127.0.0.1:{held} (its port for ZooKeeper clients) is taken by pid {os.getpid()}, "
    )
    assert "Address already in use" in said and "other ports in its config" in said


def test_zeromq_says_the_same(held: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    try:
        with pytest.raises(LocalError, match=f"is taken by pid {os.getpid()}"):
            with binding(f"tcp://127.0.0.1:{held}", "its port for ZeroMQ clients"):
                sock.bind(f"tcp://127.0.0.1:{held}")
    finally:
        sock.close(0)
        ctx.term()


def test_an_address_of_another_host_is_named_too() -> None:
    with pytest.raises(LocalError) as caught, binding("192.0.2.1:2181", "its port for ZooKeeper clients"):
        with socket.socket() as s:
            s.bind(("192.0.2.1", 2181))  # TEST-NET-1: no address of this host
    assert str(caught.value).startswith(
        "192.0.2.1:2181 (its port for ZooKeeper clients) is not an address of this host"
    )
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    try:
        with pytest.raises(LocalError, match="tcp://nohost.invalid:2888 .* is not an address of this host"):
            with binding("tcp://nohost.invalid:2888", "its port for the other servers"):
                sock.bind("tcp://nohost.invalid:2888")  # does not resolve: ZeroMQ says ENODEV
    finally:
        sock.close(0)
        ctx.term()


def test_other_bind_failures_pass_unchanged() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as caught, binding("127.0.0.1:0", "its port for ZooKeeper clients"):
            s.bind(("127.0.0.1", 0))  # bound already
    assert caught.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    "address, port",
    [("127.0.0.1:2181", 2181), ("tcp://10.0.0.2:2888", 2888), ("[::1]:2181", 2181),
     ("ipc:///tmp/d/run/1.client", None), ("shm:///tmp/d/run/1.peer", None)],
)  # fmt: skip
def test_port_of(address: str, port: int | None) -> None:
    assert port_of(address) == port


def test_a_node_is_described_by_its_id_and_config(tmp_path: object) -> None:
    cmdline = node_command(tmp_path / "ensemble.cfg", 2)  # type: ignore[operator]
    assert node_args(cmdline) == (tmp_path / "ensemble.cfg", 2)  # type: ignore[operator]
    assert node_args([sys.executable, "-m", "pytest"]) is None
    assert describe(os.getpid()).startswith(f"pid {os.getpid()}, ")
