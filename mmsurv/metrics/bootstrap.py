"""Patient-level bootstrap confidence intervals for any metric.

Resampling draws *patients* (or any grouping you pass, e.g. patient ids for tile-level
arrays) with replacement. Each resample is stored as a row of counts (how often each
patient was drawn). Metrics that know how to use such weights directly — Harrell's C —
evaluate all resamples with a few matrix products instead of a Python loop; any other
metric is called once per resample on the repeated rows. Both paths see exactly the same
resamples, so they give the same interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..validation import check_survival
from .concordance import concordance_index, concordance_sums

__all__ = ["BootstrapResult", "bootstrap_ci", "resample_counts"]

#: Resamples evaluated together by a batched metric (the pair matrix is built once per batch; memory ~ _BATCH x n floats).
_BATCH = 2000


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with a percentile bootstrap interval.

    Attributes
    ----------
    estimate : float
        The metric on the full data.
    ci_low, ci_high : float
        Percentile interval of the resampled values.
    n_resamples : int
        Resamples drawn.
    n_failed : int
        Resamples on which the metric was undefined (e.g. no events drawn); left out.
    values : ndarray
        The metric on each resample (NaN where it failed).
    """

    estimate: float
    ci_low: float
    ci_high: float
    n_resamples: int
    n_failed: int
    values: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        """The estimate and interval as plain floats, e.g. for ``metrics.json``."""
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high}

    def __str__(self) -> str:
        return f"{self.estimate:.3f} (95% CI {self.ci_low:.3f}-{self.ci_high:.3f})"


def resample_counts(n_groups: int, n_resamples: int, seed: int | np.random.Generator) -> np.ndarray:
    """Draw ``n_resamples`` bootstrap samples of ``n_groups`` groups, as counts.

    Returns
    -------
    ndarray of int, shape (n_resamples, n_groups)
        ``counts[b, g]`` is how often group g was drawn in resample b; each row sums to n_groups.
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    # one small bincount per row stays in cache (a single flat bincount does not)
    return np.stack([np.bincount(row, minlength=n_groups) for row in draws])


def _batched_harrell(weights: np.ndarray, time, event, risk) -> np.ndarray:
    time, event, risk = check_survival(time, event, risk)
    values = np.empty(len(weights))
    for start in range(0, len(weights), _BATCH):
        concordant, comparable = concordance_sums(time, event, risk, weights=weights[start : start + _BATCH])
        with np.errstate(invalid="ignore", divide="ignore"):
            values[start : start + _BATCH] = np.where(comparable > 0, concordant / comparable, np.nan)
    return values


#: Metrics with a vectorised weighted implementation: metric -> f(weights, *arrays).
BATCHED_METRICS: dict[Callable, Callable] = {concordance_index: _batched_harrell}


def _looped(metric: Callable, weights: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    values = np.full(len(weights), np.nan)
    rows = np.arange(len(arrays[0]))
    for b, w in enumerate(weights):
        index = np.repeat(rows, w)
        try:
            values[b] = metric(*(a[index] for a in arrays))
        except ValueError:  # undefined on this resample (no events, one class, ...)
            pass
    return values


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    groups: np.ndarray | None = None,
) -> BootstrapResult:
    """Percentile bootstrap confidence interval of ``metric(*arrays)``, resampling patients.

    Parameters
    ----------
    metric : callable
        ``metric(*arrays) -> float``, e.g. :func:`mmsurv.metrics.concordance_index` with
        arrays ``(time, event, risk)``. Keyword arguments can be bound with
        ``functools.partial`` (they are then held fixed, e.g. the training set of Uno's C).
    *arrays : array-like, each shape (n,)
        Row-aligned inputs of the metric.
    n_resamples : int, default 1000
    seed : int, default 0
        Seed of the resampling; the same seed gives the same resamples for any metric.
    confidence : float, default 0.95
    groups : array-like, shape (n,), optional
        Cluster label of each row (e.g. patient id when rows are slides or tiles): whole
        groups are resampled together. Default: each row is its own patient.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    ValueError
        If the arrays differ in length, or the metric fails on the full data.
    """
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"length mismatch between arrays: {[len(a) for a in arrays]}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    estimate = float(metric(*arrays))
    if groups is None:
        weights = resample_counts(n, n_resamples, seed)
    else:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"groups has length {len(groups)}, arrays have {n}")
        labels, group_index = np.unique(groups, return_inverse=True)
        weights = resample_counts(len(labels), n_resamples, seed)[:, group_index]
    batched = BATCHED_METRICS.get(metric)
    values = batched(weights, *arrays) if batched else _looped(metric, weights, arrays)
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        raise ValueError("the metric was undefined on every bootstrap resample")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ok, [alpha, 1 - alpha])
    return BootstrapResult(estimate, float(low), float(high), n_resamples, int(len(values) - ok.size), values)
