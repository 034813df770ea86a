"""Time-dependent discrimination and calibration: cumulative/dynamic AUC and the Brier score.

Both use inverse probability of censoring weights (IPCW) with G estimated on the training
set (:mod:`mmsurv.metrics.censoring`), following scikit-survival's definitions.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_scores, check_survival
from .censoring import CensoringDistribution, fit_censoring_distribution, risk_set_counts

__all__ = ["time_dependent_auc", "brier_score", "integrated_brier_score", "truncation_time"]


def _check_times(times: np.ndarray) -> np.ndarray:
    times = check_scores(np.atleast_1d(times), "times")
    if (times <= 0).any():
        raise ValueError("times must be positive")
    if (np.diff(times) <= 0).any():
        raise ValueError("times must be strictly increasing")
    return times


def _censoring_at_case_times(
    censoring: CensoringDistribution, time: np.ndarray, event: np.ndarray, last_time: float
) -> tuple[np.ndarray, np.ndarray]:
    """G at each patient's own time where an IPCW measure needs it - the cases, events at or before ``last_time`` - and 1 elsewhere.

    A patient followed beyond every scored time is a control throughout: her own time may lie beyond the training follow-up,
    where G is unknown (scikit-survival refuses her whenever the longest training follow-up ends in an event), and no weight
    uses it. Returns G and the mask of cases.
    """
    cases = event & (time <= last_time)
    g = np.ones(len(time))
    g[cases] = censoring(time[cases])
    return g, cases


def time_dependent_auc(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    times: np.ndarray,
    *,
    train_time: np.ndarray,
    train_event: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Cumulative/dynamic time-dependent AUC.

    At each time t, *cases* are patients with an event at or before t and *controls* are
    patients still event-free after t. AUC(t) is the probability that a case has a higher
    risk than a control, each case weighted by 1 / G(t_i).

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Test-set survival data (1 = event).
    risk : array-like, shape (n,) or (n, n_times)
        Predicted risk; **higher risk means an earlier event**. A 2-D array gives one risk
        per evaluation time.
    times : array-like, shape (n_times,)
        Strictly increasing evaluation times, inside the test follow-up range.
    train_time, train_event : array-like
        Training-set survival data for the censoring distribution.

    Returns
    -------
    auc : ndarray, shape (n_times,)
        AUC(t) at each time; 0.5 is chance.
    mean_auc : float
        AUC(t) averaged with the weights of the test-set Kaplan-Meier survival drop between
        the times (Lambert & Chevret 2014); equal to ``auc[0]`` for a single time.

    References
    ----------
    Uno H. et al. "Evaluating prediction rules for t-year survivors with censored regression
    models." JASA 102, 2007. Hung H. & Chiang C. T. Canadian Journal of Statistics 38, 2010.
    """
    risk_2d = np.asarray(risk, dtype=float)
    time, event, _ = check_survival(time, event, risk_2d if risk_2d.ndim == 1 else risk_2d[:, 0])
    train_time, train_event, _ = check_survival(train_time, train_event, prefix="train_")
    times = _check_times(times)
    if risk_2d.ndim == 1:
        risk_2d = np.repeat(risk_2d[:, None], len(times), axis=1)
    if risk_2d.shape != (len(time), len(times)) or not np.isfinite(risk_2d).all():
        raise ValueError(f"risk must be finite with shape (n,) or (n, {len(times)}), got {risk_2d.shape}")
    censoring = fit_censoring_distribution(train_time, train_event)
    case_weight = np.zeros_like(time)
    g, weighted = _censoring_at_case_times(censoring, time, event, times[-1])
    if (g[weighted] == 0).any():
        raise ValueError("the censoring survival function is zero at an event time: IPC weights are infinite")
    case_weight[weighted] = 1.0 / g[weighted]

    auc = np.empty(len(times))
    for k, t in enumerate(times):
        is_case = event & (time <= t)
        is_control = time > t
        if not is_case.any() or not is_control.any():
            raise ValueError(f"no {'cases' if not is_case.any() else 'controls'} at time {t:g}: choose times inside follow-up")
        control_risk = np.sort(risk_2d[is_control, k])
        case_risk = risk_2d[is_case, k]
        below = np.searchsorted(control_risk, case_risk, side="left")
        tied = np.searchsorted(control_risk, case_risk, side="right") - below
        wins = (below + 0.5 * tied) / len(control_risk)
        auc[k] = np.sum(case_weight[is_case] * wins) / case_weight[is_case].sum()

    if len(times) == 1:
        return auc, float(auc[0])
    km_survival = _kaplan_meier_at(time, event, times)
    drop = -np.diff(np.concatenate([[1.0], km_survival]))
    return auc, float(np.sum(auc * drop) / (1.0 - km_survival[-1]))


def truncation_time(time: np.ndarray, train_time: np.ndarray, *, min_fraction: float = 0.1, min_at_risk: int = 10) -> float:
    """Where to truncate an IPCW concordance (Uno's C ``tau``): enough patients still followed.

    Uno's C weights each event by ``1 / G(t)^2``; late in follow-up G is estimated from a handful
    of training patients and a few events carry huge, noisy weights. Past the last training
    time G is not known at all (the censoring model fails there). The rule: ``tau`` is the
    largest time at which

    - at least ``max(min_at_risk, ceil(min_fraction * n))`` test patients are still at risk
      (follow-up >= tau), and
    - at least as many training patients (by the same rule on the training set) are still at
      risk, so that ``tau`` never lies beyond training follow-up and G there rests on enough
      patients.

    Parameters
    ----------
    time : array-like, shape (n,)
        Test-set follow-up times.
    train_time : array-like
        Training-set follow-up times (those the censoring distribution is fitted on).
    min_fraction : float, default 0.1
    min_at_risk : int, default 10

    Returns
    -------
    float
        ``tau``; events at or after it contribute no pairs.

    Raises
    ------
    ValueError
        If either set has fewer patients than the rule asks to remain at risk.

    Notes
    -----
    Uno et al. (2011) advise a ``tau`` "such that the probability of being at risk at tau is not
    too small"; scikit-survival's ``concordance_index_ipcw`` leaves ``tau`` to the user and fails
    when test times exceed training times. This rule makes both choices explicit.
    """
    time = check_scores(np.asarray(time, dtype=float), "time")
    train_time = check_scores(np.asarray(train_time, dtype=float), "train_time")

    def last_with_enough_at_risk(t: np.ndarray, name: str) -> float:
        need = max(int(min_at_risk), int(np.ceil(min_fraction * len(t))))
        if len(t) < need:
            raise ValueError(f"{name} holds {len(t)} patients; the rule asks that {need} remain at risk")
        return float(np.sort(t)[-need])  # the need-th longest follow-up: `need` patients have time >= it

    return min(last_with_enough_at_risk(time, "the test set"), last_with_enough_at_risk(train_time, "the training set"))


def _kaplan_meier_at(time: np.ndarray, event: np.ndarray, times: np.ndarray) -> np.ndarray:
    unique_times, _, n_events, at_risk = risk_set_counts(time, event)
    survival = np.cumprod(1.0 - n_events / at_risk)
    index = np.searchsorted(unique_times, times, side="right") - 1
    return np.where(index >= 0, survival[np.clip(index, 0, None)], 1.0)


def brier_score(
    time: np.ndarray,
    event: np.ndarray,
    surv_prob: np.ndarray,
    times: np.ndarray,
    *,
    train_time: np.ndarray,
    train_event: np.ndarray,
) -> np.ndarray:
    """IPCW Brier score of predicted survival probabilities at given times (Graf et al.).

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Test-set survival data (1 = event).
    surv_prob : array-like, shape (n,) or (n, n_times)
        Predicted probability of being event-free at each of ``times`` (note: a survival
        probability, so *higher means lower risk*).
    times : array-like, shape (n_times,)
        Strictly increasing evaluation times.
    train_time, train_event : array-like
        Training-set survival data for the censoring distribution.

    Returns
    -------
    ndarray, shape (n_times,)
        ``BS(t) = mean_i [ S_i(t)^2 1(t_i <= t, event_i) / G(t_i) + (1 - S_i(t))^2 1(t_i > t) / G(t) ]``;
        0 is perfect, 0.25 is what predicting 0.5 for everybody scores.

    References
    ----------
    Graf E. et al. "Assessment and comparison of prognostic classification schemes for
    survival data." Statistics in Medicine 18, 1999.
    """
    time, event, _ = check_survival(time, event, require_events=False)
    train_time, train_event, _ = check_survival(train_time, train_event, require_events=False, prefix="train_")
    times = _check_times(times)
    prob = np.asarray(surv_prob, dtype=float)
    if prob.ndim == 1:
        prob = prob[:, None] if len(times) == 1 else np.repeat(prob[:, None], len(times), axis=1)
    if prob.shape != (len(time), len(times)):
        raise ValueError(f"surv_prob must have shape (n,) or (n, {len(times)}), got {prob.shape}")
    if not np.isfinite(prob).all() or (prob < 0).any() or (prob > 1).any():
        raise ValueError("surv_prob must be finite probabilities in [0, 1]")
    censoring = fit_censoring_distribution(train_time, train_event)
    g_at_times = censoring(times)
    g_at_own_time, _ = _censoring_at_case_times(censoring, time, event, times[-1])
    with np.errstate(divide="ignore"):
        inv_g_times = np.where(g_at_times > 0, 1.0 / g_at_times, 0.0)
        inv_g_own = np.where(g_at_own_time > 0, 1.0 / g_at_own_time, 0.0)
    is_case = event[:, None] & (time[:, None] <= times[None, :])
    is_control = time[:, None] > times[None, :]
    terms = prob**2 * is_case * inv_g_own[:, None] + (1.0 - prob) ** 2 * is_control * inv_g_times[None, :]
    return terms.mean(axis=0)


def integrated_brier_score(
    time: np.ndarray,
    event: np.ndarray,
    surv_prob: np.ndarray,
    times: np.ndarray,
    *,
    train_time: np.ndarray,
    train_event: np.ndarray,
) -> float:
    """Brier score integrated over ``times`` (trapezoid rule) and divided by their span.

    Parameters are those of :func:`brier_score`; at least two times are needed.

    Returns
    -------
    float
        ``integral BS(t) dt / (times[-1] - times[0])``; lower is better.
    """
    times = _check_times(times)
    if len(times) < 2:
        raise ValueError("integrated_brier_score needs at least two times")
    scores = brier_score(time, event, surv_prob, times, train_time=train_time, train_event=train_event)
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))
