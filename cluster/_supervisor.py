"""The supervisor: keeps the nodes of one data dir running, restarts the dead with backoff, and
holds the data dir's lock for as long as it lives. Its nodes die with it (PR_SET_PDEATHSIG), and
a supervisor that finds nodes of its data dir still running adopts them instead of starting
second copies that would crash on the locked txn log.

Which processes are this data dir's nodes is read from the process table (their command line
names the config file), not from pid files, so a `stop` finds them whoever started them.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import psutil

from cluster import config

log = logging.getLogger("zkpy.launch")
LOCK_NAME = "supervisor.lock"
STATE_NAME = "supervisor.json"
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
HEALTHY_AFTER_S = 30.0
PR_SET_PDEATHSIG = 1


def run_dir(conf: config.EnsembleConfig) -> Path:
    return conf.data_dir / "run"


def lock_path(conf: config.EnsembleConfig) -> Path:
    return run_dir(conf) / LOCK_NAME


def state_path(conf: config.EnsembleConfig) -> Path:
    return run_dir(conf) / STATE_NAME


def down_marker(conf: config.EnsembleConfig, server_id: int) -> Path:
    return run_dir(conf) / f"down-{server_id}"


def node_pid_path(conf: config.EnsembleConfig, server_id: int) -> Path:
    return conf.node_dir(server_id) / "node.pid"


def node_log_path(conf: config.EnsembleConfig, server_id: int) -> Path:
    return conf.node_dir(server_id) / "node.log"


# --- the lock ---------------------------------------------------------------------------------


def take_lock(path: Path) -> int | None:
    """Hold the supervisor lock (flock, released by the kernel when this process dies, zombie or
    not); its fd, or None when another process holds it. The file then names our pid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def lock_holder(path: Path) -> int | None:
    """The pid of the live supervisor holding the lock at path (0 if it has not written its pid
    yet), or None when nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# --- finding nodes ----------------------------------------------------------------------------


def node_command(config_file: Path, server_id: int) -> list[str]:
    return [sys.executable, "-m", "cluster.node", "--config", str(config_file), "--id", str(server_id)]


def node_args(cmdline: list[str]) -> tuple[Path, int] | None:
    """(config file, server id) if cmdline runs `cluster.node --config <file> --id N`."""
    if "cluster.node" not in cmdline or "--config" not in cmdline or "--id" not in cmdline:
        return None
    try:
        return Path(cmdline[cmdline.index("--config") + 1]), int(cmdline[cmdline.index("--id") + 1])
    except (IndexError, ValueError):
        return None


def _node_of(cmdline: list[str], config_file: Path) -> int | None:
    """The server id if cmdline runs `cluster.node --config <config_file> --id N`."""
    node = node_args(cmdline)
    return node[1] if node is not None and node[0] == config_file else None


def node_processes(config_file: Path) -> dict[int, psutil.Process]:
    """Every live node process started with this config file, by server id."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            sid = _node_of(proc.info["cmdline"] or [], config_file)
        except psutil.Error:
            continue
        if sid is not None:
            found[sid] = proc
    return found


# --- processes the supervisor watches -------------------------------------------------------------


class Handle(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


class Adopted:
    """A node this supervisor did not start (its parent died): watched through psutil."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.pid = proc, proc.pid

    def poll(self) -> int | None:
        try:
            if self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return -1  # its exit status went to its own parent

    def terminate(self) -> None:
        try:
            self.proc.terminate()
        except psutil.Error:
            pass

    def kill(self) -> None:
        try:
            self.proc.kill()
        except psutil.Error:
            pass


def die_with_parent(parent: int, sig: int) -> None:
    """Have the kernel send this process `sig` when `parent` (its parent's pid) dies, however it
    dies; at once if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os.kill(os.getpid(), sig)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn for a node: SIGTERM when the supervisor dies, however it dies."""
    return lambda: die_with_parent(parent, signal.SIGTERM)


def node_env() -> dict[str, str]:
    """A node's environment. Requests and snapshots of up to a few MB come and go: glibc's
    malloc would move them onto its heap after the first free and keep that heap's high-water
    mark forever; from 128 KiB on, they get pages of their own that go back when freed."""
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))
    return env


def wait_gone(handles: list[Handle], timeout_s: float) -> list[Handle]:
    """Wait until every handle has exited or timeout_s passed; those still running."""
    deadline = time.monotonic() + timeout_s
    alive = list(handles)
    while alive and time.monotonic() < deadline:
        alive = [h for h in alive if h.poll() is None]
        if alive:
            time.sleep(0.05)
    return alive


class Supervisor:
    """Keeps every node of `ids` that is not marked down running; restarts the dead with backoff."""

    def __init__(self, config_file: Path, ids: list[int] | None = None) -> None:
        self.config_file = config_file
        self.conf = config.load(config_file)
        self.ids = sorted(ids or self.conf.servers)
        self.procs: dict[int, Handle] = {}
        self.failures: dict[int, int] = {}
        self.deaths: dict[int, list[str]] = {}
        self.next_start: dict[int, float] = {}
        self.started_at: dict[int, float] = {}
        self.log_offsets: dict[int, int] = {}  # where each node's log was when it last started
        self.stopping = False

    def start_node(self, server_id: int) -> None:
        node_dir = self.conf.node_dir(server_id)
        node_dir.mkdir(parents=True, exist_ok=True)
        out = open(node_log_path(self.conf, server_id), "ab")  # noqa: SIM115 - handed to the child
        self.log_offsets[server_id] = os.fstat(out.fileno()).st_size  # what this run writes follows
        proc = subprocess.Popen(
            node_command(self.config_file, server_id),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=node_env(),
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509 - one thread here
        )
        out.close()
        self.procs[server_id] = proc
        self.started_at[server_id] = time.monotonic()
        node_pid_path(self.conf, server_id).write_text(f"{proc.pid}\n")
        log.info("started node %d (pid %d)", server_id, proc.pid)
        self.write_state()

    def adopt(self) -> None:
        """Nodes of this data dir left running by a supervisor that died: watch them as ours."""
        for sid, proc in sorted(node_processes(self.config_file).items()):
            if sid in self.ids and sid not in self.procs:
                self.procs[sid] = Adopted(proc)
                self.started_at[sid] = time.monotonic()
                node_pid_path(self.conf, sid).write_text(f"{proc.pid}\n")
                log.warning(
                    "adopted node %d (pid %d), still running from an earlier supervisor", sid, proc.pid
                )

    def check(self) -> None:
        now = time.monotonic()
        for sid in self.ids:
            proc = self.procs.get(sid)
            down = down_marker(self.conf, sid).exists()
            code = proc.poll() if proc is not None else None
            if proc is not None and code is not None:
                del self.procs[sid]
                ran = now - self.started_at.get(sid, now)
                if ran > HEALTHY_AFTER_S:
                    self.failures[sid] = 0
                if down:
                    log.info("node %d stopped for maintenance (%s)", sid, exit_reason(code))
                    self.write_state()
                    continue
                failures = self.failures.get(sid, 0)
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                self.failures[sid] = failures + 1
                self.deaths.setdefault(sid, []).append(exit_reason(code))
                self.next_start[sid] = now + delay
                said = ""  # a signal is its own reason; a node that exits with an error logged why
                if code is not None and code > 0:
                    log_file = node_log_path(self.conf, sid)
                    said = f". Its log last said: {last_error(log_file, self.log_offsets.get(sid, 0))}"
                log.warning("node %d (pid %d) died with %s after %.1fs; restarting in %.1fs%s",
                            sid, proc.pid, exit_reason(code), ran, delay, said)  # fmt: skip
                self.write_state()
            if sid not in self.procs and not down and now >= self.next_start.get(sid, 0.0):
                self.start_node(sid)

    def write_state(self) -> None:
        """run/supervisor.json: what the launcher waiting on a --detach start reads."""
        state = {str(sid): {"pid": getattr(self.procs.get(sid), "pid", None), "deaths": self.deaths.get(sid, [])}
                 for sid in self.ids}  # fmt: skip
        tmp = state_path(self.conf).with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(state_path(self.conf))

    def stop_all(self, timeout_s: float = 10.0) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in wait_gone(list(self.procs.values()), timeout_s):
            log.warning("node pid %d did not stop in %.0fs; killing it", proc.pid, timeout_s)
            proc.kill()
        wait_gone(list(self.procs.values()), timeout_s)
        for proc in self.procs.values():
            if isinstance(proc, subprocess.Popen):
                proc.wait()
        self.procs.clear()

    def run(self, show: Callable[[], None] | None = None) -> int:
        """Supervise until SIGTERM or SIGINT; 3 if another supervisor holds the data dir."""
        lock = take_lock(lock_path(self.conf))
        if lock is None:
            log.error(
                "another supervisor (pid %s) runs %s", lock_holder(lock_path(self.conf)), self.conf.data_dir
            )
            return 3
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        last_show = 0.0
        try:
            self.adopt()
            self.write_state()
            while not self.stopping:
                self.check()
                if show is not None and time.monotonic() - last_show >= 1.0:
                    last_show = time.monotonic()
                    show()
                time.sleep(0.1)
        finally:
            log.info("stopping the ensemble")
            self.stop_all()
            state_path(self.conf).unlink(missing_ok=True)
            os.close(lock)
        return 0


def exit_reason(code: int | None) -> str:
    if code == -1:
        return "an unknown status (adopted)"
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def last_error(log_file: Path, offset: int = 0) -> str:
    """What a node's log says went wrong last, after offset: its last ERROR line, or the last
    line of a traceback, or its last line."""
    try:
        with open(log_file, "rb") as f:
            f.seek(offset)
            lines = [
                x.strip() for x in f.read()[-65536:].decode("utf-8", "replace").splitlines() if x.strip()
            ]
    except OSError as e:
        return f"no log ({e.strerror})"
    if not lines:
        return "nothing in its log"
    for line in reversed(lines):
        if " ERROR " in line:
            return line.split(" ERROR ", 1)[1].removeprefix("zkpy.node ")
        if line.startswith("Traceback"):
            break
    return lines[-1]
