"""``fsw sim --plot``: the EDL profile as a PNG (altitude, speed, deceleration, with mode bands).

Plotting is a ground tool: matplotlib comes from the ``plot`` extra and is imported only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_edl"]

_BANDS = {
    "EDL.ENTRY": "#fde2e2",
    "EDL.PARACHUTE": "#e2ecfd",
    "EDL.POWERED": "#fdf3e2",
    "EDL.HOVER": "#e6f7e2",
    "EDL.TOUCHDOWN": "#eeeeee",
}


def plot_edl(history: Iterable[Any], transitions: Sequence[dict[str, Any]], path: Path) -> None:
    """Write the EDL profile from the simulator's 1 Hz truth history and the flight software's
    mode transitions (time axis: seconds from the entry interface)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flying = [h for h in history if h.phase in ("ENTRY", "PARACHUTE", "POWERED")]
    if not flying:
        raise ValueError("no EDL in the simulated history: run without --until, or --until SURFACE")
    t0 = next((h.entry_time_s for h in flying if h.entry_time_s is not None), flying[0].time_s)
    end = flying[-1].time_s + 20.0
    edl = [h for h in history if t0 - 20.0 <= h.time_s <= end]
    t = [h.time_s - t0 for h in edl]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 8))
    series = (
        ([h.altitude_m / 1000 for h in edl], "altitude (km)"),
        ([h.speed_mps for h in edl], "speed (m/s)"),
        ([h.deceleration_g for h in edl], "deceleration (Earth g)"),
    )
    edl_changes = [
        x
        for x in transitions
        if str(x.get("dest", "")).startswith("EDL") or x.get("dest") == "SURFACE.EGRESS"
    ]
    for ax, (values, label) in zip(axes, series, strict=True):
        ax.plot(t, values, color="black", linewidth=1.2)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for i, change in enumerate(edl_changes):
            start = max(change["met_s"] - t0, t[0])  # EDL.ENTRY starts at separation
            end = edl_changes[i + 1]["met_s"] - t0 if i + 1 < len(edl_changes) else t[-1]
            colour = _BANDS.get(str(change["dest"]))
            if colour:
                ax.axvspan(start, end, color=colour, zorder=0)
    for change in edl_changes:
        axes[0].annotate(
            str(change["dest"]).split(".")[-1],
            (change["met_s"] - t0, 0),
            rotation=90,
            fontsize=7,
            va="bottom",
        )
    axes[-1].set_xlim(t[0], t[-1])
    axes[-1].set_xlabel("seconds from entry interface")
    fig.suptitle("Mars EDL: simulator truth, bands are the flight software's phases")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
