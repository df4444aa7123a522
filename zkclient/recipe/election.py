"""Leader election (kazoo's Election): a Lock whose node data is the contender's identifier; the
holder is the leader and runs the leader function.

Leadership lasts as long as the lock does: it ends when the function returns, and it is lost with
the session (SUSPENDED: maybe, LOST: certainly), after which the next contender leads. The
function is not interrupted: a leader that must stop when it may have lost leadership watches the
client's state (client.add_listener), as docs/recipes.md shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zkclient.exceptions import CancelledError
from zkclient.recipe.lock import Lock

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["Election"]


class Election:
    """election = zk.Election("/app/leader", "node-1"); election.run(lead) blocks until this
    contender wins, calls lead(), then gives leadership up."""

    def __init__(self, client: Client, path: str, identifier: str | None = None) -> None:
        self.lock = Lock(client, path, identifier)

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Contend; once elected call func(*args, **kwargs) and release leadership when it returns
        or raises. Returns quietly if cancelled before winning."""
        if not callable(func):
            raise ValueError("leader function is not callable")
        try:
            with self.lock:
                func(*args, **kwargs)
        except CancelledError:
            pass

    def cancel(self) -> None:
        """Stop contending. A leader already running its function is not interrupted."""
        self.lock.cancel()

    def contenders(self) -> list[str]:
        """The contenders' identifiers, the leader first."""
        return self.lock.contenders()
