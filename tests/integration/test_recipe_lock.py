"""Lock and Election against a real 3-node ensemble, with contenders in separate processes
(tests/integration/contender.py) whose holds the checker judges (checker.check_mutual_exclusion):
taking turns, the holder's session expiring while it is paused, the server killed under
contenders mid-acquire, create replies lost, and a partition that isolates the holder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.contenders import Contenders
from zkclient import Client

SESSION_S = 3.0  # the contenders' session timeout (the ensemble allows 2 s and up)
NODE_RE = re.compile(r"^[0-9a-f]{32}__lock__\d{10}$")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(Path(tmp_path_factory.mktemp("recipes")) / "e", 3, session_timeout_min_ms=2000)
    yield e
    e.stop()


@pytest.fixture
def zk(ensemble: Ensemble) -> Iterator[Client]:
    client = Client(ensemble.connect_string(), timeout=SESSION_S)
    client.start(timeout=30)
    yield client
    client.stop()


@pytest.fixture
def contenders(tmp_path: Path) -> Iterator[Contenders]:
    c = Contenders(tmp_path / "contenders")
    yield c
    c.stop()


def start_all(c: Contenders, ensemble: Ensemble, count: int, path: str, *options: str) -> None:
    for i in range(count):
        c.start(f"c{i}", ensemble.connect_string(), "--path", path, "--session-s", str(SESSION_S), *options)


def assert_checked(c: Contenders, expected_holds: int | None = None, expiry_min_s: float = 0.0) -> None:
    result, holds = c.check(expiry_min_s)
    assert result.ok, str(result)
    if expected_holds is not None:
        assert len(holds) == expected_holds, f"{len(holds)} holds recorded:\n{c.stderr_tail()}"


@pytest.mark.parametrize("mode", ["lock", "election"])
def test_contenders_take_turns(ensemble: Ensemble, zk: Client, contenders: Contenders, mode: str) -> None:
    path = f"/turns-{mode}"
    start_all(contenders, ensemble, 5, path, "--mode", mode, "--holds", "4", "--hold-s", "0.03")
    seen: set[str] = set()

    def layout() -> bool:  # every contender's node has kazoo's name
        try:
            names = zk.get_children(path)
        except Exception:  # noqa: BLE001 - not made yet
            return False
        assert all(NODE_RE.match(n) for n in names), names
        seen.update(names)
        return len(seen) >= 5

    wait_for(layout, 60, "contenders' nodes to show up")
    contenders.wait_done(90)
    assert_checked(contenders, expected_holds=20)
    assert zk.get_children(path) == [], "nodes left behind"
