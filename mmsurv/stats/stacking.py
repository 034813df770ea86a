"""Stacking on cross-fitted block predictions: late fusion that ~100 patients can afford.

A fusion network with one encoder per modality has more weights than a hundred labelled
patients can pin down, and it has no way of knowing that one block (often the clinical one)
carries most of the signal. Stacking asks less of the data: one penalised logistic model per
block, then a second, three-coefficient logistic model on the blocks' predicted log-odds that
learns how far to trust each block.

The second model must be fitted on predictions the blocks made for patients they were *not*
fitted on, or it learns to trust the block that over-fits most. Hence cross-fitting: the
training patients are split into K folds by patient; each fold's block predictions come from
block models fitted on the other folds (and, when ``select`` is given, with the features
re-selected on those folds too, so that a supervised selection cannot leak either). Patients
outside the training set are scored by block models fitted on all training patients.

References
----------
Wolpert D. H. "Stacked generalization." Neural Networks 5(2), 1992.
Breiman L. "Stacked regressions." Machine Learning 24, 1996.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from ..validation import labelled_ids
from .lasso_cox import ignore_empty_path_warning

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["StackedClassifier", "fit_stacked_classifier", "lasso_cox_selector"]

#: ``select(block_name, ids) -> columns``: re-selects a block's features on ``ids`` (e.g. a LASSO-Cox); an empty list drops the block there.
Selector = Callable[[str, Sequence[Any]], Sequence[str]]


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class _BlockModel:
    columns: list[str]
    model: LogisticRegression | None  # None: no features (the block then predicts the prior)

    def log_odds(self, block: pd.DataFrame, ids: Sequence[Any], prior: float) -> pd.Series:
        present = [p for p in ids if p in block.index]
        out = pd.Series(np.nan, index=list(ids), dtype=float)
        if self.model is None:
            out.loc[present] = prior
        elif present:
            out.loc[present] = _log_odds(self.model.predict_proba(block.loc[present, self.columns])[:, 1])
        return out


@dataclass
class StackedClassifier:
    """Per-block logistic models fitted on all training patients and the stacker over them.

    Attributes
    ----------
    block_models : dict
        One fitted model per block (with the columns it uses).
    meta : LogisticRegression
        Fitted on the cross-fitted log-odds of the blocks (a missing block enters as the prior).
    prior : float
        Training prevalence, as log-odds.
    cross_fitted : DataFrame
        The out-of-fold log-odds of each block for every labelled training patient (what
        ``meta`` was fitted on; NaN where a patient lacks the block).
    """

    block_models: dict[str, _BlockModel]
    meta: LogisticRegression
    prior: float
    cross_fitted: pd.DataFrame = field(repr=False)

    @property
    def weights(self) -> pd.Series:
        """The stacker's coefficient of each block's log-odds (how far it trusts the block)."""
        return pd.Series(self.meta.coef_[0], index=list(self.block_models))

    def block_log_odds(self, blocks: Mapping[str, pd.DataFrame], ids: Sequence[Any]) -> pd.DataFrame:
        """Each block model's log-odds for ``ids`` (NaN where a patient lacks the block)."""
        return pd.DataFrame({name: m.log_odds(blocks[name], ids, self.prior) for name, m in self.block_models.items()})

    def predict(self, blocks: Mapping[str, pd.DataFrame], ids: Sequence[Any]) -> pd.Series:
        """Stacked P(label = 1) for ``ids``, indexed by them."""
        features = self.block_log_odds(blocks, ids).fillna(self.prior)
        return pd.Series(self.meta.predict_proba(features.to_numpy())[:, 1], index=list(ids))


def _fit_meta(x: np.ndarray, y: np.ndarray, c: float, non_negative: bool) -> LogisticRegression:
    """L2-penalised logistic regression (scikit-learn's objective), weights optionally bounded below by 0."""
    model = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    if not non_negative or (model.coef_ >= 0).all():
        return model
    sign = 2.0 * y - 1.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (x @ theta[1:] + theta[0])
        p = expit(-margin)  # d/dmargin of log(1 + exp(-margin)) is -p
        grad_f = -(sign * p)
        value = float(np.logaddexp(0.0, -margin).sum() + 0.5 / c * theta[1:] @ theta[1:])
        return value, np.concatenate([[grad_f.sum()], x.T @ grad_f + theta[1:] / c])

    start = np.concatenate([model.intercept_, np.clip(model.coef_[0], 0, None)])
    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    theta = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
    model.intercept_, model.coef_ = theta[:1], theta[None, 1:]
    return model


def _fit_block(block: pd.DataFrame, columns: Sequence[str], labels: pd.Series, ids: Sequence[Any], c: float,
               ledger: FitLedger | None, step: str) -> _BlockModel:  # fmt: skip
    ids = [p for p in ids if p in block.index]
    columns = list(columns)
    if not columns or len(ids) < 4 or labels.loc[ids].nunique() < 2:
        return _BlockModel(columns, None)
    table = block.loc[ids, columns]
    model = LogisticRegression(C=c, max_iter=5000)
    if ledger is not None:
        ledger.fit(step, model, table, labels.loc[ids].to_numpy(dtype=int))
    else:
        model.fit(table, labels.loc[ids].to_numpy(dtype=int))
    return _BlockModel(columns, model)


def fit_stacked_classifier(
    blocks: Mapping[str, pd.DataFrame],
    labels: pd.Series,
    train_ids: Sequence[Any],
    *,
    n_folds: int = 5,
    seed: int = 0,
    block_c: float = 0.1,
    meta_c: float = 1.0,
    select: Selector | None = None,
    final_columns: Mapping[str, Sequence[str]] | None = None,
    non_negative: bool = True,
    ledger: FitLedger | None = None,
    step: str = "stacked fusion",
) -> StackedClassifier:
    """Fit a stacked binary classifier on cross-fitted block predictions.

    Parameters
    ----------
    blocks : mapping of str to DataFrame
        Modality blocks indexed by patient id (a patient absent from a block lacks it). With
        ``select``, each block holds its *candidate* features; without, the features to use.
    labels : Series
        0/1 label by patient id, NaN for an unlabelled patient (left out).
    train_ids : sequence
        The training patients; nothing else is fitted on.
    n_folds : int, default 5
        Cross-fitting folds, stratified by label, by patient.
    seed : int, default 0
    block_c : float, default 0.1
        Inverse L2 penalty of each block's logistic model (scikit-learn's ``C``).
    meta_c : float, default 1.0
        Inverse L2 penalty of the stacker.
    select : callable, optional
        ``select(block_name, ids) -> columns``: re-run a supervised feature selection on the
        fold's training patients before each fold's block model (and once on all training
        patients for the final block models). Without it the blocks' columns are used as they
        are, which is honest only if they were not chosen with the outcome.
    final_columns : mapping of str to sequence of str, optional
        The columns of each final block model (fitted on all training patients), e.g. the
        selection a cross-validated LASSO-Cox made on them; default: ``select`` on all
        training patients (or every column).
    non_negative : bool, default True
        Constrain the stacker's weights to be >= 0 (Breiman 1996): a block's predictions can be
        trusted less, not turned upside down - a negative weight on a weak block is noise the
        ~100 patients cannot tell from signal.
    ledger : FitLedger, optional
        Records every fit: ``"<step>: <block> (cross-fit folds)"``, ``"<step>: <block>"`` and
        ``"<step>: stacker"``. A ``select`` callable records its own fits.
    step : str, default "stacked fusion"

    Returns
    -------
    StackedClassifier
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    ids = labelled_ids(list(train_ids), labels, who="training patient")
    y = labels.loc[ids].to_numpy(dtype=int)
    if len(set(y)) < 2:
        raise ValueError("the labelled training patients hold one class only")
    prevalence = float(y.mean())
    prior = float(np.log(prevalence / (1 - prevalence)))

    def columns_for(name: str, fit_on: Sequence[Any]) -> list[str]:
        if select is None:
            return list(blocks[name].columns)
        return list(select(name, [p for p in fit_on if p in blocks[name].index]))

    cross_fitted = pd.DataFrame(np.nan, index=ids, columns=list(blocks), dtype=float)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for inner, outer in folds.split(np.zeros(len(ids)), y):
        fit_on, scored = [ids[i] for i in inner], [ids[i] for i in outer]
        for name, block in blocks.items():
            model = _fit_block(block, columns_for(name, fit_on), labels, fit_on, block_c, ledger, f"{step}: {name} (cross-fit folds)")
            cross_fitted.loc[scored, name] = model.log_odds(block, scored, prior).to_numpy()
    meta_table = cross_fitted.fillna(prior)
    if ledger is not None:
        ledger.record(f"{step}: stacker", meta_table.index)
    meta = _fit_meta(meta_table.to_numpy(), y, meta_c, non_negative)
    final = {}
    for name, block in blocks.items():
        columns = list(final_columns[name]) if final_columns is not None and name in final_columns else columns_for(name, ids)
        final[name] = _fit_block(block, columns, labels, ids, block_c, ledger, f"{step}: {name}")
    return StackedClassifier(final, meta, prior, cross_fitted)


def lasso_cox_selector(
    blocks: Mapping[str, pd.DataFrame],
    survival: pd.DataFrame,
    alphas: Mapping[str, float],
    *,
    ledger: FitLedger | None = None,
    step: str = "LASSO-Cox selection (cross-fit folds)",
) -> Selector:
    """A ``select`` for :func:`fit_stacked_classifier`: LASSO-Cox at a fixed penalty on the given patients.

    Each call refits a LASSO-Cox on the block's features of ``ids`` (standardised on them) at
    that block's penalty and returns the features with a non-zero coefficient: the selection is
    re-run inside every cross-fitting fold, so a fold's block predictions come from features
    its own patients did not help choose. The penalty is held at the one cross-validation chose
    on all training patients (one fit per call instead of a cross-validated path: the folds
    then cost about a sixth of a full :func:`mmsurv.stats.fit_lasso_cox` each).

    Parameters
    ----------
    blocks : mapping of str to DataFrame
        Candidate features by patient id.
    survival : DataFrame
        ``time`` and ``event`` columns by patient id.
    alphas : mapping of str to float
        The penalty of each block (e.g. :attr:`LassoCoxResult.alpha`); a block without one
        (e.g. the clinical block) keeps all its columns.
    ledger : FitLedger, optional
        Records the patients of every call under ``"<step>: <block>"``.
    step : str

    Returns
    -------
    callable
        ``select(block_name, ids) -> list of columns`` (empty when nothing is selected, when
        the fold has no event, or when coxnet fails there: the block then predicts the prior). A fit
        that reaches coxnet's ``max_iter`` is used as it is, without a warning in the notebook.
    """

    def select(name: str, ids: Sequence[Any]) -> list[str]:
        if name not in alphas:
            return list(blocks[name].columns)
        ids = [p for p in ids if p in blocks[name].index and p in survival.index]
        if ledger is not None and ids:
            ledger.record(f"{step}: {name}", ids)
        event = survival.loc[ids, "event"].to_numpy(dtype=bool)
        if not event.any():
            return []
        x = blocks[name].loc[ids].to_numpy(dtype=float)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        # a short path down to the penalty (warm starts) converges where a single cold fit at a small penalty may not
        model = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=np.geomspace(8 * alphas[name], alphas[name], 6), max_iter=100000)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # a fold fit stopped at max_iter is used as it is
                ignore_empty_path_warning()  # nothing selected: the block predicts the prior
                model.fit((x - x.mean(axis=0)) / scale, Surv.from_arrays(event, survival.loc[ids, "time"].to_numpy(dtype=float)))
        except ArithmeticError:
            return []
        return [c for c, b in zip(blocks[name].columns, model.coef_[:, -1]) if b != 0]

    return select
