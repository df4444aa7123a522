"""Read throughput as servers are added, ours and Apache ZooKeeper's side by side on this host.

    python -m bench.throughput --servers 1,3,5 --seconds 5
    python -m bench.throughput --servers 1,3 --seconds 5 --zookeeper    # also Debian's ZooKeeper 3.8

Load: getData of 100-byte znodes from `--sessions` sessions spread evenly over the servers,
each keeping `--outstanding` requests in flight, driven by `--procs` generator processes that
send prebuilt frames and count replies (no decoding beyond the frame). Reads are answered by the
server a session is on, so on machines of their own N servers would serve N times the reads one
does. On one 2-core host every server shares the same cores, and the generator needs them too,
so the figure that carries over is the server CPU each read costs: `capacity` = servers x
1e6 / (server CPU-µs per read), the reads/s N servers with a core each would sustain.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import zmq
from tabulate import tabulate

from bench._services import ZK_CLASSPATH
from cluster.harness import Harness, wait_for
from cluster.progress import Progress
from zkcore import _records as rec

ZNODES = 1000
PAYLOAD = b"x" * 100
LENGTH = struct.Struct(">i")


def send_frame(sock: socket.socket, body: bytes) -> None:
    """One frame of ZooKeeper's TCP protocol: a 4-byte length, then the record."""
    sock.sendall(struct.pack(">i", len(body)) + body)


def recv_frame(sock: socket.socket) -> bytes:
    """The next frame of ZooKeeper's TCP protocol (blocking)."""
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        want = 4 - len(buf) if len(buf) < 4 else 4 + struct.unpack(">i", buf[:4])[0] - len(buf)
        chunk = sock.recv(want)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf[4:]


def read_frames(n: int) -> list[bytes]:
    return [
        rec.RequestHeader(i + 1, rec.OpCode.GET_DATA).encode()
        + rec.PathWatchRequest(f"/b/n{i % ZNODES}", False).encode()
        for i in range(n)
    ]


def mixed_frames(n: int, read_pct: int) -> list[bytes]:
    """n requests, read_pct % of them getData and the rest setData of 100 bytes, interleaved."""
    frames = read_frames(n)
    for i in range(n):
        if (i * read_pct) // 100 == ((i + 1) * read_pct) // 100:  # spreads the writes evenly
            frames[i] = rec.RequestHeader(i + 1, rec.OpCode.SET_DATA).encode() + rec.SetDataRequest(
                f"/b/n{i % ZNODES}", PAYLOAD, -1).encode()  # fmt: skip
    return frames


def connect_frame() -> bytes:
    return rec.ConnectRequest(0, 0, 30000, 0, bytes(16), False).encode()


# --- load generators (one process each) ------------------------------------------------------------


def zmq_connect(endpoints: list[str]) -> tuple[zmq.Context[zmq.Socket[bytes]], list[zmq.Socket[bytes]]]:
    """A session on each endpoint (ZeroMQ door), one DEALER socket each."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    socks = []
    for endpoint in endpoints:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        s.send(connect_frame())
        assert s.poll(10000), f"{endpoint} did not answer the connect"
        assert s.recv(), f"{endpoint} refused the session"
        socks.append(s)
    return ctx, socks


def zmq_drive(socks: list[zmq.Socket[bytes]], frames: list[bytes], start_at: float, warmup_s: float,
              seconds: float) -> int:  # fmt: skip
    """Keep len(frames) requests in flight on each socket from start_at; the replies that came in
    the `seconds` after the warm-up."""
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    time.sleep(max(0.0, start_at - time.time()))
    for s in socks:
        for f in frames:
            s.send(f, copy=False)
    done, outstanding = 0, len(frames)
    measure_from, end = start_at + warmup_s, start_at + warmup_s + seconds
    before = 0 if warmup_s <= 0 else None
    while (now := time.time()) < end:
        if before is None and now >= measure_from:
            before = done
        for s, _ in poller.poll(100):
            while True:
                try:
                    s.recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                done += 1
                s.send(frames[done % outstanding], copy=False)
    return done - (before or 0)


def zmq_generator(
    endpoints: list[str], outstanding: int, seconds: float, start_at: float, out: Any, read_pct: int = 100
) -> None:
    ctx, socks = zmq_connect(endpoints)
    out.put(zmq_drive(socks, mixed_frames(outstanding, read_pct), start_at, 0, seconds))
    ctx.destroy(linger=0)


def zmq_gated_generator(endpoints: list[str], outstanding: int, read_pct: int, warmup_s: float, seconds: float,
                        gate: Any, out: Any) -> None:  # fmt: skip
    """zmq_generator that says "ready" on out once connected, then takes its start time from gate."""
    ctx, socks = zmq_connect(endpoints)
    out.put("ready")
    start_at = gate.get(timeout=120)
    out.put(zmq_drive(socks, mixed_frames(outstanding, read_pct), start_at, warmup_s, seconds))
    ctx.destroy(linger=0)


def frame_starts(buf: bytes) -> tuple[list[int], int]:
    """Where each whole length-prefixed frame in `buf` begins (past its length), and where the
    unfinished rest begins."""
    starts, pos = [], 0
    while len(buf) - pos >= 4:
        (n,) = LENGTH.unpack_from(buf, pos)
        if len(buf) - pos - 4 < n:
            break
        starts.append(pos + 4)
        pos += 4 + n
    return starts, pos


def tcp_generator(endpoints: list[str], outstanding: int, seconds: float, start_at: float, out: Any) -> None:
    """The same load over ZooKeeper's TCP protocol (every frame after a 4-byte length)."""
    socks = []
    for endpoint in endpoints:
        host, port = endpoint.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_frame(s, connect_frame())
        recv_frame(s)
        s.setblocking(False)
        socks.append(s)
    frames = [LENGTH.pack(len(f)) + f for f in read_frames(outstanding)]
    pending = {s: b"" for s in socks}
    time.sleep(max(0.0, start_at - time.time()))
    for s in socks:
        s.setblocking(True)
        s.sendall(b"".join(frames))
        s.setblocking(False)
    import selectors

    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    done, end = 0, start_at + seconds
    while time.time() < end:
        for key, _ in sel.select(0.1):
            fileobj = key.fileobj
            assert isinstance(fileobj, socket.socket)
            s = fileobj
            try:
                buf = pending[s] + s.recv(1 << 20)
            except BlockingIOError:
                continue
            starts, pos = frame_starts(buf)
            replies = len(starts)
            pending[s] = buf[pos:]
            done += replies
            if replies:
                s.setblocking(True)
                s.sendall(b"".join(frames[(done - replies + i) % outstanding] for i in range(replies)))
                s.setblocking(False)
    out.put(done)
    for s in socks:
        s.close()


def drive(kind: str, endpoints: list[str], pids: list[int], args: argparse.Namespace) -> dict[str, float]:
    """Run the generators against the servers; reads/s and server CPU-µs per read."""
    sessions = [endpoints[i % len(endpoints)] for i in range(args.sessions)]
    target = zmq_generator if kind == "zkpy" else tcp_generator
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0
    procs = [
        ctx.Process(
            target=target, args=(sessions[i :: args.procs], args.outstanding, args.seconds, start_at, out)
        )
        for i in range(args.procs)
    ]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    servers = [psutil.Process(pid) for pid in pids]
    cpu0 = [sum(s.cpu_times()[:2]) for s in servers]
    progress = Progress(f"{kind}, {len(pids)} servers", args.seconds)
    while time.time() < start_at + args.seconds:
        progress.update()
        time.sleep(0.25)  # pacing the progress line; the generators time themselves
    progress.done()
    reads = sum(out.get(timeout=args.seconds + 60) for _ in procs)
    cpu = sum(sum(s.cpu_times()[:2]) - c for s, c in zip(servers, cpu0, strict=True))
    for p in procs:
        p.join(timeout=10)
    return {"reads_s": reads / args.seconds, "cpu_us": cpu * 1e6 / max(reads, 1)}


# --- the two services -------------------------------------------------------------------------------


def populate(e: Harness, parent: str, count: int) -> None:
    """Create `parent` and `count` children of it holding PAYLOAD, through the leader."""
    from cluster.wire import WireSession

    s = WireSession(e.endpoint(wait_for(e.leader, 30, "a leader")))  # type: ignore[arg-type]
    s.create(parent)
    for i in range(count):
        s.create(f"{parent}/n{i}", PAYLOAD)
    s.close()


def zkpy_run(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    e = Harness(tmp / f"zkpy{n}", n)
    try:
        populate(e, "/b", ZNODES)
        pids = [e.pid(sid) for sid in e.servers]
        wait_for(lambda: all(e.mntr(sid).get("zk_znode_count") == e.mntr(e.servers[0]).get("zk_znode_count")
                             for sid in e.servers), 30, "every server to have every znode")  # fmt: skip
        return drive("zkpy", [e.endpoint(sid) for sid in e.servers], [p for p in pids if p], args)
    finally:
        e.stop()


def zookeeper_run(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    base = 22000
    procs = []
    root = tmp / f"zk{n}"
    try:
        for i in range(1, n + 1):
            d = root / str(i)
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            lines = ["tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}",
                     f"clientPort={base + i}", "clientPortAddress=127.0.0.1", "admin.enableServer=false",
                     "4lw.commands.whitelist=*", "maxClientCnxns=0"]  # fmt: skip
            if n > 1:
                lines += [f"server.{j}=127.0.0.1:{base + 100 + j}:{base + 200 + j}" for j in range(1, n + 1)]
            (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
            log = open(d / "out.log", "wb")  # noqa: SIM115 - the child keeps it
            procs.append(subprocess.Popen(
                ["java", "-Xmx512m", "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 str(d / "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        endpoints = [f"127.0.0.1:{base + i}" for i in range(1, n + 1)]
        wait_for(lambda: all(_zk_serving(ep) for ep in endpoints), 90, "ZooKeeper to serve")
        _zk_load(endpoints[0])
        return drive("zookeeper", endpoints, [p.pid for p in procs], args)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=30)


def _zk_serving(endpoint: str) -> bool:
    host, port = endpoint.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.sendall(b"srvr")
            return b"Mode:" in s.recv(4096)
    except OSError:
        return False


def _zk_load(endpoint: str) -> None:
    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        send_frame(s, connect_frame())
        recv_frame(s)
        paths = ["/b"] + [f"/b/n{i}" for i in range(ZNODES)]
        for xid, path in enumerate(paths, 1):
            data = b"" if path == "/b" else PAYLOAD
            f = rec.RequestHeader(xid, rec.OpCode.CREATE).encode() + rec.CreateRequest(
                path, data, rec.OPEN_ACL_UNSAFE, 0).encode()  # fmt: skip
            send_frame(s, f)
        for _ in paths:
            recv_frame(s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="1,3,5", help="ensemble sizes to measure (default 1,3,5)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--sessions", type=int, default=12)
    p.add_argument("--outstanding", type=int, default=100, help="requests in flight per session")
    p.add_argument("--procs", type=int, default=2, help="load generator processes")
    p.add_argument("--zookeeper", action="store_true", help="also measure Apache ZooKeeper (Debian's 3.8)")
    args = p.parse_args()
    if args.zookeeper and not shutil.which("java"):
        raise SystemExit("--zookeeper needs java and Debian's zookeeper package")
    rows = []
    with tempfile.TemporaryDirectory(prefix="zktp") as tmp:
        for n in (int(x) for x in args.servers.split(",")):
            kinds = [("zkpy", zkpy_run)] + ([("ZooKeeper 3.8", zookeeper_run)] if args.zookeeper else [])
            for name, run in kinds:
                r = run(n, args, Path(tmp))
                capacity = n * 1e6 / r["cpu_us"] if r["cpu_us"] else 0
                rows.append([name, n, f"{r['reads_s']:,.0f}", f"{r['cpu_us']:.1f}", f"{capacity:,.0f}"])
                print(tabulate([rows[-1]], tablefmt="plain"), flush=True)
    print(f"\n{os.cpu_count()} cores; {args.sessions} sessions x {args.outstanding} outstanding; "
          f"{args.procs} generator processes; {args.seconds:.0f}s each")  # fmt: skip
    print(
        tabulate(
            rows, headers=["service", "servers", "reads/s here", "server CPU-µs/read", "capacity reads/s"]
        )
    )


if __name__ == "__main__":
    main()
