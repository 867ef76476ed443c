"""Base classes for device drivers.

A driver is small: it declares its part name and registers, and implements ``probe``,
``configure`` and ``read`` (sensors) or typed set-points (actuators). Everything shared (naming,
the bus handle, error context) lives here, so each driver file reads like its datasheet.

Readings are frozen dataclasses with SI units in their field names (``pressure_pa``), because the
executive stores them in its data pool field by field and a unit in the name survives every
log and plot.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from hal.clock import Clock
from hal.errors import DeviceIdentityError
from hal.i2c import I2CBus
from hal.serialport import SerialPort

__all__ = ["Device", "I2CDevice", "Reading", "SerialDevice"]


@dataclasses.dataclass(frozen=True)
class Reading:
    """Base of every driver's reading type."""

    def as_dict(self) -> dict[str, Any]:
        """Field name -> value, for the data pool and ``fsw bench read --json``.

        Shallow on purpose: readings hold only numbers, strings and tuples, and this runs for
        every poll of every device (``dataclasses.asdict`` deep-copies and costs ten times more).
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class Device(ABC):
    """One physical device, whatever bus it sits on."""

    #: The chip's name as the datasheet writes it, used in every message.
    part: ClassVar[str] = "device"
    #: True for actuators: the executive polls them for status but commands them by set-point.
    actuator: ClassVar[bool] = False

    def __init__(self, *, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock

    @property
    @abstractmethod
    def where(self) -> str:
        """``"BME280 at i2c-1:0x76"``: the part and how to find it, for messages."""

    @abstractmethod
    def probe(self) -> str:
        """Check the device is the part this driver drives; return what identified it.

        Raises:
            DeviceIdentityError: it answered with the wrong chip id or reset values.
            BusError: it did not answer.
        """

    @abstractmethod
    def configure(self) -> None:
        """Put the device in the operating state the driver's options describe.

        Raises:
            BusError: a transfer failed.
        """

    @abstractmethod
    def read(self) -> Reading:
        """One reading in SI units (an actuator reads back its set-points).

        Raises:
            BusError: a transfer failed.
            DeviceStateError: the device answered but has no valid reading.
        """

    def reset(self) -> None:
        """Return the device to a known state: by default, configure it again."""
        self.configure()

    def close(self) -> None:  # noqa: B027 - optional hook; most devices hold nothing to release
        """Release the device (the bus is shared and closed by its owner)."""


class I2CDevice(Device):
    """A device at one address on a shared :class:`I2CBus`."""

    def __init__(self, bus: I2CBus, address: int, *, name: str, clock: Clock) -> None:
        super().__init__(name=name, clock=clock)
        self.bus = bus
        self.address = address

    @property
    def where(self) -> str:
        return f"{self.part} at {self.bus.name}:0x{self.address:02X}"

    def _read_u8(self, register: int) -> int:
        return self.bus.read_u8(self.address, register, part=self.part)

    def _check_id(self, register: int, expected: int, name: str = "WHO_AM_I") -> int:
        """Read an identity register and insist on ``expected``; returns the value read.

        Raises:
            DeviceIdentityError: another value: a different chip, or another chip's address.
            BusError: nobody answered.
        """
        value = self._read_u8(register)
        if value != expected:
            raise DeviceIdentityError(
                f"{self.where}: {name} (0x{register:02X}) read 0x{value:02X}, "
                f"expected 0x{expected:02X}"
            )
        return value

    def _write_u8(self, register: int, value: int) -> None:
        self.bus.write_u8(self.address, register, value, part=self.part)

    def _read(self, register: int, length: int) -> bytes:
        return self.bus.read_block(self.address, register, length, part=self.part)

    def _write(self, register: int, data: bytes) -> None:
        self.bus.write_block(self.address, register, data, part=self.part)


class SerialDevice(Device):
    """A device on its own serial port."""

    def __init__(self, port: SerialPort, *, name: str, clock: Clock) -> None:
        super().__init__(name=name, clock=clock)
        self.port = port

    @property
    def where(self) -> str:
        return f"{self.part} at {self.port.name}"

    def close(self) -> None:
        self.port.close()
