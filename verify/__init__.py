"""Consistency verification against a live ensemble: `python -m verify` runs clients and faults
and checks the recorded history (see verify/__main__.py); `python -m verify.check` re-checks."""
