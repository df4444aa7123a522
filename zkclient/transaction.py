"""Several ops in one request: TransactionRequest (multi, all or nothing, kazoo's shape) and
ReadRequest (multiRead: getData and getChildren answered together from one server state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zkclient._future import AsyncResult
from zkclient._ops import check_data, check_path, check_version, create_mode, error
from zkclient.acl import check_acl_list
from zkclient.states import ZnodeStat
from zkcore._records import (
    ACL,
    Create2Response,
    CreateResponse,
    DeleteRequest,
    GetChildrenResponse,
    GetDataResponse,
    JuteRecord,
    OpCode,
    OpResult,
    PathWatchRequest,
    SetDataRequest,
    StatResponse,
)

if TYPE_CHECKING:
    from zkclient.client import Client


class _Batch:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.operations: list[tuple[int, JuteRecord]] = []
        self.paths: list[str] = []
        self.committed = False

    def _add(self, opcode: int, body: JuteRecord, path: str) -> None:
        if self.committed:
            raise ValueError("transaction already committed")
        self.operations.append((opcode, body))
        self.paths.append(path)

    def _result(self, res: OpResult, path: str) -> Any:
        if res.type == OpCode.ERROR:
            return error(res.err, path)
        body = res.body
        if isinstance(body, CreateResponse | Create2Response):
            return self.client._ops.short(body.path)
        if isinstance(body, StatResponse):
            return ZnodeStat.from_stat(body.stat)
        if isinstance(body, GetDataResponse):
            return body.data, ZnodeStat.from_stat(body.stat)
        if isinstance(body, GetChildrenResponse):
            return list(body.children)
        return True

    def _read(self, results: list[OpResult]) -> list[Any]:
        return [self._result(res, path) for res, path in zip(results, self.paths, strict=False)]

    def _commit(self, opcode: int) -> AsyncResult[list[Any]]:
        if self.committed:
            raise ValueError("transaction already committed")
        self.committed = True
        return self.client._submit(self.client._ops.multi(self.operations, self._read, opcode))


class TransactionRequest(_Batch):
    """Ops added here run as one multi when committed: all of them or none. `commit()` returns
    one result per op: the created path, True (delete, check), a ZnodeStat (set_data), or the
    exception instance of an op that failed (RolledBackError for ops undone by another's failure,
    RuntimeInconsistency for ops after the failing one)."""

    def create(self, path: str, value: bytes = b"", acl: Sequence[ACL] | None = None, ephemeral: bool = False,
               sequence: bool = False, container: bool = False, ttl: int = 0) -> None:  # fmt: skip
        mode = create_mode(ephemeral, sequence, container, ttl)
        opcode, body = self.client._ops.create_request(path, value, check_acl_list(acl), mode, ttl, False)
        self._add(opcode, body, path)

    def delete(self, path: str, version: int = -1) -> None:
        self._add(
            OpCode.DELETE,
            DeleteRequest(self.client._ops.full(check_path(path)), check_version(version)),
            path,
        )

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        body = SetDataRequest(
            self.client._ops.full(check_path(path)), check_data(value), check_version(version)
        )
        self._add(OpCode.SET_DATA, body, path)

    def check(self, path: str, version: int) -> None:
        self._add(OpCode.CHECK, self.client._ops.check_request(path, version), path)

    def commit_async(self) -> AsyncResult[list[Any]]:
        return self._commit(OpCode.MULTI)

    def commit(self) -> list[Any]:
        return self.commit_async().get()

    def __enter__(self) -> TransactionRequest:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()


class ReadRequest(_Batch):
    """getData and getChildren ops answered together (multiRead, opcode 22). `commit()` returns
    per op (data, ZnodeStat), a list of children, or the exception instance of an op that failed;
    each op succeeds or fails on its own."""

    def get(self, path: str) -> None:
        self._add(OpCode.GET_DATA, PathWatchRequest(self.client._ops.full(check_path(path)), False), path)

    def get_children(self, path: str) -> None:
        self._add(OpCode.GET_CHILDREN, PathWatchRequest(self.client._ops.full(check_path(path)), False), path)

    def commit_async(self) -> AsyncResult[list[Any]]:
        return self._commit(OpCode.MULTI_READ)

    def commit(self) -> list[Any]:
        return self.commit_async().get()
