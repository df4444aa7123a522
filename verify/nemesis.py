"""Faults injected while the workload runs: kill -9 (the supervisor restarts the node), SIGSTOP
and SIGCONT, network partitions, and a slow disk (strace makes each fdatasync of the node take
SLOW_DISK_US longer), each aimed at a random node or at the leader. Every fault is recorded in
the history with its interval, so a violation can be read against it."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable

from cluster.faults import slow_fdatasync
from cluster.harness import Harness
from verify.workload import Recorder

NEMESES = ("kill", "kill-leader", "pause", "pause-leader", "partition", "partition-leader", "netpartition",
           "netpartition-leader", "slowdisk", "slowdisk-leader")  # fmt: skip
# netpartition cuts real traffic between network namespaces (root; see cluster.netns) and
# slowdisk traces the node with strace (root): neither is in `all`.
IN_NODE = NEMESES[:6]
# A slow disk's fdatasync: longer than the default syncLimit x tickTime (500 ms).
SLOW_DISK_US = 800_000


def parse_nemeses(text: str) -> list[str]:
    """'kill,pause,partition' -> those faults; 'all' -> every in-node one; 'none' or '' -> none.
    A plain name also brings its -leader variant."""
    if text in ("", "none"):
        return []
    if text == "all":
        return list(IN_NODE)
    out: list[str] = []
    for name in (x.strip() for x in text.split(",")):
        if name not in NEMESES:
            raise ValueError(f"unknown nemesis {name!r}; known: {', '.join(NEMESES)}, all, none")
        out += [n for n in (name, f"{name}-leader") if n in NEMESES and n not in out]
    if any(n.startswith("slowdisk") for n in out) and shutil.which("strace") is None:
        raise ValueError("the slowdisk nemesis needs strace (apt-get install strace) and root")
    return out


class Nemesis(threading.Thread):
    def __init__(
        self,
        ensemble: Harness,
        faults: list[str],
        recorder: Recorder,
        stop: threading.Event,
        seed: int,
        interval_s: float = 4.0,
        duration_s: float = 2.5,
    ) -> None:
        super().__init__(name="verify-nemesis", daemon=True)
        self.ensemble, self.faults, self.recorder, self.stop_event = ensemble, faults, recorder, stop
        self.rng = random.Random(seed)
        self.interval_s, self.duration_s = interval_s, duration_s
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        if not self.faults:
            return
        self.stop_event.wait(self.interval_s / 2)
        while not self.stop_event.is_set():
            fault = self.rng.choice(self.faults)
            try:
                self.inject(fault)
            except ProcessLookupError:
                pass  # the node was between a death and its restart
            except Exception as e:  # noqa: BLE001 - a failed fault is reported, the run goes on
                self.errors.append(f"{fault}: {type(e).__name__}: {e}")
            self.stop_event.wait(self.interval_s)

    def target(self, fault: str) -> int | None:
        if fault.endswith("-leader"):
            return self.ensemble.leader()
        running = [s for s in self.ensemble.servers if s not in self.ensemble.paused and self.ensemble.pid(s)]
        return self.rng.choice(running) if running else None

    def inject(self, fault: str) -> None:
        sid = self.target(fault)
        if sid is None:
            return
        t0 = self.recorder.now()
        undo: Callable[[], None] | None = None
        what = f"{fault} {sid}"
        if fault.startswith("kill"):
            self.ensemble.kill(sid)
        elif fault.startswith("pause"):
            self.ensemble.kill(sid, signal.SIGSTOP)
            undo = self.ensemble.heal
        elif fault.startswith("slowdisk"):
            undo = self._slow_disk(sid)
        else:  # partition or netpartition: a minority holding sid, cut from the rest
            servers = self.ensemble.servers
            others = [s for s in servers if s != sid]
            self.rng.shuffle(others)
            size = 1 + self.rng.randrange(max(1, (len(servers) - 1) // 2))  # a minority holding sid
            minority = {sid, *others[: size - 1]}
            groups = [minority, set(servers) - minority]
            if fault.startswith("netpartition"):
                self.ensemble.net_partition(groups)  # type: ignore[attr-defined]
            else:
                self.ensemble.partition(groups)
            what = fault.split("-")[0] + " " + " | ".join(",".join(map(str, sorted(g))) for g in groups)
            undo = self.ensemble.heal
        self.done[fault] += 1
        if undo is not None:
            self.stop_event.wait(self.duration_s)
            undo()
        with self.recorder.lock:
            self.recorder.faults.append({"fault": what, "start": t0, "end": self.recorder.now()})

    def _slow_disk(self, sid: int) -> Callable[[], None]:
        """Every fdatasync of node sid returns SLOW_DISK_US late until the returned undo (strace
        attached to all its threads; detaching leaves the node as it was)."""
        pid = self.ensemble.pid(sid)
        if pid is None:
            raise ProcessLookupError(sid)
        tracer = slow_fdatasync(pid, SLOW_DISK_US)

        def undo() -> None:
            tracer.terminate()
            try:
                tracer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                tracer.kill()
                tracer.wait()

        return undo
