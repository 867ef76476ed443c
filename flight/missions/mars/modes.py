"""The Mars mission's modes, phases, transition table and per-mode table.

Modes and phases (Tianwen-1's sequence of events, reference/mars.md):

* CRUISE - seven months to Mars, trajectory corrections by stored sequence.
* MOI.PREP, MOI.BURN, MOI.ORBIT - orbit insertion: burn preparation, the ~15-minute capture burn
  (ended when the IMU has measured the planned delta-v), capture and parking orbit.
* EDL.ENTRY, EDL.PARACHUTE, EDL.POWERED, EDL.HOVER, EDL.TOUCHDOWN - entry, descent and landing,
  nine minutes with no help from Earth: entry (detected by sensed deceleration), parachute (heat
  shield jettisoned in this phase), powered descent, hover with hazard avoidance and the final
  descent, touchdown.
* SURFACE.EGRESS, SURFACE.OPS - on the ground: preparing the rover's egress, then operations.
* SAFE - a quiet, power-positive state that waits for the ground; never entered from EDL or from
  the orbit insertion burn, where waiting would lose the vehicle.

The guards and actions live in :mod:`flight.missions.mars.mission`; this module holds only names
and tables so they can be read, tested and drawn on their own.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from flight.modes import ModeConfig

__all__ = ["MODE_TABLE", "SAFE_RETURN", "State"]


@enum.unique
class State(enum.StrEnum):
    CRUISE = "CRUISE"
    MOI_PREP = "MOI.PREP"
    MOI_BURN = "MOI.BURN"
    MOI_ORBIT = "MOI.ORBIT"
    EDL_ENTRY = "EDL.ENTRY"
    EDL_PARACHUTE = "EDL.PARACHUTE"
    EDL_POWERED = "EDL.POWERED"
    EDL_HOVER = "EDL.HOVER"
    EDL_TOUCHDOWN = "EDL.TOUCHDOWN"
    SURFACE_EGRESS = "SURFACE.EGRESS"
    SURFACE_OPS = "SURFACE.OPS"
    SAFE = "SAFE"


#: States SAFE may be entered from, and so may return to. EDL and the MOI burn are absent on
#: purpose: both must run to completion on board whatever fails.
SAFE_RETURN: tuple[State, ...] = (
    State.CRUISE,
    State.MOI_PREP,
    State.MOI_ORBIT,
    State.SURFACE_EGRESS,
    State.SURFACE_OPS,
)

_EDL_MONITORS = frozenset({"imu_offline_edl", "altimeter_offline_edl", "battery_low_edl"})
_QUIET_MONITORS = frozenset({"battery_low", "imu_offline", "imu_temp_high"})

#: Poll rates (Hz) per device, telemetry rates (Hz) per packet, enabled monitors, per mode.
MODE_TABLE: MappingProxyType[str, ModeConfig] = MappingProxyType(
    {
        "CRUISE": ModeConfig(
            poll_hz={"imu": 1.0, "mag": 0.5, "baro": 0.2, "power": 1.0, "pwm": 0.2},
            telemetry_hz={"mars.HK": 0.2, "mars.SCIENCE": 0.05, "mars.NAV": 0.0, "mars.EDL": 0.0},
            monitors=_QUIET_MONITORS,
        ),
        "MOI": ModeConfig(
            poll_hz={"imu": 50.0, "mag": 1.0, "baro": 0.2, "power": 1.0, "pwm": 1.0},
            telemetry_hz={"mars.HK": 0.5, "mars.SCIENCE": 0.1, "mars.NAV": 1.0, "mars.EDL": 0.0},
            monitors=_QUIET_MONITORS,
        ),
        "EDL": ModeConfig(
            poll_hz={
                "imu": 50.0,
                "altimeter": 20.0,
                "lidar": 50.0,
                "baro": 10.0,
                "mag": 1.0,
                "power": 1.0,
                "pwm": 2.0,
            },
            telemetry_hz={"mars.HK": 1.0, "mars.SCIENCE": 0.5, "mars.NAV": 2.0, "mars.EDL": 2.0},
            monitors=_EDL_MONITORS,
        ),
        "SURFACE": ModeConfig(
            poll_hz={"imu": 1.0, "mag": 1.0, "baro": 1.0, "power": 1.0, "pwm": 0.2},
            telemetry_hz={"mars.HK": 0.2, "mars.SCIENCE": 0.2, "mars.NAV": 0.0, "mars.EDL": 0.0},
            monitors=_QUIET_MONITORS,
        ),
        "SAFE": ModeConfig(
            poll_hz={"imu": 1.0, "power": 1.0, "mag": 0.2, "baro": 0.2, "pwm": 0.2},
            telemetry_hz={"mars.HK": 0.5, "mars.SCIENCE": 0.0, "mars.NAV": 0.0, "mars.EDL": 0.0},
            monitors=frozenset({"imu_offline", "imu_temp_high"}),
        ),
    }
)
