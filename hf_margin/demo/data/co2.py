"""The weekly Mauna Loa CO2 record (statsmodels, 1958-2001, gaps interpolated) cut into forecasting windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CO2Windows:
    """Forecasting samples of the weekly record, one per week that has a full window and horizon.

    Args:
        history: (samples, window) the last `window` weeks, relative to the latest one (ppm).
        change: (samples, horizon) the change after 1, 2, ..., horizon weeks (ppm).
        train: (samples,) whose whole horizon ends before the split year.
        test: (samples,) whose window ends in the split year or later.
    """

    history: np.ndarray
    change: np.ndarray
    train: np.ndarray
    test: np.ndarray


def co2_windows(window: int, horizon: int, split_year: int) -> CO2Windows:
    """The record's (history, future change) samples split by year (needs statsmodels, the `data` extra)."""
    import statsmodels.api as sm

    series = sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both")
    values, years = series.to_numpy(dtype=np.float64), series.index.year.to_numpy()
    ends = np.arange(window - 1, len(values) - horizon)
    history = np.stack([values[end - window + 1 : end + 1] - values[end] for end in ends])
    change = np.stack([values[end + 1 : end + horizon + 1] - values[end] for end in ends])
    return CO2Windows(history, change, years[ends + horizon] < split_year, years[ends] >= split_year)
