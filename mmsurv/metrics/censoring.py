"""The censoring distribution G(t) = P(C > t) and inverse-probability-of-censoring weights.

IPCW metrics (Uno's C, time-dependent AUC, Brier score) re-weight each observed event by
1 / G, estimated with the "reverse" Kaplan-Meier estimator on the training set: censoring
is treated as the event, and at tied times deaths are removed from the risk set first.
G is right-continuous, G(t) includes the drop at t; this is the convention of
scikit-survival's ``CensoringDistributionEstimator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_survival

__all__ = ["CensoringDistribution", "fit_censoring_distribution", "risk_set_counts"]


def risk_set_counts(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts behind every Kaplan-Meier estimate, at each unique time.

    Returns
    -------
    unique_times, n_exiting, n_events, n_at_risk : ndarray
        Unique times (ascending); patients whose follow-up ends there; events there;
        patients still followed just before it.
    """
    unique_times, inverse = np.unique(time, return_inverse=True)
    n_exiting = np.bincount(inverse, minlength=len(unique_times))
    n_events = np.bincount(inverse, weights=event, minlength=len(unique_times))
    n_at_risk = len(time) - np.concatenate([[0], np.cumsum(n_exiting)[:-1]])
    return unique_times, n_exiting, n_events, n_at_risk


@dataclass(frozen=True)
class CensoringDistribution:
    """Step function G(t) = P(censoring time > t) from the reverse Kaplan-Meier estimator.

    Attributes
    ----------
    times : ndarray
        Unique follow-up times of the training set, ascending.
    survival : ndarray
        G at each of ``times`` (right-continuous steps).
    """

    times: np.ndarray
    survival: np.ndarray

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Evaluate G at ``t``; G is 1 before the first time and 0 past the last if it reached 0.

        Raises
        ------
        ValueError
            If ``t`` lies beyond the last training time while G is still positive there
            (the censoring distribution is unknown past the end of follow-up).
        """
        t = np.asarray(t, dtype=float)
        beyond = t > self.times[-1]
        if self.survival[-1] > 0 and beyond.any():
            raise ValueError(
                f"time {t[beyond].max():g} is beyond the last training follow-up time {self.times[-1]:g}: the censoring distribution is unknown there"
            )
        index = np.searchsorted(self.times, t, side="right") - 1
        values = np.where(index >= 0, self.survival[np.clip(index, 0, None)], 1.0)
        return np.where(beyond, 0.0, values)


def fit_censoring_distribution(time: np.ndarray, event: np.ndarray) -> CensoringDistribution:
    """Estimate G(t) with the reverse Kaplan-Meier estimator.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Training follow-up times and event indicators (1 = event, 0 = censored).

    Returns
    -------
    CensoringDistribution
    """
    time, event, _ = check_survival(time, event, require_events=False, prefix="train_")
    unique_times, n_exiting, n_events, at_risk = risk_set_counts(time, event)
    n_censored = n_exiting - n_events
    # deaths at a tied time leave the risk set before the censorings are counted
    at_risk_for_censoring = at_risk - n_events
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n_censored > 0, n_censored / at_risk_for_censoring, 0.0)
    if event.all():
        hazard = np.zeros_like(hazard)
    return CensoringDistribution(unique_times, np.cumprod(1.0 - hazard))
