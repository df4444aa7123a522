"""The client conformance suite (tests/conformance/scenarios.json) run by the Python client,
zkclient, against a live 3-node ensemble; bindings/c and bindings/node run the same file."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.harness import Harness, wait_for
from zkclient import AddWatchMode, Client, WatchedEvent, WatcherType
from zkclient.exceptions import KeeperError

SCENARIOS = json.loads((Path(__file__).parent / "scenarios.json").read_text())
ERRORS: dict[str, int] = SCENARIOS["errors"]
WIRE_EVENTS = {"CREATED": "NodeCreated", "DELETED": "NodeDeleted", "CHANGED": "NodeDataChanged",
               "CHILD": "NodeChildrenChanged"}  # fmt: skip
MODES = {
    "persistent": {},
    "ephemeral": {"ephemeral": True},
    "persistent_sequential": {"sequence": True},
    "ephemeral_sequential": {"ephemeral": True, "sequence": True},
    "container": {"container": True},
    "persistent_ttl": {},
    "persistent_sequential_ttl": {"sequence": True},
}
WATCH_TYPES = {"children": WatcherType.CHILDREN, "data": WatcherType.DATA, "any": WatcherType.ANY,
               "persistent": WatcherType.PERSISTENT, "persistent_recursive": WatcherType.PERSISTENT_RECURSIVE}  # fmt: skip
SESSION_S = 6.0
EVENT_WAIT_S = 15.0
LOSS_RETRY_S = 30.0


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    e = Harness(Path(tmp_path_factory.mktemp("conformance")) / "e", 3)
    yield e
    e.stop()


class Run:
    """One scenario: its clients, its root, its watchers (name -> client and events heard)."""

    def __init__(self, ensemble: Harness, scenario: dict[str, Any], root: str) -> None:
        self.ensemble = ensemble
        self.scenario = scenario
        self.root = root
        self.clients: dict[str, Client] = {}
        self.sessions: dict[str, tuple[int, bytes]] = {}
        self.watches: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        self.consumed: dict[str, int] = {}
        self.lock = threading.Lock()

    def open(self, name: str, client_id: tuple[int, bytes] | None = None) -> Client:
        c = Client(self.ensemble.connect_string(), timeout=SESSION_S, client_id=client_id)
        c.start(timeout=30)
        assert c.client_id is not None
        self.clients[name] = c
        self.sessions[name] = c.client_id
        return c

    def full(self, path: str) -> str:
        return self.root + path

    def rel(self, path: str | None) -> str:
        assert path is not None and path.startswith(self.root), path
        return path[len(self.root) :]

    def watcher(self, client: str, name: str) -> Callable[[WatchedEvent], None]:
        events = self.watches.setdefault(name, (client, []))[1]

        def heard(e: WatchedEvent) -> None:
            if e.type in WIRE_EVENTS:  # local "watch removed" notifications are not on the wire
                with self.lock:
                    events.append((WIRE_EVENTS[e.type], self.rel(e.path)))

        return heard

    # --- results ---------------------------------------------------------------------------

    def check_stat(self, got: Any, want: dict[str, Any] | None, where: str) -> None:
        if want is None:
            assert got is None, f"{where}: expected no node, got {got}"
            return
        assert got is not None, f"{where}: expected a stat, got none"
        for key, value in want.items():
            if isinstance(value, str) and value.startswith("session:"):
                value = self.sessions[value.split(":", 1)[1]][0]
            assert getattr(got, key) == value, f"{where}: stat.{key} is {getattr(got, key)}, want {value}"

    def check(self, step: dict[str, Any], result: Any, where: str) -> None:
        want = step.get("expect")
        if want is None:
            return
        op = step["op"]
        if op == "create":
            path, stat = result
            if "path" in want:
                assert self.rel(path) == want["path"], where
            if "path_pattern" in want:
                assert re.fullmatch(want["path_pattern"], self.rel(path)), f"{where}: {path}"
            if "stat" in want:
                self.check_stat(stat, want["stat"], where)
        elif op == "get":
            data, stat = result
            if "data" in want:
                assert data == want["data"].encode(), f"{where}: data {data!r}"
            if "stat" in want:
                self.check_stat(stat, want["stat"], where)
        elif op in ("set", "exists"):
            self.check_stat(result, want["stat"], where)
        elif op == "get_children":
            assert sorted(result) == sorted(want["children"]), f"{where}: children {result}"
        elif op == "multi":
            for i, (got, exp) in enumerate(zip(result, want["results"], strict=True)):
                if "path" in exp:
                    assert self.rel(got) == exp["path"], f"{where}: op {i}"
                if "stat" in exp:
                    self.check_stat(got, exp["stat"], f"{where}: op {i}")

    # --- ops ---------------------------------------------------------------------------------

    def start_op(self, c: Client, step: dict[str, Any]) -> Any:
        """Start a plain op; its AsyncResult (waited for at once, or later in a pipeline)."""
        op, path = step["op"], self.full(step.get("path", ""))
        data = step.get("data", "").encode()
        client = step.get("client", "a")
        watch = self.watcher(client, step["watch"]) if "watch" in step else None
        if op == "create":
            return c.create_async(
                path, data, include_data=True, ttl=step.get("ttl", 0), **MODES[step.get("mode", "persistent")]
            )
        if op == "get":
            return c.get_async(path, watch=watch)
        if op == "set":
            return c.set_async(path, data, step.get("version", -1))
        if op == "delete":
            return c.delete_async(path, step.get("version", -1))
        if op == "exists":
            return c.exists_async(path, watch=watch)
        if op == "get_children":
            return c.get_children_async(path, watch=watch)
        if op == "sync":
            return c.sync_async(path)
        raise AssertionError(f"op {op} cannot be pipelined")

    def run_multi(self, c: Client, step: dict[str, Any], where: str) -> None:
        t = c.transaction()
        for o in step["ops"]:
            path = self.full(o["path"])
            if o["op"] == "create":
                t.create(path, o.get("data", "").encode())
            elif o["op"] == "set":
                t.set_data(path, o.get("data", "").encode(), o.get("version", -1))
            elif o["op"] == "check":
                t.check(path, o["version"])
            else:
                t.delete(path, o.get("version", -1))
        results = t.commit()
        codes = [r.code if isinstance(r, KeeperError) else 0 for r in results]
        failing = [x for x in codes if x not in (0, ERRORS["RuntimeInconsistency"])] or [
            x for x in codes if x
        ]
        if "error" in step:
            assert failing and failing[0] == ERRORS[step["error"]], f"{where}: multi errors {codes}"
            assert codes == [ERRORS[n] for n in step["op_errors"]], f"{where}: multi errors {codes}"
        else:
            assert not failing, f"{where}: multi errors {codes}"
            self.check(step, results, where)

    def run_step(self, step: dict[str, Any], where: str) -> None:
        op, name = step["op"], step.get("client", "a")
        if op in ("events", "no_more_events"):
            return self.run_events(step, where)
        if op == "close":
            self.clients.pop(name).stop()
            return None
        if op == "resume_closed":
            with pytest.raises(KeeperError) as err:
                self.open(name + "-resumed", self.sessions[name])
            assert err.value.code == ERRORS[step["error"]], where
            return None
        c = self.clients[name]
        if op == "reopen":
            # zkclient has no public "drop the connection, keep the session": end its thread
            # without closeSession, then resume the session by id and password.
            sid = self.sessions[name]
            conn = c._conn
            assert conn is not None
            conn.shutdown(close_session=False, timeout_s=1.0)
            resumed = self.open(name, sid)
            assert resumed.client_id is not None and resumed.client_id[0] == sid[0], where
            return None
        if op == "kill_server":
            endpoint = c.endpoint
            sid = next(s for s in self.ensemble.servers if self.ensemble.endpoint(s) == endpoint)
            self.ensemble.kill(sid)
            return None
        if op == "pipeline":
            return self.run_pipeline(c, step, where)
        if op == "multi":
            return self.run_multi(c, step, where)
        if op == "add_watch":
            mode = (
                AddWatchMode.PERSISTENT if step["mode"] == "persistent" else AddWatchMode.PERSISTENT_RECURSIVE
            )
            c.add_watch(self.full(step["path"]), self.watcher(name, step["watch"]), mode)
            return None

        def call() -> Any:
            if op == "remove_watches":
                return c.remove_watches(self.full(step["path"]), WATCH_TYPES[step["type"]])
            return self.start_op(c, step).get()

        self.expect(step, call, where)
        return None

    def expect(self, step: dict[str, Any], call: Callable[[], Any], where: str) -> None:
        deadline = time.monotonic() + LOSS_RETRY_S
        while True:
            try:
                result = call()
            except KeeperError as e:
                if self.scenario.get("retry_connection_loss") and e.code == ERRORS["ConnectionLoss"]:
                    assert time.monotonic() < deadline, f"{where}: ConnectionLoss for {LOSS_RETRY_S}s"
                    continue
                assert "error" in step, f"{where}: unexpected {type(e).__name__} {e}"
                assert e.code == ERRORS[step["error"]], f"{where}: {type(e).__name__}, want {step['error']}"
                return
            assert "error" not in step, f"{where}: succeeded, want {step['error']}"
            self.check(step, result, where)
            return

    def run_pipeline(self, c: Client, step: dict[str, Any], where: str) -> None:
        order: list[int] = []
        results = []
        for i, sub in enumerate(step["ops"]):
            r = self.start_op(c, {**sub, "client": step.get("client", "a")})
            r.rawlink(lambda _r, i=i: order.append(i))
            results.append(r)
        for i, (sub, r) in enumerate(zip(step["ops"], results, strict=True)):
            self.expect(sub, r.get, f"{where}, pipelined op {i}")
        wait_for(lambda: len(order) == len(results), 10, "every completion callback")
        assert order == sorted(order), f"{where}: completions in order {order}"

    def run_events(self, step: dict[str, Any], where: str) -> None:
        name = step["watch"]
        client, events = self.watches.setdefault(name, ("a", []))
        if step["op"] == "events":
            want = [(e["type"], e["path"]) for e in step["events"]]
            total = self.consumed.get(name, 0) + len(want)
            wait_for(lambda: len(events) >= total, EVENT_WAIT_S, f"{where}: {len(want)} events on {name}")
            with self.lock:
                got = events[self.consumed.get(name, 0) : total]
            assert got == want, f"{where}: events {got}, want {want}"
            self.consumed[name] = total
            return
        # Events come before any reply that reflects them: after a sync and a read on the
        # watching client, every event due has arrived.
        c = self.clients[client]
        c.sync(self.root)
        c.exists(self.root)
        with self.lock:
            extra = events[self.consumed.get(name, 0) :]
        assert not extra, f"{where}: unexpected events on {name}: {extra}"


@pytest.mark.parametrize("index", range(len(SCENARIOS["scenarios"])),
                         ids=[s["name"] for s in SCENARIOS["scenarios"]])  # fmt: skip
def test_scenario(ensemble: Harness, index: int) -> None:
    scenario = SCENARIOS["scenarios"][index]
    run = Run(ensemble, scenario, f"/conformance-python-{index}-{time.time_ns()}")
    try:
        for name in scenario["clients"]:
            run.open(name)
        run.clients[scenario["clients"][0]].create(run.root)
        for n, step in enumerate(scenario["steps"]):
            run.run_step(step, f"step {n} ({step['op']})")
    finally:
        for c in run.clients.values():
            c.stop()
