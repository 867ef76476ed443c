"""One driver per chip, chosen by name from :data:`DRIVERS`.

The table maps the name a device map uses (``driver = "bme280"``) to ``module:Class``; classes are
imported only when a device map asks for them, so a board that uses two chips loads two drivers.
"""

from __future__ import annotations

import importlib

from hal.device import Device
from hal.errors import ConfigError

__all__ = ["DRIVERS", "driver_class"]

DRIVERS: dict[str, str] = {
    "bme280": "hal.drivers.bme280:BME280",
    "lis3mdl": "hal.drivers.lis3mdl:LIS3MDL",
    "mpu6050": "hal.drivers.mpu6050:MPU6050",
    "ina219": "hal.drivers.ina219:INA219",
    "pca9685": "hal.drivers.pca9685:PCA9685",
    "tfmini": "hal.drivers.tfmini:TFminiPlus",
}


def driver_class(name: str) -> type[Device]:
    """The driver class registered under ``name``.

    Raises:
        ConfigError: no such driver.
    """
    target = DRIVERS.get(name)
    if target is None:
        raise ConfigError(f"unknown driver {name!r}; known: {', '.join(sorted(DRIVERS))}")
    module_name, _, cls_name = target.partition(":")
    cls: type[Device] = getattr(importlib.import_module(module_name), cls_name)
    return cls
