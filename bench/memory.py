"""Memory per znode, zkpy against Apache ZooKeeper 3.8: one server each, the same pipelined client
creating the same znodes through ZooKeeper's client protocol.

    python -m bench memory [--znodes 300000] [--data-bytes 100] [--services zookeeper,zkpy]

Each znode has 100 bytes of data and a 20-character path (/m/ and 17 characters). zkpy keeps
the whole tree in its server process, so its figure is the growth of the process's resident
memory (RSS) per znode. ZooKeeper's is the growth of its live Java heap after a full collection
(`jcmd <pid> GC.run`, then `GC.heap_info`), the figure its own sizing advice uses; its RSS growth
is shown beside it, though a JVM with -Xms set has its heap resident up front. The same run gives
the creates/s of one connection with OUTSTANDING creates in flight.

With --restart (zkpy), the server is then killed with kill -9 and timed until its supervisor has
it serving the whole tree again from its snapshot and log; its RSS per znode after the restart,
and a getData, a create and a delete answered on the restarted tree, go in the table too.

    python -m bench memory --znodes 10000000 --services zkpy --restart
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from tabulate import tabulate

from bench._services import Ours, Service, ZooKeeper, node_count
from bench.throughput import LENGTH, connect_frame, frame_starts, recv_frame, send_frame
from cluster.harness import wait_for
from cluster.progress import Progress
from zkcore import _records as rec

OUTSTANDING = 1000
OUTSTANDING_BYTES = 64 << 20  # big znodes: fewer in flight, or the load is mostly the copies
PARENT = "/m"


def path(i: int) -> str:
    return f"{PARENT}/{i:017d}"  # 20 characters in all


@contextmanager
def session(host: str) -> Iterator[socket.socket]:
    """A connection to host's ZooKeeper port with a new session on it."""
    address, port = host.rsplit(":", 1)
    with socket.create_connection((address, int(port)), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_frame(s, connect_frame())
        recv_frame(s)
        yield s


def create_all(host: str, count: int, data: bytes, progress: Progress) -> float:
    """Create count znodes under PARENT through one connection; the seconds it took."""
    outstanding = max(1, min(OUTSTANDING, OUTSTANDING_BYTES // max(1, len(data))))
    with session(host) as s:
        acl = rec.OPEN_ACL_UNSAFE
        send_frame(
            s,
            rec.RequestHeader(1, rec.OpCode.CREATE).encode()
            + rec.CreateRequest(PARENT, b"", acl, 0).encode(),
        )
        recv_frame(s)
        started = time.monotonic()
        sent = done = 0
        buf = b""
        while done < count:
            batch = []
            while sent < count and sent - done < outstanding:
                body = rec.RequestHeader(sent + 2, rec.OpCode.CREATE).encode()
                body += rec.CreateRequest(path(sent), data, acl, 0).encode()
                batch.append(LENGTH.pack(len(body)) + body)
                sent += 1
            if batch:
                s.sendall(b"".join(batch))
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"{host} closed the connection after {done} creates")
            buf += chunk
            starts, pos = frame_starts(buf)
            for start in starts:  # a reply header: xid, zxid, err
                err = int.from_bytes(buf[start + 12 : start + 16], "big", signed=True)
                if err != 0:
                    raise RuntimeError(f"a create failed on {host} with error {err}")
            done += len(starts)
            buf = buf[pos:]
            progress.update(created=f"{done:,} of {count:,}")
        return time.monotonic() - started


def java_live_heap(pid: int) -> int:
    """Bytes of live heap after a full collection, from jcmd."""
    subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True, timeout=120)
    out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], check=True, capture_output=True, text=True,
                         timeout=60).stdout  # fmt: skip
    used = re.search(r"used (\d+)K", out)
    if used is None:
        raise RuntimeError(f"no 'used' in jcmd GC.heap_info output:\n{out}")
    return int(used.group(1)) * 1024


def request(host: str, frames: list[bytes]) -> list[tuple[int, bytes]]:
    """Send requests on a new session and return each reply's (err, body), in order."""
    with session(host) as s:
        replies = []
        for frame in frames:
            send_frame(s, frame)
            reply = recv_frame(s)
            replies.append((int.from_bytes(reply[12:16], "big", signed=True), reply[16:]))
        return replies


def restart(service: Ours, znodes: int, data_bytes: int, rss0: int) -> dict[str, float]:
    """kill -9 the one server; the seconds until it serves every znode again, its RSS per znode
    after the restart (above rss0, a fresh server's), and proof that it serves: a getData of the
    last znode created returns its data, and a create and a delete succeed."""
    host = service.hosts[0]
    sid = service.harness.servers[0]
    old = service.harness.kill(sid)
    started = time.monotonic()
    wait_for(lambda: service.harness.pid(sid) not in (None, old), 60, "the supervisor to restart the server")
    wait_for(lambda: node_count(host) >= znodes + 2, 3600, "the restarted server to serve every znode")
    seconds = time.monotonic() - started
    pid = service.harness.pid(sid)
    assert pid is not None
    rss = psutil.Process(pid).memory_info().rss
    probe = f"{PARENT}/probe"
    replies = request(host, [
        rec.RequestHeader(1, rec.OpCode.GET_DATA).encode() + rec.PathWatchRequest(path(znodes - 1), False).encode(),
        rec.RequestHeader(2, rec.OpCode.CREATE).encode() + rec.CreateRequest(probe, b"p", rec.OPEN_ACL_UNSAFE, 0).encode(),
        rec.RequestHeader(3, rec.OpCode.DELETE).encode() + rec.DeleteRequest(probe, -1).encode(),
    ])  # fmt: skip
    errors = [err for err, _ in replies]
    if errors != [0, 0, 0]:
        raise RuntimeError(f"the restarted server answered getData, create, delete with errors {errors}")
    data = rec.GetDataResponse.decode(replies[0][1]).data
    if data != b"x" * data_bytes:
        raise RuntimeError(f"the restarted server returned {len(data)} bytes for {path(znodes - 1)}")
    return {"restart_s": seconds, "restart_rss_per_znode": (rss - rss0) / znodes}


def measure(service: Service, znodes: int, data_bytes: int, restart_after: bool) -> dict[str, float]:
    pid = service.pids()[0]
    java = isinstance(service, ZooKeeper)
    rss0 = psutil.Process(pid).memory_info().rss
    heap0 = java_live_heap(pid) if java else 0
    progress = Progress(f"{service.name}: {znodes:,} znodes", None)
    seconds = create_all(service.hosts[0], znodes, b"x" * data_bytes, progress)
    progress.done()
    wait_for(lambda: node_count(service.hosts[0]) >= znodes + 2, 60, "the server to count every znode")
    time.sleep(1.0)  # let a snapshot written meanwhile finish
    rss1 = psutil.Process(pid).memory_info().rss
    result = {"creates_s": znodes / seconds, "rss_per_znode": (rss1 - rss0) / znodes}
    if java:
        result["heap_per_znode"] = (java_live_heap(pid) - heap0) / znodes
    elif restart_after:
        assert isinstance(service, Ours)
        result.update(restart(service, znodes, data_bytes, rss0))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--znodes", type=int, default=300_000)
    p.add_argument("--data-bytes", type=int, default=100)
    p.add_argument("--services", default="zookeeper,zkpy")
    p.add_argument("--restart", action="store_true", help="then kill -9 zkpy's server and time its restart")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkmem") as tmp:
        for name in args.services.split(","):
            start = {"zookeeper": ZooKeeper, "zkpy": Ours}[name]
            service = start(Path(tmp) / name, 1, 0)
            try:
                r = measure(service, args.znodes, args.data_bytes, args.restart)
            finally:
                service.stop()
            per_znode = r.get("heap_per_znode", r["rss_per_znode"])
            rows.append([service.name, f"{args.znodes:,}", f"{r['creates_s']:,.0f}", f"{per_znode:,.0f}",
                         f"{r['rss_per_znode']:,.0f}"])  # fmt: skip
            if "restart_s" in r:
                rows[-1] += [f"{r['restart_s']:,.1f}", f"{r['restart_rss_per_znode']:,.0f}"]
    print(f"\n{args.znodes:,} znodes of {args.data_bytes} bytes, 20-character paths, one server, one "
          f"connection with {OUTSTANDING} creates in flight")  # fmt: skip
    headers = ["service", "znodes", "creates/s", "bytes per znode (ZK: live heap)", "RSS bytes per znode"]
    if args.restart:
        headers += ["restart after kill -9 (s)", "RSS bytes per znode after it"]
    print(tabulate(rows, headers=headers))


if __name__ == "__main__":
    main()
