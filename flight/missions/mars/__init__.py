"""The Tianwen-1-class Mars reference mission: flight software and the simulator's physical world.

Onboard side (what the flight software knows, from device readings only): ``modes``, ``mission``,
``gnc``, ``actuators``, ``telemetry``, ``monitors``, ``definition``. Simulator side, in the ``sim``
package (the "truth", pure physics with no dependency on the flight software): ``atmosphere``,
``magnetic``, ``dynamics`` and ``environment``, whose ``MarsEnvironment`` turns actuator outputs
into trajectory changes and writes what the simulated sensors see into a ``hal.sim.Environment``.

Numbers come from ``reference/mars.md`` and carry its tags: [C] confirmed, [D] derived, [U]
unconfirmed (a tunable parameter).
"""
