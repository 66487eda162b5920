"""Statistics for the evidence recipes (recipes/evidence/): seeds as independent replicates, methods paired by seed.

Every evidence run trains a method and its baseline on the same seed (same data split, same initialisation), so
the honest comparison is the paired one: the mean of the per-seed differences with its Student-t 95% interval
(Student, 1908). With n seeds the interval is ``mean +- t_{0.975, n-1} * sd / sqrt(n)`` (sd with n - 1 in the
denominator). The t quantile comes from scipy (`scipy.stats.t.ppf`; scipy is installed with the `data` extra,
through scikit-learn and statsmodels).

Example:
    >>> interval = mean_interval([0.61, 0.64, 0.62])
    >>> round(interval.mean, 3), interval.n
    (0.623, 3)
    >>> paired_difference([0.70, 0.72, 0.71], [0.61, 0.64, 0.62]).verdict()
    'better'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hf_margin._extras import require

Verdict = Literal["better", "worse", "no difference"]


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval over `n` replicates.

    Attributes:
        mean: the sample mean.
        low, high: the interval's ends (both equal `mean` when every value is equal).
        n: the number of replicates (seeds).
        level: the confidence level (0.95 for a 95% interval).
    """

    mean: float
    low: float
    high: float
    n: int
    level: float

    @property
    def half_width(self) -> float:
        """Half the interval's width (the "+-" of ``mean +- half_width``)."""
        return (self.high - self.low) / 2.0

    def verdict(self) -> Verdict:
        """For a paired difference (method - baseline, higher is better): "better" when the whole interval lies
        above 0, "worse" when it lies below 0, else "no difference"."""
        if self.low > 0.0:
            return "better"
        if self.high < 0.0:
            return "worse"
        return "no difference"

    def format(self, digits: int = 3) -> str:
        """``mean [low, high] (n=..)``, e.g. ``0.623 [0.585, 0.661] (n=3)``."""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The `probability` quantile of Student's t with `degrees_of_freedom` (scipy's ``t.ppf``)."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"`probability` must be in (0, 1), got {probability}")
    if isinstance(degrees_of_freedom, bool) or not isinstance(degrees_of_freedom, int) or degrees_of_freedom < 1:
        raise ValueError(f"`degrees_of_freedom` must be a positive int, got {degrees_of_freedom!r}")
    return _t_ppf(probability, degrees_of_freedom)


@functools.cache
def _t_ppf(probability: float, degrees_of_freedom: int) -> float:
    """Cached: a summary asks for the same few quantiles hundreds of times, and `require` reads package metadata."""
    stats = require("scipy.stats", "data", "The t quantile of the evidence statistics")
    return float(stats.t.ppf(probability, degrees_of_freedom))


def _checked(values: Sequence[float], name: str) -> list[float]:
    numbers = [float(v) for v in values]
    if len(numbers) < 2:
        raise ValueError(f"`{name}` needs at least 2 values (seeds) for an interval, got {len(numbers)}")
    bad = [v for v in numbers if not math.isfinite(v)]
    if bad:
        raise ValueError(f"`{name}` must be finite, got {bad}")
    return numbers


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of `values` (one per seed, at least 2) with its Student-t confidence interval at `level`."""
    numbers = _checked(values, "values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    n = len(numbers)
    mean = sum(numbers) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in numbers) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)


def paired_difference(method: Sequence[float], baseline: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of ``method[i] - baseline[i]`` (the same seed i for both) with its Student-t interval at `level`."""
    first, second = _checked(method, "method"), _checked(baseline, "baseline")
    if len(first) != len(second):
        raise ValueError(
            f"`method` and `baseline` must be paired by seed (equal lengths), got {len(first)} and {len(second)}"
        )
    return mean_interval([a - b for a, b in zip(first, second, strict=True)], level)


def claim_verdict(difference: Interval) -> str:
    """The claims page's verdict on "the method beats its baseline" from their paired difference (higher is better):
    "reproduced" (interval above 0), "contradicted" (below 0) or "not reproduced at this scale" (it contains 0)."""
    return {"better": "reproduced", "worse": "contradicted", "no difference": "not reproduced at this scale"}[
        difference.verdict()
    ]
