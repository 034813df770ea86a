"""Calibration of predicted survival probabilities at a fixed time.

Discrimination (C-index, AUC) says whether the model *ranks* patients well; calibration
says whether its probabilities can be *taken at face value*. Patients are binned by
predicted survival at time t, and each bin's mean prediction is set beside the
Kaplan-Meier estimate of the bin's observed survival (which handles censoring).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from ..validation import check_same_length, check_scores, check_survival

__all__ = ["calibration_at_time", "plot_calibration", "plot_survival_calibration"]


def calibration_at_time(
    time: np.ndarray,
    event: np.ndarray,
    surv_prob: np.ndarray,
    at: float,
    *,
    n_bins: int = 5,
) -> pd.DataFrame:
    """Predicted vs observed (Kaplan-Meier) survival at time ``at``, by bins of prediction.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up time and event indicator (1 = event).
    surv_prob : array-like, shape (n,)
        Each patient's predicted probability of being event-free at ``at``.
    at : float
        The evaluation time, in the units of ``time``.
    n_bins : int, default 5
        Number of quantile bins of the prediction.

    Returns
    -------
    DataFrame
        One row per bin: ``n``, ``predicted`` (mean prediction), ``observed`` (KM estimate
        at ``at``), ``observed_low`` and ``observed_high`` (its 95% interval).
    """
    time, event, _ = check_survival(time, event, require_events=False)
    prob = check_scores(surv_prob, "surv_prob")
    check_same_length(time=time, surv_prob=prob)
    if (prob < 0).any() or (prob > 1).any():
        raise ValueError("surv_prob must lie in [0, 1]")
    bins = pd.qcut(prob, n_bins, labels=False, duplicates="drop")
    rows = []
    for b in np.unique(bins):
        mask = bins == b
        km = KaplanMeierFitter().fit(time[mask], event[mask])
        ci = km.confidence_interval_survival_function_
        index = np.searchsorted(km.timeline, at, side="right") - 1
        rows.append(
            {
                "n": int(mask.sum()),
                "predicted": float(prob[mask].mean()),
                "observed": float(km.predict(at)),
                "observed_low": float(ci.iloc[max(index, 0), 0]),
                "observed_high": float(ci.iloc[max(index, 0), 1]),
            }
        )
    return pd.DataFrame(rows)


def plot_calibration(table: pd.DataFrame, *, ax: plt.Axes | None = None, label: str = "model", title: str | None = None) -> plt.Axes:
    """Draw a calibration table from :func:`calibration_at_time` against the diagonal."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    errors = np.vstack([table["observed"] - table["observed_low"], table["observed_high"] - table["observed"]])
    ax.errorbar(table["predicted"], table["observed"], yerr=errors, fmt="o-", capsize=3, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted survival probability")
    ax.set_ylabel("observed (Kaplan-Meier)")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


def plot_survival_calibration(
    curves: np.ndarray,
    curve_times: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    at_times: list[float],
    *,
    n_groups: int = 5,
    label: str = "model",
    time_unit: float = 1.0,
    time_label: str = "time",
) -> plt.Figure:
    """Three views of whether predicted survival curves can be taken at face value.

    1. **Curves by group of predicted risk**: patients cut into ``n_groups`` groups by predicted
       survival at the last of ``at_times``; each group's Kaplan-Meier curve (solid, observed)
       beside its mean predicted curve (dashed). Calibrated curves lie on top of each other.
    2. **Predicted vs observed at each of** ``at_times`` (:func:`calibration_at_time`, 95% Kaplan-Meier
       intervals), and the smoothed calibration curve of the integrated calibration index at
       the last time.
    3. **D-calibration**: each patient's predicted survival at her own time falls evenly into
       ten bins when the curves are right (:func:`mmsurv.metrics.survival_calibration.d_calibration`).

    Parameters
    ----------
    curves : array-like, shape (n, n_curve_times)
        Predicted survival of each patient on ``curve_times`` (step functions).
    curve_times : array-like, shape (n_curve_times,)
    time, event : array-like, shape (n,)
        Observed follow-up.
    at_times : list of float
        Times at which predicted and observed survival are compared.
    n_groups : int, default 5
    label : str, default "model"
    time_unit, time_label
        Times are divided by ``time_unit`` on the axes (e.g. 365.25 and "years").

    Returns
    -------
    Figure
    """
    from ..metrics.survival_calibration import d_calibration, integrated_calibration_index, predicted_survival_at

    time, event, _ = check_survival(time, event, require_events=False)
    curves, curve_times = np.asarray(curves, dtype=float), np.asarray(curve_times, dtype=float)
    last = float(max(at_times))
    at_last = predicted_survival_at(curves, curve_times, np.full(len(time), last))
    groups = pd.qcut(-at_last, n_groups, labels=False, duplicates="drop")  # group 0: lowest predicted survival
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    colours = plt.cm.viridis(np.linspace(0.05, 0.85, groups.max() + 1))
    for g, colour in enumerate(colours):
        mask = groups == g
        km = KaplanMeierFitter().fit(time[mask] / time_unit, event[mask])
        axes[0].step(km.timeline, km.survival_function_.iloc[:, 0], where="post", color=colour, lw=1.8)
        axes[0].step(curve_times / time_unit, curves[mask].mean(axis=0), where="post", color=colour, ls="--", lw=1.2)
    axes[0].plot([], [], color="k", label="Kaplan-Meier (observed)")
    axes[0].plot([], [], color="k", ls="--", label=f"mean predicted ({label})")
    axes[0].axvline(last / time_unit, color="grey", lw=0.8, ls=":")
    axes[0].set(xlabel=time_label, ylabel="survival", ylim=(0, 1.02), title=f"{groups.max() + 1} groups of predicted risk")
    axes[0].legend(loc="lower left", fontsize=8)
    for at in sorted(at_times):
        table = calibration_at_time(time, event, predicted_survival_at(curves, curve_times, np.full(len(time), at)), at, n_bins=n_groups)
        plot_calibration(table, ax=axes[1], label=f"{at / time_unit:g} {time_label}")
    index = integrated_calibration_index(1.0 - at_last, time, event, last)
    axes[1].plot(
        1.0 - index.grid, 1.0 - index.observed_on_grid, color="k", lw=1, label=f"smoothed, {last / time_unit:g} {time_label} (ICI {index.ici:.3f})"
    )
    handles, labels = axes[1].get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one "perfect calibration" line per time drawn: name it once
    axes[1].legend(unique.values(), unique.keys(), loc="upper left", fontsize=8)
    axes[1].set_title(f"predicted vs observed survival ({label})")
    dcal = d_calibration(predicted_survival_at(curves, curve_times, time), event)
    n_bins = len(dcal.histogram)
    axes[2].bar(np.arange(n_bins) / n_bins, dcal.proportions, width=1 / n_bins, align="edge", edgecolor="white", color="tab:blue")
    axes[2].axhline(1 / n_bins, color="grey", ls="--", lw=1, label="calibrated: equal bins")
    axes[2].set(xlabel="predicted survival at the patient's own time", ylabel="share of patients", title=f"D-calibration: p = {dcal.p_value:.2g}")
    axes[2].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig
