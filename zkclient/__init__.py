"""zkclient: the Python client for zkpy, with kazoo's API over ZeroMQ (docs/protocol.md), and its
command line (`python -m zkclient.cli`).

    from zkclient import Client
    zk = Client("tcp://127.0.0.1:2181,tcp://127.0.0.1:2182")
    zk.start()
    zk.create("/app/lock", b"", ephemeral=True, makepath=True)
"""

from zkclient import exceptions
from zkclient._future import AsyncResult
from zkclient.acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
    parse_acl,
)
from zkclient.client import Client
from zkclient.exceptions import ClientError, KeeperError
from zkclient.hosts import parse_hosts
from zkclient.retry import ForceRetryError, Retry
from zkclient.states import (
    AddWatchMode,
    EventType,
    KazooState,
    KeeperState,
    WatchedEvent,
    WatcherType,
    ZnodeStat,
)
from zkclient.transaction import ReadRequest, TransactionRequest
from zkclient.watchers import ChildrenWatch, DataWatch

# The names kazoo users reach for. kazoo's exceptions share one base; here a server error
# (KeeperError, with a ZooKeeper code) and a client-side one (ClientError) are two families, so
# `except KazooException:` catches both through a tuple.
KazooClient = Client
KazooException = (KeeperError, ClientError)

__all__ = [
    "ACL",
    "AddWatchMode",
    "AsyncResult",
    "CREATOR_ALL_ACL",
    "ChildrenWatch",
    "Client",
    "ClientError",
    "DataWatch",
    "EventType",
    "ForceRetryError",
    "Id",
    "KazooClient",
    "KazooException",
    "KazooState",
    "KeeperError",
    "KeeperState",
    "OPEN_ACL_UNSAFE",
    "Permissions",
    "READ_ACL_UNSAFE",
    "ReadRequest",
    "Retry",
    "TransactionRequest",
    "WatchedEvent",
    "WatcherType",
    "ZnodeStat",
    "exceptions",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
    "parse_acl",
    "parse_hosts",
]
