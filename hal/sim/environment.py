"""The physical world the simulated chips sense.

A register model never invents its own physics: it reads this object when the driver reads its
data registers. A bench test sets values by hand; the mission simulator updates them every step
from its trajectory, atmosphere and field models, which is what closes the loop between the flight
software's actuator commands and what its sensors see next.

Vectors are in the sensor's body frame. ``acceleration_mps2`` is specific force (what an
accelerometer measures: +1 g up when resting on the ground, 0 in free fall).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STANDARD_GRAVITY", "Environment"]

STANDARD_GRAVITY = 9.80665

Vector = tuple[float, float, float]


@dataclass
class Environment:
    """Physical inputs for every simulated sensor; defaults are a quiet lab bench on Earth."""

    # Barometer
    pressure_pa: float = 101_325.0
    temperature_c: float = 21.0
    humidity_pct: float = 40.0
    # Magnetometer (tesla)
    magnetic_field_t: Vector = (20e-6, 0.0, -42e-6)
    # IMU
    acceleration_mps2: Vector = (0.0, 0.0, STANDARD_GRAVITY)
    angular_rate_dps: Vector = (0.0, 0.0, 0.0)
    imu_temperature_c: float = 25.0
    # Range finders: metres to the surface below; None when there is nothing to return a signal
    range_m: float | None = 5.0
    range_strength: int = 2000
    lidar_temperature_c: float = 30.0
    # Power bus
    bus_voltage_v: float = 12.0
    current_a: float = 0.5
