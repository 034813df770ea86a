"""Adjusting p-values when several tests are read together.

Five paired tests along a model ladder give five chances of a false alarm. Holm's step-down
adjustment keeps the chance that *any* of them is a false alarm (the family-wise error rate)
under the chosen level, and never rejects less than Bonferroni's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["holm_adjust"]


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the order given.

    The k-th smallest of m p-values is multiplied by (m - k + 1); the products are made
    non-decreasing in that order and capped at 1. Call a test significant when its adjusted p
    lies below the level (e.g. 0.05).

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values, each in [0, 1].

    Returns
    -------
    ndarray
        Adjusted p-values, same order and length.

    Raises
    ------
    ValueError
        A p-value outside [0, 1] or NaN.

    References
    ----------
    Holm S. "A simple sequentially rejective multiple test procedure." Scandinavian Journal of
    Statistics 6(2), 1979. The same values as R's ``p.adjust(p, "holm")``.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03, 0.005]).round(3).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"holm_adjust: p-values must be a 1-d sequence of numbers in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * np.arange(len(p), 0, -1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
