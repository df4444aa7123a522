"""The node process around zkcore: ZeroMQ I/O, storage on disk, launcher, supervisor and admin
commands. Protocol logic lives in zkcore; this package only moves bytes between it and the world.
"""
