"""A small but real flight side for the ground console's tests.

Dispatcher, sequence engine, telemetry, uplink (key check, anti-replay) and downlink (TM frames),
wired like the executive wires them, on one end of a transport. The ground station under test
sits on the other end and sees nothing but frames. :class:`SteppingClock` is the clock the
station waits on: each sleep advances simulated time and runs the flight side one step, so a
five-second ``expect`` takes microseconds and is deterministic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flight.clock import SimClock
from flight.commands import Arg, ArgType, CommandError, CommandSpec
from flight.datapool import DataPool
from flight.dictionary import Dictionary, GroundDictionary
from flight.dispatcher import Dispatcher, response_message
from flight.events import EventLog, EventSpec, Severity
from flight.link.downlink import Downlink
from flight.link.ground import CommandEncoder, TelemetryDecoder
from flight.link.sdls import KeyRing, MemoryCounterStore, write_key
from flight.link.tmframe import TmFramer
from flight.link.transports import MemoryPipe, Transport
from flight.link.uplink import UplinkProcessor
from flight.persistence.state import StateStore
from flight.sequences import SequenceEngine
from flight.telemetry import ChannelSpec, PacketSpec, TelemetryManager

SCID = 0x0C8
SPI = 1
KEY = bytes(range(32))

EV_BURN = EventSpec(0x1F00, "test.BURN_DONE", Severity.ACTIVITY_HI, "burn of {duration_s} s done")


class Power:
    """A stand-in mission component: a bus voltage with limits, and a hazardous burn command."""

    def __init__(self, pool: DataPool, events: EventLog, now: object) -> None:
        self.pool = pool
        self.log = events
        self.voltage = 28.0

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec(
                0x1F00,
                "test.BURN",
                self._burn,
                (Arg("duration_s", ArgType.FLOAT, "s", minimum=0.0, maximum=60.0),),
                hazardous=True,
            ),
            CommandSpec(
                0x1F01,
                "test.SET_VOLTAGE",
                self._set_voltage,
                (Arg("volts", ArgType.FLOAT, "V", minimum=0.0, maximum=50.0),),
            ),
            CommandSpec(
                0x1F02,
                "test.CONFIGURE",
                self._configure,
                (
                    Arg("mode", ArgType.ENUM, choices=("SAFE", "NOMINAL")),
                    Arg("enabled", ArgType.BOOL),
                    Arg("blob", ArgType.BYTES, max_length=16),
                    Arg("label", ArgType.STR, max_length=16),
                ),
            ),
            CommandSpec(0x1F03, "test.FAIL", self._fail),
        ]

    def _burn(self, duration_s: float) -> str:
        self.log.emit(EV_BURN, duration_s=duration_s)
        return "burning"

    def _set_voltage(self, volts: float) -> str:
        self.voltage = volts
        return f"bus at {volts} V"

    def _configure(self, mode: str, enabled: bool, blob: bytes, label: str) -> str:
        return f"{mode} {enabled} {blob.hex()} {label}"

    def _fail(self) -> str:
        raise CommandError("always fails")

    def channels(self) -> list[ChannelSpec]:
        return [
            ChannelSpec(0x1F00, "test.bus_voltage_v", "float", "V", yellow=(24.0, 32.0),
                        red=(20.0, 35.0)),
            ChannelSpec(0x1F01, "test.mode", "str"),
        ]  # fmt: skip

    def packets(self) -> list[PacketSpec]:
        return [PacketSpec(0x1F, "test.POWER", ("test.bus_voltage_v", "test.mode"), {"*": 2.0})]

    def events(self) -> list[EventSpec]:
        return [EV_BURN]

    def publish(self, now: float) -> None:
        self.pool.set("test.bus_voltage_v", self.voltage, now)
        self.pool.set("test.mode", "NOMINAL", now)


class FlightSide:
    """The flight software's link end, stepped by hand."""

    def __init__(self, transport: Transport, clock: SimClock, state_dir: Path) -> None:
        self.clock = clock
        self.transport = transport
        now = clock.monotonic
        self.events = EventLog(now=now)
        self.pool = DataPool()
        self.dispatcher = Dispatcher(events=self.events, now=now, pool=self.pool)
        self.store = StateStore(state_dir / "state.json")
        self.sequences = SequenceEngine(
            dispatcher=self.dispatcher, events=self.events, now=now, state=self.store
        )
        self.power = Power(self.pool, self.events, now)
        self.telemetry = TelemetryManager(pool=self.pool, events=self.events, now=now)
        self.counters = MemoryCounterStore()
        self.uplink = UplinkProcessor(
            keyring=KeyRing({SPI: KEY}),
            spacecraft_id=SCID,
            counter_store=self.counters,
            events=self.events,
            on_command=self.dispatcher.dispatch_bytes,
            now=now,
        )
        self.downlink = Downlink(
            framer=TmFramer(scid=SCID), transport_write=transport.write, byte_rate=50_000, now=now
        )
        for component in (self.sequences, self.power, self.uplink, self.telemetry):
            self.dispatcher.register_all(component.commands())
        for component in (self.dispatcher, self.power):
            for channel in component.channels():
                self.telemetry.register_channel(channel)
            for packet in component.packets():
                self.telemetry.register_packet(packet)
        self.events.subscribe(lambda e: self.downlink.send(e.to_message()))
        self.dispatcher.subscribe(lambda r: self.downlink.send(response_message(r, now())))
        self.steps = 0

    def step(self) -> None:
        now = self.clock.monotonic()
        self.uplink.feed(self.transport.read_available())
        self.sequences.tick()
        self.power.publish(now)
        for message in self.telemetry.sample("CRUISE"):
            self.downlink.send(message)
        self.downlink.tick()
        self.steps += 1

    def dictionary(self) -> Dictionary:
        d = Dictionary()
        for component in (
            self.dispatcher, self.sequences, self.power, self.uplink, self.downlink,
            self.telemetry,
        ):  # fmt: skip
            d.add_component(component)
        return d

    def ground_dictionary(self) -> GroundDictionary:
        """Through JSON text, exactly as ``fsw dict --json`` hands it over."""
        return GroundDictionary.from_json_dict(json.loads(self.dictionary().to_json()))


class SteppingClock:
    """The station's clock: sleeping advances simulated time and runs the flight side."""

    def __init__(self, sim: SimClock, flight: FlightSide | None = None) -> None:
        self.sim = sim
        self.flight = flight

    def monotonic(self) -> float:
        return self.sim.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sim.advance(max(seconds, 0.0))
        if self.flight is not None:
            self.flight.step()


def write_test_key(path: Path) -> Path:
    write_key(path, KEY)
    assert os.stat(path).st_mode & 0o077 == 0
    return path


def make_link(tmp_path: Path) -> tuple[FlightSide, SteppingClock, MemoryPipe, CommandEncoder,
                                        TelemetryDecoder]:  # fmt: skip
    """A flight side on one end of a memory pipe; the ground end and its encoder/decoder."""
    ground_end, flight_end = MemoryPipe.pair()
    sim = SimClock()
    flight = FlightSide(flight_end, sim, tmp_path)
    clock = SteppingClock(sim, flight)
    encoder = CommandEncoder(key=KEY, spi=SPI, scid=SCID, counters=tmp_path / "ground.arsn")
    decoder = TelemetryDecoder(scid=SCID)
    return flight, clock, ground_end, encoder, decoder
