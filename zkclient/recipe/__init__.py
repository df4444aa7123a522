"""kazoo's recipes on zkclient: the coordination patterns applications build on a session (locks,
leader election, membership, barriers, queues, counters, a cached subtree). Each is reachable as
an attribute of the client, as in kazoo: `zk.Lock("/app/lock", "me")`. docs/recipes.md gives
each one's guarantee and failure behaviour.
"""

from zkclient.recipe.barrier import Barrier, DoubleBarrier
from zkclient.recipe.cache import NodeData, TreeCache, TreeEvent
from zkclient.recipe.counter import Counter
from zkclient.recipe.election import Election
from zkclient.recipe.lock import Lock, ReadLock, Semaphore, WriteLock
from zkclient.recipe.party import Party, ShallowParty
from zkclient.recipe.queue import LockingQueue, Queue
from zkclient.recipe.watchers import ChildrenWatch, DataWatch

__all__ = [
    "Barrier",
    "ChildrenWatch",
    "Counter",
    "DataWatch",
    "DoubleBarrier",
    "Election",
    "Lock",
    "LockingQueue",
    "NodeData",
    "Party",
    "Queue",
    "ReadLock",
    "Semaphore",
    "ShallowParty",
    "TreeCache",
    "TreeEvent",
    "WriteLock",
]
