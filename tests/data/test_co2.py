"""The CO2 forecasting windows: shapes, the changes they hold, and a split with no sample on both sides."""

from __future__ import annotations

import numpy as np

from hf_margin.demo.data.co2 import co2_windows


def test_windows_hold_the_past_and_the_future_changes_and_split_by_year() -> None:
    windows = co2_windows(window=8, horizon=3, split_year=1990)
    samples = len(windows.history)
    assert windows.history.shape == (samples, 8) and windows.change.shape == (samples, 3)
    assert np.all(windows.history[:, -1] == 0), "the history is relative to its latest week"
    # consecutive samples are one week apart: the next sample's last step equals this one's 1-week change
    np.testing.assert_allclose(windows.history[1:, -2], -windows.change[:-1, 0])
    assert windows.train.any() and windows.test.any() and not (windows.train & windows.test).any()
    assert np.flatnonzero(windows.train)[-1] < np.flatnonzero(windows.test)[0], "every training sample comes first"
