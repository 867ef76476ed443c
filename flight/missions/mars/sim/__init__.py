"""The Mars mission's simulator side: the physical world and the closed-loop harness.

Pure physics (``atmosphere``, ``magnetic``, ``dynamics``, ``environment``) with no dependency on
the flight software; :mod:`~flight.missions.mars.sim.harness` flies the flight software against it
on simulated chips. This is the only part of the mission allowed to import ``hal.sim``: the flight
software itself never knows it is simulated.
"""
