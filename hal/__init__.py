"""Hardware abstraction layer: buses, one small driver per chip, and simulated chips beneath them.

hal/ knows hardware and nothing about missions. Drivers take their bus and clock as arguments and
never touch hardware at import time; only ``hal.assembly`` decides whether a bus is real or
simulated (``hal.sim``), so the driver code that runs in CI is the code that runs on the board.
"""

from hal.errors import (
    BusError,
    BusIOError,
    BusTimeoutError,
    ConfigError,
    DeviceIdentityError,
    DeviceStateError,
    FrameError,
    HALError,
    NoAckError,
)

__all__ = [
    "BusError",
    "BusIOError",
    "BusTimeoutError",
    "ConfigError",
    "DeviceIdentityError",
    "DeviceStateError",
    "FrameError",
    "HALError",
    "NoAckError",
]
