"""Tables for display: p-values, counts and intervals as a reader should see them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsurv.display import format_p, tidy_table


def test_format_p_keeps_small_p_values_visible():
    assert format_p(0.0312) == "0.031" and format_p(0.001) == "0.001"
    assert format_p(1.14e-06) == "1.1e-06"  # round(3) would print 0.000
    assert format_p(0.0) == "<1e-300" and format_p(float("nan")) == "-" and format_p(None) == "-"


def test_tidy_table_rounds_floats_and_shows_counts_p_values_and_intervals():
    frame = pd.DataFrame(
        {
            "n": [48.0, 47.0],  # counts that became floats
            "auc": [0.68123456, 1.0],
            "rate": [0.0, 1.0],  # whole numbers but not counts: stays a float
            "p_value": [3.2e-7, 0.2345],
            "ci": [(0.7736015346143814, 0.9103359282758113), (0.6, 0.8)],
            "label": ["a", "b"],
        }
    )
    table = tidy_table(frame)
    assert str(table["n"].dtype) == "Int64" and table["n"].tolist() == [48, 47]
    assert table["auc"].tolist() == [0.681, 1.0] and table["rate"].dtype == float
    assert table["p_value"].tolist() == ["3.2e-07", "0.234"]
    assert table["ci"].tolist() == ["(0.774, 0.910)", "(0.600, 0.800)"] and table["label"].tolist() == ["a", "b"]
    assert frame["n"].dtype == float  # the input is left alone
    # a column with a missing count stays a count; a Series is tidied like a one-column frame
    assert tidy_table(pd.DataFrame({"n": [3.0, np.nan]}))["n"].isna().tolist() == [False, True]
    assert tidy_table(pd.Series([0.12345, 2.0], name="x")).tolist() == [0.123, 2.0]
