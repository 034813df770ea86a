"""Feature selection you can trust: how stable it is, what it recovers, and what leaks into it.

With a hundred patients and hundreds of candidate genes, *which* genes a LASSO-Cox picks
changes with every resample of the patients. Three questions a selection has to answer:

* **stability** - refit on bootstrap resamples of the training patients at the chosen
  penalty and count how often each feature is picked (Meinshausen & Buehlmann's selection
  frequency);
* **recovery** - on a simulated cohort, where the prognostic features are known, precision
  and recall of the selected set, beside the precision a random pick would have;
* **leakage** - a selection is part of the model: fitted on patients that are later used to
  evaluate it, it makes noise look like signal. :func:`cross_validated_risk` refits the whole
  selection (a LASSO-Cox, or the univariate :func:`concordance_screen`) inside every fold, so the
  out-of-fold risk it returns never saw its own patients.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from ..metrics import concordance_index
from ..validation import check_survival
from .lasso_cox import fit_lasso_cox, ignore_empty_path_warning

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["frequent_features", "selection_stability", "selection_recovery", "concordance_screen", "cross_validated_risk"]


def frequent_features(
    matrix: pd.DataFrame, train_ids: Iterable[str], min_count: int, *, ledger: FitLedger | None = None, step: str = "feature filter"
) -> list[str]:
    """Columns of a 0/1 matrix that are non-zero in at least ``min_count`` training rows.

    Counting on training patients only keeps the filter itself from seeing test patients
    (a gene mutated in three test patients and no training patient cannot be learned anyway).
    With ``ledger``, the rows counted are recorded under ``step`` (see :mod:`mmsurv.ledger`).
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    train_ids = list(train_ids)
    if ledger is not None:
        ledger.record(step, train_ids)
    counts = matrix.loc[list(train_ids)].sum(axis=0)
    return counts.index[counts >= min_count].tolist()


def selection_stability(
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    *,
    alpha: float,
    n_bootstrap: int = 50,
    l1_ratio: float = 1.0,
    seed: int = 0,
    ledger: FitLedger | None = None,
    step: str = "selection stability",
) -> pd.Series:
    """How often each feature gets a non-zero LASSO-Cox coefficient over bootstrap resamples.

    Parameters
    ----------
    features : DataFrame, shape (n_patients, n_features)
        Training patients only, numeric, no missing values.
    time, event : array-like, shape (n_patients,)
    alpha : float
        The penalty (e.g. :attr:`LassoCoxResult.alpha`, chosen by cross-validation); it is held
        fixed, so the frequencies measure the data's variability, not the penalty search's.
    n_bootstrap : int, default 50
    l1_ratio : float, default 1.0
    seed : int, default 0
    ledger : FitLedger, optional
        Records the rows of ``features`` (its index) under ``step`` (see :mod:`mmsurv.ledger`).
    step : str, default "selection stability"

    Each fit runs a short warm-started path down to ``alpha``. A resample on which coxnet still does
    not converge (it can happen at a small penalty, with duplicated patients) is replaced by another; more than ``2 * n_bootstrap`` such failures
    raise.

    Returns
    -------
    Series
        Selection frequency (0-1) of every feature, highest first.
    """
    time, event, _ = check_survival(time, event)
    if n_bootstrap < 1:
        raise ValueError("n_bootstrap must be at least 1")
    if ledger is not None:
        ledger.record(step, features.index)
    rng = np.random.default_rng(seed)
    x = features.to_numpy(dtype=float)
    picked = np.zeros(features.shape[1])
    fitted, attempts = 0, 0
    while fitted < n_bootstrap:
        attempts += 1
        if attempts > 3 * n_bootstrap:
            raise RuntimeError(f"only {fitted} of {attempts - 1} bootstrap LASSO-Cox fits converged at alpha={alpha:.4g}; choose a larger alpha")
        rows = rng.integers(0, len(x), size=len(x))
        if not event[rows].any():  # a resample without events has no partial likelihood
            continue
        sample = x[rows]
        scale = sample.std(axis=0)
        scale[scale == 0] = 1.0
        # a short path down to the penalty (warm starts) converges where a single cold fit at a small penalty may not
        model = CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, alphas=np.geomspace(8 * alpha, alpha, 6), max_iter=100000)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)  # a fit stopped at max_iter is not a selection: draw another
                ignore_empty_path_warning()  # a resample on which nothing is selected counts as such
                model.fit((sample - sample.mean(axis=0)) / scale, Surv.from_arrays(event[rows], time[rows]))
        except (ArithmeticError, ConvergenceWarning):  # coxnet diverges on some resamples (duplicated patients, a tiny penalty)
            continue
        picked += model.coef_[:, -1] != 0
        fitted += 1
    return pd.Series(picked / n_bootstrap, index=features.columns, name="selection_frequency").sort_values(ascending=False)


def selection_recovery(selected: Iterable[str], planted: Iterable[str], candidates: Iterable[str]) -> dict[str, float]:
    """Precision and recall of a selected feature set against the truly prognostic ones.

    Parameters
    ----------
    selected : iterable of str
        What the selection kept.
    planted : iterable of str
        The features with a real effect (known only on simulated data).
    candidates : iterable of str
        Everything the selection chose from: planted features that were never candidates
        (e.g. too rarely mutated) cannot be found and do not count against recall.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``chance_precision`` (the share of planted features among
        the candidates: the precision of a random pick), ``n_selected``, ``n_true_positive``,
        ``n_findable``.
    """
    candidates = set(candidates)
    selected = set(selected)
    if not selected <= candidates:
        raise ValueError(f"selected features that are not candidates: {sorted(selected - candidates)[:5]}")
    findable = set(planted) & candidates
    if not candidates:
        raise ValueError("no candidate features")
    hits = len(selected & findable)
    return {
        "precision": hits / len(selected) if selected else float("nan"),
        "recall": hits / len(findable) if findable else float("nan"),
        "chance_precision": len(findable) / len(candidates),
        "n_selected": len(selected),
        "n_true_positive": hits,
        "n_findable": len(findable),
    }


def concordance_screen(features: pd.DataFrame, time: np.ndarray, event: np.ndarray, n_keep: int) -> pd.Series:
    """The ``n_keep`` features most associated with outcome one at a time, with their direction.

    Each feature is scored by Harrell's C of the feature alone; the ones furthest from 0.5 are
    kept. The returned signs (+1: higher value, earlier event) make ``features[keep] @ signs``
    a crude risk score - the univariate screen many published signatures start from.
    """
    time, event, _ = check_survival(time, event)
    c = pd.Series({name: concordance_index(time, event, features[name].to_numpy(dtype=float)) for name in features.columns})
    keep = (c - 0.5).abs().sort_values(ascending=False).index[:n_keep]
    return np.sign(c[keep] - 0.5).rename("sign")


def cross_validated_risk(
    features: pd.DataFrame,
    time: np.ndarray,
    event: np.ndarray,
    *,
    n_folds: int = 5,
    n_screened: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, list[list[str]]]:
    """Out-of-fold risk with the whole selection redone inside each fold (nested cross-validation).

    By default each fold fits a :func:`fit_lasso_cox` (its own inner cross-validation for the
    penalty) on the other folds only. With ``n_screened``, each fold instead keeps the
    ``n_screened`` features of :func:`concordance_screen` on the other folds and scores the held-out
    fold with their signed sum. Either way the risk of a patient comes from a selection that
    never saw them: the honest internal estimate of the selection-plus-model pipeline.

    Returns
    -------
    risk : ndarray, shape (n_patients,)
        Out-of-fold risk (higher = earlier event).
    selected : list of list of str
        The features each fold selected (how much they differ is itself a lesson).
    """
    time, event, _ = check_survival(time, event)
    risk = np.full(len(time), np.nan)
    selected = []
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (fit, held) in enumerate(folds.split(features, event)):
        if n_screened is None:
            model = fit_lasso_cox(features.iloc[fit], time[fit], event[fit], seed=seed + k)
            risk[held] = model.risk(features.iloc[held])
            selected.append(model.selected)
        else:
            signs = concordance_screen(features.iloc[fit], time[fit], event[fit], n_screened)
            risk[held] = features.iloc[held][signs.index].to_numpy(dtype=float) @ signs.to_numpy()
            selected.append(signs.index.tolist())
    return risk, selected
