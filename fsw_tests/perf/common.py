"""Shared pieces of the benchmark script: one :class:`Figure` per measured number, a table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Figure", "percentile", "table"]


@dataclass
class Figure:
    """One measured figure and the target it is judged against.

    ``baseline`` is measured in the same run (``None`` when the figure has no natural baseline);
    ``meets_target`` is decided by the code that measured it, because targets differ in kind
    (at most, at least, relative to the baseline).
    """

    name: str
    value: float
    unit: str
    baseline: float | None
    target: str
    target_value: float | None
    meets_target: bool
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = {"text": out.pop("target"), "value": out.pop("target_value")}
        return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value != value:  # NaN
        return "nan"
    if value == 0 or 0.01 <= abs(value) < 100_000:
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:.3g}"


def table(figures: Sequence[Figure]) -> str:
    """A plain-text table: name, value, unit, baseline, target, verdict."""
    rows = [("figure", "value", "unit", "baseline", "target", "ok")]
    for f in figures:
        rows.append(
            (
                f.name,
                _fmt(f.value),
                f.unit,
                _fmt(f.baseline),
                f.target,
                "yes" if f.meets_target else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i in (0, 2, 4) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
