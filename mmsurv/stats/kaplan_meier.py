"""Kaplan-Meier curves by group, with at-risk tables, and the log-rank test.

Thin wrappers around lifelines: they validate the inputs once, draw the figure the
notebooks need (curves, confidence bands, numbers at risk, the log-rank p-value) and
return plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.plotting import add_at_risk_counts
from lifelines.statistics import multivariate_logrank_test

from ..validation import check_same_length, check_survival

__all__ = ["LogRankResult", "logrank", "plot_kaplan_meier", "survival_at"]


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank test of equal survival across groups."""

    statistic: float
    p_value: float
    degrees_of_freedom: int

    def __str__(self) -> str:
        return f"log-rank chi2 = {self.statistic:.2f} (df {self.degrees_of_freedom}), p = {self.p_value:.3g}"


def _check_groups(time, event, groups):
    time, event, _ = check_survival(time, event, require_events=False)
    groups = np.asarray(groups)
    check_same_length(time=time, groups=groups)
    if len(np.unique(groups)) < 2:
        raise ValueError("need at least two groups to compare")
    return time, event, groups


def logrank(time: np.ndarray, event: np.ndarray, groups: np.ndarray) -> LogRankResult:
    """Log-rank test that all groups share one survival curve.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up time and event indicator (1 = event).
    groups : array-like, shape (n,)
        Group label of each patient (two or more groups).

    Returns
    -------
    LogRankResult
        Chi-squared statistic with (groups - 1) degrees of freedom and its p-value
        (lifelines ``multivariate_logrank_test``; equals R's ``survdiff``).
    """
    time, event, groups = _check_groups(time, event, groups)
    result = multivariate_logrank_test(time, groups, event)
    return LogRankResult(float(result.test_statistic), float(result.p_value), int(result.degrees_of_freedom))


def survival_at(time: np.ndarray, event: np.ndarray, at: float) -> float:
    """Kaplan-Meier estimate of the probability of being event-free at time ``at``."""
    time, event, _ = check_survival(time, event, require_events=False)
    return float(KaplanMeierFitter().fit(time, event).predict(at))


def plot_kaplan_meier(
    time: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    *,
    ax: plt.Axes | None = None,
    time_unit: str = "days",
    time_scale: float = 1.0,
    title: str | None = None,
    at_risk: bool = True,
    order: list | None = None,
) -> plt.Axes:
    """Kaplan-Meier curves with 95% bands, a table of numbers at risk and the log-rank p-value.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up time and event indicator (1 = event).
    groups : array-like, shape (n,)
        Group label of each patient.
    ax : matplotlib Axes, optional
    time_unit : str, default "days"
        Label of the time axis (after scaling).
    time_scale : float, default 1.0
        Times are divided by this, e.g. 365.25 to plot years from days.
    title : str, optional
    at_risk : bool, default True
        Draw the numbers-at-risk table under the axis.
    order : list, optional
        Order of the groups in the legend.

    Returns
    -------
    matplotlib Axes
    """
    time, event, groups = _check_groups(time, event, groups)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    fitters = []
    for label in order if order is not None else sorted(np.unique(groups), key=str):
        mask = groups == label
        fitter = KaplanMeierFitter(label=f"{label} (n={int(mask.sum())})")
        fitter.fit(time[mask] / time_scale, event[mask])
        fitter.plot_survival_function(ax=ax, ci_show=True, show_censors=True, censor_styles={"ms": 4})
        fitters.append(fitter)
    test = logrank(time, event, groups)
    ax.text(0.98, 0.95, f"log-rank p = {test.p_value:.2g}", transform=ax.transAxes, ha="right", va="top")
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0, 1.02)
    if title:
        ax.set_title(title)
    if at_risk:
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
    return ax
