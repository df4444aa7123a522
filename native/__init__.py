"""The native core: C through cffi for the per-request and per-txn hot paths, and a pure-Python
twin of every function with the same interface and results. `ZKPY_NATIVE=0` forces the twin.

Exports: crc32c, log_encode, log_append, log_scan (txn log records), PathIndex (the path index
and batched read path), and decode_txns, scan_snapshot_nodes (a restart's decoders: logged txns
and snapshot node records into columns), ShmRing (a shared-memory ring of peer messages), Syncer
(an fdatasync on a thread of its own, polled for through an eventfd).
IMPLEMENTATION is "native" or "python".
"""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace
from typing import Any

EXPORTS = (
    "crc32c",
    "log_encode",
    "log_append",
    "log_scan",
    "ScanResult",
    "PathIndex",
    "decode_txns",
    "scan_snapshot_nodes",
    "ShmRing",
    "Syncer",
)


def _namespace(name: str, *modules: Any) -> SimpleNamespace:
    ns = SimpleNamespace(name=name)
    for mod in modules:
        for attr in EXPORTS:
            if hasattr(mod, attr):
                setattr(ns, attr, getattr(mod, attr))
    missing = [a for a in EXPORTS if not hasattr(ns, a)]
    assert not missing, f"{name} implementation lacks {missing}"
    return ns


def python_twin() -> SimpleNamespace:
    from native import _pyindex, _pylog, _pyrestore, _pyshm

    return _namespace("python", _pylog, _pyindex, _pyrestore, _pyshm)


def compiled() -> SimpleNamespace | None:
    """The cffi implementation, or None when the extension was not built."""
    try:
        from native import _cindex, _clog, _crestore, _cshm
    except ImportError:
        return None
    except AttributeError as e:  # built from older sources: setup.py must still get to rebuild it
        warnings.warn(f"the native extension is stale ({e}); using the pure-Python twins until it is "
                      "rebuilt (make install)", stacklevel=2)  # fmt: skip
        return None
    return _namespace("native", _clog, _cindex, _crestore, _cshm)


def _select() -> SimpleNamespace:
    if os.environ.get("ZKPY_NATIVE", "1") != "0":
        impl = compiled()
        if impl is not None:
            return impl
    return python_twin()


_impl = _select()
IMPLEMENTATION: str = _impl.name
crc32c = _impl.crc32c
log_encode = _impl.log_encode
log_append = _impl.log_append
log_scan = _impl.log_scan
ScanResult = _impl.ScanResult
PathIndex = _impl.PathIndex
decode_txns = _impl.decode_txns
scan_snapshot_nodes = _impl.scan_snapshot_nodes
ShmRing = _impl.ShmRing
Syncer = _impl.Syncer

__all__ = ["IMPLEMENTATION", "compiled", "python_twin", *EXPORTS]
