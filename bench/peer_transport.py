"""Peer transports side by side: the same write-heavy load on a 3-server ensemble whose peers
talk over ipc (ZeroMQ on Unix sockets) and over shm (shared-memory rings), in one session.

    python -m bench.peer_transport --rounds 3 --seconds 8

Only writes cross the peer transport (a proposal to each follower, an ack back, a commit), so
the load is setData of 100-byte znodes from `--sessions` sessions spread evenly over the
servers (a follower forwards its writes to the leader), each keeping `--outstanding` in flight.
Each round measures both transports, alternating which goes first; on a shared 2-core host
compare them as ratios within a round. `cpu-µs/write` is the CPU of every server process
(user + system) over the run divided by the writes done, fsync on.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from tabulate import tabulate

from bench.throughput import populate, zmq_connect, zmq_drive
from cluster.harness import Harness
from cluster.progress import Progress
from zkcore import _records as rec

ZNODES = 100
PAYLOAD = b"x" * 100


def write_frames(n: int) -> list[bytes]:
    return [
        rec.RequestHeader(i + 1, rec.OpCode.SET_DATA).encode()
        + rec.SetDataRequest(f"/w/n{i % ZNODES}", PAYLOAD, -1).encode()
        for i in range(n)
    ]


def generator(endpoints: list[str], outstanding: int, seconds: float, start_at: float, out: Any) -> None:
    """Keep `outstanding` writes in flight on a session per endpoint; count the replies."""
    ctx, socks = zmq_connect(endpoints)
    out.put(zmq_drive(socks, write_frames(outstanding), start_at, 0, seconds))
    ctx.destroy(linger=0)


def run(transport: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    e = Harness(tmp / f"{transport}-{time.monotonic_ns()}", 3, transport=transport)
    try:
        populate(e, "/w", ZNODES)
        servers = [psutil.Process(e.pid(sid)) for sid in e.servers]
        endpoints = [e.endpoint(e.servers[i % len(e.servers)]) for i in range(args.sessions)]
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 3.0
        procs = [
            ctx.Process(
                target=generator,
                args=(endpoints[i :: args.procs], args.outstanding, args.seconds, start_at, out),
            )  # fmt: skip
            for i in range(args.procs)
        ]
        for p in procs:
            p.start()
        time.sleep(max(0.0, start_at - time.time()))
        cpu0 = [sum(p.cpu_times()[:2]) for p in servers]
        progress = Progress(f"{transport}, 3 servers", args.seconds)
        while time.time() < start_at + args.seconds:
            progress.update()
            time.sleep(0.25)  # pacing the progress line; the generators time themselves
        cpu = sum(sum(p.cpu_times()[:2]) - c for p, c in zip(servers, cpu0, strict=True))
        progress.done()
        writes = sum(out.get(timeout=args.seconds + 60) for _ in procs)
        for p in procs:
            p.join(timeout=10)
        return {"writes_s": writes / args.seconds, "cpu_us": cpu * 1e6 / max(writes, 1)}
    finally:
        e.stop()


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.peer_transport", description=(__doc__ or "").split("\n\n")[0]
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--sessions", type=int, default=6)
    p.add_argument("--outstanding", type=int, default=50, help="writes in flight per session")
    p.add_argument("--procs", type=int, default=1, help="load generator processes")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="zkpy-bench-") as tmp:
        for r in range(args.rounds):
            order = ("ipc", "shm") if r % 2 == 0 else ("shm", "ipc")
            got = {t: run(t, args, Path(tmp)) for t in order}
            ipc, shm = got["ipc"], got["shm"]
            rows.append([r + 1, f"{ipc['writes_s']:,.0f}", f"{shm['writes_s']:,.0f}",
                         f"{shm['writes_s'] / ipc['writes_s']:.2f}", f"{ipc['cpu_us']:.0f}", f"{shm['cpu_us']:.0f}",
                         f"{shm['cpu_us'] / ipc['cpu_us']:.2f}"])  # fmt: skip
    print(tabulate(rows, ["round", "ipc writes/s", "shm writes/s", "shm/ipc", "ipc cpu-µs/write",
                          "shm cpu-µs/write", "shm/ipc"]))  # fmt: skip


if __name__ == "__main__":
    main()
