"""Concordance indices: Harrell's C and Uno's IPCW C.

Both count pairs of patients. A pair (i, j) is *comparable* when patient i had the event
and patient j was still under follow-up afterwards: ``time[j] > time[i]``, or
``time[j] == time[i]`` with j censored. Two deaths at the same time are not comparable.
Among comparable pairs, the pair is *concordant* when ``risk[i] > risk[j]`` (the patient
who died first had the higher risk); tied risks count one half. This is how lifelines and
scikit-survival count pairs.

The counting is written as a weighted sum over comparable pairs so that the same code
serves the point estimate (all weights 1) and a whole batch of bootstrap resamples at once
(weights = how often each patient was drawn): see :func:`mmsurv.metrics.bootstrap_ci`.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_survival
from .censoring import fit_censoring_distribution

__all__ = ["concordance_index", "uno_concordance_index"]

#: Events handled per block when building the pair matrix (bounds memory at ~n x 512 floats).
_EVENT_BLOCK = 512


def _rows_before(values: np.ndarray) -> np.ndarray:
    """``out[k] = values[:k].sum(axis=0)`` for k = 0..n (a row-wise cumulative sum with a leading zero row).

    A loop of whole-row additions: for (n, n_batches) arrays it is several times faster than
    ``np.cumsum(axis=0)``, which does not vectorise across the rows' entries.
    """
    out = np.zeros((values.shape[0] + 1, values.shape[1]), dtype=values.dtype)
    for k in range(values.shape[0]):
        np.add(out[k], values[k], out=out[k + 1])
    return out


def concordance_sums(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    weights: np.ndarray | None = None,
    event_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted concordant and comparable pair totals, for a batch of weight vectors.

    Parameters
    ----------
    time, event, risk : ndarray, shape (n,)
        Validated survival data and risk scores.
    weights : ndarray, shape (n_batches, n), optional
        Multiplicity of each patient in each batch (bootstrap counts). Default: one batch
        of ones.
    event_weight : ndarray, shape (n,), optional
        Extra weight on the pairs of each event patient i (Uno's 1 / G(t_i)^2).

    Returns
    -------
    concordant, comparable : ndarray, shape (n_batches,)
        Sum over comparable pairs of ``w_i w_j v_i [risk_i > risk_j] (+ 1/2 on ties)``
        and of ``w_i w_j v_i``.

    Notes
    -----
    With patients sorted by time, the partners of event i are (almost) a suffix of the
    list, so the comparable totals are suffix sums. For the concordant totals we use
    ``[r_i > r_j] + 1/2 [r_i = r_j] = (sign(r_i - r_j) + 1) / 2``: one matrix product of the
    signs with the weights, block of events by block of events, gives every batch at once.
    Weights are bootstrap counts and signs are -1, 0 or 1, so float32 sums of them are
    exact (below 2**24).
    """
    n = len(time)
    if weights is None:
        weights = np.ones((1, n))
    if event_weight is None:
        event_weight = np.ones(n)
    order = np.argsort(time, kind="stable")
    time, event, risk, event_weight = time[order], event[order], risk[order], event_weight[order]
    w = np.ascontiguousarray(weights.astype(np.float32).T)[order]  # (n, n_batches), sorted by time
    # integer ranks keep every tie and every order of the risks, and are exact in float32
    risk_rank = np.unique(risk, return_inverse=True)[1].astype(np.float32)
    events = np.flatnonzero(event & (event_weight > 0))

    # comparable totals: weights after each event's time group, plus censored patients tied with it
    group_start = np.searchsorted(time, time[events], side="left")
    group_end = np.searchsorted(time, time[events], side="right")
    weight_before = _rows_before(w)
    partners = weight_before[-1] - weight_before[group_end]
    tied_censored = np.flatnonzero(~event & np.isin(time, time[events]))  # usually few
    if tied_censored.size:
        tied_weight = _rows_before(w[tied_censored])
        tied_times = time[tied_censored]
        lo = np.searchsorted(tied_times, time[events], side="left")
        hi = np.searchsorted(tied_times, time[events], side="right")
        partners += tied_weight[hi] - tied_weight[lo]
    row_weight, pair_weight = w[events], event_weight[events]
    # count products are exact in float32; the event weights and the totals are applied in float64
    comparable = pair_weight @ (row_weight * partners).astype(np.float64)

    # signed totals: sum_j [comparable] w_j sign(r_i - r_j), one block of events at a time
    signed = np.empty_like(partners)
    for start in range(0, len(events), _EVENT_BLOCK):
        stop = min(start + _EVENT_BLOCK, len(events))
        rows = events[start:stop]
        first_col = group_start[start]  # no partner sits before the block's earliest time group
        sign = np.sign(risk_rank[rows, None] - risk_rank[None, first_col:])
        # only columns up to the block's last time group can be non-comparable
        head = slice(first_col, group_end[stop - 1])
        t_i = time[rows, None]
        head_comparable = (time[head] > t_i) | ((time[head] == t_i) & ~event[head])
        sign[:, : head.stop - head.start] *= head_comparable
        signed[start:stop] = sign @ w[first_col:]
    concordant = 0.5 * (pair_weight @ (row_weight * (signed + partners)).astype(np.float64))
    return concordant, comparable


def _ratio_or_raise(concordant: np.ndarray, comparable: np.ndarray) -> float:
    if comparable[0] <= 0:
        raise ValueError("no comparable pairs: every event is tied with, or later than, every other follow-up")
    return float(concordant[0] / comparable[0])


def concordance_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up time; non-negative.
    event : array-like, shape (n,)
        1 = event observed, 0 = censored.
    risk : array-like, shape (n,)
        Predicted risk. **Higher risk means an earlier event.** (lifelines' ``concordance_index``
        expects the opposite, a predicted survival time: pass ``-risk`` there.)

    Returns
    -------
    float
        The fraction of comparable pairs that are concordant, ties in risk counting 1/2:
        0.5 is chance, 1 perfect ranking.

    Notes
    -----
    A pair (i, j) is comparable when ``event[i]`` and ``time[i] < time[j]``, or when the
    times are tied and j is censored; tied deaths are not comparable. This is the counting
    of lifelines ``concordance_index`` and scikit-survival ``concordance_index_censored``.

    References
    ----------
    Harrell F. E. et al. "Evaluating the yield of medical tests." JAMA 247(18), 1982.
    """
    time, event, risk = check_survival(time, event, risk)
    return _ratio_or_raise(*concordance_sums(time, event, risk))


def _uno_event_weight(time, event, train_time, train_event, tau):
    censoring = fit_censoring_distribution(train_time, train_event)
    in_window = event & (time < tau) if tau is not None else event.copy()
    g = np.ones_like(time)
    g[in_window] = censoring(time[in_window])
    if (g[in_window] == 0).any():
        raise ValueError("the censoring survival function is zero at an event time: IPC weights are infinite")
    return np.where(in_window, 1.0 / g**2, 0.0)


def uno_concordance_index(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    *,
    train_time: np.ndarray,
    train_event: np.ndarray,
    tau: float | None = None,
) -> float:
    """Uno's inverse-probability-of-censoring weighted concordance index.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Test-set follow-up times and event indicators (1 = event).
    risk : array-like, shape (n,)
        Predicted risk; **higher risk means an earlier event**.
    train_time, train_event : array-like
        Training-set survival data, used to estimate the censoring distribution G.
    tau : float, optional
        Truncation time: only events before ``tau`` contribute pairs. Choose a time where
        enough patients remain under follow-up.

    Returns
    -------
    float
        ``sum_ij w_i [comparable, risk_i > risk_j] / sum_ij w_i [comparable]`` with
        ``w_i = 1 / G(t_i)^2``; unlike Harrell's C it does not depend on the censoring pattern.

    References
    ----------
    Uno H. et al. "On the C-statistics for evaluating overall adequacy of risk prediction
    procedures with censored survival data." Statistics in Medicine 30(10), 2011.
    """
    time, event, risk = check_survival(time, event, risk)
    train_time, train_event, _ = check_survival(train_time, train_event, prefix="train_")
    weight = _uno_event_weight(time, event, train_time, train_event, tau)
    return _ratio_or_raise(*concordance_sums(time, event, risk, event_weight=weight))
