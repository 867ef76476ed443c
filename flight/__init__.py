"""The flight executive: clock, scheduler, data pool, commands, telemetry, events, parameters,
stored sequences, fault protection and persistence, plus the space link and the ground console.

Mission-agnostic: a mission (``flight.missions.mars``) declares its modes, commands, telemetry,
devices and fault responses and is assembled from these services.
"""
