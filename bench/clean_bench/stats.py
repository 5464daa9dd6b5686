"""The two numbers every table of the benchmark is made of: percentiles and guarded ratios."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    return float(np.percentile(values, q)) if values else float("nan")


def ratio(num: int, den: int) -> float | None:
    """num / den, None when den is 0."""
    return num / den if den else None
