"""LASSO / elastic-net Cox regression with a cross-validated penalty: feature selection.

With hundreds of mutated genes or CpG sites and a few dozen events, an unpenalised Cox
model cannot be fitted; the L1 penalty shrinks most coefficients to exactly zero and
keeps the features that carry prognostic signal. The penalty strength is chosen by K-fold
cross-validation on the training set (Harrell's C on the held-out fold), never on test data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from ..metrics import concordance_index
from ..validation import check_survival

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["LassoCoxResult", "fit_lasso_cox"]


@dataclass
class LassoCoxResult:
    """A penalised Cox model with its cross-validation curve.

    Attributes
    ----------
    selected : list of str
        Features with a non-zero coefficient at the chosen penalty.
    coefficients : Series
        Coefficients (on standardised features) of every feature.
    alpha : float
        Chosen penalty.
    cv_table : DataFrame
        ``alpha``, ``mean_c_index``, ``sd_c_index`` (the standard error of the mean, as
        ``cv.glmnet``'s ``cvsd``) and ``n_selected`` along the path.
    mean, scale : Series
        Training means and standard deviations used to standardise features.
    fold_c_index : ndarray, shape (n_folds, n_alphas), optional
        Harrell's C of each held-out fold along the path (NaN: a fold without comparable
        pairs), from which ``cv_table`` is computed.
    """

    selected: list[str]
    coefficients: pd.Series
    alpha: float
    cv_table: pd.DataFrame
    mean: pd.Series
    scale: pd.Series
    fold_c_index: np.ndarray | None = None

    def risk(self, features: pd.DataFrame) -> np.ndarray:
        """Linear predictor for new patients (higher = earlier event)."""
        standardised = (features[self.coefficients.index] - self.mean) / self.scale
        return standardised.to_numpy() @ self.coefficients.to_numpy()


_MAX_ITER = 100_000  # coxnet's iterations over a whole path


def ignore_empty_path_warning() -> None:
    """Inside ``warnings.catch_warnings()``: coxnet's "all coefficients are zero" is a result (nothing selected), not a warning."""
    warnings.filterwarnings("ignore", message="all coefficients are zero", category=UserWarning)


def _fit_path(x: np.ndarray, y: np.ndarray, l1_ratio: float, alphas: np.ndarray | None) -> CoxnetSurvivalAnalysis | None:
    """Coxnet's path, down to the smallest penalty at which it converged (``None``: not even the first).

    Coxnet counts its iterations over the whole path: once ``max_iter`` is spent (a feature that
    splits the events from the rest, whose coefficient grows without bound as the penalty falls,
    e.g. a gene mutated in three patients who all died), every later penalty gets an unfinished
    fit, and coxnet returns them with a ``ConvergenceWarning``. glmnet instead keeps "the
    solutions for larger lambdas" only; so does this, by refitting the longest head of the grid
    that converges (warm starts make a head's fits the same as the full path's). A path on which
    no feature enters at any penalty is a result (nothing selected), not a warning.
    """

    def fit(grid: np.ndarray | None) -> CoxnetSurvivalAnalysis:
        model = CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, alphas=grid, n_alphas=50, alpha_min_ratio=0.01, max_iter=_MAX_ITER)
        with warnings.catch_warnings():
            ignore_empty_path_warning()
            warnings.simplefilter("error", ConvergenceWarning)
            return model.fit(x, y)

    try:
        return fit(alphas)
    except ConvergenceWarning:
        pass
    if alphas is None:  # the grid coxnet would make, from a run whose unfinished end is dropped below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alphas = CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, n_alphas=50, alpha_min_ratio=0.01, max_iter=_MAX_ITER).fit(x, y).alphas_
    converged, failed = 0, len(alphas)
    while failed - converged > 1:  # the iteration count only grows along the path: bisect for the last penalty that converges
        middle = (converged + failed) // 2
        try:
            fit(alphas[:middle])
            converged = middle
        except ConvergenceWarning:
            failed = middle
    return fit(alphas[:converged]) if converged else None


def _on_every_penalty(path: CoxnetSurvivalAnalysis, n_alphas: int) -> np.ndarray:
    """The path's coefficients at each of ``n_alphas`` penalties, shape (n_features, n_alphas).

    Coxnet, as glmnet, ends a path early once the deviance stops improving, so a fold's path can
    stop before the smallest penalty of the grid. glmnet's ``predict(fit, s = lambda)`` then
    uses the last fitted coefficients for the smaller penalties (``lambda.interp`` clamps to the
    path's end); so does this. Without it those penalties had no C-index in that fold, and the
    cross-validated mean at a small penalty came from the folds that reached it only.
    """
    coefficients = path.coef_
    missing = n_alphas - coefficients.shape[1]
    return np.concatenate([coefficients, np.repeat(coefficients[:, -1:], missing, axis=1)], axis=1) if missing > 0 else coefficients


def _cv_summary(scores: np.ndarray, fold_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean C-index along the path and its standard error, as ``cv.glmnet`` computes ``cvm`` and ``cvsd``.

    glmnet 4.1-8, ``R/cvstats.R``, with ``weights`` the folds' sizes for the C-index
    (``R/cv.coxnet.R``)::

        cvm = apply(cvraw, 2, weighted.mean, w = weights, na.rm = TRUE)
        cvsd = sqrt(apply(scale(cvraw, cvm, FALSE)^2, 2, weighted.mean, w = weights, na.rm = TRUE)/(N - 1))

    The weighted mean squared deviation divided by ``N - 1``: with equal folds, the sample
    standard deviation (``ddof=1``) over the folds divided by ``sqrt(N)``. ``N`` counts the
    folds with a C-index (glmnet counts every fold that fitted the penalty; here a fold
    without comparable pairs is left out of ``N`` as it is of the means).
    """
    valid = ~np.isnan(scores)
    weights = np.where(valid, fold_sizes[:, None], 0.0)
    filled = np.where(valid, scores, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a penalty no fold could score gives NaN, as glmnet's NA
        mean = (weights * filled).sum(axis=0) / weights.sum(axis=0)
        squared = (weights * np.where(valid, (scores - mean) ** 2, 0.0)).sum(axis=0) / weights.sum(axis=0)
        n = valid.sum(axis=0)
        return mean, np.sqrt(squared / (n - 1))


def fit_lasso_cox(
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    *,
    l1_ratio: float = 1.0,
    n_folds: int = 5,
    seed: int = 0,
    one_standard_error: bool = False,
    ledger: FitLedger | None = None,
    step: str = "LASSO-Cox selection",
) -> LassoCoxResult:
    """Fit a LASSO (``l1_ratio=1``) or elastic-net Cox model, penalty chosen by cross-validation.

    Parameters
    ----------
    features : DataFrame, shape (n_patients, n_features)
        Numeric features without missing values.
    time, event : array-like, shape (n_patients,)
        Follow-up time and event indicator (1 = event).
    l1_ratio : float in (0, 1], default 1.0
        1 is the LASSO; smaller values mix in a ridge penalty (elastic net).
    n_folds : int, default 5
        Folds, stratified by event status.
    seed : int, default 0
    one_standard_error : bool, default False
        Choose the largest penalty whose C-index is within one standard error of the best
        (sparser model), as ``glmnet``'s ``lambda.1se``: the standard error is ``cv.glmnet``'s
        ``cvsd`` (the folds' sample standard deviation, ``ddof=1``, over the square root of the
        number of folds; see ``_cv_summary``) and the rule its ``getOptcv.glmnet``.
    ledger : FitLedger, optional
        Records the rows of ``features`` (its index) under ``step`` (see :mod:`mmsurv.ledger`).
    step : str, default "LASSO-Cox selection"

    Returns
    -------
    LassoCoxResult
    """
    time, event, _ = check_survival(time, event)
    if features.isna().any().any():
        bad = features.columns[features.isna().any()].tolist()
        raise ValueError(f"features contain missing values in columns {bad[:5]}")
    if len(features) != len(time):
        raise ValueError(f"length mismatch: features={len(features)}, time={len(time)}")
    if ledger is not None:
        ledger.record(step, features.index)
    mean, scale = features.mean(), features.std(ddof=0).replace(0, 1.0)
    x = ((features - mean) / scale).to_numpy(dtype=float)
    y = Surv.from_arrays(event, time)
    full = _fit_path(x, y, l1_ratio, None)
    assert full is not None  # its first penalty is the largest coxnet computes, where every coefficient is zero
    alphas = full.alphas_

    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = np.full((n_folds, len(alphas)), np.nan)
    fold_sizes = np.zeros(n_folds)
    for k, (train, valid) in enumerate(folds.split(x, event)):
        fold_sizes[k] = len(valid)
        if not event[train].any():  # nothing to fit: the fold stays unscored
            continue
        path = _fit_path(x[train], y[train], l1_ratio, alphas)
        if path is None:  # a fold whose fit at the largest penalty did not converge stays unscored, as one without events
            continue
        for a, coefficients in enumerate(_on_every_penalty(path, len(alphas)).T):
            try:
                scores[k, a] = concordance_index(time[valid], event[valid], x[valid] @ coefficients)
            except ValueError:  # fold without comparable pairs
                pass
    scored = int((~np.isnan(scores).all(axis=1)).sum())
    if scored < 2:
        raise ValueError(
            f"LASSO-Cox: only {scored} of {n_folds} cross-validation folds had comparable pairs ({int(event.sum())} events in "
            f"{len(time)} patients): too few events to choose a penalty"
        )
    mean_c, sd_c = _cv_summary(scores, fold_sizes)
    best = int(np.nanargmax(mean_c))  # alphas are decreasing: a tie goes to the largest penalty, as glmnet's lambda.min
    if one_standard_error:
        within = np.flatnonzero(mean_c >= mean_c[best] - sd_c[best])
        best = int(within.min())  # the largest penalty within one standard error of the best

    final_path = _fit_path(x, y, l1_ratio, alphas)
    assert final_path is not None  # the same data and grid as ``full``
    final = _on_every_penalty(final_path, len(alphas))
    coefficients = pd.Series(final[:, best], index=features.columns)
    cv_table = pd.DataFrame({"alpha": alphas, "mean_c_index": mean_c, "sd_c_index": sd_c, "n_selected": (final != 0).sum(axis=0)})
    return LassoCoxResult(
        selected=coefficients.index[coefficients != 0].tolist(),
        coefficients=coefficients,
        alpha=float(alphas[best]),
        cv_table=cv_table,
        mean=mean,
        scale=scale,
        fold_c_index=scores,
    )
