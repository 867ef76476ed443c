"""The Mars mission's events: what the vehicle reports it decided, and when it had to improvise.

Ids 0x1000 and up are the mission's. Those whose cause can last for many ticks (a backup sensor
in use, a frozen IMU and its recovery, a refused output) are throttled, so one long fault does
not fill the downlink with its own reports.
"""

from __future__ import annotations

from flight.events import EventSpec, Severity

__all__ = ["EVENTS"]

EV_ENTRY = EventSpec(
    0x1000,
    "mars.ENTRY_DETECTED",
    Severity.ACTIVITY_HI,
    "entry interface detected: {accel_mps2:.2f} m/s^2 sensed",
)
EV_BACKUP = EventSpec(
    0x1001, "mars.BACKUP_IN_USE", Severity.WARNING_LO, "{function}: using {source}", throttle=20
)
EV_IMU_FROZEN = EventSpec(
    0x1005,
    "mars.IMU_FROZEN",
    Severity.WARNING_HI,
    "IMU output frozen ({samples} identical samples): navigating across the gap",
    throttle=20,
)
EV_IMU_LIVE = EventSpec(
    0x1006,
    "mars.IMU_LIVE",
    Severity.ACTIVITY_HI,
    "IMU output live again after {seconds} s; gap bridged",
    throttle=20,
)
EV_BURN = EventSpec(
    0x1002,
    "mars.BURN",
    Severity.ACTIVITY_HI,
    "{burn} {state}: delta-v {delta_v_mps:.1f} m/s over {duration_s:.1f} s",
)
EV_TOUCHDOWN = EventSpec(
    0x1003,
    "mars.TOUCHDOWN",
    Severity.ACTIVITY_HI,
    "touchdown: vertical speed estimate {vz_mps:.2f} m/s",
)
EV_HAZARD = EventSpec(
    0x1004, "mars.HAZARD_AVOIDANCE", Severity.ACTIVITY_LO, "hazard avoidance: {action}"
)
EV_OUTPUT_FAILED = EventSpec(
    0x1007,
    "mars.OUTPUT_FAILED",
    Severity.WARNING_HI,
    "{output} not set ({error}): sent again next tick",
    throttle=20,
    description="The PWM board refused a control output; the rest of the tick went on.",
)

EVENTS: tuple[EventSpec, ...] = (
    EV_ENTRY,
    EV_BACKUP,
    EV_BURN,
    EV_TOUCHDOWN,
    EV_HAZARD,
    EV_IMU_FROZEN,
    EV_IMU_LIVE,
    EV_OUTPUT_FAILED,
)
