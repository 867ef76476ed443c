"""Simulated hardware, shipped with the package: register models that plug in beneath the drivers.

A simulated I2C chip is a :class:`RegisterModel` attached to a :class:`SimSMBus` (the smbus2.SMBus
interface); a simulated serial device is a pyserial-compatible port object. Their physical inputs
come from an :class:`Environment`. Only ``hal.assembly`` (which picks a backend) and tests import
this package: no driver knows whether it is simulated.
"""

from __future__ import annotations

import importlib
from typing import Any

from hal.sim.environment import STANDARD_GRAVITY, Environment
from hal.sim.register import RegisterModel, Transfer
from hal.sim.smbus import BusFault, SimSMBus

__all__ = [
    "MODELS",
    "STANDARD_GRAVITY",
    "BusFault",
    "Environment",
    "RegisterModel",
    "SimSMBus",
    "Transfer",
    "model_class",
]

#: Driver name -> ``module:Class`` of its simulated chip.
MODELS: dict[str, str] = {
    "bme280": "hal.sim.bme280:BME280Model",
    "lis3mdl": "hal.sim.lis3mdl:LIS3MDLModel",
    "mpu6050": "hal.sim.mpu6050:MPU6050Model",
    "ina219": "hal.sim.ina219:INA219Model",
    "pca9685": "hal.sim.pca9685:PCA9685Model",
    "tfmini": "hal.sim.tfmini:TFminiModel",
}


def model_class(driver: str) -> Any:
    """The simulated chip class for a driver name (``KeyError`` if there is none)."""
    module_name, _, cls_name = MODELS[driver].partition(":")
    return getattr(importlib.import_module(module_name), cls_name)
