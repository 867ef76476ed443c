"""The reference mission's timeline on the mission elapsed time (MET) clock, and the light time.

The simulator, its tests and the chaos campaigns place every scripted event on these few dates, so
they live in one place; the dates follow ``reference/mars.md`` (Tianwen-1: launch 2020-07-23,
capture 2021-02-10, landing 2021-05-14).
"""

from __future__ import annotations

__all__ = [
    "DAY",
    "ENTRY_COAST_S",
    "MOI_MET",
    "SEPARATION_MET",
    "UTC_AT_LAUNCH",
    "one_way_light_time",
]

DAY = 86_400.0
#: Launch 2020-07-23 04:41 UTC, the MET origin (reference/mars.md).
UTC_AT_LAUNCH = 1_595_479_260.0
#: Orbit insertion 202 days after launch; lander separation on the 295th day.
MOI_MET = 202 * DAY
SEPARATION_MET = 295 * DAY + 3 * 3600.0
#: From separation to the entry interface.
ENTRY_COAST_S = 3 * 3600.0


def one_way_light_time(met: float) -> float:
    """Seconds from Earth to the spacecraft: near zero at launch, 10.7 min at insertion
    (reference/mars.md), about 17.8 min at landing (Earth-Mars ~320 million km in May 2021)."""
    if met <= MOI_MET:
        return 5.0 + (642.0 - 5.0) * met / MOI_MET
    return min(1070.0, 642.0 + (1070.0 - 642.0) * (met - MOI_MET) / (SEPARATION_MET - MOI_MET))
