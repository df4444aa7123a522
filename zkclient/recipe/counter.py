"""A shared counter (kazoo's Counter): read the value and its version, write value + delta only
if the version is unchanged (compare-and-set), and try again when another writer came first.

The value is stored as `repr(value)` in ASCII (kazoo's format), or as a 4-byte big-endian int
with support_curator=True (Curator's SharedCount).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from zkclient.exceptions import BadVersionError
from zkclient.retry import ForceRetryError

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["Counter"]


class Counter:
    """counter = zk.Counter("/app/hits"); counter += 1; counter.value. After a change,
    pre_value and post_value are the values just before and just after it."""

    def __init__(self, client: Client, path: str, default: Any = 0, support_curator: bool = False) -> None:
        self.client = client
        self.path = path
        self.default = default
        self.default_type = type(default)
        self.support_curator = support_curator
        self._ensured_path = False
        self.pre_value: Any = None
        self.post_value: Any = None
        if support_curator and not isinstance(default, int):
            raise TypeError("when support_curator is enabled the default type must be an int")

    def _ensure_node(self) -> None:
        if not self._ensured_path:
            self.client.ensure_path(self.path)
            self._ensured_path = True

    def _value(self) -> tuple[Any, int]:
        self._ensure_node()
        raw, stat = self.client.get(self.path)
        old: Any
        if self.support_curator:
            old = struct.unpack(">i", raw)[0] if raw != b"" else self.default
        else:
            old = raw.decode("ascii") if raw != b"" else self.default
        return self.default_type(old), stat.version

    @property
    def value(self) -> Any:
        return self._value()[0]

    def _change(self, value: Any) -> Counter:
        if not isinstance(value, self.default_type):
            raise TypeError("invalid type for value change")
        self.client.retry(self._inner_change, value)
        return self

    def _inner_change(self, value: Any) -> None:
        self.pre_value, version = self._value()
        post_value = self.pre_value + value
        data = struct.pack(">i", post_value) if self.support_curator else repr(post_value).encode("ascii")
        try:
            self.client.set(self.path, data, version=version)
        except BadVersionError:
            self.post_value = None
            raise ForceRetryError() from None
        self.post_value = post_value

    def __add__(self, value: Any) -> Counter:
        return self._change(value)

    def __sub__(self, value: Any) -> Counter:
        return self._change(-value)
