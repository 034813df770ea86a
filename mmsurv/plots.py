"""Small figures the notebooks share: follow-up lines and model-vs-oracle comparisons."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from .metrics import BootstrapResult
from .validation import check_survival

__all__ = ["plot_follow_up", "plot_estimates"]


def plot_follow_up(
    time: np.ndarray,
    event: np.ndarray,
    *,
    n_patients: int = 25,
    time_scale: float = 1.0,
    time_unit: str = "days",
    seed: int = 0,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Draw each patient's follow-up as a line ending in a death (x) or a censoring (o).

    Parameters
    ----------
    time, event : array-like, shape (n,)
    n_patients : int, default 25
        How many randomly chosen patients to show.
    time_scale : float, default 1.0
        Times are divided by this (365.25 shows years from days).
    time_unit : str
    seed : int
        Which patients are drawn.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    time, event, _ = check_survival(time, event, require_events=False)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(time), size=min(n_patients, len(time)), replace=False)
    chosen = chosen[np.argsort(time[chosen])]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.18 * len(chosen) + 1.2))
    for row, i in enumerate(chosen):
        colour = "tab:red" if event[i] else "tab:blue"
        ax.hlines(row, 0, time[i] / time_scale, color=colour, lw=1.5)
        ax.plot(time[i] / time_scale, row, "x" if event[i] else "o", color=colour, mfc="white" if not event[i] else colour)
    ax.plot([], [], "x-", color="tab:red", label="death (event)")
    ax.plot([], [], "o-", color="tab:blue", mfc="white", label="censored: alive at last contact")
    ax.set_yticks([])
    ax.set_xlabel(f"time since diagnosis ({time_unit})")
    ax.set_ylabel("patients")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_estimates(
    estimates: Mapping[str, BootstrapResult],
    *,
    metric_name: str,
    reference: float | None = 0.5,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """A forest plot of point estimates with bootstrap intervals (e.g. model, oracle, permuted control).

    Parameters
    ----------
    estimates : mapping of label -> BootstrapResult
    metric_name : str
        Axis label, e.g. ``"Harrell's C (test set)"``.
    reference : float or None, default 0.5
        A vertical line at chance level.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.5 * len(estimates) + 1.0))
    labels = list(estimates)
    for row, label in enumerate(labels):
        result = estimates[label]
        ax.errorbar(result.estimate, row, xerr=[[result.estimate - result.ci_low], [result.ci_high - result.estimate]], fmt="o", capsize=4)
        ax.annotate(f"{result.estimate:.3f}", (result.estimate, row), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="grey", ls="--", lw=1)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric_name} (95% interval)")
    return ax
