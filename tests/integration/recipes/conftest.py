"""One 3-node ensemble for every recipe test (package scope: starting one costs seconds on a
loaded machine). Sessions may be as short as 2 s, so session-expiry tests finish quickly. Tests
that fault a server wait for the ensemble to be healthy again before they end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Ensemble
from zkclient import Client

CLIENT_SESSION_S = 3.0


@pytest.fixture(scope="package")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(Path(tmp_path_factory.mktemp("recipes")) / "e", 3, session_timeout_min_ms=2000)
    yield e
    e.stop()


@pytest.fixture
def zk(ensemble: Ensemble) -> Iterator[Client]:
    """A client for the test itself (the contenders run in processes of their own)."""
    client = Client(ensemble.connect_string(), timeout=CLIENT_SESSION_S)
    client.start(timeout=30)
    yield client
    client.stop()


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> None:
    """Soaks and the longer fault tests run only when selected: `pytest -m slow tests/integration/recipes`."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long run: select it with -m slow")
