"""The C load generator (bench/zkload.c on libzookeeper-mt): built with cc into a cache folder the
first time a source is seen, then run as a child process whose output says when it measures."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent / "zkload.c"
HEADER = Path("/usr/include/zookeeper/zookeeper.h")


class LoadGenError(Exception):
    """The generator cannot be built or did not do its job; the message says what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("ZKPY_BENCH_CACHE", str(Path(base) / "zkpy-bench")))


def build() -> Path:
    """The compiled generator, built now if this source has not been built before."""
    source = SOURCE.read_bytes()
    binary = cache_dir() / f"zkload-{hashlib.sha256(source).hexdigest()[:12]}"
    if binary.exists():
        return binary
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise LoadGenError(f"no C compiler ({cc!r}) to build the load generator: apt-get install gcc")
    if not HEADER.exists():
        raise LoadGenError(f"{HEADER} is missing: apt-get install libzookeeper-mt-dev (ZooKeeper's C client)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cc, "-DTHREADED", "-O2", "-o", str(partial), str(SOURCE), "-lzookeeper_mt", "-lpthread"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise LoadGenError(f"building the load generator failed ({' '.join(cmd)}):\n{out.stderr.strip()}")
    partial.replace(binary)
    return binary


def _run_json(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise LoadGenError(f"{' '.join(cmd[1:3])} failed: {(out.stderr or out.stdout).strip()}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def setup(binary: Path, host: str, znodes: int, attempts: int = 3) -> None:
    """/b and /b/n0 .. /b/n<znodes-1> of 100 bytes each, through host. Tried again when the
    session is lost on the way (a just-started ensemble may still settle); creating a znode that
    exists counts as done, so a retry finishes what the first attempt began."""
    for attempt in range(1, attempts + 1):
        try:
            _run_json([str(binary), "setup", host, str(znodes)], 180)
            return
        except LoadGenError:
            if attempt == attempts:
                raise
            time.sleep(1.0)


UNLOADED_PHASES = ("creates", "reads", "done")


def unloaded(
    binary: Path, host: str, ops: int, idle: int = 0, on_phase: Callable[[str], None] = lambda phase: None
) -> dict[str, Any]:
    """One request in flight: {"create": {...p50_us...}, "get": {...}}; with `idle` more
    sessions open to the same server meanwhile, sending nothing. on_phase(name) is called as
    the creates start, as the reads start, and once they are done (UNLOADED_PHASES)."""
    cmd = [str(binary), "unloaded", host, str(ops), *([str(idle)] if idle else [])]
    marks = {phase: partial(on_phase, phase) for phase in UNLOADED_PHASES}
    return _run_marked(cmd, marks, 60 + ops + idle // 100, f"unloaded {host}")


def load(
    binary: Path,
    hosts: list[str],
    sessions: int,
    outstanding: int,
    read_pct: int,
    warmup_s: float,
    seconds: float,
    znodes: int,
    on_start: Callable[[], None] = lambda: None,
    on_stop: Callable[[], None] = lambda: None,
    cores: set[int] | None = None,
    started: Callable[[int], None] = lambda pid: None,
) -> dict[str, Any]:
    """One measured run. on_start/on_stop are called as the generator's measuring window opens
    and closes (to sample server CPU and counters); started(pid) once it runs."""
    cmd = [str(binary), "load", ",".join(hosts), str(sessions), str(outstanding), str(read_pct),
           str(warmup_s), str(seconds), str(znodes)]  # fmt: skip
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    marks = {"measuring": on_start, "stopped": on_stop}
    failed = f"the load generator failed against {','.join(hosts)}"
    return _run_marked(cmd, marks, warmup_s + seconds + 120, failed, pin, started)


def _run_marked(
    cmd: list[str],
    marks: Mapping[str, Callable[[], None]],
    timeout_s: float,
    failed: str,
    preexec_fn: Callable[[], None] | None = None,
    started: Callable[[int], None] = lambda pid: None,
) -> dict[str, Any]:
    """Run the generator: a line that names a mark calls it as the line comes (to sample the
    servers then); the last other line is the result, as JSON. Killed after timeout_s."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn
    )
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        started(proc.pid)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            line = line.strip()
            mark = marks.get(line)
            if mark is not None:
                mark()
            elif line:
                lines.append(line)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0 or not lines:
            why = err.strip() or (f"killed after {timeout_s:.0f} s" if not timer.is_alive() else "no output")
            raise LoadGenError(f"{failed}: {why}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
