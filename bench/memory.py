"""Memory per znode, zkpy against Apache ZooKeeper 3.8: one server each, the same pipelined client
creating the same znodes through ZooKeeper's client protocol.

    python -m bench memory [--znodes 300000] [--data-bytes 100] [--services zookeeper,zkpy]

Each znode has 100 bytes of data and a 20-character path (/m/ and 17 characters). zkpy keeps
the whole tree in its server process, so its figure is the growth of the process's resident
memory (RSS) per znode. ZooKeeper's is the growth of its live Java heap after a full collection
(`jcmd <pid> GC.run`, then `GC.heap_info`), the figure its own sizing advice uses; its RSS growth
is shown beside it, though a JVM with -Xms set has its heap resident up front. The same run gives
the creates/s of one connection with OUTSTANDING creates in flight.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from tabulate import tabulate

from bench._services import Ours, Service, ZooKeeper, node_count
from bench.throughput import LENGTH, connect_frame, frame_starts, recv_frame, send_frame
from cluster.harness import wait_for
from cluster.progress import Progress
from zkcore import _records as rec

OUTSTANDING = 1000
PARENT = "/m"


def path(i: int) -> str:
    return f"{PARENT}/{i:017d}"  # 20 characters in all


def create_all(host: str, count: int, data: bytes, progress: Progress) -> float:
    """Create count znodes under PARENT through one connection; the seconds it took."""
    address, port = host.rsplit(":", 1)
    with socket.create_connection((address, int(port)), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_frame(s, connect_frame())
        recv_frame(s)
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
            while sent < count and sent - done < OUTSTANDING:
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


def measure(service: Service, znodes: int, data_bytes: int) -> dict[str, float]:
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
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--znodes", type=int, default=300_000)
    p.add_argument("--data-bytes", type=int, default=100)
    p.add_argument("--services", default="zookeeper,zkpy")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkmem") as tmp:
        for name in args.services.split(","):
            start = {"zookeeper": ZooKeeper, "zkpy": Ours}[name]
            service = start(Path(tmp) / name, 1, 0)
            try:
                r = measure(service, args.znodes, args.data_bytes)
            finally:
                service.stop()
            per_znode = r.get("heap_per_znode", r["rss_per_znode"])
            rows.append([service.name, f"{args.znodes:,}", f"{r['creates_s']:,.0f}", f"{per_znode:,.0f}",
                         f"{r['rss_per_znode']:,.0f}"])  # fmt: skip
    print(f"\n{args.znodes:,} znodes of {args.data_bytes} bytes, 20-character paths, one server, one "
          f"connection with {OUTSTANDING} creates in flight")  # fmt: skip
    print(tabulate(rows, headers=["service", "znodes", "creates/s", "bytes per znode (ZK: live heap)",
                                  "RSS bytes per znode"]))  # fmt: skip


if __name__ == "__main__":
    main()
