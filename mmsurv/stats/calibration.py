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

__all__ = ["calibration_at_time", "plot_calibration"]


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
