"""Jute, ZooKeeper's binary layout: big-endian ints, length-prefixed buffers, strings, vectors.

`@record` turns a frozen, slotted dataclass whose fields are annotated with the jute types below
into a record with `encode()`/`write(w)` and `decode(b)`/`read(r)`/`read_at(buf, pos, end)`, its
reader generated from the field types (see _compile_reader). Decoding raises only RemoteError,
whatever the bytes.
"""

from __future__ import annotations

import builtins
import dataclasses
import struct
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, TypeVar

from zkcore import limits
from zkcore._errors import RemoteError

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
# A snapshot buffer (a SNAP's whole tree) longer than a jute int can say is written as this
# marker and then its length as a long. Shorter ones are plain jute buffers, as before, and a
# peer that predates the marker refuses it (it could not have taken so big a tree anyway).
SNAPSHOT_LONG_LENGTH = -2
_SNAPSHOT_INT_LENGTH_MAX = 2**31 - 1
_LONG_LENGTH_PREFIX = _INT.pack(SNAPSHOT_LONG_LENGTH)


def snapshot_length_prefix(n: builtins.int) -> builtins.bytes:
    """The length that starts a snapshot buffer of n bytes."""
    if n <= _SNAPSHOT_INT_LENGTH_MAX:
        return _INT.pack(n)
    return _LONG_LENGTH_PREFIX + _LONG.pack(n)


def as_bytes(data: builtins.bytes | bytearray | memoryview) -> builtins.bytes:
    """The bytes to decode from: readers slice them, and a slice of bytes is bytes already."""
    return data if type(data) is bytes else bytes(data)


def int_at(buf: builtins.bytes, pos: builtins.int, end: builtins.int) -> builtins.int:
    """The int at pos, checked against end (a length, a count, a message kind)."""
    if end - pos < 4:
        raise RemoteError(f"truncated int: need 4 bytes at offset {pos}, have {end - pos}")
    return int(_INT.unpack_from(buf, pos)[0])


def vector_length_at(buf: builtins.bytes, pos: builtins.int, end: builtins.int) -> builtins.int:
    n = int_at(buf, pos, end)
    if n < -1 or n > limits.vector_length_max:
        raise RemoteError(f"vector length must be in [-1, {limits.vector_length_max}], got {n}")
    return max(n, 0)


def expect_end(pos: builtins.int, end: builtins.int, what: str, detail: object = None) -> None:
    """Decoding `what` (and `detail`, formatted only for the error) must have used every byte
    up to end."""
    if pos != end:
        named = what if detail is None else f"{what} {detail}"
        raise RemoteError(f"{end - pos} trailing bytes after {named}")


class Reader:
    """Reads jute values from a buffer, checking every length against what is left."""

    __slots__ = ("buf", "pos", "end")

    def __init__(
        self,
        buf: builtins.bytes | bytearray | memoryview,
        pos: builtins.int = 0,
        end: builtins.int | None = None,
    ) -> None:
        self.buf = as_bytes(buf)
        self.pos = pos
        self.end = len(self.buf) if end is None else end

    def _need(self, n: builtins.int, what: str) -> builtins.int:
        pos = self.pos
        if n > self.end - pos:
            raise RemoteError(f"truncated {what}: need {n} bytes at offset {pos}, have {self.end - pos}")
        self.pos = pos + n
        return pos

    def int(self) -> builtins.int:
        pos = self._need(4, "int")
        return int(_INT.unpack_from(self.buf, pos)[0])

    def long(self) -> builtins.int:
        pos = self._need(8, "long")
        return int(_LONG.unpack_from(self.buf, pos)[0])

    def bool(self) -> builtins.bool:
        pos = self._need(1, "bool")
        b = self.buf[pos]
        if b > 1:
            raise RemoteError(f"bool must be 0 or 1, got {b} at offset {pos}")
        return b == 1

    def buffer(self) -> builtins.bytes:
        n = self.int()
        if n < 0:
            if n != -1:
                raise RemoteError(f"buffer length must be >= -1, got {n}")
            return b""
        if n > limits.frame_bytes_max:
            raise RemoteError(f"buffer length {n} exceeds frame_bytes_max {limits.frame_bytes_max}")
        pos = self._need(n, "buffer")
        return self.buf[pos : pos + n]

    def snapshot_buffer(self) -> builtins.bytes:
        """A buffer that may hold a whole tree (a SNAP): bounded by snapshot_bytes_max instead,
        and past 2 GiB its length a long (see SNAPSHOT_LONG_LENGTH)."""
        n = self.int()
        if n == SNAPSHOT_LONG_LENGTH:
            n = self.long()
        if not 0 <= n <= limits.snapshot_bytes_max:
            raise RemoteError(f"snapshot length must be in [0, {limits.snapshot_bytes_max}], got {n}")
        pos = self._need(n, "snapshot")
        return self.buf[pos : pos + n]

    def ustring(self) -> str:
        raw = self.buffer()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RemoteError(f"string is not valid UTF-8: {raw[:40]!r}") from e

    def vector_length(self) -> builtins.int:
        n = vector_length_at(self.buf, self.pos, self.end)
        self.pos += 4
        return n

    def remaining(self) -> builtins.int:
        return self.end - self.pos

    def rest(self) -> builtins.bytes:
        pos = self.pos
        self.pos = self.end
        return self.buf[pos:]

    def expect_end(self, what: str) -> None:
        expect_end(self.pos, self.end, what)


class Writer:
    """Appends jute values to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def int(self, v: builtins.int) -> None:
        self.buf += _INT.pack(v)

    def long(self, v: builtins.int) -> None:
        self.buf += _LONG.pack(v)

    def bool(self, v: builtins.bool) -> None:
        self.buf.append(1 if v else 0)

    def buffer(self, v: builtins.bytes) -> None:
        self.buf += _INT.pack(len(v))
        self.buf += v

    def ustring(self, v: str) -> None:
        self.buffer(v.encode("utf-8"))

    def snapshot_buffer(self, v: builtins.bytes) -> None:
        self.buf += snapshot_length_prefix(len(v))
        self.buf += v

    def bytes(self) -> builtins.bytes:
        return bytes(self.buf)


class PartsWriter(Writer):
    """A Writer that keeps each snapshot buffer (a whole tree, hundreds of megabytes) as a part
    of its own instead of copying it into `buf`: parts() are the bytes to send one after
    another. Records write a snapshot buffer through the writer's method for this."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        super().__init__()
        self.done: list[builtins.bytes] = []

    def snapshot_buffer(self, v: builtins.bytes) -> None:
        self.buf += snapshot_length_prefix(len(v))
        self.done += (bytes(self.buf), v)
        self.buf = bytearray()

    def parts(self) -> tuple[builtins.bytes, ...]:
        return (*self.done, bytes(self.buf))


# Jute field types, used as annotation metadata: `path: UString`, `acl: Vector[ACL]`.
class _Prim:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Vec:
    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item


Int = Annotated[int, _Prim("int")]
Long = Annotated[int, _Prim("long")]
Bool = Annotated[bool, _Prim("bool")]
Buffer = Annotated[bytes, _Prim("buffer")]
SnapshotBuffer = Annotated[bytes, _Prim("snapshot_buffer")]
UString = Annotated[str, _Prim("ustring")]

T = TypeVar("T")


if TYPE_CHECKING:
    Vector = tuple[T, ...]
else:

    class Vector:
        """`Vector[ACL]` is a jute vector of ACL records (a tuple in Python)."""

        def __class_getitem__(cls, item: Any) -> Any:
            inner = item.__metadata__[0] if hasattr(item, "__metadata__") else item
            return Annotated[tuple[item, ...], _Vec(inner)]


class Record(Protocol):
    def write(self, w: Writer) -> None: ...

    def encode(self) -> bytes: ...


R = TypeVar("R")


# A record's read_at(buf, pos, end) -> (value, pos after it): buf is bytes; every length is
# checked against end, and anything malformed raises RemoteError.
ReadAt = Callable[[builtins.bytes, builtins.int, builtins.int], tuple[Any, builtins.int]]

# Readers that replace the generic one for a vector of some record type (see _records: ACLs).
VECTOR_READERS: dict[Any, ReadAt] = {}


def read_at_from(
    read: Callable[[Reader], T],
) -> Callable[[builtins.bytes, builtins.int, builtins.int], tuple[T, builtins.int]]:
    """The read_at form (buf, pos, end) -> (value, pos) of a function that reads through a Reader."""

    def read_at(buf: builtins.bytes, pos: builtins.int, end: builtins.int) -> tuple[T, builtins.int]:
        r = Reader(buf, pos, end)
        return read(r), r.pos

    return read_at


def _prim_at(name: str) -> ReadAt:
    """read_at for one primitive through Reader: vectors of primitives and snapshots are rare."""
    return read_at_from(getattr(Reader, name))


def _vector_at(item: ReadAt) -> ReadAt:
    def read_at(
        buf: builtins.bytes, pos: builtins.int, end: builtins.int
    ) -> tuple[tuple[Any, ...], builtins.int]:
        count = vector_length_at(buf, pos, end)
        pos += 4
        items = []
        for _ in range(count):
            value, pos = item(buf, pos, end)
            items.append(value)
        return tuple(items), pos

    return read_at


def _field_writer(meta: Any) -> Callable[[Writer, Any], None]:
    if isinstance(meta, _Prim):
        writer: Callable[[Writer, Any], None] = getattr(Writer, meta.name)
        return writer
    if isinstance(meta, _Vec):
        item = meta.item
        put = getattr(Writer, item.name) if isinstance(item, _Prim) else (lambda w, v: v.write(w))

        def write_vec(w: Writer, vs: tuple[Any, ...]) -> None:
            w.int(len(vs))
            for v in vs:
                put(w, v)

        return write_vec
    return lambda w, v: v.write(w)  # a nested record


def _field_reader(meta: Any) -> ReadAt:
    """read_at for a field that is neither fixed-width nor a buffer or string."""
    if isinstance(meta, _Prim):
        return _prim_at(meta.name)
    if isinstance(meta, _Vec):
        item = meta.item
        special = VECTOR_READERS.get(item)
        if special is not None:
            return special
        return _vector_at(_prim_at(item.name) if isinstance(item, _Prim) else item.read_at)
    reader: ReadAt = meta.read_at  # a nested record
    return reader


_FIXED = {"int": "i", "long": "q", "bool": "B"}
EMPTY_TEXT, EMPTY_BYTES = repr(""), repr(b"")


def _compile_reader(name: str, metas: list[Any]) -> Callable[..., tuple[Any, builtins.int]]:
    """read_at(klass, buf, pos, end) for one record, generated so that each run of fixed-width
    fields is a single struct unpack and buffers and strings are sliced in place: decoding is
    on every request's, every Zab message's and every applied txn's path."""
    env: dict[str, Any] = {"RemoteError": RemoteError, "limits": limits, "_INT_from": _INT.unpack_from}
    lines = ["def read_at(klass, buf, pos, end):"]
    group: list[tuple[str, str]] = []

    def need(n: str, what: str) -> None:
        lines.append(f"    if end - pos < {n}:")
        lines.append(
            f"        raise RemoteError(f'truncated {what}: need {{{n}}} bytes at offset {{pos}}, have {{end - pos}}')"
        )

    def flush() -> None:
        if not group:
            return
        fmt = ">" + "".join(_FIXED[kind] for _, kind in group)
        unpack = f"_u{len(env)}"
        env[unpack] = struct.Struct(fmt).unpack_from
        size = struct.calcsize(fmt)
        need(str(size), name)
        lines.append(f"    {', '.join(v for v, _ in group)}, = {unpack}(buf, pos)")
        lines.append(f"    pos += {size}")
        for v, kind in group:
            if kind == "bool":
                lines.append(f"    if {v} > 1:")
                lines.append(f"        raise RemoteError(f'bool must be 0 or 1, got {{{v}}} in {name}')")
                lines.append(f"    {v} = {v} == 1")
        group.clear()

    def sliced(v: str, text: bool) -> None:
        """A buffer or string inline: Reader.buffer's checks and messages, then the slice."""
        need("4", "int")
        lines.append("    n, = _INT_from(buf, pos)")
        lines.append("    pos += 4")
        lines.append("    if n < 0:")
        lines.append("        if n != -1:")
        lines.append("            raise RemoteError(f'buffer length must be >= -1, got {n}')")
        lines.append(f"        {v} = {EMPTY_TEXT if text else EMPTY_BYTES}")
        lines.append("    else:")
        lines.append("        if n > limits.frame_bytes_max:")
        lines.append(
            "            raise RemoteError(f'buffer length {n} exceeds frame_bytes_max {limits.frame_bytes_max}')"
        )
        lines.append("        if end - pos < n:")
        lines.append(
            "            raise RemoteError(f'truncated buffer: need {n} bytes at offset {pos}, have {end - pos}')"
        )
        if text:
            lines.append("        raw = buf[pos : pos + n]")
            lines.append("        try:")
            lines.append(f"            {v} = raw.decode('utf-8')")
            lines.append("        except UnicodeDecodeError as e:")
            lines.append("            raise RemoteError(f'string is not valid UTF-8: {raw[:40]!r}') from e")
        else:
            lines.append(f"        {v} = buf[pos : pos + n]")
        lines.append("        pos += n")

    for i, meta in enumerate(metas):
        if isinstance(meta, _Prim) and meta.name in _FIXED:
            group.append((f"f{i}", meta.name))
            continue
        flush()
        if isinstance(meta, _Prim) and meta.name in ("buffer", "ustring"):
            sliced(f"f{i}", meta.name == "ustring")
            continue
        env[f"get{i}"] = _field_reader(meta)
        lines.append(f"    f{i}, pos = get{i}(buf, pos, end)")
    flush()
    lines.append(f"    return klass({', '.join(f'f{i}' for i in range(len(metas)))}), pos")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from field types only
    reader: Callable[..., tuple[Any, builtins.int]] = env["read_at"]
    return reader


def _compile_writer(metas: list[tuple[str, Any]]) -> Callable[[Any, Writer], None]:
    """A write function for one record, generated like its reader: each run of fixed-width
    fields is one struct pack, buffers and strings are appended in place."""
    env: dict[str, Any] = {"_INT_pack": _INT.pack}
    lines = ["def write(self, w):", "    buf = w.buf"]
    group: list[tuple[str, str]] = []

    def flush() -> None:
        if not group:
            return
        pack = f"_p{len(env)}"
        env[pack] = struct.Struct(">" + "".join(_FIXED[kind] for _, kind in group)).pack
        args = [f"(1 if self.{name} else 0)" if kind == "bool" else f"self.{name}" for name, kind in group]
        lines.append(f"    buf += {pack}({', '.join(args)})")
        group.clear()

    for i, (name, meta) in enumerate(metas):
        if isinstance(meta, _Prim) and meta.name in _FIXED:
            group.append((name, meta.name))
            continue
        flush()
        if isinstance(meta, _Prim) and meta.name == "snapshot_buffer":
            lines.append(f"    w.snapshot_buffer(self.{name})")  # a PartsWriter starts a new buf
            lines.append("    buf = w.buf")
        elif isinstance(meta, _Prim) and meta.name in ("buffer", "ustring"):
            encode = ".encode('utf-8')" if meta.name == "ustring" else ""
            lines.append(f"    v = self.{name}{encode}")
            lines.append("    buf += _INT_pack(len(v))")
            lines.append("    buf += v")
        else:
            env[f"put{i}"] = _field_writer(meta)
            lines.append(f"    put{i}(w, self.{name})")
    flush()
    exec("\n".join(lines), env)  # noqa: S102 - source built above from field names and types only
    writer: Callable[[Any, Writer], None] = env["write"]
    return writer


def _compile_init(cls: Any) -> None:
    """dataclass(frozen=True)'s __init__ sets each field through object.__setattr__; setting the
    slots through their descriptors does the same at half the cost, and records are built
    several times per request. Left alone for a record with defaults or non-init fields."""
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    if any(not f.init or f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
           for f in fields) or not all(isinstance(cls.__dict__.get(n), types.MemberDescriptorType)
                                       for n in names):  # fmt: skip
        return
    env = {f"_set_{name}": cls.__dict__[name].__set__ for name in names}
    lines = [f"def __init__(self{''.join(', ' + n for n in names)}):"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    lines.append("    self.__post_init__()" if hasattr(cls, "__post_init__") else "    pass")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from field names only
    env["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = env["__init__"]


def record(cls: type[R]) -> type[R]:
    """Give a frozen dataclass jute `write/encode/read/decode` from its annotated fields."""
    hints = typing.get_type_hints(cls, include_extras=True)
    metas = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint = hints[f.name]
        metas.append((f.name, hint.__metadata__[0] if hasattr(hint, "__metadata__") else hint))
    read_at = _compile_reader(cls.__name__, [meta for _, meta in metas])
    write = _compile_writer(metas)
    _compile_init(cls)

    def encode(self: Any) -> bytes:
        w = Writer()
        write(self, w)
        return bytes(w.buf)

    def read(klass: Any, r: Reader) -> Any:
        value, r.pos = read_at(klass, r.buf, r.pos, r.end)
        return value

    def decode(klass: Any, data: bytes | bytearray | memoryview) -> Any:
        buf = as_bytes(data)
        value, pos = read_at(klass, buf, 0, len(buf))
        expect_end(pos, len(buf), klass.__name__)
        return value

    cls.write = write  # type: ignore[attr-defined]
    cls.encode = encode  # type: ignore[attr-defined]
    cls.read_at = classmethod(read_at)  # type: ignore[attr-defined]
    cls.read = classmethod(read)  # type: ignore[attr-defined]
    cls.decode = classmethod(decode)  # type: ignore[attr-defined]
    return cls


class JuteRecord:
    """Base giving records their codec method names for type checkers; `@record` fills them."""

    __slots__ = ()
    OPCODE: ClassVar[int] = 0

    def write(self, w: Writer) -> None:
        raise NotImplementedError

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def read_at(cls: type[T], buf: bytes, pos: int, end: int) -> tuple[T, int]:
        raise NotImplementedError

    @classmethod
    def read(cls: type[T], r: Reader) -> T:
        raise NotImplementedError

    @classmethod
    def decode(cls: type[T], data: bytes | bytearray | memoryview) -> T:
        raise NotImplementedError
