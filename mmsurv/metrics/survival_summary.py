"""One model's survival measures on one cohort, side by side: ranking, a landmark, whole curves.

Notebooks 04 and 05 put a landmark classifier (it predicts P(event by the landmark) and nothing
else), a Cox model and a survival-native model (each predicts a whole curve) in one table. Each
model gets every measure its output supports: ranking for all (Uno's C, the time-dependent AUC at
the landmark), the Brier score at the landmark where it gives a probability there, and the
integrated Brier score and D-calibration only where it gives a curve. A measure a model cannot
be given is NaN, not a number computed from something else.
"""

from __future__ import annotations

import numpy as np

from .concordance import uno_concordance_index
from .survival_calibration import d_calibration, predicted_survival_at
from .time_dependent import brier_score, integrated_brier_score, time_dependent_auc

__all__ = ["survival_scores"]


def survival_scores(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    horizon: float,
    *,
    train_time: np.ndarray,
    train_event: np.ndarray,
    tau: float | None = None,
    survival_at_horizon: np.ndarray | None = None,
    curves: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    integrate_from: float = 0.0,
) -> dict[str, float]:
    """Uno's C, AUC and Brier at ``horizon``, integrated Brier and D-calibration of one model.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        The scored cohort's follow-up and events (1 = event).
    risk : array-like, shape (n,)
        Higher means an earlier event (a Cox linear predictor, P(event by the landmark), minus
        the sum of a curve).
    horizon : float
        The landmark, in the units of ``time``.
    train_time, train_event : array-like
        The training patients' follow-up: the censoring distribution of every IPCW measure.
    tau : float, optional
        Where Uno's C is truncated (:func:`~mmsurv.metrics.truncation_time`); also the end of
        the integrated Brier score's span. Without it, neither is truncated.
    survival_at_horizon : array-like, shape (n,), optional
        The model's S(horizon | x) (for a landmark classifier, 1 - P(event by horizon)). Read
        from ``curves`` when omitted; without either, the Brier score at the horizon is NaN.
    curves : array-like, shape (n, len(grid)), optional
        Predicted survival curves on ``grid``: they give the integrated Brier score (over the
        grid's points from ``integrate_from`` to ``tau``) and the D-calibration p-value.
    grid : array-like, optional
        Strictly increasing times of ``curves``' columns, starting at or before the first
        follow-up time.
    integrate_from : float, default 0
        Start of the integrated Brier score's span (the first weeks, with almost no events,
        would otherwise dilute it).

    Returns
    -------
    dict
        ``uno_c``, ``td_auc_at_horizon``, ``brier_at_horizon``, ``integrated_brier``,
        ``d_calibration_p`` (small: the curves are miscalibrated); NaN where the model's output
        does not support the measure.
    """
    censoring = dict(train_time=train_time, train_event=train_event)
    at_horizon = np.array([horizon], dtype=float)
    scores = {
        "uno_c": uno_concordance_index(time, event, risk, tau=tau, **censoring),
        "td_auc_at_horizon": float(time_dependent_auc(time, event, risk, at_horizon, **censoring)[0][0]),
        "brier_at_horizon": np.nan,
        "integrated_brier": np.nan,
        "d_calibration_p": np.nan,
    }
    if curves is not None:
        if grid is None:
            raise ValueError("survival_scores: curves need the grid of times they are given on")
        curves, grid = np.asarray(curves, dtype=float), np.asarray(grid, dtype=float)
        if survival_at_horizon is None:
            survival_at_horizon = predicted_survival_at(curves, grid, np.full(len(curves), horizon))
        span = (grid >= integrate_from) & (grid <= (np.inf if tau is None else tau))
        scores["integrated_brier"] = integrated_brier_score(time, event, curves[:, span], grid[span], **censoring)
        scores["d_calibration_p"] = d_calibration(predicted_survival_at(curves, grid, time), event).p_value
    if survival_at_horizon is not None:
        scores["brier_at_horizon"] = float(brier_score(time, event, survival_at_horizon, at_horizon, **censoring)[0])
    return scores
