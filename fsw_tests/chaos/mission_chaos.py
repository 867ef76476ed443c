"""Categories 4-6: whole simulated missions under device faults, link faults and a long soak.

:class:`ChaosSim` is the reference :class:`MissionSim` with hooks: a per-tick fault hook, a
count of every flight event by name, and control over how long the surface phase lasts.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import os
import random
import resource
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flight.clock import SimClock
from flight.events import Event
from flight.missions.mars.sim import harness
from flight.missions.mars.sim.harness import MissionSim, SimOptions
from flight.missions.mars.sim.timeline import DAY, SEPARATION_MET
from flight.persistence.archive import Archive
from hal.sim import BusFault

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ChaosSim(MissionSim):
    """The reference mission with fault hooks and an adjustable surface stay."""

    def __init__(self, seed: int, state_dir: Path, *, surface_days: float = 7.0) -> None:
        self.hooks: list[Callable[[ChaosSim], None]] = []
        self.event_names: Counter[str] = Counter()
        self.surface_days = surface_days
        self.no_skip: Callable[[float], bool] = lambda t: False
        self.link_changes: list[tuple[float, bool]] = []
        super().__init__(SimOptions(seed=seed, progress=False, out=io.StringIO()), state_dir)

    def _on_event(self, event: Event) -> None:
        self.event_names[event.name] += 1
        if event.name in ("link.UP", "link.DOWN"):
            self.link_changes.append((event.time, event.name == "link.UP"))
        super()._on_event(event)

    def _tick(self) -> None:
        super()._tick()
        if self.clock.monotonic() > SEPARATION_MET + (self.surface_days + 20) * DAY:
            self._stop = True  # the ground never saw the landing: stop rather than run forever
        for hook in self.hooks:
            hook(self)

    def _skip_quiet(self) -> None:
        if not self.no_skip(self.clock.monotonic()):
            super()._skip_quiet()

    def _plan_surface(self) -> None:
        super()._plan_surface()
        if self.surface_days != 7.0:
            end = [a for a in self.actions if a.name == "end of the reference run"]
            for action in end:
                self.actions.remove(action)
            self._at(self.clock.monotonic() + self.surface_days * DAY, "end", self._finish)

    def carrier(self, start: float, end: float, every_s: float = 600.0) -> None:
        """The ground transmits a NOOP every ``every_s`` in [start, end) (outages eat some)."""
        t = start
        while t < end:
            if not self.link.in_outage(t):
                self._at(t, "", lambda: self._send("cmd.NOOP"))
            t += every_s


def _landing(report: dict[str, Any]) -> dict[str, Any]:
    td = report["touchdown"]
    v = td["truth_vertical_mps"]
    return {
        "final_state": report["final_state"],
        "touchdown_vertical_mps": round(v, 2) if v is not None else None,
        "survived": td["survived"],
        "landed_ok": bool(v is not None and v < 2.0 and td["survived"]),
    }


# ------------------------------------------------------------------ category 4: device faults


def device_fault_run(rate: float, seed: int) -> dict[str, Any]:
    """One mission at one I2C error rate; the landing and the device events."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        sim = ChaosSim(seed, Path(tmp))
        kinds = ("no_ack", "io", "timeout")
        injected = 0
        for bus in sim.bench.sim_buses.values():
            for address in list(bus.devices):
                bus.inject(address, BusFault(rng.choice(kinds), rate=rate))
                injected += 1
        stuck: dict[str, float] = {}
        faults: Counter[str] = Counter()
        next_fault = [30.0]

        def hook(s: ChaosSim) -> None:
            now = s.clock.monotonic()
            for name, until in list(stuck.items()):
                if now >= until:
                    s.bench.models[name].stuck = False
                    del stuck[name]
            if now < next_fault[0]:
                return
            edl = s.fsw.machine.state.startswith("EDL")
            next_fault[0] = now + (rng.uniform(5, 40) if edl else rng.uniform(60, 3600))
            what = rng.randrange(6)
            lidar = s.bench.models["lidar"]
            if what < 2:
                name = rng.choice(["baro", "mag", "imu", "power"])
                if name not in stuck:
                    s.bench.models[name].stuck = True
                    stuck[name] = now + rng.uniform(1.0, 8.0)
                    faults[f"stuck_{name}"] += 1
            elif what == 2:
                lidar.garbage(rng.randrange(1, 64))
                faults["lidar_garbage"] += 1
            elif what == 3:
                lidar.corrupt_next(rng.randrange(1, 20))
                faults["lidar_corrupt"] += 1
            elif what == 4:
                lidar.truncate_next(rng.randrange(1, 10))
                faults["lidar_truncated"] += 1
            else:
                lidar.dropout(rng.uniform(0.2, 3.0))
                faults["lidar_dropout"] += 1

        sim.hooks.append(hook)
        try:
            report = sim.run()
        except Exception as exc:
            return {"crash": 1, "error": repr(exc)}
        result = _landing(report)
        result.update(
            {
                "i2c_error_rate": rate,
                "addresses_faulted": injected,
                "injected": dict(faults),
                "dev_offline_events": sim.event_names["dev.OFFLINE"],
                "dev_online_events": sim.event_names["dev.ONLINE"],
                "dev_read_failed_events": sim.event_names["dev.READ_FAILED"],
                "wall_s": round(report["wall_clock_s"], 1),
            }
        )
        result["crash"] = 0
        return result


def device_faults(rates: tuple[float, ...], seed: int = 4) -> dict[str, Any]:
    """A whole mission per I2C error rate, with stuck chips and a misbehaving LiDAR on top."""
    out: dict[str, Any] = {"crash": 0, "landing_lost": 0}
    for rate in rates:
        result = device_fault_run(rate, seed)
        out["crash"] += result.pop("crash")
        # At every rate the redundancy (baro for LiDAR, bus and action retries, polling, the
        # frozen-IMU bridge) must carry the landing: seeds 1-9 land at 20 %.
        if not result.get("landed_ok"):
            out["landing_lost"] += 1
        out[f"rate_{rate:g}"] = result
    return out


# ------------------------------------------------------------------ category 5: link faults


class _NoisyWrite:
    """Wraps one end's ``write``: bit errors, dropped and duplicated chunks."""

    def __init__(self, write: Callable[[bytes], None], rng: random.Random, ber: float) -> None:
        self._write = write
        self._rng = rng
        self._ber = ber
        self.counts: Counter[str] = Counter()

    def __call__(self, data: bytes) -> None:
        rng = self._rng
        if rng.random() < 0.03:
            self.counts["dropped"] += 1
            return
        buf = bytearray(data)
        flips = 0
        # Poisson arrivals of bit errors along the chunk.
        pos = rng.expovariate(self._ber) if self._ber > 0 else float("inf")
        while buf and pos < len(buf) * 8:
            buf[int(pos) // 8] ^= 1 << (int(pos) % 8)
            flips += 1
            pos += rng.expovariate(self._ber)
        self.counts["bits_flipped"] += flips
        self._write(bytes(buf))
        if rng.random() < 0.03:
            self.counts["duplicated"] += 1
            self._write(bytes(buf))


def link_noise(seed: int = 5, ber: float = 1e-4) -> dict[str, Any]:
    """Bit errors, drops and duplicates on both directions through the whole mission: only
    authentic commands execute, none more often than the ground sent it, and the lander still
    lands, flown by a ground that sends again what was not confirmed."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        sim = ChaosSim(seed, Path(tmp), surface_days=1.0)
        authentic: Counter[bytes] = Counter()
        encoder = sim.ground.encoder
        encode = encoder.encode_packet_data

        def recording(data: bytes) -> bytes:
            authentic[hashlib.sha256(data).digest()] += 1
            return encode(data)

        encoder.encode_packet_data = recording  # type: ignore[method-assign]
        up = _NoisyWrite(sim.link.ground.write, rng, ber)
        down = _NoisyWrite(sim.link.spacecraft.write, rng, ber)
        sim.link.ground.write = up  # type: ignore[method-assign]
        sim.link.spacecraft.write = down  # type: ignore[method-assign]
        delivered: Counter[bytes] = Counter()
        figures: Counter[str] = Counter()
        assert sim.fsw.link is not None
        uplink = sim.fsw.link.uplink
        deliver = uplink._on_command

        def checked(data: bytes) -> Any:
            digest = hashlib.sha256(data).digest()
            delivered[digest] += 1
            if digest not in authentic:
                figures["unauthenticated_executed"] += 1
            elif delivered[digest] > authentic[digest]:
                figures["command_repeated"] += 1
            return deliver(data)

        uplink._on_command = checked
        # Plenty of commands through the noise besides the plan's: a NOOP a minute for 45 min.
        sim.carrier(300.0, 3000.0, every_s=60.0)
        try:
            report = sim.run()
            crash = 0
        except Exception as exc:
            report, crash = {"final_state": repr(exc), "touchdown": {}}, 1
        counters = dict(uplink.counters)
    out: dict[str, Any] = {
        "crash": crash,
        "unauthenticated_executed": figures["unauthenticated_executed"],
        "command_repeated": figures["command_repeated"],
        "bit_error_rate": ber,
        "uplink_noise": dict(up.counts),
        "downlink_noise": dict(down.counts),
        "commands_delivered": sum(delivered.values()),
        "commands_sent": sum(authentic.values()),
        "commands_resent_unconfirmed": sim.resent,
        "uplink_counters": counters,
        "final_state": report.get("final_state"),
    }
    if report.get("touchdown"):
        out.update(_landing(report))
    out["landing_lost"] = 0 if out.get("landed_ok") else 1
    return out


def _key(kind: Any, ident: Any, t: float) -> tuple[str, int, float]:
    return (str(getattr(kind, "name", kind)), int(ident), round(float(t), 3))


def link_outages(seed: int = 6, conjunction_days: float = 50.0) -> dict[str, Any]:
    """Outages from minutes to a solar conjunction; everything archived in each outage must
    reach the ground afterwards (played back): ``lost`` counts archived records that did not,
    whether archived after the spacecraft declared the link down or in the carrier timeout
    before it noticed. ``received_twice`` is the price of the second: records the ground got
    live and again in playback."""
    with tempfile.TemporaryDirectory() as tmp:
        sim = ChaosSim(seed, Path(tmp), surface_days=conjunction_days + 6.0)
        assert sim.fsw.link is not None
        sim.fsw.link.config = dataclasses.replace(sim.fsw.link.config, carrier_timeout_s=1800.0)
        outages = [
            (60.0, 660.0),  # ten minutes in early cruise
            (SEPARATION_MET - 3.9 * 3600, SEPARATION_MET - 3.2 * 3600),  # parking orbit
        ]
        sim.link.outages.extend(outages)
        # Fly the short outages tick by tick rather than let the simulator compress idle time:
        # then records are archived all through them, and through the carrier timeout in which
        # the spacecraft still sends into the void.
        sim.no_skip = lambda t: any(a <= t < b for a, b in outages)
        sim.carrier(60.0, 4000.0)
        sim.carrier(SEPARATION_MET - 4 * 3600.0, SEPARATION_MET + DAY)
        # Later a pass every two hours: the link drops between passes (carrier timeout), so
        # playback is also cut short and resumed many times.
        sim.carrier(SEPARATION_MET + DAY, SEPARATION_MET + 9 * DAY, every_s=7200.0)
        conj: list[tuple[float, float]] = []

        def on_surface(s: ChaosSim) -> None:
            if conj or not s.fsw.machine.state.startswith("SURFACE"):
                return
            start = s.clock.monotonic() + 3600.0
            conj.append((start, start + conjunction_days * DAY))
            s.link.outages.append(conj[0])
            s.carrier(start - 1800.0, start + conjunction_days * DAY + 2 * DAY, every_s=3 * 3600)

        sim.hooks.append(on_surface)
        # An outage blocks both ways: uplink bytes arriving during it are lost too (the harness
        # checks outages only when bytes leave), so the spacecraft never hears a carrier that
        # the ground could not have sent through the sun.
        end = sim.link.spacecraft
        read = end.read_available

        def blocked_read() -> bytes:
            data = read()
            return b"" if sim.link.in_outage(sim.clock.monotonic()) else data

        end.read_available = blocked_read  # type: ignore[method-assign]
        crash = 0
        try:
            report = sim.run()
        except Exception as exc:
            report, crash = {"final_state": repr(exc)}, 1
        keys = [_key(m.kind, m.id, m.time) for m in sim.received]
        received = set(keys)
        archive = Archive(Path(tmp) / "archive", now=SimClock().monotonic)
        records = [_key(m.kind, m.id, m.time) for m in archive.read()]
        archive.close()

    def known_down(t: float) -> bool:
        """Whether the flight software had declared the link down at ``t``."""
        state = False
        for when, up in sim.link_changes:
            if when > t:
                break
            state = not up
        return state

    windows = [*outages, *conj]
    out: dict[str, Any] = {"crash": crash, "final_state": report.get("final_state")}
    lost_total = gap_total = 0
    for i, (a, b) in enumerate(windows):
        inside = [r for r in records if a <= r[2] < b]
        missing = [r for r in inside if r not in received]
        lost = sum(1 for r in missing if known_down(r[2]))
        gap = len(missing) - lost
        lost_total += lost
        gap_total += gap
        out[f"outage_{i}"] = {
            "start_met": a,
            "days": round((b - a) / DAY, 4),
            "archived": len(inside),
            "lost_after_link_down": lost,
            "lost_before_down_detected": gap,
        }
    outside = [r for r in records if not any(a <= r[2] < b for a, b in windows)]
    out["outage_records_lost"] = lost_total
    out["outage_records_lost_before_detection"] = gap_total
    out["outside_outages_archived"] = len(outside)
    out["outside_outages_not_received"] = sum(1 for r in outside if r not in received)
    out["received"] = len(keys)
    out["received_twice"] = len(keys) - len(received)
    out["played_back"] = report.get("link", {}).get("played_back")
    out["link_up_events"] = sim.event_names["link.UP"]
    out["link_down_events"] = sim.event_names["link.DOWN"]
    return out


# ------------------------------------------------------------------ category 6: soak


def soak(
    surface_days: float,
    seed: int = 7,
    *,
    burst_every_s: float = 6 * 3600.0,
    burst_s: float = 20.0,
    rss_growth_bound: int = 64 << 20,
    segment_bytes: int = 64 << 10,
    max_segments: int = 8,
    trace_heap: bool = False,
    flight_heap_growth_per_day: int = 16 << 10,
) -> dict[str, Any]:
    """Surface operations for ``surface_days``: the harness fast-forwards quiet hours, so every
    ``burst_every_s`` the loop runs ``burst_s`` at full rate. RSS and archive size are sampled
    at each burst; the archive (its bound shrunk to ``segment_bytes * max_segments`` so it is
    reached) must stay within its bound and RSS growth within ``rss_growth_bound``.

    RSS is the whole process's, and the simulator and its scripted ground grow by design (the
    truth history for the report, every message received for the loss checks). With
    ``trace_heap`` the flight executive's own live heap is also measured (:func:`_flight_heap`),
    traced from landing and sampled at each eighth of the stay from the second on: a leak on a
    board that runs for months shows there, and its growth must stay within
    ``flight_heap_growth_per_day`` for each day of the stay. Tracing is slow: about 20 s of wall
    time per day of stay here, against a quarter of a second untraced."""
    heap: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        sim = ChaosSim(seed, Path(tmp), surface_days=surface_days)
        sim.fsw.archive.segment_bytes = segment_bytes
        sim.fsw.archive.max_segments = max_segments
        samples: list[tuple[float, int, int]] = []
        landed: list[float] = []

        def on_surface(s: ChaosSim) -> None:
            if not s.fsw.machine.state.startswith("SURFACE"):
                return
            now = s.clock.monotonic()
            if not landed:
                landed.append(now)
                s.carrier(now, now + surface_days * DAY, every_s=burst_every_s)
                if trace_heap:  # from here: a leak is what is allocated later and kept
                    tracemalloc.start(_TRACE_FRAMES)
            if not samples or now - samples[-1][0] >= burst_every_s * 0.9:
                samples.append((now, rss_bytes(), s.fsw.archive.total_bytes))
                # The flight heap at each eighth of the stay from the second on.
                if trace_heap and now - landed[0] >= (len(heap) + 2) * surface_days * DAY / 8:
                    gc.collect()  # what is only waiting for the cycle collector is not live
                    heap.append(_flight_heap(tracemalloc.take_snapshot()))

        def no_skip(t: float) -> bool:
            return bool(landed) and (t - landed[0]) % burst_every_s < burst_s

        sim.no_skip = no_skip
        sim.hooks.append(on_surface)
        crash = 0
        try:
            report = sim.run()
        except Exception as exc:
            report, crash = {"final_state": repr(exc)}, 1
        finally:
            tracemalloc.stop()
    bound = segment_bytes * (max_segments + 1)
    over_archive = sum(1 for _, _, size in samples if size > bound)
    rss = [r for _, r, _ in samples]
    growth = (max(rss[len(rss) // 4 :]) - rss[len(rss) // 4]) if len(rss) >= 4 else 0
    return {
        "crash": crash,
        "final_state": report.get("final_state"),
        "surface_days": surface_days,
        "samples": len(samples),
        "soak_samples_lost": int(len(samples) < 2),
        "archive_bytes_max": max((s for _, _, s in samples), default=0),
        "archive_bound_bytes": bound,
        "archive_over_bound_lost": over_archive,
        "rss_mb_first": round(rss[0] / 2**20, 1) if rss else None,
        "rss_mb_last": round(rss[-1] / 2**20, 1) if rss else None,
        "rss_growth_mb_after_warmup": round(growth / 2**20, 1),
        "rss_growth_over_bound_lost": int(growth > rss_growth_bound),
        **(_heap_figures(heap, flight_heap_growth_per_day * surface_days) if trace_heap else {}),
    }


def _heap_figures(heap: list[int], bound: float) -> dict[str, Any]:
    """Growth is the mean of the later half of the samples less that of the earlier half: a
    leak grows it with the stay, while a queue that happens to be full at one sample does not
    make it."""
    half = len(heap) // 2
    growth = sum(heap[-half:]) / half - sum(heap[:half]) / half if half else 0.0
    return {
        "flight_heap_kib": [round(b / 1024, 1) for b in heap],
        "flight_heap_growth_kib": round(growth / 1024, 1),
        "flight_heap_samples_lost": int(len(heap) < 4),
        "flight_heap_growth_over_bound_lost": int(growth > bound),
    }


#: Deep enough that every allocation the flight loop makes has ``FlightSoftware.step`` among
#: its callers.
_TRACE_FRAMES = 30
_FLIGHT_STEP = os.path.join("flight", "app.py")
_AROUND_FLIGHT = tuple(
    os.path.join(*parts, "") for parts in (("mars", "sim"), ("hal", "sim"), ("fsw_tests",))
)


def _flight_heap(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes live in ``snapshot`` that the flight executive allocated.

    An allocation is the executive's when, walking its callers from the nearest, the flight
    step (``flight/app.py``) comes before any simulator or test code: so what a simulated chip
    allocates when a driver reads it, or what the harness allocates when an event reaches its
    timeline, is not counted as flight memory. It goes by who allocated, not who holds: the bytes
    a driver wrote and a simulated chip's transfer history keeps count as flight memory, and so
    do objects CPython keeps on its free lists after they are freed. Both are bounded, so they
    level off as they turn over; a leak does not.
    """
    total = 0
    for trace in snapshot.traces:
        for frame in reversed(trace.traceback):  # the nearest caller first
            name = frame.filename
            if name.endswith(_FLIGHT_STEP):
                total += trace.size
                break
            if any(part in name for part in _AROUND_FLIGHT):
                break
    return total


__all__ = ["ChaosSim", "device_faults", "harness", "link_noise", "link_outages", "soak"]
