"""The Mars reference mission as the executive sees it: tables plus a component factory."""

from __future__ import annotations

from flight.app import MissionContext, MissionDefinition
from flight.missions.mars.actuators import Actuators
from flight.missions.mars.mission import MarsMission
from flight.missions.mars.modes import MODE_TABLE, State
from flight.missions.mars.monitors import MONITORS

__all__ = ["MARS"]


def _build(ctx: MissionContext) -> MarsMission:
    pwm = ctx.devices.get("pwm")
    actuators = Actuators(pwm, now=ctx.now)  # type: ignore[arg-type]
    return MarsMission(
        pool=ctx.pool,
        events=ctx.events,
        params=ctx.params,
        actuators=actuators,
        store=ctx.store,
        now=ctx.now,
    )


MARS = MissionDefinition(
    name="mars",
    states=tuple(s.value for s in State),
    initial=State.CRUISE.value,
    fallback=State.SAFE.value,
    mode_table=MODE_TABLE,
    build=_build,
    monitors=MONITORS,
    # The landing altimeters exist on the lander; the reference bench has at most one TFmini.
    optional_devices=frozenset({"altimeter", "lidar"}),
)
