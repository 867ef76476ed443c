"""The Mars mission's fault monitors and their responses.

Outside EDL a lost IMU or a sagging battery sends the vehicle to SAFE, where it waits for the
ground. Inside EDL nothing may stop the descent: the same conditions only raise events, and the
GNC switches to its backups (timers, barometer, radar instead of LiDAR) on its own.
Monitor ids are also their trip events' and trip-count channels' ids (flight.faults).
"""

from __future__ import annotations

from flight.faults import DeviceOfflineMonitor, LimitMonitor, Monitor, Response

__all__ = ["MONITORS"]

_SAFE = Response("mode", "enter_safe")
_EVENT = Response("event")

MONITORS: tuple[Monitor, ...] = (
    LimitMonitor(
        0x1100,
        "battery_low",
        "power.bus_voltage_v",
        10.8,
        None,
        10,
        _SAFE,
        description="3S battery below 10.8 V for 10 samples: shed load in SAFE.",
    ),
    LimitMonitor(
        0x1101,
        "battery_low_edl",
        "power.bus_voltage_v",
        10.8,
        None,
        10,
        _EVENT,
        description="Battery low during EDL: report only, landing comes first.",
    ),
    DeviceOfflineMonitor(
        0x1102,
        "imu_offline",
        "imu",
        _SAFE,
        description="IMU lost outside EDL: nothing critical may run blind.",
    ),
    DeviceOfflineMonitor(
        0x1103,
        "imu_offline_edl",
        "imu",
        _EVENT,
        description="IMU lost in EDL: GNC falls back to timers.",
    ),
    DeviceOfflineMonitor(
        0x1104,
        "altimeter_offline_edl",
        "altimeter",
        _EVENT,
        description="Radar lost in EDL: GNC falls back to the barometer.",
    ),
    LimitMonitor(
        0x1105,
        "imu_temp_high",
        "imu.temperature_c",
        None,
        70.0,
        10,
        _EVENT,
        description="IMU above its rated temperature.",
    ),
)
