"""Zxids: `epoch << 32 | counter`, the leader's stamp on every txn, and the helpers that split them.

An epoch is one leader's reign; the counter numbers its proposals from 1.
"""

from __future__ import annotations

COUNTER_BITS = 32
COUNTER_MASK = (1 << COUNTER_BITS) - 1
# Epochs stay below 2**31 so that a zxid is a positive jute long.
EPOCH_MAX = (1 << 31) - 1
ZXID_MAX = (EPOCH_MAX << COUNTER_BITS) | COUNTER_MASK


def make_zxid(epoch: int, counter: int) -> int:
    assert 0 <= epoch <= EPOCH_MAX, f"epoch out of range: {epoch}"
    assert 0 <= counter <= COUNTER_MASK, f"counter out of range: {counter}"
    return (epoch << COUNTER_BITS) | counter


def zxid_epoch(zxid: int) -> int:
    return zxid >> COUNTER_BITS


def zxid_counter(zxid: int) -> int:
    return zxid & COUNTER_MASK


def zxid_text(zxid: int) -> str:
    """`0x3.17` for epoch 3, counter 0x17: readable in traces and error messages."""
    return f"{zxid_epoch(zxid):#x}.{zxid_counter(zxid):x}"
