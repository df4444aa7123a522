"""One run of `python -m bench ab` inside the tree under test.

bench.ab runs this file with that tree first on sys.path, so the ensemble it starts (through
that tree's cluster.harness) is that tree's code; the load generator's driver is this file's
own tree's bench/_loadgen.py, loaded by path, so both trees get the same load. Its one argument
is a JSON object of the run's settings; it prints one JSON line with what it measured.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (the fields after its command name)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _pid(ensemble: Any, sid: int) -> int:
    pid = ensemble.pid(sid)
    assert pid is not None, f"server {sid} has no pid file"
    return int(pid)


def _loadgen(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("_bench_ab_loadgen", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(settings: dict[str, Any]) -> dict[str, Any]:
    """The run's figures, and which core the tree's servers run ("native" unless it did not
    build)."""
    import native  # the tree under test's

    return {**measure(settings), "core": native.IMPLEMENTATION}


def measure(settings: dict[str, Any]) -> dict[str, float]:
    from cluster.harness import Harness, wait_for  # the tree under test's

    with tempfile.TemporaryDirectory(prefix="zkpy-ab-") as tmp:
        ensemble = Harness(Path(tmp) / "e", settings["servers"])
        try:
            leader = wait_for(ensemble.leader, 60, "a leader")
            assert isinstance(leader, int)
            pids = [_pid(ensemble, sid) for sid in ensemble.servers]
            hosts = [ensemble.conf.servers[sid].zk for sid in ensemble.servers]
            if settings["memory"]:
                from bench import memory  # the tree under test's
                from cluster.progress import Progress

                pid = _pid(ensemble, leader)
                before = _rss(pid)
                memory.create_all(ensemble.conf.servers[leader].zk, settings["znodes"], b"x" * 100,
                                  Progress("creating", None))  # fmt: skip
                time.sleep(1.0)  # a snapshot started meanwhile finishes
                return {"rss_per_znode": (_rss(pid) - before) / settings["znodes"]}
            loadgen = _loadgen(settings["loadgen"])
            binary = Path(settings["binary"])
            loadgen.setup(binary, hosts[0], 1000)
            window: dict[str, float] = {}

            def opened() -> None:
                window["cpu"] = sum(_cpu_ticks(pid) for pid in pids)

            def closed() -> None:
                window["cpu"] = sum(_cpu_ticks(pid) for pid in pids) - window["cpu"]

            out = loadgen.load(binary, hosts, 30, 40, settings["reads"], 2.0, settings["seconds"], 1000,
                               opened, closed)  # fmt: skip
            ops = out["all"]["ops"]
            cpu_us = window["cpu"] / os.sysconf("SC_CLK_TCK") * 1e6
            return {"ops_s": out["all"]["ops_s"], "cpu_us_per_op": cpu_us / ops if ops else float("nan")}
        finally:
            ensemble.stop()


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
