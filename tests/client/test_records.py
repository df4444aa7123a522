"""The client's data shapes: ZnodeStat (kazoo's field names and properties, built from zkcore's
Stat), event names, exceptions mapped from every zkcore code, and create-mode checks."""

from __future__ import annotations

import pytest

from zkclient import exceptions as ex
from zkclient._ops import check_path, create_mode, error
from zkclient.states import EventType, ZnodeStat, event_type_name
from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._errors import Code, KeeperError, error_for_code
from zkcore._records import CreateMode, Stat


def test_znode_stat_has_kazoos_fields_and_properties() -> None:
    stat = ZnodeStat.from_stat(Stat(1, 2, 3000, 4500, 5, 6, 7, 0x88, 9, 10, 11))
    assert stat._fields == ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                            "ephemeralOwner", "dataLength", "numChildren", "pzxid")  # fmt: skip
    assert tuple(stat) == (1, 2, 3000, 4500, 5, 6, 7, 0x88, 9, 10, 11)
    assert (stat.created, stat.last_modified) == (3.0, 4.5)
    assert (stat.data_length, stat.children_count, stat.owner_session_id) == (9, 10, 0x88)
    assert (stat.creation_transaction_id, stat.last_modified_transaction_id) == (1, 2)
    assert (stat.acl_version, stat.children_version) == (7, 6)
    assert stat._replace(ephemeralOwner=0).owner_session_id is None


@pytest.mark.parametrize(
    "code, name",
    [(-1, EventType.NONE), (NODE_CREATED, "CREATED"), (NODE_DELETED, "DELETED"), (NODE_DATA_CHANGED, "CHANGED"),
     (NODE_CHILDREN_CHANGED, "CHILD"), (5, "DATA_WATCH_REMOVED"), (6, "CHILD_WATCH_REMOVED"),
     (7, "PERSISTENT_WATCH_REMOVED"), (42, "UNKNOWN(42)")],
)  # fmt: skip
def test_event_type_names(code: int, name: str) -> None:
    assert event_type_name(code) == name


@pytest.mark.parametrize("code", [c for c in Code if c != Code.OK], ids=lambda c: c.name)
def test_every_zkcore_code_maps_to_its_class(code: Code) -> None:
    e = ex.exception_for_code(int(code), "m", "/p")
    assert type(e) is type(error_for_code(int(code)))
    assert isinstance(e, KeeperError) and e.code == code and e.path == "/p"
    assert ex.every_error_class()[int(code)] is type(e)


def test_kazoo_names_are_zkcores_classes() -> None:
    pairs = [(ex.NoNodeError, Code.NO_NODE), (ex.NodeExistsError, Code.NODE_EXISTS),
             (ex.BadVersionError, Code.BAD_VERSION), (ex.NotEmptyError, Code.NOT_EMPTY),
             (ex.NoAuthError, Code.NO_AUTH), (ex.BadArgumentsError, Code.BAD_ARGUMENTS),
             (ex.ConnectionLoss, Code.CONNECTION_LOSS), (ex.SessionExpiredError, Code.SESSION_EXPIRED),
             (ex.InvalidACLError, Code.INVALID_ACL), (ex.AuthFailedError, Code.AUTH_FAILED),
             (ex.MarshallingError, Code.MARSHALLING), (ex.UnimplementedError, Code.UNIMPLEMENTED),
             (ex.NoChildrenForEphemeralsError, Code.NO_CHILDREN_FOR_EPHEMERALS),
             (ex.RuntimeInconsistency, Code.RUNTIME_INCONSISTENCY), (ex.NoWatcherError, Code.NO_WATCHER),
             (ex.SystemZookeeperError, Code.SYSTEM_ERROR), (ex.NotReadOnlyCallError, Code.NOT_READ_ONLY)]  # fmt: skip
    for cls, code in pairs:
        assert type(error_for_code(int(code))) is cls, cls
    assert ex.ZookeeperError is KeeperError


def test_client_side_errors() -> None:
    assert issubclass(ex.ConnectionClosedError, ex.SessionExpiredError)
    assert issubclass(ex.ClientTimeoutError, TimeoutError)
    assert isinstance(ex.exception_for_code(0), ex.RolledBackError)
    assert str(error(-101, "/a")) == "KeeperErrorCode = NoNode for /a"
    assert str(error(0, "/a")) == "KeeperErrorCode = RolledBack for /a"
    assert isinstance(error(-999, None), ex.SystemZKError)


@pytest.mark.parametrize(
    "ephemeral, sequence, container, ttl, mode",
    [
        (False, False, False, 0, CreateMode.PERSISTENT),
        (True, False, False, 0, CreateMode.EPHEMERAL),
        (False, True, False, 0, CreateMode.PERSISTENT_SEQUENTIAL),
        (True, True, False, 0, CreateMode.EPHEMERAL_SEQUENTIAL),
        (False, False, True, 0, CreateMode.CONTAINER),
        (False, False, False, 500, CreateMode.PERSISTENT_WITH_TTL),
        (False, True, False, 500, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL),
    ],
)
def test_create_modes(ephemeral: bool, sequence: bool, container: bool, ttl: int, mode: CreateMode) -> None:
    assert create_mode(ephemeral, sequence, container, ttl) is mode


@pytest.mark.parametrize(
    "ephemeral, sequence, container, ttl, rule",
    [(True, False, True, 0, "container"), (False, True, True, 0, "container"), (True, False, False, 5, "ttl"),
     (False, False, False, -1, "ttl"), (False, False, False, 1 << 41, "ttl")],
)  # fmt: skip
def test_refused_create_modes(ephemeral: bool, sequence: bool, container: bool, ttl: int, rule: str) -> None:
    with pytest.raises(ex.BadArgumentsError, match=rule):
        create_mode(ephemeral, sequence, container, ttl)


def test_paths_are_checked_before_sending() -> None:
    assert check_path("/q/", sequential=True) == "/q/"
    for bad, rule in [("a", "start with '/'"), ("/a/", "end with '/'"), ("/a//b", "empty component")]:
        with pytest.raises(ex.BadArgumentsError, match=rule):
            check_path(bad)
    with pytest.raises(TypeError):
        check_path(b"/a")  # type: ignore[arg-type]
