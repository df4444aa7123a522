"""The wire-level test session lives in cluster.wire (benchmarks use it too)."""

from cluster.wire import NoAnswer, Refused, WireSession

__all__ = ["NoAnswer", "Refused", "WireSession"]
