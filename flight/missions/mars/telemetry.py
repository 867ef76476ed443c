"""The Mars mission's telemetry channels and packets.

Channels read data-pool keys written by the device pollers (``imu.accel_z_mps2``) and by the
mission's GNC (``gnc.altitude_m``). Packets group them by purpose; their per-mode rates are in the
mode table (:mod:`flight.missions.mars.modes`), sized so the whole stream fits the radio's
~2.5 kB/s budget (reference/devices.md) even in EDL.
"""

from __future__ import annotations

from flight.telemetry import ChannelSpec, PacketSpec

__all__ = ["CHANNELS", "PACKETS"]

_G = 9.80665

CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(
        0x1000, "mars.state", "str", source="mode.state", description="Current mode and phase."
    ),
    ChannelSpec(
        0x1001, "mars.met_s", "float", "s", source="time.met", description="Mission elapsed time."
    ),
    ChannelSpec(
        0x1002,
        "mars.bus_voltage_v",
        "float",
        "V",
        source="power.bus_voltage_v",
        yellow=(10.8, 12.8),
        red=(10.5, 13.0),
        description="3S battery bus voltage.",
    ),
    ChannelSpec(
        0x1003,
        "mars.bus_current_a",
        "float",
        "A",
        source="power.current_a",
        yellow=(None, 2.5),
        red=(None, 3.0),
        description="Battery bus current.",
    ),
    ChannelSpec(0x1004, "mars.accel_x_mps2", "float", "m/s^2", source="imu.accel_x_mps2"),
    ChannelSpec(0x1005, "mars.accel_y_mps2", "float", "m/s^2", source="imu.accel_y_mps2"),
    ChannelSpec(
        0x1006,
        "mars.accel_z_mps2",
        "float",
        "m/s^2",
        source="imu.accel_z_mps2",
        yellow=(None, 9.0 * _G),
        red=(None, 12.0 * _G),
        description="Axial specific force: drag and thrust read positive.",
    ),
    ChannelSpec(
        0x1007,
        "mars.delta_v_mps",
        "float",
        "m/s",
        source="gnc.delta_v_mps",
        description="Delta-v measured over the current or last burn.",
    ),
    ChannelSpec(
        0x1008,
        "mars.entry_speed_mps",
        "float",
        "m/s",
        source="gnc.entry_speed_mps",
        description="Onboard speed estimate during entry.",
    ),
    ChannelSpec(
        0x1009,
        "mars.entry_altitude_m",
        "float",
        "m",
        source="gnc.entry_altitude_m",
        description="Dead-reckoned altitude during entry.",
    ),
    ChannelSpec(
        0x100A,
        "mars.altitude_m",
        "float",
        "m",
        source="gnc.altitude_m",
        description="Fused descent altitude (radar/LiDAR/barometer with IMU).",
    ),
    ChannelSpec(
        0x100B,
        "mars.vertical_speed_mps",
        "float",
        "m/s",
        source="gnc.vertical_speed_mps",
        yellow=(-80.0, None),
        description="Fused descent vertical speed (negative: descending).",
    ),
    ChannelSpec(
        0x100C,
        "mars.throttle",
        "float",
        "",
        source="gnc.throttle",
        description="Descent engine throttle 0..1.",
    ),
    ChannelSpec(0x100D, "mars.radar_altitude_m", "float", "m", source="altimeter.distance_m"),
    ChannelSpec(0x100E, "mars.lidar_range_m", "float", "m", source="lidar.distance_m"),
    ChannelSpec(
        0x100F,
        "mars.pressure_pa",
        "float",
        "Pa",
        source="baro.pressure_pa",
        description="Static pressure (atmosphere science; EDL backup altitude).",
    ),
    ChannelSpec(0x1010, "mars.air_temperature_c", "float", "degC", source="baro.temperature_c"),
    ChannelSpec(0x1011, "mars.field_x_t", "float", "T", source="mag.field_x_t"),
    ChannelSpec(0x1012, "mars.field_y_t", "float", "T", source="mag.field_y_t"),
    ChannelSpec(0x1013, "mars.field_z_t", "float", "T", source="mag.field_z_t"),
    ChannelSpec(
        0x1014,
        "mars.imu_temperature_c",
        "float",
        "degC",
        source="imu.temperature_c",
        yellow=(-20.0, 60.0),
        red=(-30.0, 70.0),
    ),
    ChannelSpec(0x1015, "mars.gyro_x_dps", "float", "deg/s", source="imu.gyro_x_dps"),
    ChannelSpec(0x1016, "mars.gyro_y_dps", "float", "deg/s", source="imu.gyro_y_dps"),
    ChannelSpec(0x1017, "mars.gyro_z_dps", "float", "deg/s", source="imu.gyro_z_dps"),
)

_NEVER = {"*": 0.0}

PACKETS: tuple[PacketSpec, ...] = (
    PacketSpec(
        0x20,
        "mars.HK",
        (
            "mars.state",
            "mars.met_s",
            "mars.bus_voltage_v",
            "mars.bus_current_a",
            "mars.imu_temperature_c",
        ),
        {"*": 0.2},
        description="Housekeeping: mode, time, power, temperatures.",
    ),
    PacketSpec(
        0x21,
        "mars.NAV",
        (
            "mars.accel_x_mps2",
            "mars.accel_y_mps2",
            "mars.accel_z_mps2",
            "mars.gyro_x_dps",
            "mars.gyro_y_dps",
            "mars.gyro_z_dps",
            "mars.delta_v_mps",
            "mars.entry_speed_mps",
            "mars.entry_altitude_m",
        ),
        _NEVER,
        description="Navigation: IMU and onboard estimates.",
    ),
    PacketSpec(
        0x22,
        "mars.EDL",
        (
            "mars.altitude_m",
            "mars.vertical_speed_mps",
            "mars.throttle",
            "mars.radar_altitude_m",
            "mars.lidar_range_m",
            "mars.pressure_pa",
        ),
        _NEVER,
        description="Descent: fused altitude and speed, altimeters, throttle.",
    ),
    PacketSpec(
        0x23,
        "mars.SCIENCE",
        (
            "mars.pressure_pa",
            "mars.air_temperature_c",
            "mars.field_x_t",
            "mars.field_y_t",
            "mars.field_z_t",
        ),
        {"*": 0.05},
        description="Atmosphere and magnetic field science.",
    ),
)
