"""The seeded Zab simulator and the scripted-ensemble harness, reusable by any test.

`python -m tests.sim --seeds N` runs the simulator; tests import Ensemble, Simulation, run_seed.
"""
