"""Random edits of a well-formed encoding, for differential tests of decoders' fast paths: a
fast path must give the same answer (value or error) as the general one on every mutation."""

from __future__ import annotations

from hypothesis import strategies as st

# Lengths and counts that sit on the edges a decoder checks.
EDGE_INTS = [-(1 << 31), -2, -1, 0, 1, 2, 3, 4, 5, 6, 9, 1 << 30, (1 << 31) - 1]


def mutated(data: st.DataObject, encoding: bytes, int_offsets: list[int], edits_max: int = 3) -> bytearray:
    """`encoding` after up to edits_max edits: a byte changed, a cut, bytes appended, or a
    big-endian int overwritten with an edge value at one of int_offsets (where lengths sit)."""
    raw = bytearray(encoding)
    for _ in range(data.draw(st.integers(0, edits_max))):
        kind = data.draw(st.sampled_from(["byte", "cut", "extend", "int"]))
        if kind == "byte" and raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[data.draw(st.integers(0, len(raw))) :]
        elif kind == "extend":
            raw += data.draw(st.binary(min_size=1, max_size=6))
        elif kind == "int":
            at = data.draw(st.sampled_from(int_offsets))
            if at + 4 <= len(raw):
                raw[at : at + 4] = data.draw(st.sampled_from(EDGE_INTS)).to_bytes(4, "big", signed=True)
    return raw
