"""LASSO / elastic-net Cox regression with a cross-validated penalty: feature selection.

With hundreds of mutated genes or CpG sites and a few dozen events, an unpenalised Cox
model cannot be fitted; the L1 penalty shrinks most coefficients to exactly zero and
keeps the features that carry prognostic signal. The penalty strength is chosen by K-fold
cross-validation on the training set (Harrell's C on the held-out fold), never on test data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
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


def _fit_path(x: np.ndarray, y: np.ndarray, l1_ratio: float, alphas: np.ndarray | None) -> CoxnetSurvivalAnalysis:
    model = CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, alphas=alphas, n_alphas=50, alpha_min_ratio=0.01, max_iter=100000)
    return model.fit(x, y)


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
    alphas = _fit_path(x, y, l1_ratio, None).alphas_

    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = np.full((n_folds, len(alphas)), np.nan)
    fold_sizes = np.zeros(n_folds)
    for k, (train, valid) in enumerate(folds.split(x, event)):
        fold_sizes[k] = len(valid)
        path = _fit_path(x[train], y[train], l1_ratio, alphas)
        for a, coefficients in enumerate(path.coef_.T):
            try:
                scores[k, a] = concordance_index(time[valid], event[valid], x[valid] @ coefficients)
            except ValueError:  # fold without comparable pairs
                pass
    mean_c, sd_c = _cv_summary(scores, fold_sizes)
    best = int(np.nanargmax(mean_c))  # alphas are decreasing: a tie goes to the largest penalty, as glmnet's lambda.min
    if one_standard_error:
        within = np.flatnonzero(mean_c >= mean_c[best] - sd_c[best])
        best = int(within.min())  # the largest penalty within one standard error of the best

    final = _fit_path(x, y, l1_ratio, alphas)
    coefficients = pd.Series(final.coef_[:, best], index=features.columns)
    cv_table = pd.DataFrame({"alpha": alphas, "mean_c_index": mean_c, "sd_c_index": sd_c, "n_selected": (final.coef_ != 0).sum(axis=0)})
    return LassoCoxResult(
        selected=coefficients.index[coefficients != 0].tolist(),
        coefficients=coefficients,
        alpha=float(alphas[best]),
        cv_table=cv_table,
        mean=mean,
        scale=scale,
        fold_c_index=scores,
    )
