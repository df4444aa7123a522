"""The benchmark harness: zkpy against Apache ZooKeeper 3.8 on this host, same load, same client.

    python -m bench [--quick] [--pin] [--ensembles 1,3,5,3+2] [--reads 0,50,90,99,100] [--out DIR]
    python -m bench failover|recovery|latency|throughput|memory|snapsync|ab ...   (each with its own options)
    python -m bench report DIR/results.json [--markdown] [--plots DIR]

Each ensemble of each service is started here (fsync on), given 1000 znodes of 100 bytes, warmed
up (ZooKeeper's JIT: 60 s of load, after which it has stopped speeding up here), then driven at each read ratio by one C load generator on ZooKeeper's C
client (getData / setData of 100 bytes, SESSIONS sessions spread evenly over the servers, each
with OUTSTANDING requests in flight) on ZooKeeper's client port and on zkpy's ZooKeeper door;
zkpy again through its ZeroMQ door by bench.throughput's Python generator. Prints a table and
writes DIR/results.json, and DIR/throughput.png and DIR/latency.png when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _loadgen, _report, _suite

SUBCOMMANDS = {
    "failover": "bench.failover",
    "recovery": "bench.recovery",
    "latency": "bench.latency",
    "throughput": "bench.throughput",
    "memory": "bench.memory",
    "snapsync": "bench.snapsync",
    "ab": "bench.ab",
}
QUICK = {"ensembles": "1,3", "reads": "0,90,100", "seconds": 2.0, "warmup": 0.5, "jit_warmup": 2.0,
         "unloaded_ops": 200, "zmq_reads": "100"}  # fmt: skip
FULL = {"ensembles": "1,3,5,3+2", "reads": "0,50,90,99,100", "seconds": 5.0, "warmup": 1.0, "jit_warmup": 60.0,
        "unloaded_ops": 1000, "zmq_reads": None}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                epilog="subcommands: " + ", ".join(SUBCOMMANDS) + " (python -m bench failover --help)")  # fmt: skip
    p.add_argument(
        "--quick", action="store_true", help="about a minute: ensembles 1,3; reads 0,90,100; 2 s runs"
    )
    p.add_argument(
        "--ensembles", help=f"servers per ensemble, V+O for V voters and O observers ({FULL['ensembles']})"
    )
    p.add_argument("--reads", help=f"read percentages ({FULL['reads']})")
    p.add_argument("--seconds", type=float, help=f"measured seconds per run ({FULL['seconds']:.0f})")
    p.add_argument("--warmup", type=float, help="seconds of load before each measured run (1)")
    p.add_argument(
        "--jit-warmup",
        type=float,
        help="seconds of load after each ensemble starts (60; --quick: 2, which leaves ZooKeeper cold)",
    )
    p.add_argument("--sessions", type=int, default=15, help="sessions, spread evenly over the servers (15)")
    p.add_argument("--outstanding", type=int, default=40, help="requests in flight per session (40)")
    p.add_argument(
        "--unloaded-ops", type=int, help="ops for unloaded create/getData latency at 3 servers (1000)"
    )
    p.add_argument(
        "--idle-sessions",
        type=int,
        default=0,
        help="sessions open to the server the unloaded ops go to, sending nothing (0)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="each ensemble this many times, the services taking turns to go first; the table gives "
        "medians, each ratio the median of the rounds' own (1)",
    )
    p.add_argument("--services", default="zookeeper,zkpy", help="zookeeper,zkpy (default both)")
    p.add_argument("--zmq-reads", help="read percentages of zkpy's ZeroMQ-door rows (all; --quick: 100)")
    p.add_argument("--no-zmq", action="store_true", help="no ZeroMQ-door rows")
    p.add_argument("--pin", action="store_true", help="pin the generator to one core, servers to the others")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for results.json and plots")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def options(args: argparse.Namespace) -> _suite.Options:
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    unknown = [s for s in services if s not in _suite.SERVICES]
    if unknown or not services:
        raise SystemExit(f"--services takes zookeeper and/or zkpy: {args.services!r}")
    return _suite.Options(
        ensembles=[_suite.parse_ensemble(e) for e in args.ensembles.split(",")],
        read_pcts=[int(r) for r in args.reads.split(",")], services=services, seconds=args.seconds,
        warmup_s=args.warmup, jit_warmup_s=args.jit_warmup, sessions=args.sessions, outstanding=args.outstanding,
        unloaded_ops=args.unloaded_ops, idle_sessions=args.idle_sessions, pin=args.pin, rounds=max(1, args.rounds),
        zmq_read_pcts=[] if args.no_zmq else None if args.zmq_reads is None else [int(r) for r in args.zmq_reads.split(",")],
    )  # fmt: skip


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()  # fmt: skip
    return {"cores": len(os.sched_getaffinity(0)), "cpu": model, "loadavg_before": os.getloadavg(),
            "python": platform.python_version(), "commit": commit,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip


def report(argv: list[str]) -> None:
    """python -m bench report DIR/results.json [--markdown] [--plots DIR]: a past run again."""
    p = argparse.ArgumentParser(prog="python -m bench report", description=report.__doc__)
    p.add_argument("results", type=Path)
    p.add_argument("--markdown", action="store_true", help="GitHub markdown tables (for the README)")
    p.add_argument("--plots", type=Path, help="draw the PNGs into this folder")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(f"{results['command']} ({results['machine']['date']}, {results['machine']['cores']} cores)\n")
    print(_report.show(results, "github" if args.markdown else "simple"))
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        made = _report.plots(results, args.plots)
        print("\n" + (", ".join(map(str, made)) if made else "no plots: matplotlib is not installed"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        sys.argv = [f"python -m bench {argv[0]}", *argv[1:]]
        module.main()
        return
    if argv and argv[0] == "report":
        report(argv[1:])
        return
    args = parse(argv)
    opts = options(args)
    if any(opts.sessions % (v + o) for v, o in opts.ensembles):
        print(f"note: {opts.sessions} sessions do not spread evenly over every ensemble size", flush=True)
    started = time.monotonic()
    results: dict[str, Any] = {"command": "python -m bench " + " ".join(argv), "machine": machine(),
                               "options": vars(opts)}  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="zkbench") as tmp:
            results |= _suite.run_all(opts, Path(tmp))
    except _loadgen.LoadGenError as e:
        raise SystemExit(f"python -m bench: {e}") from None
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["seconds_total"] = time.monotonic() - started
    results["notes"] = _report.notes(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n" + _report.show(results))
    plots = _report.plots(results, args.out)
    print(f"\nwrote {args.out / 'results.json'}" + "".join(f", {p}" for p in plots)
          + ("" if plots else " (no plots: matplotlib is not installed; pip install -e '.[bench]')")
          + f"; {results['seconds_total']:.0f} s in all")  # fmt: skip
    errors = sum(r["errors"] for r in results["runs"])
    failed = [k for k, v in results["ensembles"].items() if "error" in v]
    if errors or failed:
        raise SystemExit(f"python -m bench: {errors} requests failed (see the errors column)"
                         + "".join(f"; {k} servers: {results['ensembles'][k]['error']}" for k in failed))  # fmt: skip


if __name__ == "__main__":
    main()
