"""Run the simulators from the command line; a failing seed prints its trace and exits non-zero.

python -m tests.sim --seeds 500 [--nodes 5] [--observers 1] [--seed 1000] [--variant gap-blind]
python -m tests.sim --servers --seeds 500 [--quick] [--variant stalled-clock]   # whole servers + clients
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any

from tests.sim.broken import SERVER_VARIANTS, VARIANTS
from tests.sim.servers import run_server_seed
from tests.sim.simulator import format_trace, run_seed
from zkcore.server import Server
from zkcore.zab import Replica


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds to run (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="the first (or only) seed (default 0)")
    parser.add_argument("--nodes", type=int, default=None, help="voters; default: 3, 5, 7 in turn by seed")
    parser.add_argument("--observers", type=int, default=None, help="observers; default: drawn from the seed")
    parser.add_argument(
        "--variant", choices=sorted({*VARIANTS, *SERVER_VARIANTS}), default=None,
        help="a deliberately broken replica (or server, with --servers)",
    )  # fmt: skip
    parser.add_argument(
        "--servers", action="store_true", help="whole servers with clients (tests/sim/servers.py)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="with --servers: the default suite's smaller runs"
    )
    parser.add_argument("--long", action="store_true", help="soak: 4x the faulty ticks, harsher faults")
    parser.add_argument("--trace", action="store_true", help="print the whole trace of every seed run")
    parser.add_argument("--keep-going", action="store_true", help="run every seed even after a failure")
    args = parser.parse_args(argv)
    first = args.seed if args.seed is not None else 0
    count = args.seeds if args.seeds is not None else 1
    if args.variant and (args.variant in SERVER_VARIANTS) != args.servers:
        parser.error(f"--variant {args.variant} is a {'server' if args.servers else 'replica'} variant only with"
                     f"{'' if args.variant in SERVER_VARIANTS else 'out'} --servers")  # fmt: skip
    replica_class = VARIANTS[args.variant] if args.variant and not args.servers else Replica
    digest = hashlib.sha256()
    failures = 0
    events = 0
    started = time.perf_counter()
    for seed in range(first, first + count):
        voters = args.nodes if args.nodes is not None else (3, 5, 7)[seed % 3]
        result: Any
        if args.servers:
            server_class = SERVER_VARIANTS[args.variant] if args.variant else Server
            result = run_server_seed(seed, args.nodes, server_class, args.long, args.quick)
            voters = result.options.voters
        else:
            result = run_seed(seed, voters, args.observers, replica_class, args.long)
        digest.update(result.trace_hash.encode())
        events += result.events
        if args.trace or count == 1:
            print(format_trace(result, None if args.trace else 0))
            print(
                f"seed {seed}: trace hash {result.trace_hash}, {result.ticks} ticks, {result.events} events"
            )
        if count >= 1000 and (seed - first + 1) % 1000 == 0:
            ran_so_far = seed - first + 1
            print(f"{ran_so_far} seeds, {failures} failed, {time.perf_counter() - started:.0f}s", flush=True)
        if result.violation is not None:
            failures += 1
            print(format_trace(result))
            again = f"--seed {seed} --nodes {voters}" + (" --long" if args.long else "")
            again += (" --servers" + (" --quick" if args.quick else "")) if args.servers else ""
            print(f"FAILED seed {seed} ({again}): {result.violation}")
            print(f"trace hash {result.trace_hash}")
            if not args.keep_going:
                break
    elapsed = time.perf_counter() - started
    ran = seed - first + 1
    print(
        f"{ran} seeds, {failures} failed, {elapsed:.1f}s, {ran / elapsed:.1f} schedules/s, "
        f"{events / elapsed:.0f} events/s, combined hash {digest.hexdigest()[:16]}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
