"""Persistence: what must survive a reboot or a power cut.

Everything written here goes through :func:`flight.persistence.atomic.atomic_write`, so a file on
disk is always either the old complete version or the new complete version, never a torn mixture:
on a board that can lose power mid-write (a parachute firing browns out the bus) a half-written
state file would be worse than a stale one.
"""
