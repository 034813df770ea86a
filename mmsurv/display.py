"""Tables as a reader should see them in an executed notebook.

``frame.round(3)`` leaves three kinds of noise in a printed table: p-values below 0.0005 shown
as ``0.000``, counts that became floats on the way (``48.0`` patients, because a column once
held a NaN or shared a row with floats), and confidence intervals stored as tuples printed
with 16 digits. :func:`tidy_table` fixes all three for display; the numbers recorded in
``metrics.json`` are never rounded.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["format_p", "tidy_table"]

#: Column names read as p-values.
P_VALUE_COLUMNS = ("p", "p_value", "logrank_p", "p value", "p-value")


def format_p(p: float | None) -> str:
    """A p-value as text: three decimals down to 0.001, then two significant digits (``3.2e-07``).

    A p-value that underflowed to 0 is shown as ``<1e-300`` rather than as a certainty.
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.1e}" if p > 0 else "<1e-300"


def _is_p_column(name: Any) -> bool:
    text = str(name[-1] if isinstance(name, tuple) else name).lower()
    return text in P_VALUE_COLUMNS or text.endswith("_p_value")


def _round_interval(value: Any, digits: int) -> Any:
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, (float, np.floating)) for v in value):
        return "(" + ", ".join(f"{v:.{digits}f}" for v in value) + ")"
    return value


def tidy_table(frame: pd.DataFrame | pd.Series, digits: int = 3) -> pd.DataFrame | pd.Series:
    """A copy of ``frame`` for display: floats rounded, whole-number columns as integers, p-values and intervals as text.

    Parameters
    ----------
    frame : DataFrame or Series
    digits : int, default 3
        Decimals kept for floats and for the ends of interval tuples.

    Returns
    -------
    DataFrame or Series
        Float columns whose every value is a whole number (and some above 1) become nullable integers (``Int64``);
        p-value columns (named ``p``, ``p_value``, ``logrank_p``, ...) become text from
        :func:`format_p`; tuples of floats become ``"(0.774, 0.910)"``.
    """
    if isinstance(frame, pd.Series):
        return tidy_table(frame.to_frame(), digits).iloc[:, 0]
    table = frame.copy()
    for column in table.columns:
        values = table[column]
        if _is_p_column(column) and pd.api.types.is_numeric_dtype(values):
            table[column] = values.map(format_p)
        elif pd.api.types.is_float_dtype(values):
            finite = values.dropna()
            whole = len(finite) and np.all(np.isfinite(finite)) and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53)
            if whole and np.abs(finite).max() > 1:  # counts; a column of 0.0 / 1.0 may be a rate or an AUC
                table[column] = values.astype("Int64")
            else:
                table[column] = values.round(digits)
        elif values.dtype == object:
            table[column] = values.map(lambda v: _round_interval(v, digits))
    return table
