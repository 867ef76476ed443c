"""Categories 1 and 2: uplink fuzzing, replay and forgery against the real uplink and dispatcher.

The target is the Mars flight software's own :class:`~flight.dispatcher.Dispatcher` (every
command of the mission's dictionary) behind a real :class:`~flight.link.uplink.UplinkProcessor`.
Every command handler is wrapped so that the campaign sees each execution; the uplink's
``on_command`` is wrapped so the campaign knows which packet data is being delivered. A handler
that runs while the data being delivered did not come from a frame the campaign itself
authenticated with the valid key is an ``unauthenticated_executed``. The same authentic packet
delivered twice is ``repeated``. Any exception out of ``feed``/``accept_frame`` is a ``crash``;
an exception a handler raised (caught by the dispatcher, a software bug all the same) is counted
as ``handler_crash``.
"""

from __future__ import annotations

import dataclasses
import random
import struct
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flight import codec
from flight.clock import SimClock
from flight.commands import ArgType, CommandError, CommandSpec, ValidationError
from flight.dispatcher import Dispatcher
from flight.events import EventLog
from flight.link.crc import append_crc
from flight.link.framesync import ASM
from flight.link.ground import CommandEncoder
from flight.link.sdls import KeyRing, MemoryCounterStore, StateStoreCounters
from flight.link.tcframe import HEADER_LEN, TcFrame
from flight.link.uplink import UplinkProcessor
from flight.missions.mars.sim.harness import build_reference_software
from flight.persistence.state import StateStore

SCID = 0x0C8
SLOT = 1
OTHER_SLOT = 2


class Instrumented:
    """The Mars dispatcher with every handler wrapped, behind a real uplink processor."""

    def __init__(self, state_dir: Path, seed: int) -> None:
        self.fsw = build_reference_software(state_dir)
        self.fsw.start()
        self.dispatcher: Dispatcher = self.fsw.dispatcher
        self.events: EventLog = self.fsw.events
        rng = random.Random(seed)
        self.key = rng.randbytes(32)
        self.other_key = rng.randbytes(32)
        self.authentic: Counter[bytes] = Counter()
        self.delivered: Counter[bytes] = Counter()
        self.current: bytes | None = None
        self.executed = 0
        self.unauthenticated_executed = 0
        self.handler_crash = 0
        self.handler_crash_names: Counter[str] = Counter()
        for opcode, spec in list(self.dispatcher._by_opcode.items()):
            wrapped = dataclasses.replace(spec, handler=self._wrap(spec))
            self.dispatcher._by_opcode[opcode] = wrapped
            self.dispatcher._by_name[spec.name] = wrapped
        self.keyring = KeyRing({SLOT: self.key, OTHER_SLOT: self.other_key})
        self.keyring.disable(OTHER_SLOT)
        self.counters = MemoryCounterStore()
        self.uplink = self.make_uplink(self.counters)
        self.encoder = CommandEncoder(
            key=self.key, spi=SLOT, scid=SCID, counters=MemoryCounterStore()
        )

    def make_uplink(self, counters: Any) -> UplinkProcessor:
        return UplinkProcessor(
            keyring=self.keyring,
            spacecraft_id=SCID,
            counter_store=counters,
            events=self.events,
            on_command=self._on_command,
            now=self.fsw.met,
        )

    def _wrap(self, spec: CommandSpec) -> Callable[..., Any]:
        handler = spec.handler

        def run(**kwargs: Any) -> Any:
            self.executed += 1
            if self.current is None or self.current not in self.authentic:
                self.unauthenticated_executed += 1
            try:
                return handler(**kwargs)
            except Exception as exc:
                if not isinstance(exc, CommandError | ValidationError):
                    self.handler_crash += 1
                    self.handler_crash_names[f"{spec.name}: {type(exc).__name__}"] += 1
                raise

        return run

    def _on_command(self, data: bytes) -> Any:
        self.current = bytes(data)
        self.delivered[self.current] += 1
        try:
            return self.dispatcher.dispatch_bytes(data, source="ground")
        finally:
            self.current = None

    def encode(self, body: bytes) -> bytes:
        """ASM + an authentic frame carrying ``body`` as command packet data (recorded)."""
        wire = self.encoder.encode_packet_data(body)
        self.authentic[body] += 1
        return wire

    def close(self) -> None:
        self.fsw.stop()


# --------------------------------------------------------------------------- generators


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(12 if depth < 3 else 8)
    if choice == 0:
        return rng.randint(-(2**70), 2**70)
    if choice == 1:
        return rng.choice([0, 1, -1, 2**31, 2**32, 2**63, -(2**63), 2**64, 10**30])
    if choice == 2:
        return rng.choice([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 5e-324])
    if choice == 3:
        return rng.uniform(-1e6, 1e6)
    if choice == 4:
        return rng.choice([True, False, None])
    if choice == 5:
        return "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(40)))
    if choice == 6:
        return rng.randbytes(rng.randrange(60))
    if choice == 7:
        return rng.choice(["", "x" * 600, "\x00", "mars.ENGINE_BURN", "SAFE", "../../etc/passwd"])
    if choice in (8, 9):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {
        _random_value(rng, 3) if rng.random() < 0.3 else f"k{i}": _random_value(rng, depth + 1)
        for i in range(rng.randrange(4))
    }


def _typed_value(rng: random.Random, arg: Any) -> Any:
    """A value of the right type, often at or past its limits."""
    if arg.type is ArgType.INT:
        lo = int(arg.minimum) if arg.minimum is not None else -(2**40)
        hi = int(arg.maximum) if arg.maximum is not None else 2**40
        return rng.choice([lo, hi, lo - 1, hi + 1, rng.randint(lo, hi) if lo <= hi else lo])
    if arg.type is ArgType.FLOAT:
        flo = float(arg.minimum) if arg.minimum is not None else -1e9
        fhi = float(arg.maximum) if arg.maximum is not None else 1e9
        return rng.choice([flo, fhi, rng.uniform(flo, fhi), float("nan"), fhi * 2 + 1])
    if arg.type is ArgType.BOOL:
        return rng.random() < 0.5
    if arg.type is ArgType.ENUM and arg.choices:
        return rng.choice([*arg.choices, len(arg.choices), -1, "NOPE"])
    if arg.type is ArgType.BYTES:
        return rng.randbytes(rng.choice([0, 1, arg.max_length, arg.max_length + 1]) % 900)
    return "".join(rng.choice("abcxyz._-/ ") for _ in range(rng.randrange(40)))


CBOR_BOMBS: tuple[bytes, ...] = (
    b"\x81" * 900 + b"\x00",  # 900 nested arrays
    b"\xa1\x00" * 400 + b"\x00",  # 400 nested maps
    b"\x9f" * 800,  # unterminated indefinite arrays
    b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array claiming 2**64-1 items
    b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff",  # byte string claiming 2**63 bytes
    b"\x7b\x00\x00\x00\x10\x00\x00\x00\x00abc",  # text string claiming 64 GiB
    b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # map claiming 2**64-1 pairs
    b"\x83\x00\x01\x9a\xff\xff\xff\xff",  # [0, 1, array of 4 G items]
    b"\xc2\x59\x02\x00" + b"\xff" * 512,  # bignum of 4096 bits
    b"\x83\x00\x02\x81\xc2\x59\x02\x00" + b"\xff" * 512,  # PING(bignum)
    b"\xd9\xd9\xf7" * 300 + b"\x00",  # 300 nested self-describe tags
    b"\xc1\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # epoch time tag with +inf
    b"\xd8\x1e\x82\x01\x00",  # rational 1/0
    b"\xd8\x1c\x81\xd8\x1d\x00",  # shared-reference tag pointing at itself
    b"\xc0\x63abc",  # date-time tag with a bad string
    b"\xf8\x00",  # simple value with reserved encoding
    b"\x83\x00\x01",  # truncated
    b"",
)


def random_body(rng: random.Random, specs: list[CommandSpec]) -> bytes:
    """A command data field for an authenticated frame: mostly real opcodes, odd arguments
    (cut to what one TC frame carries)."""
    return _random_body(rng, specs)[:960] or b"\x00"


def _random_body(rng: random.Random, specs: list[CommandSpec]) -> bytes:
    r = rng.random()
    if r < 0.08:
        return rng.choice(CBOR_BOMBS)
    if r < 0.14:
        return rng.randbytes(rng.randrange(1, 200))
    seq = rng.choice([rng.randrange(2**32), -1, 2**32, "x", 1.5, None])
    if r < 0.20:
        return codec.encode(_random_value(rng))
    spec = rng.choice(specs)
    opcode: Any = spec.opcode if rng.random() < 0.95 else rng.choice([70000, -1, "op", 1.0])
    if rng.random() < 0.5:
        args: Any = [_typed_value(rng, a) for a in spec.args]
        if rng.random() < 0.2:
            args = args[:-1] if args and rng.random() < 0.5 else [*args, 0]
    else:
        args = [_random_value(rng) for _ in range(rng.randrange(5))]
    if rng.random() < 0.03:
        args = rng.choice([{}, "args", None, 0])
    if rng.random() < 0.98:
        seq = rng.randrange(2**32)
    try:
        return codec.encode([seq, opcode, args])
    except Exception:  # a value CBOR cannot carry: send something else
        return codec.encode([1, spec.opcode, []])


def _refit(frame: bytes, data: bytes) -> bytes:
    """``frame``'s header (length fixed) around new data, with a good CRC, so it gets past the
    frame checks and is refused by the authenticator."""
    tc = TcFrame.decode(frame)
    return TcFrame(tc.scid, tc.vcid, tc.seq, data).encode()


def forged_wire(rng: random.Random, inst: Instrumented, specs: list[CommandSpec]) -> bytes:
    """Bytes on the uplink that must not execute anything: garbage or a frame with a bad MAC."""
    body = random_body(rng, specs) or b"\x00"
    kind = rng.randrange(9)
    wrong = CommandEncoder(
        key=inst.other_key if rng.random() < 0.5 else rng.randbytes(32),
        spi=rng.choice([SLOT, SLOT, OTHER_SLOT, 0, 7]),
        scid=SCID,
        counters=MemoryCounterStore({SLOT: rng.randrange(2**20)}),
    )
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 1500))
    if kind == 1:  # ASM then garbage
        return ASM + rng.randbytes(rng.randrange(1, 1100))
    if kind == 2:  # well formed, wrong key
        return wrong.encode_packet_data(body)
    good = inst.encoder.encode_packet_data(body)[len(ASM) :]  # NOT recorded as authentic
    frame = bytearray(good)
    if kind == 3:  # one to eight bit flips anywhere, CRC repaired half the time
        repair = rng.random() < 0.5  # then the flips stay out of the CRC, or it would be undone
        for _ in range(rng.randrange(1, 9)):
            i = rng.randrange(len(frame) - 2 if repair else len(frame))
            frame[i] ^= 1 << rng.randrange(8)
        if bytes(frame[:-2]) == good[:-2]:  # the flips cancelled out: that frame is authentic
            frame[HEADER_LEN] ^= 0x01
        if repair:
            frame = bytearray(append_crc(bytes(frame[:-2])))
        return ASM + bytes(frame)
    if kind == 4:  # truncated
        return ASM + bytes(frame[: rng.randrange(len(frame))])
    if kind == 5:  # oversize: length field says more than what follows / max length
        frame[2] = (frame[2] & 0xFC) | 0x03
        frame[3] = 0xFF
        return ASM + bytes(frame) + rng.randbytes(rng.randrange(50))
    if kind == 6:  # MAC truncated or zeroed, CRC repaired
        data = TcFrame.decode(good).data
        cut = rng.randrange(1, 16)
        data = data[:-cut] if rng.random() < 0.5 else data[:-16] + bytes(16)
        return ASM + _refit(good, data)
    if kind == 7:  # data modified under the original MAC, CRC repaired
        changed = bytearray(TcFrame.decode(good).data)
        i = rng.randrange(len(changed))
        changed[i] ^= 1 + rng.randrange(255)
        return ASM + _refit(good, bytes(changed))
    # header modified (scid, vcid, sequence number) with CRC repaired
    tc = TcFrame.decode(good)
    field = rng.choice(["scid", "vcid", "seq"])
    new = dataclasses.replace(
        tc,
        scid=(tc.scid ^ (1 + rng.randrange(0x3FF))) & 0x3FF if field == "scid" else tc.scid,
        vcid=(tc.vcid + 1 + rng.randrange(0x3E)) & 0x3F if field == "vcid" else tc.vcid,
        seq=(tc.seq + 1 + rng.randrange(254)) & 0xFF if field == "seq" else tc.seq,
    )
    return ASM + new.encode()


def fuzz_uplink(frames: int, seed: int = 1) -> dict[str, Any]:
    """Category 1: ``frames`` forged and authenticated frames through uplink and dispatcher."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        inst = Instrumented(Path(tmp), seed)
        specs = inst.dispatcher.specs
        arm = inst.dispatcher.lookup("cmd.ARM")
        assert arm is not None
        crash = 0
        crash_kinds: Counter[str] = Counter()
        forged = authentic = 0
        for n in range(frames):
            if n % 2 == 0:
                wire = forged_wire(rng, inst, specs)
                forged += 1
            else:
                if rng.random() < 0.1:  # arm a random hazardous command so its handler runs
                    hazardous = [s.name for s in specs if s.hazardous] or ["cmd.NOOP"]
                    body = codec.encode([rng.randrange(2**32), arm.opcode, [rng.choice(hazardous)]])
                else:
                    body = random_body(rng, specs)
                wire = inst.encode(body)
                authentic += 1
            try:
                if rng.random() < 0.8:
                    if rng.random() < 0.2:  # split across reads
                        cut = rng.randrange(len(wire) + 1)
                        inst.uplink.feed(wire[:cut])
                        inst.uplink.feed(wire[cut:])
                    else:
                        inst.uplink.feed(wire)
                else:
                    frame = wire[len(ASM) :] if wire.startswith(ASM) else wire
                    inst.uplink.accept_frame(frame)
            except Exception as exc:
                crash += 1
                crash_kinds[type(exc).__name__] += 1
            if n % 200 == 0:
                inst.uplink.feed(b"")
                clock = inst.fsw.clock
                assert isinstance(clock, SimClock)
                clock.advance(0.5)  # let arms expire, time stamps move
        inst.uplink.feed(ASM)  # flush whatever is buffered
        repeated = sum(
            max(0, count - inst.authentic[body]) for body, count in inst.delivered.items()
        )
        figures = {
            "frames": frames,
            "forged_frames": forged,
            "authentic_frames": authentic,
            "handlers_executed": inst.executed,
            "uplink_counters": dict(inst.uplink.counters),
            "dispatcher_counters": inst.dispatcher.counters,
            "crash": crash,
            "crash_kinds": dict(crash_kinds),
            "handler_crash": inst.handler_crash,
            "handler_crash_names": dict(inst.handler_crash_names),
            "unauthenticated_executed": inst.unauthenticated_executed,
            "delivered_repeated": repeated,
        }
        inst.close()
        return figures


def _expect_refusal(
    inst: Instrumented, uplink: UplinkProcessor, wire: bytes, counter: str
) -> tuple[bool, bool]:
    """Feed ``wire``; returns (rejected with the counter moving, an event was raised)."""
    before = uplink.counters[counter]
    seen = len(inst.events.recent), sum(inst.events.count(i) for i in range(0x0600, 0x0609))
    suppressed = sum(inst.events.suppressed(i) for i in range(0x0600, 0x0609))
    executed = inst.executed
    accepted = uplink.feed(wire)
    after_events = sum(inst.events.count(i) for i in range(0x0600, 0x0609))
    after_supp = sum(inst.events.suppressed(i) for i in range(0x0600, 0x0609))
    rejected = accepted == 0 and uplink.counters[counter] > before and inst.executed == executed
    return rejected, after_events > seen[1] or after_supp > suppressed


def replay_and_forgery(rounds: int, seed: int = 2) -> dict[str, Any]:
    """Category 2: replays (also across a restart over the persisted counters), wrong key slot,
    truncated MAC and modified header; each must be refused with an event."""
    rng = random.Random(seed)
    figures: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        inst = Instrumented(Path(tmp) / "fsw", seed)
        store_path = Path(tmp) / "counters.cbor"
        uplink = inst.make_uplink(StateStoreCounters(StateStore(store_path)))
        noop = inst.dispatcher.lookup("cmd.NOOP")
        assert noop is not None
        sent: list[bytes] = []
        for r in range(rounds):
            inst.events.reset_throttle()  # every refusal must be visible, not throttled
            wire = inst.encode(codec.encode([r, noop.opcode, []]))
            executed = inst.executed
            if uplink.feed(wire) == 1 and inst.executed == executed + 1:
                figures["authentic_accepted"] += 1
            else:
                figures["authentic_lost"] += 1
            sent.append(wire)
            cases: list[tuple[str, bytes, str]] = [
                ("replay_same", wire, "replays"),
                ("replay_older", rng.choice(sent), "replays"),
            ]
            frame = wire[len(ASM) :]
            tc = TcFrame.decode(frame)
            other = CommandEncoder(
                key=inst.other_key,
                spi=OTHER_SLOT,
                scid=SCID,
                counters=MemoryCounterStore({OTHER_SLOT: 10**6 + r}),
            )
            cases.append(
                (
                    "wrong_key_slot",
                    other.encode_packet_data(codec.encode([r, 1, []])),
                    "unknown_spi",
                )
            )
            slot_swapped = bytearray(tc.data)
            slot_swapped[0:2] = struct.pack(">H", OTHER_SLOT)
            cases.append(("spi_swapped", ASM + _refit(frame, bytes(slot_swapped)), "unknown_spi"))
            cases.append(("mac_truncated", ASM + _refit(frame, tc.data[:-1]), "auth_failures"))
            cases.append(
                ("mac_zeroed", ASM + _refit(frame, tc.data[:-16] + bytes(16)), "auth_failures")
            )
            header = dataclasses.replace(tc, seq=(tc.seq + 1) & 0xFF)
            cases.append(("header_modified", ASM + header.encode(), "auth_failures"))
            bumped = bytearray(tc.data)
            bumped[5] ^= 0x01  # ARSN changed under the old MAC
            cases.append(("arsn_modified", ASM + _refit(frame, bytes(bumped)), "auth_failures"))
            for name, bad, counter in cases:
                inst.events.reset_throttle()
                rejected, evented = _expect_refusal(inst, uplink, bad, counter)
                figures[f"{name}_tried"] += 1
                if not rejected:
                    figures[f"{name}_executed_crash"] += 1
                if not evented:
                    figures[f"{name}_no_event_lost"] += 1
            if r % max(1, rounds // 4) == 0:
                # Restart: a new uplink over the same counter file, reopened from disk.
                uplink = inst.make_uplink(StateStoreCounters(StateStore(store_path)))
                figures["restarts"] += 1
                for old in rng.sample(sent, min(3, len(sent))):
                    inst.events.reset_throttle()
                    rejected, evented = _expect_refusal(inst, uplink, old, "replays")
                    figures["replay_after_restart_tried"] += 1
                    if not rejected:
                        figures["replay_after_restart_unauthenticated_executed"] += 1
                    if not evented:
                        figures["replay_after_restart_no_event_lost"] += 1
        inst.close()
    out: dict[str, Any] = dict(figures)
    for key in ("authentic_lost", "replay_after_restart_unauthenticated_executed"):
        out.setdefault(key, 0)
    out["refusals_crash"] = sum(v for k, v in figures.items() if k.endswith("_executed_crash"))
    out["refusal_events_lost"] = sum(v for k, v in figures.items() if k.endswith("_no_event_lost"))
    return out
