"""Real ensembles for integration tests: started by the launcher in a temporary folder, stopped
by pid at the end (nodes and supervisor alike), whatever the test did to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster import config
from cluster.harness import Harness, wait_for
from tests.integration.wire import NoAnswer, Refused, WireSession

__all__ = ["Ensemble", "wait_for"]


class Ensemble(Harness):
    """The harness plus wire-level sessions for tests that speak the protocol directly."""

    def session(self, sid: int | None = None, **kw: object) -> WireSession:
        """A session on server sid (or any serving server), retried until one accepts."""
        order = [sid] if sid is not None else sorted(self.conf.servers)

        def attempt() -> WireSession | None:
            for s in order:
                try:
                    return WireSession(self.conf.servers[s].client, **kw)  # type: ignore[arg-type]
                except (Refused, NoAnswer):
                    continue
            return None

        return wait_for(attempt, 30, f"a server of {order} to accept a session")  # type: ignore[return-value]


@pytest.fixture
def ensemble_factory(tmp_path: Path) -> Iterator[Callable[..., Ensemble]]:
    made: list[Ensemble] = []

    def make(
        nodes: int = 3, observers: int = 0, transport: str = config.TRANSPORT_DEFAULT, **options: int
    ) -> Ensemble:
        e = Ensemble(tmp_path / f"e{len(made)}", nodes, observers, transport, **options)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop()
