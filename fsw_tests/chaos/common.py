"""Shared helpers of the chaos campaign: quiet logging, figures, failure names.

A category returns a flat dict of figures. Figures whose names contain one of
:data:`FAILURE_WORDS` are failure counts and must be 0; everything else is informative.
"""

from __future__ import annotations

import logging
from typing import Any

FAILURE_WORDS = ("crash", "unauthenticated_executed", "lost", "repeated")


def quiet() -> None:
    """The flight code logs every refusal; a campaign makes hundreds of thousands of them."""
    logging.disable(logging.CRITICAL)


def failures(figures: dict[str, Any]) -> dict[str, Any]:
    """The failure counts of one category that are not 0."""
    return {
        name: value
        for name, value in figures.items()
        if any(word in name for word in FAILURE_WORDS)
        and isinstance(value, int | float)
        and value != 0
    }
