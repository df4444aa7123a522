"""The client's exceptions: zkcore's server-error classes under the names kazoo users know, plus
the few errors that only a client can have (closed, timed out, retries used up).

Server errors come from zkcore's one registry (`error_for_code`); nothing here re-defines a code.
Two families, as in zkcore: `KeeperError` (alias `ZookeeperError`) for anything with a ZooKeeper
error code, and `ClientError` for what happens on this side of the wire.
"""

from __future__ import annotations

import builtins

from zkcore import _errors
from zkcore._errors import (
    APIError,
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    Code,
    ConnectionLossError,
    DataInconsistencyError,
    EphemeralOnLocalSessionError,
    InvalidACLError,
    InvalidCallbackError,
    KeeperError,
    LocalError,
    MarshallingError,
    NewConfigNoQuorumError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NotReadOnlyError,
    NoWatcherError,
    OperationTimeoutError,
    QuotaExceededError,
    ReconfigDisabledError,
    ReconfigInProgressError,
    RemoteError,
    RequestTimeoutError,
    RuntimeInconsistencyError,
    SessionExpiredError,
    SessionMovedError,
    SystemZKError,
    ThrottledOpError,
    UnimplementedError,
    UnknownSessionError,
    error_for_code,
)

# kazoo's names for the same classes.
ZookeeperError = KeeperError
SystemZookeeperError = SystemZKError
RuntimeInconsistency = RuntimeInconsistencyError
DataInconsistency = DataInconsistencyError
ConnectionLoss = ConnectionLossError
ReconfigInProcessError = ReconfigInProgressError
NotReadOnlyCallError = NotReadOnlyError


class RolledBackError(KeeperError):
    """A transaction op that was valid but undone because a later op of the same multi failed
    (its result carries err 0 inside a failed multi, as in ZooKeeper's multi reply)."""

    code = Code.OK


class ClientError(Exception):
    """Something went wrong on this side of the wire (no ZooKeeper error code applies)."""


class ConnectionClosedError(SessionExpiredError):  # type: ignore[misc,valid-type]
    """The client was stopped or closed: no session to send the request on. A subclass of
    SessionExpiredError, as in kazoo, so code that handles a lost session handles this too."""

    code = Code.SESSION_EXPIRED


class ClientTimeoutError(ClientError, builtins.TimeoutError):
    """A wait ran out: start() found no server, or a result's get(timeout=...) expired."""


class RetryFailedError(ClientError):
    """A Retry gave up: too many tries or past its deadline. The last error is its __cause__."""


class WatchError(ClientError):
    """A watch recipe was used the wrong way (e.g. one DataWatch given two functions)."""


class LockTimeout(ClientError):  # noqa: N818 - kazoo's name
    """A recipe's blocking acquire (Lock, Semaphore) did not succeed within its timeout."""


class CancelledError(ClientError):
    """A recipe's pending acquire was cancelled (Lock.cancel, Election.cancel)."""


KazooTimeoutError = ClientTimeoutError


def exception_for_code(code: int, message: str = "", path: str | None = None) -> KeeperError:
    """The exception for a server error code: zkcore's registry, plus RolledBackError for 0 inside
    a failed multi."""
    if code == Code.OK:
        return RolledBackError(message or "rolled back", path)
    return error_for_code(code, message, path)


def every_error_class() -> dict[int, type[KeeperError]]:
    """The registry, for tests and docs: code -> class."""
    return {code: type(error_for_code(code)) for code in sorted(int(c) for c in _errors.Code if c != 0)}


__all__ = [
    "APIError",
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "CancelledError",
    "ClientError",
    "ClientTimeoutError",
    "Code",
    "ConnectionClosedError",
    "ConnectionLoss",
    "ConnectionLossError",
    "DataInconsistency",
    "DataInconsistencyError",
    "EphemeralOnLocalSessionError",
    "InvalidACLError",
    "InvalidCallbackError",
    "KazooTimeoutError",
    "KeeperError",
    "LocalError",
    "LockTimeout",
    "MarshallingError",
    "NewConfigNoQuorumError",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NoWatcherError",
    "NodeExistsError",
    "NotEmptyError",
    "NotReadOnlyCallError",
    "NotReadOnlyError",
    "OperationTimeoutError",
    "QuotaExceededError",
    "ReconfigDisabledError",
    "ReconfigInProcessError",
    "ReconfigInProgressError",
    "RemoteError",
    "RequestTimeoutError",
    "RetryFailedError",
    "RolledBackError",
    "RuntimeInconsistency",
    "RuntimeInconsistencyError",
    "SessionExpiredError",
    "SessionMovedError",
    "SystemZKError",
    "SystemZookeeperError",
    "ThrottledOpError",
    "UnimplementedError",
    "UnknownSessionError",
    "WatchError",
    "ZookeeperError",
    "error_for_code",
    "exception_for_code",
    "every_error_class",
]
