"""The Mars flight software's telemetry as it leaves for the ground: the packets whose channels
are all numbers go in fixed layouts, and every packet reads back as it was sampled."""

from __future__ import annotations

from pathlib import Path

from flight.clock import SimClock
from flight.link.spacepacket import packet_to_message
from flight.missions.mars.sim.harness import BASE_HZ, build_reference_software


def test_numeric_packets_fly_in_fixed_layouts_and_every_packet_reads_back_as_sampled(
    tmp_path: Path,
) -> None:
    fsw = build_reference_software(tmp_path)
    clock = fsw.clock
    assert isinstance(clock, SimClock) and fsw.link is not None
    fsw.start()
    try:
        for _ in range(100):  # real readings in the pool
            fsw.step()
            clock.advance(1.0 / BASE_HZ)
        packetizer = fsw.link.downlink.packetizer
        layouts = fsw.telemetry.layouts()
        numeric = {pid for pid, types in layouts.items() if set(types) <= {"float", "int"}}
        assert numeric and numeric != set(layouts)  # mars.HK carries the mode's name
        assert {pid for pid in layouts if packetizer.fixed_length(pid) is not None} == numeric

        clock.advance(1000.0)  # every periodic packet due at once
        messages = fsw.telemetry.sample(fsw.machine.mode)
        packets = [packetizer.realtime(m) for m in messages]
        assert [packet_to_message(p) for p in packets] == messages
        fixed = [
            m.id
            for m, p in zip(messages, packets, strict=True)
            if len(p) == packetizer.fixed_length(m.id)
        ]
        assert fixed  # at least one went out in its layout (cmd.STATUS lacks values yet)
    finally:
        fsw.stop()
        fsw.close_devices()
