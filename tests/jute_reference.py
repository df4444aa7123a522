"""The plain reading of a jute record, one field at a time through Reader's methods: the oracle
that the generated readers (zkcore._jute._compile_reader) are held to in differential tests."""

from __future__ import annotations

import dataclasses
import typing

from zkcore import LocalError, RemoteError
from zkcore._jute import Reader, _Prim, _Vec


def read_field(r: Reader, meta: typing.Any) -> typing.Any:
    if isinstance(meta, _Prim):
        return getattr(r, meta.name)()
    if isinstance(meta, _Vec):
        return tuple(read_field(r, meta.item) for _ in range(r.vector_length()))
    return read_record(r, meta)


def read_record(r: Reader, cls: type) -> typing.Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    values = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        values.append(read_field(r, hint.__metadata__[0] if hasattr(hint, "__metadata__") else hint))
    try:
        return cls(*values)
    except LocalError as e:  # a record that checks itself (Zab's messages)
        raise RemoteError(f"bad {cls.__name__}: {e}") from e


def outcome(decode: typing.Callable[[bytes], object], data: bytes) -> object:
    """What decoding gives: the value, or that it raised RemoteError (nothing else may escape).
    The messages differ: a generated reader checks a run of fixed-width fields at once."""
    try:
        return decode(data)
    except RemoteError:
        return RemoteError
