"""kazoo's recipes on zkclient: the coordination patterns applications build on a session (locks,
leader election, membership, barriers, queues, counters, a cached subtree). Each is reachable as
an attribute of the client, as in kazoo: `zk.Lock("/app/lock", "me")`. docs/recipes.md gives
each one's guarantee and failure behaviour.
"""

from zkclient.recipe.election import Election
from zkclient.recipe.lock import Lock, ReadLock, Semaphore, WriteLock
from zkclient.recipe.watchers import ChildrenWatch, DataWatch

__all__ = [
    "ChildrenWatch",
    "DataWatch",
    "Election",
    "Lock",
    "ReadLock",
    "Semaphore",
    "WriteLock",
]
