"""Are predicted survival curves calibrated? D-calibration, 1-calibration and the integrated calibration index.

A concordance index says whether a model *ranks* patients well; it cannot see curves that are
all too optimistic by the same amount. Three checks look at the probabilities themselves:

**D-calibration** (Haider et al. 2020) asks the whole curve. If a patient's curve is right, the
value it takes at her own event time, ``S_i(t_i)``, is uniform on [0, 1], so across patients the
values fall evenly into ``n_bins`` equal bins. A patient censored at ``c`` is known only to have
``S_i(T) < S_i(c) = s``: under calibration ``S_i(T)`` is uniform on [0, s], so she adds
``(s - lower edge) / s`` to the bin holding ``s`` and ``(1 / n_bins) / s`` to every bin below it.
A chi-square test of the histogram against the flat one gives the p-value: small means the curves
are miscalibrated somewhere.

**1-calibration** (D'Agostino and Nam 2003, the Hosmer-Lemeshow test for censored data) asks one
time ``t``: patients are sorted by their predicted probability of an event by ``t`` and cut into
``n_bins`` groups; in each group the Kaplan-Meier estimate of the observed probability is
compared with the mean predicted one, weighted by Greenwood's variance. Chi-square with
``n_bins`` degrees of freedom.

**The integrated calibration index** (ICI; Austin, Harrell and van Klaveren 2020) draws the
calibration *curve* at ``t``: a Cox model of the observed outcome on a restricted cubic spline
of ``log(-log(1 - p))`` smooths the observed probability as a function of the predicted one;
the ICI is the mean absolute distance between the two, E50 / E90 / Emax its median, 90th
percentile and maximum. No groups to choose, and a number in probability units.

Why not call SurvivalEVAL (Qi et al.), which computes all three: it imports matplotlib, and the
metrics never import plotting (the package's walls). The tests check every function here
against SurvivalEVAL 0.9 on a real cohort instead.

References
----------
Haider H., Hoehn B., Davis S., Greiner R. "Effective ways to build and evaluate individual
survival distributions." Journal of Machine Learning Research 21(85):1-63, 2020.
D'Agostino R.B., Nam B.-H. "Evaluation of the performance of survival analysis models:
discrimination and calibration measures." Handbook of Statistics 23:1-25, 2003.
Austin P.C., Harrell F.E., van Klaveren D. "Graphical calibration curves and the integrated
calibration index (ICI) for survival models." Statistics in Medicine 39(21):2714-2742, 2020.
Harrell F.E. "Regression Modeling Strategies", 2nd ed., Springer 2015, section 2.4.5
(restricted cubic splines, knots at fixed quantiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, chisquare

from ..validation import check_survival
from .censoring import risk_set_counts

__all__ = [
    "DCalibration",
    "OneCalibration",
    "CalibrationIndex",
    "predicted_survival_at",
    "d_calibration",
    "one_calibration",
    "integrated_calibration_index",
]


@dataclass(frozen=True)
class DCalibration:
    """Result of :func:`d_calibration`.

    Attributes
    ----------
    statistic, p_value : float
        Chi-square test of the histogram against a flat one (``n_bins - 1`` degrees of freedom).
    histogram : ndarray, shape (n_bins,)
        Patients (fractions of censored ones) per bin of predicted survival at their own time,
        from the lowest bin ``[0, 1/n_bins)`` up to the highest ``[1 - 1/n_bins, 1]``.
    """

    statistic: float
    p_value: float
    histogram: np.ndarray

    @property
    def proportions(self) -> np.ndarray:
        """The histogram as fractions of the patients: ``1 / n_bins`` each when calibrated."""
        return self.histogram / self.histogram.sum()


@dataclass(frozen=True)
class OneCalibration:
    """Result of :func:`one_calibration` (groups from the highest predicted risk down).

    Attributes
    ----------
    statistic, p_value : float
        ``sum (observed - expected)^2 / variance`` and its chi-square p-value (degrees of freedom
        = the number of groups); NaN only when a group's predictions are all 0 or all 1.
    observed, expected : ndarray, shape (n_groups,)
        Kaplan-Meier probability of an event by the time, and the mean predicted one, per group.
    variance : ndarray
        Greenwood's variance of each group's Kaplan-Meier estimate; for a group without an event
        by the time (or with nothing but events) it is 0, and ``expected (1 - expected) / size``
        is used instead.
    sizes : ndarray of int
    """

    statistic: float
    p_value: float
    observed: np.ndarray
    expected: np.ndarray
    variance: np.ndarray
    sizes: np.ndarray


@dataclass(frozen=True)
class CalibrationIndex:
    """Result of :func:`integrated_calibration_index`.

    Attributes
    ----------
    ici, e50, e90, emax : float
        Mean, median, 90th percentile and maximum of ``|predicted - smoothed observed|`` over the
        patients (probabilities of an event by the time).
    grid, observed_on_grid : ndarray
        The calibration curve: smoothed observed probability at 100 predicted probabilities
        between the 1st and 99th percentiles of the predictions.
    """

    ici: float
    e50: float
    e90: float
    emax: float
    grid: np.ndarray
    observed_on_grid: np.ndarray


def predicted_survival_at(curves: np.ndarray, curve_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each patient's predicted survival at her own time, from curves given on a grid of times.

    Parameters
    ----------
    curves : array-like, shape (n, n_curve_times)
        ``S_i(curve_times[k])``, non-increasing along each row.
    curve_times : array-like, shape (n_curve_times,)
        Strictly increasing.
    times : array-like, shape (n,)
        One time per patient.

    Returns
    -------
    ndarray, shape (n,)
        ``S_i(times[i])`` read as a step function (the value at the last grid time at or before
        ``times[i]``; 1 before the first grid time). Survival curves of Cox and discrete-time
        models are step functions; beyond the last grid time the last value is kept.
    """
    curves = np.asarray(curves, dtype=float)
    curve_times = np.asarray(curve_times, dtype=float)
    times = np.asarray(times, dtype=float)
    if curves.ndim != 2 or curves.shape != (len(times), len(curve_times)):
        raise ValueError(f"curves must have shape (len(times), len(curve_times)) = ({len(times)}, {len(curve_times)}), got {curves.shape}")
    if np.any(np.diff(curve_times) <= 0):
        raise ValueError("curve_times must be strictly increasing")
    index = np.searchsorted(curve_times, times, side="right") - 1
    values = curves[np.arange(len(times)), np.clip(index, 0, None)]
    return np.where(index >= 0, values, 1.0)


def d_calibration(survival_at_time: np.ndarray, event: np.ndarray, *, n_bins: int = 10) -> DCalibration:
    """D-calibration of predicted survival curves (Haider et al. 2020; see the module notes).

    Parameters
    ----------
    survival_at_time : array-like, shape (n,)
        Each patient's predicted survival at her own event or censoring time (:func:`predicted_survival_at`).
    event : array-like of bool, shape (n,)
        1 = event, 0 = censored.
    n_bins : int, default 10

    Returns
    -------
    DCalibration
        p < 0.05: the curves are miscalibrated (somewhere).

    Raises
    ------
    ValueError
        Probabilities outside [0, 1] or not finite, lengths that differ, fewer than 2 bins.
    """
    s = np.asarray(survival_at_time, dtype=float)
    event = np.asarray(event).astype(bool)
    if s.shape != event.shape or s.ndim != 1:
        raise ValueError(f"survival_at_time and event must be 1-D of the same length, got {s.shape} and {event.shape}")
    if not np.isfinite(s).all() or (s < 0).any() or (s > 1).any():
        raise ValueError("survival_at_time must be finite probabilities in [0, 1]")
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    # bin k (0 = lowest) holds [k / n_bins, (k + 1) / n_bins); a survival of exactly 1 goes to the top bin
    bin_of = np.minimum(np.floor(s * n_bins).astype(int), n_bins - 1)
    histogram = np.bincount(bin_of[event], minlength=n_bins).astype(float)
    censored, censored_bin = s[~event], bin_of[~event]
    positive = censored > 0
    histogram += np.bincount(censored_bin[~positive], minlength=n_bins)  # S = 0 at censoring: all of her mass in the lowest bin
    censored, censored_bin = censored[positive], censored_bin[positive]
    histogram += np.bincount(censored_bin, weights=(censored - censored_bin / n_bins) / censored, minlength=n_bins)
    below = np.bincount(censored_bin, weights=1.0 / (n_bins * censored), minlength=n_bins)  # added to every bin below her own
    histogram += np.cumsum(below[::-1])[::-1] - below
    statistic, p_value = chisquare(histogram)
    return DCalibration(statistic=float(statistic), p_value=float(p_value), histogram=histogram)


def one_calibration(event_probability: np.ndarray, time: np.ndarray, event: np.ndarray, at_time: float, *, n_bins: int = 10) -> OneCalibration:
    """1-calibration at one time: D'Agostino-Nam's test with Greenwood variances (see the module notes).

    Parameters
    ----------
    event_probability : array-like, shape (n,)
        Predicted probability of an event by ``at_time`` (``1 - S_i(at_time)``).
    time, event : array-like, shape (n,)
        Observed times and event indicators.
    at_time : float
        The time; events at it count.
    n_bins : int, default 10
        Groups of (nearly) equal size, from the highest predicted probability down.

    Returns
    -------
    OneCalibration
    """
    p = _probabilities(event_probability, "event_probability")
    time, event, _ = check_survival(time, event, require_events=False)
    if len(p) != len(time):
        raise ValueError(f"event_probability has {len(p)} values for {len(time)} patients")
    observed, expected, variance, sizes = [], [], [], []
    for group in np.array_split(np.argsort(-p, kind="stable"), n_bins):
        if len(group) == 0:
            continue
        survival, greenwood = _kaplan_meier_with_variance(time[group], event[group], at_time)
        observed.append(1.0 - survival)
        expected.append(float(p[group].mean()))
        variance.append(greenwood)
        sizes.append(len(group))
    observed_, expected_, variance_, sizes_ = np.array(observed), np.array(expected), np.array(variance), np.array(sizes)
    # a group with no event by the time (or only events) has Greenwood variance 0: its binomial variance
    # under the prediction stands in (SurvivalEVAL returns NaN for the whole test there)
    variance_ = np.where(variance_ > 0, variance_, expected_ * (1 - expected_) / sizes_)
    if np.any(variance_ == 0):
        statistic, p_value = float("nan"), float("nan")
    else:
        statistic = float(np.sum((observed_ - expected_) ** 2 / variance_))
        p_value = float(chi2.sf(statistic, len(observed_)))
    return OneCalibration(statistic, p_value, observed_, expected_, variance_, sizes_)


def integrated_calibration_index(
    event_probability: np.ndarray, time: np.ndarray, event: np.ndarray, at_time: float, *, knots: int = 3
) -> CalibrationIndex:
    """The integrated calibration index at one time (Austin, Harrell and van Klaveren 2020).

    Parameters
    ----------
    event_probability : array-like, shape (n,)
        Predicted probability of an event by ``at_time``.
    time, event : array-like, shape (n,)
    at_time : float
    knots : int, default 3
        Knots of the restricted cubic spline of ``log(-log(1 - p))``, at Harrell's quantiles.

    Returns
    -------
    CalibrationIndex
        With no event by ``at_time`` the observed probability is 0 everywhere.
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    p = _probabilities(event_probability, "event_probability")
    time, event, _ = check_survival(time, event, require_events=False)
    if len(p) != len(time):
        raise ValueError(f"event_probability has {len(p)} values for {len(time)} patients")
    grid = np.linspace(*np.quantile(p, [0.01, 0.99]), 100)
    if not np.any(event & (time <= at_time)):
        smoothed = np.zeros(len(p) + len(grid))
    elif np.unique(p).size == 1:
        smoothed = np.full(len(p) + len(grid), 1.0 - _kaplan_meier_with_variance(time, event, at_time)[0])
    else:
        x = _cloglog(p)
        design, evaluation = _restricted_cubic_spline(x, np.concatenate([x, _cloglog(grid)]), knots)
        outcome = np.array(list(zip(event, time)), dtype=[("event", bool), ("time", float)])
        cox = CoxPHSurvivalAnalysis(ties="efron").fit(design, outcome)
        smoothed = np.array([1.0 - fn(at_time) for fn in cox.predict_survival_function(evaluation)])
    error = np.abs(p - smoothed[: len(p)])
    return CalibrationIndex(
        ici=float(error.mean()),
        e50=float(np.median(error)),
        e90=float(np.quantile(error, 0.9)),
        emax=float(error.max()),
        grid=grid,
        observed_on_grid=smoothed[len(p) :],
    )


def _probabilities(values: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(values, dtype=float)
    if p.ndim != 1 or not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"{name} must be a 1-D array of finite probabilities in [0, 1]")
    return p


def _kaplan_meier_with_variance(time: np.ndarray, event: np.ndarray, at_time: float) -> tuple[float, float]:
    """Kaplan-Meier survival at ``at_time`` (events at it included) and Greenwood's variance of it."""
    unique_times, _, n_events, at_risk = risk_set_counts(time, event)
    keep = unique_times <= at_time
    d, n = n_events[keep], at_risk[keep]
    survival = float(np.prod(1.0 - d / n))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n > d, d / (n * (n - d)), 0.0)
    return survival, survival**2 * float(terms.sum())


def _cloglog(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-10, 1 - 1e-10)
    return np.log(-np.log1p(-clipped))


def _restricted_cubic_spline(x: np.ndarray, evaluate_at: np.ndarray, knots: int) -> tuple[np.ndarray, np.ndarray]:
    """Harrell's restricted cubic spline basis of ``x`` (linear beyond the outer knots), and the same basis at ``evaluate_at``.

    Knots at Harrell's quantiles (3 knots: 10 / 50 / 90 %; 4-6: from 5 % to 95 %; more: 2.5 % to
    97.5 %, evenly spaced), fixed from ``x``. Columns: ``x`` and ``knots - 2`` cubic terms.
    """
    if knots < 3:
        raise ValueError(f"knots must be at least 3, got {knots}")
    outer = 0.1 if knots == 3 else 0.05 if knots <= 6 else 0.025
    t = np.quantile(x, np.linspace(outer, 1 - outer, knots))
    if np.unique(t).size < knots:
        raise ValueError(f"the predictions take too few distinct values for {knots} spline knots")

    def basis(values: np.ndarray) -> np.ndarray:
        def cube(u: np.ndarray) -> np.ndarray:
            return np.maximum(u, 0.0) ** 3

        last, before_last = t[-1], t[-2]
        columns = [values]
        for knot in t[:-2]:
            columns.append(
                (
                    cube(values - knot)
                    - cube(values - before_last) * (last - knot) / (last - before_last)
                    + cube(values - last) * (before_last - knot) / (last - before_last)
                )
                / (last - t[0]) ** 2
            )
        return np.column_stack(columns)

    design = basis(x)
    center, scale = design.mean(axis=0), design.std(axis=0)
    return (design - center) / scale, (basis(evaluate_at) - center) / scale
