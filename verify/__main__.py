"""Run a verification: a real ensemble, concurrent clients on every server, faults while they
run, then the recorded history checked for ZooKeeper's guarantees.

    python -m verify --nodes 5 --time 60 --nemesis kill,pause,partition
    python -m verify --nodes 3 --time 20 --nemesis partition --debug stale_reads   # must fail
    python -m verify.check HISTORY.jsonl                                           # re-check

Exit status: 0 when every check passes, 1 on any violation, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from cluster.harness import Harness
from cluster.progress import Progress
from verify import check
from verify.broken import VARIANTS
from verify.nemesis import Nemesis, parse_nemeses
from verify.workload import REGISTER_ROOT, SEQ_ROOT, Recorder, Shared, Worker, session_of, setup
from zkcore import LocalError

FINAL_PROCESS = 10_000  # final readers are processes 10001.. (one per server)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--time", type=float, default=60, help="seconds of workload (default 60)")
    p.add_argument("--nemesis", default="kill,pause,partition",
                   help="kill, pause, partition, netpartition, slowdisk (each with a -leader variant), "
                        "all (the first three) or none; netpartition cuts real traffic between network "
                        "namespaces, slowdisk makes each fdatasync 0.8 s late with strace")  # fmt: skip
    p.add_argument(
        "--netns",
        action="store_true",
        help="each node in a network namespace of its own, over tcp (root; implied by netpartition)",
    )
    p.add_argument("--interval", type=float, default=4.0, help="seconds between faults (default 4)")
    p.add_argument("--clients", type=int, default=0, help="client threads (default 2 per server)")
    p.add_argument("--keys", type=int, default=3, help="registers (default 3)")
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--data-dir", help="ensemble folder (default: a temporary one, removed if all pass)")
    p.add_argument("--history", help="where to save the history (default <data-dir>/history.jsonl)")
    p.add_argument("--debug", default="", choices=["", *VARIANTS],
                   help="run a deliberately broken server that the checker must catch (verify/broken.py)")  # fmt: skip
    return p.parse_args(argv)


def final_reads(ensemble: Harness, recorder: Recorder, keys: int) -> None:
    """After healing: every server's view of every register and of the sequential folder, each
    read just after a sync, so linearizable."""
    from zkclient import Client

    for sid in ensemble.servers:
        client = Client(hosts=ensemble.endpoint(sid), timeout=10)
        client.start(timeout=30)
        process, session = FINAL_PROCESS + sid, session_of(client)
        try:
            for k in range(keys):
                key = f"{REGISTER_ROOT}/{k}"
                t0 = recorder.now()
                client.sync(key)
                data, stat = client.get(key)
                recorder.add(process=process, session=session, kind="read", key=key, sync=True, status="ok",
                             start=t0, end=recorder.now(), value=data.decode(), version=stat.version,
                             mzxid=stat.mzxid, zxid=client.last_zxid)  # fmt: skip
            t0 = recorder.now()
            client.sync(SEQ_ROOT)
            children = client.get_children(SEQ_ROOT)
            recorder.add(process=process, session=session, kind="read_children", key=SEQ_ROOT, sync=True,
                         status="ok", start=t0, end=recorder.now(), children=sorted(children))  # fmt: skip
        finally:
            client.stop()
            client.close()


def run(args: argparse.Namespace) -> int:
    faults = parse_nemeses(args.nemesis)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="zkpy-verify-")) if temporary else Path(args.data_dir)
    history_path = Path(args.history) if args.history else data_dir / "history.jsonl"
    clients = args.clients or 2 * args.nodes
    print(f"verify: {args.nodes} nodes, {clients} clients, {args.time:.0f}s, nemesis {faults or 'none'}, "
          f"seed {args.seed}, data {data_dir}" + (f", DEBUG {args.debug}" if args.debug else ""), flush=True)  # fmt: skip
    extra = {"serverClass": VARIANTS[args.debug]} if args.debug else {}
    if args.netns or any(f.startswith("netpartition") for f in faults):
        from cluster import netns

        why = netns.available() or (None if netns.firewall() else "netpartition needs nft or iptables")
        if why:
            raise ValueError(f"cannot put nodes on hosts of their own: {why}")
        ensemble: Harness = netns.NetnsHarness(data_dir / "ensemble", args.nodes, extra=extra)
    else:
        ensemble = Harness(data_dir / "ensemble", args.nodes, extra=extra)
    recorder, shared = Recorder(), Shared()
    stop_workers, stop_nemesis = threading.Event(), threading.Event()
    workers: list[Worker] = []
    nemesis = Nemesis(ensemble, faults, recorder, stop_nemesis, args.seed, args.interval)
    try:
        setup(ensemble.connect_string(), args.keys, recorder)
        for i in range(1, clients + 1):
            # Half the clients stay on one server (so every server is read from, faults or not);
            # the others may fail over anywhere.
            sid = ensemble.servers[i % args.nodes]
            hosts = ensemble.endpoint(sid) if i % 2 == 0 else ensemble.connect_string()
            workers.append(Worker(i, hosts, args.keys, recorder, shared, stop_workers, args.seed * 1000 + i))
        for w in workers:
            w.start()
        nemesis.start()
        progress = Progress("verify", args.time)
        ends = time.monotonic() + args.time
        while time.monotonic() < ends:
            progress.update(ops=len(recorder.ops), faults_injected=sum(nemesis.done.values()))
            time.sleep(min(0.5, max(0.0, ends - time.monotonic())))  # the workload's duration
        progress.done()
        stop_nemesis.set()
        nemesis.join(timeout=30)
        ensemble.heal()
        ensemble.wait_healthy(90)
        time.sleep(1.0)  # a quiet second of workload on the healed ensemble
        stop_workers.set()
        for w in workers:
            w.join(timeout=30)
        final_reads(ensemble, recorder, args.keys)
    finally:
        stop_nemesis.set()
        stop_workers.set()
        ensemble.stop()
    history_path.parent.mkdir(parents=True, exist_ok=True)
    with open(history_path, "w") as f:
        for record in sorted(recorder.ops, key=lambda r: r["start"]):
            f.write(json.dumps(record) + "\n")
    with open(history_path.with_suffix(".faults.jsonl"), "w") as f:
        for fault in recorder.faults:
            f.write(json.dumps(fault) + "\n")
    problems = [e for w in workers for e in w.errors] + nemesis.errors
    ok, report = check.check_file(history_path)
    ops = [r for r in recorder.ops if r["kind"] != "watch_event"]
    counts: dict[str, Any] = {s: sum(1 for r in ops if r["status"] == s) for s in ("ok", "fail", "info")}
    print(tabulate([[len(ops), counts["ok"], counts["fail"], counts["info"],
                     ", ".join(f"{k} x{v}" for k, v in sorted(nemesis.done.items())) or "none"]],
                   headers=["ops", "ok", "fail", "unknown", "faults injected"]))  # fmt: skip
    print(report)
    for problem in problems[:10]:
        print(f"note: {problem}", file=sys.stderr)
    if ok and temporary and not args.history:
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"all checks passed; removed {data_dir} (--data-dir or --history keeps the history)")
    else:
        print(f"history: {history_path}  (re-check: python -m verify.check {history_path})")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)  # the clients' reconnect notices would drown the report
    try:
        return run(parse_args(sys.argv[1:] if argv is None else argv))
    except (ValueError, AssertionError, LocalError) as e:
        print(f"verify: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
