"""A Server that is slow to start, for the launcher's tests: run by a node through the config's
serverClass (tests.integration.slow_server:SlowToLoad)."""

from __future__ import annotations

import time
from typing import Any

from zkcore.server import Server

LOAD_CPU_S = 5.0


class SlowToLoad(Server):
    """Spends LOAD_CPU_S seconds on a core before it is a server, as loading a big tree does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        end = time.process_time() + LOAD_CPU_S
        while time.process_time() < end:
            pass
        super().__init__(*args, **kwargs)
