"""ZooKeeper's error codes and the exception classes that carry them, through one registry.

Two families mark whose fault an error is: LocalError (the caller's bad input) and RemoteError
(a peer that sent bytes we cannot decode). Every other class is an outcome the server reports.
"""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    OK = 0
    SYSTEM_ERROR = -1
    RUNTIME_INCONSISTENCY = -2
    DATA_INCONSISTENCY = -3
    CONNECTION_LOSS = -4
    MARSHALLING = -5
    UNIMPLEMENTED = -6
    OPERATION_TIMEOUT = -7
    BAD_ARGUMENTS = -8
    UNKNOWN_SESSION = -12
    NEW_CONFIG_NO_QUORUM = -13
    RECONFIG_IN_PROGRESS = -14
    API_ERROR = -100
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_CALLBACK = -113
    INVALID_ACL = -114
    AUTH_FAILED = -115
    SESSION_MOVED = -118
    NOT_READ_ONLY = -119
    EPHEMERAL_ON_LOCAL_SESSION = -120
    NO_WATCHER = -121
    REQUEST_TIMEOUT = -122
    RECONFIG_DISABLED = -123
    SESSION_CLOSED_REQUIRE_SASL_AUTH = -124
    QUOTA_EXCEEDED = -125
    THROTTLED_OP = -127


# Code.OK as a plain int, for the request and write paths, which compare against it for every
# request: reading an enum member costs an attribute lookup through its class (about 60 ns in a
# node, where cluster.node.fast_enum_members has dropped 3.11's slower __getattr__ fallback;
# 250 ns elsewhere), a module global about 15.
CODE_OK = int(Code.OK)


class KeeperError(Exception):
    """An error with one of ZooKeeper's codes; `str(e)` says what was wrong and with what."""

    code: Code = Code.SYSTEM_ERROR

    def __init__(self, message: str = "", path: str | None = None) -> None:
        super().__init__(message or self.code.name.lower().replace("_", " "))
        self.path = path


class LocalError(KeeperError):
    """The caller's input breaks a rule: bad path, bad version, oversized data, bad ACL."""

    code = Code.BAD_ARGUMENTS


class RemoteError(KeeperError):
    """A peer sent bytes that do not decode; the connection that carried them is finished."""

    code = Code.MARSHALLING


_REGISTRY: dict[int, type[KeeperError]] = {}


def _register(code: Code, name: str, base: type[KeeperError] = KeeperError) -> type[KeeperError]:
    cls = type(name, (base,), {"code": code, "__doc__": f"ZooKeeper error {code.name} ({code})."})
    _REGISTRY[int(code)] = cls
    return cls


SystemZKError = _register(Code.SYSTEM_ERROR, "SystemZKError")
RuntimeInconsistencyError = _register(Code.RUNTIME_INCONSISTENCY, "RuntimeInconsistencyError")
DataInconsistencyError = _register(Code.DATA_INCONSISTENCY, "DataInconsistencyError")
ConnectionLossError = _register(Code.CONNECTION_LOSS, "ConnectionLossError")
MarshallingError = _register(Code.MARSHALLING, "MarshallingError", RemoteError)
UnimplementedError = _register(Code.UNIMPLEMENTED, "UnimplementedError")
OperationTimeoutError = _register(Code.OPERATION_TIMEOUT, "OperationTimeoutError")
BadArgumentsError = _register(Code.BAD_ARGUMENTS, "BadArgumentsError", LocalError)
UnknownSessionError = _register(Code.UNKNOWN_SESSION, "UnknownSessionError")
NewConfigNoQuorumError = _register(Code.NEW_CONFIG_NO_QUORUM, "NewConfigNoQuorumError")
ReconfigInProgressError = _register(Code.RECONFIG_IN_PROGRESS, "ReconfigInProgressError")
APIError = _register(Code.API_ERROR, "APIError")
NoNodeError = _register(Code.NO_NODE, "NoNodeError")
NoAuthError = _register(Code.NO_AUTH, "NoAuthError")
BadVersionError = _register(Code.BAD_VERSION, "BadVersionError")
NoChildrenForEphemeralsError = _register(Code.NO_CHILDREN_FOR_EPHEMERALS, "NoChildrenForEphemeralsError")
NodeExistsError = _register(Code.NODE_EXISTS, "NodeExistsError")
NotEmptyError = _register(Code.NOT_EMPTY, "NotEmptyError")
SessionExpiredError = _register(Code.SESSION_EXPIRED, "SessionExpiredError")
InvalidCallbackError = _register(Code.INVALID_CALLBACK, "InvalidCallbackError")
InvalidACLError = _register(Code.INVALID_ACL, "InvalidACLError", LocalError)
AuthFailedError = _register(Code.AUTH_FAILED, "AuthFailedError")
SessionMovedError = _register(Code.SESSION_MOVED, "SessionMovedError")
NotReadOnlyError = _register(Code.NOT_READ_ONLY, "NotReadOnlyError")
EphemeralOnLocalSessionError = _register(Code.EPHEMERAL_ON_LOCAL_SESSION, "EphemeralOnLocalSessionError")
NoWatcherError = _register(Code.NO_WATCHER, "NoWatcherError")
RequestTimeoutError = _register(Code.REQUEST_TIMEOUT, "RequestTimeoutError")
ReconfigDisabledError = _register(Code.RECONFIG_DISABLED, "ReconfigDisabledError")
SessionClosedRequireSaslAuthError = _register(
    Code.SESSION_CLOSED_REQUIRE_SASL_AUTH, "SessionClosedRequireSaslAuthError"
)
QuotaExceededError = _register(Code.QUOTA_EXCEEDED, "QuotaExceededError")
ThrottledOpError = _register(Code.THROTTLED_OP, "ThrottledOpError")


def error_for_code(code: int, message: str = "", path: str | None = None) -> KeeperError:
    """The exception for a server error code; an unknown code becomes SystemZKError."""
    cls = _REGISTRY.get(code)
    if cls is None:
        return SystemZKError(f"unknown error code {code}: {message}", path)
    return cls(message, path)
