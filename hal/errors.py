"""The HAL's exception tree.

Every error a driver or bus can raise derives from :class:`HALError`, and each also subclasses the
builtin it means, so callers that only know Python's own exceptions still catch them::

    HALError(Exception)
    ├── BusError(HALError, OSError)          an I2C or serial transfer failed
    │   ├── NoAckError(BusError)             errno 121 EREMOTEIO / 6 ENXIO: nobody answered
    │   ├── BusTimeoutError(BusError, TimeoutError)
    │   │                                    errno 110 ETIMEDOUT (stuck bus, clock stretching) or a
    │   │                                    serial read that got fewer bytes than asked for
    │   └── BusIOError(BusError)             errno 5 EIO and any other OSError from the kernel
    ├── DeviceIdentityError(HALError, LookupError)
    │                                        probe() read the wrong chip id or reset values
    ├── DeviceStateError(HALError, RuntimeError)
    │                                        a device answered but is not usable (not configured,
    │                                        no data yet, measurement out of range)
    ├── FrameError(HALError, ValueError)     a serial frame failed its checksum or sync
    └── ConfigError(HALError, ValueError)    a device map or driver argument is wrong

Every message names the part and its address or port, because a bench technician with six boards
on one bus needs to know which one failed. Bus errors chain the original ``OSError`` (``raise ...
from``) and keep its errno in ``.errno``.
"""

from __future__ import annotations

import errno as _errno

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
    "bus_error_from_oserror",
]


class HALError(Exception):
    """Root of every error raised by hal/."""


class BusError(HALError, OSError):
    """A transfer on a bus failed; ``errno`` is the kernel's errno where there was one."""

    def __init__(self, message: str, err: int | None = None) -> None:
        # OSError's two-argument form would reformat the message as "[Errno n] ..."; keep ours.
        OSError.__init__(self, message)
        self.errno = err

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoAckError(BusError):
    """Nobody acknowledged the address (EREMOTEIO, ENXIO): unplugged, unpowered, wrong address."""


class BusTimeoutError(BusError, TimeoutError):
    """The transfer did not finish in time: a stuck SDA line, or a serial device that went quiet."""


class BusIOError(BusError):
    """Any other I/O failure reported by the kernel (EIO and friends)."""


class DeviceIdentityError(HALError, LookupError):
    """The device answered, but its chip id or reset values are not the part the driver expects."""


class DeviceStateError(HALError, RuntimeError):
    """The device answered but cannot give a valid reading now (asleep, no data, out of range)."""


class FrameError(HALError, ValueError):
    """A serial frame failed its checksum, length or sync checks."""


class ConfigError(HALError, ValueError):
    """A device map, driver argument or set-point is invalid; the message names the field."""


_NO_ACK = {_errno.EREMOTEIO, _errno.ENXIO}
_TIMEOUT = {_errno.ETIMEDOUT}


def bus_error_from_oserror(exc: OSError, where: str) -> BusError:
    """Translate a kernel ``OSError`` into the HAL's tree.

    ``where`` names the part and address (``"BME280 at i2c-1:0x76"``) so the message alone says
    which device failed. The caller chains the result with ``raise ... from exc``.
    """
    err = exc.errno
    detail = exc.strerror or str(exc) or type(exc).__name__
    if err in _NO_ACK:
        return NoAckError(f"{where}: no acknowledge ({detail})", err)
    if err in _TIMEOUT or isinstance(exc, TimeoutError):
        return BusTimeoutError(f"{where}: bus timeout ({detail})", err)
    return BusIOError(f"{where}: I/O error ({detail})", err)
