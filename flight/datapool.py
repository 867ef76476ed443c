"""The data pool: the latest value of every reading and derived quantity.

Device pollers write it; the mode machine, fault monitors and telemetry read it. Each entry carries
the spacecraft time it was taken and whether it is valid, so a reader can tell a fresh reading from
a stale one left behind by a device that has gone offline. Names are ``device.field``
(``imu.accel_z_mps2``) or ``component.quantity`` for derived values (``nav.velocity_mps``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

__all__ = ["DataPool", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    value: Any
    time: float
    valid: bool = True


class _ValidValues(dict[str, Any]):
    """Name -> value while valid; ``None`` for invalid and for names never written."""

    def __missing__(self, name: str) -> None:
        return None


class DataPool:
    """Latest-value store; single-threaded like the rest of the executive.

    Besides the samples it keeps a second view, name -> current value, updated on every write,
    which :meth:`reader` reads: telemetry takes dozens of channels per tick, and with that view a
    packet's values come out of one C-level ``itemgetter`` call instead of a Python loop that
    unpacks and checks a :class:`Sample` per channel. A name with a declared type
    (:meth:`declare`) is converted when it is written, not each time it is read: a writer, like
    an F Prime component writing a typed channel, produces a value once, while telemetry reads
    it for every packet that carries it. The samples keep the value exactly as written.
    """

    def __init__(self) -> None:
        self._samples: dict[str, Sample] = {}
        # Never rebound: the readers handed out by reader() hold a reference to this dict.
        self._valid = _ValidValues()
        self._convert: dict[str, Callable[[Any], Any]] = {}

    def declare(self, name: str, convert: Callable[[Any], Any]) -> None:
        """Give :meth:`reader` ``convert(value)`` for ``name`` rather than the value as written.

        ``convert`` returns ``None`` for a value that is not of the declared type. Declaring a
        name again with the same conversion is allowed (two channels may show one reading).

        Raises:
            ValueError: ``name`` is already declared with a different conversion.
        """
        known = self._convert.get(name)
        if known is not None and known is not convert:
            what = getattr(known, "__name__", repr(known))
            raise ValueError(f"{name} is already declared with another conversion ({what})")
        self._convert[name] = convert
        sample = self._samples.get(name)
        if sample is not None and sample.valid:
            self._valid[name] = convert(sample.value)
        else:
            # Present from now on, so that reading it before its first write is a plain
            # lookup and not a call to __missing__ (a Python call, a third of a packet's read).
            self._valid[name] = None

    def set(self, name: str, value: Any, time: float, *, valid: bool = True) -> None:
        self._samples[name] = Sample(value, time, valid)
        if not valid:
            self._valid[name] = None
            return
        convert = self._convert.get(name)
        self._valid[name] = value if convert is None else convert(value)

    def update(self, prefix: str, values: Mapping[str, Any], time: float) -> None:
        """Write every field of one reading as ``prefix.field``."""
        samples, current, declared = self._samples, self._valid, self._convert
        for key, value in values.items():
            name = f"{prefix}.{key}"
            samples[name] = Sample(value, time, True)
            convert = declared.get(name)
            current[name] = value if convert is None else convert(value)

    def invalidate(self, prefix: str, time: float) -> None:
        """Mark ``prefix`` and every ``prefix.*`` entry invalid, keeping the last values visible."""
        dotted = prefix + "."
        for name, sample in list(self._samples.items()):
            if name == prefix or name.startswith(dotted):
                self._samples[name] = Sample(sample.value, sample.time, False)
                self._valid[name] = None

    def reader(self, names: Sequence[str]) -> Callable[[], tuple[Any, ...]]:
        """A function returning the current values of ``names``, in order, as one tuple.

        Each value is as :meth:`value` would give it with its defaults (``None`` when the entry
        is missing or invalid), passed through the name's declared conversion if it has one.
        The function stays bound to this pool and sees every later write.

        Raises:
            ValueError: no names.
        """
        if not names:
            raise ValueError("a reader needs at least one name")
        if len(names) == 1:
            one = itemgetter(names[0])
            current = self._valid
            return lambda: (one(current),)
        return partial(itemgetter(*names), self._valid)

    def get(self, name: str) -> Sample | None:
        return self._samples.get(name)

    def value(self, name: str, default: Any = None, *, valid_only: bool = True) -> Any:
        """The value, or ``default`` if it is missing (or invalid, unless ``valid_only=False``)."""
        sample = self._samples.get(name)
        if sample is None or (valid_only and not sample.valid):
            return default
        return sample.value

    def fresh(self, name: str, now: float, max_age: float) -> bool:
        """True if ``name`` is valid and no older than ``max_age`` seconds."""
        sample = self._samples.get(name)
        return sample is not None and sample.valid and now - sample.time <= max_age

    def __contains__(self, name: object) -> bool:
        return name in self._samples

    def __iter__(self) -> Iterator[str]:
        return iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)
