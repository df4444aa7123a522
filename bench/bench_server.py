"""The whole server's CPU per request, without sockets or disks: one voter (zkcore.server.Server
with the native read index and an in-memory log) taking a batch of 100 pipelined requests from
one connection and answering them all (group "server"). Divide a figure by 100 for one request.

What a real node spends on top is its sockets and its fsyncs; the harness (`python -m bench`)
measures that whole.

Run: python -m pytest bench/bench_server.py --benchmark-only -q
"""

from __future__ import annotations

from random import Random
from typing import Any

import pytest

from native import PathIndex
from zkcore import DataTree, MemoryLog
from zkcore._records import (
    OPEN_ACL_UNSAFE,
    ConnectRequest,
    CreateRequest,
    DeleteRequest,
    OpCode,
    PathWatchRequest,
    RequestHeader,
    SetDataRequest,
)
from zkcore.server import Server, ServerConfig
from zkcore.zab import Config

REQUESTS = 100
ZNODES = 1000
DATA = b"x" * 100
TICK_MS = 50


class OneServer:
    def __init__(self) -> None:
        config = ServerConfig(Config((1,), init_limit_ticks=10, sync_limit_ticks=5), tick_ms=TICK_MS)
        self.log = MemoryLog()
        tree = DataTree(PathIndex())
        self.server = Server(config, 1, rng=Random(1), storage=self.log, tree=tree, now_ms=0.0, wall_ms=1)
        self.replies = 0
        self.now = 0.0
        while not self.server.serving():
            self.now += TICK_MS
            self.server.tick(self.now, int(self.now))
            self.pump()
        self.server.receive("c", ConnectRequest(0, 0, 30_000, 0, bytes(16), False).encode())
        self.pump()
        frames = [request(1, OpCode.CREATE, CreateRequest("/b", b"", OPEN_ACL_UNSAFE, 0))]
        frames += [
            request(i + 2, OpCode.CREATE, CreateRequest(f"/b/n{i}", DATA, OPEN_ACL_UNSAFE, 0))
            for i in range(ZNODES)
        ]
        self.feed(frames)
        self.pump()

    def feed(self, frames: list[bytes]) -> None:
        frames = list(frames)
        while frames:
            del frames[: self.server.receive_frames("c", frames)]

    def pump(self) -> None:
        server = self.server
        while server.has_ready():
            ready = server.ready()
            if ready.entries:
                self.log.append(ready.entries)
            self.replies += len(ready.sends)
            server.advance(ready)
            if ready.entries:
                server.persisted(self.log.fsync())

    def run(self, frames: list[bytes]) -> None:
        before = self.replies
        self.feed(frames)
        self.pump()
        assert self.replies - before == len(frames)


def request(xid: int, opcode: int, record: Any) -> bytes:
    body: bytes = record.encode()
    return RequestHeader(xid, opcode).encode() + body


@pytest.fixture
def one() -> OneServer:
    return OneServer()


@pytest.mark.benchmark(group="server")
def test_100_pipelined_set_data(benchmark: Any, one: OneServer) -> None:
    frames = [
        request(i + 1, OpCode.SET_DATA, SetDataRequest(f"/b/n{i % ZNODES}", DATA, -1))
        for i in range(REQUESTS)
    ]
    benchmark(one.run, frames)


@pytest.mark.benchmark(group="server")
def test_50_pipelined_creates_then_their_deletes(benchmark: Any, one: OneServer) -> None:
    paths = [f"/b/n{i}/c" for i in range(REQUESTS // 2)]
    frames = [
        request(i + 1, OpCode.CREATE, CreateRequest(path, DATA, OPEN_ACL_UNSAFE, 0))
        for i, path in enumerate(paths)
    ]
    frames += [
        request(i + 1 + len(paths), OpCode.DELETE, DeleteRequest(path, -1)) for i, path in enumerate(paths)
    ]
    benchmark(one.run, frames)


@pytest.mark.benchmark(group="server")
def test_100_pipelined_get_data(benchmark: Any, one: OneServer) -> None:
    frames = [
        request(i + 1, OpCode.GET_DATA, PathWatchRequest(f"/b/n{i % ZNODES}", False)) for i in range(REQUESTS)
    ]
    benchmark(one.run, frames)
