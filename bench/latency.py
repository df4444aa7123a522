"""One request in flight: latency of reads and writes on a real local ensemble, through the
leader and through a follower, fsync on.

    python -m bench.latency --nodes 3 --ops 2000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cluster.harness import Harness, wait_for
from cluster.progress import Progress
from cluster.wire import WireSession


def measure(label: str, ops: int, fn) -> None:  # type: ignore[no-untyped-def]
    samples = []
    progress = Progress(label)
    for i in range(ops):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000)
        progress.update(ops=f"{i + 1}/{ops}")
    progress.done()
    samples.sort()
    print(f"  {label:28s} median {statistics.median(samples):.3f} ms  p99 {samples[int(len(samples) * 0.99)]:.3f} ms"
          f"  ({ops / (sum(samples) / 1000):,.0f} ops/s)", flush=True)  # fmt: skip


def run_server(s: WireSession, name: str, ops: int) -> None:
    s.create(f"/{name}", b"")
    measure(f"create via {name}", ops, lambda i: s.create(f"/{name}/n{i}", b"x" * 100))
    measure(f"setData via {name}", ops, lambda i: s.set(f"/{name}/n{i}", b"y" * 100))
    measure(f"getData on {name}", ops, lambda i: s.get(f"/{name}/n{i}"))
    s.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--ops", type=int, default=2000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="zklat") as tmp:
        e = Harness(Path(tmp) / "e", args.nodes)
        try:
            leader = wait_for(e.leader, 30, "a leader")
            follower = next(s for s in e.conf.voters if s != leader)
            print(f"{args.nodes} nodes, 100-byte znodes, one request in flight:")
            for name, sid in (("leader", leader), ("follower", follower)):
                run_server(WireSession(e.conf.servers[sid].client), name, args.ops)  # type: ignore[index]
        finally:
            e.stop()


if __name__ == "__main__":
    main()
