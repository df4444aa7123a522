"""The pure-Python twin of native/src/restore.c: zkcore's own decoders for a restart (logged txns
into columns, snapshot node records into columns), which define what the C must return.
"""

from __future__ import annotations

from zkcore._restore import decode_txns, scan_snapshot_nodes

__all__ = ["decode_txns", "scan_snapshot_nodes"]
