"""Preprocessing of tabular blocks (omics matrices, clinical tables) with scikit-learn pipelines, fitted on training samples only.

Any statistic a preprocessing step learns - a variance ranking, a median to impute, a mean
and SD to standardise, the categories to one-hot encode - is a fitted parameter like a
model's weights. Fitting it on every sample lets the test samples shape the features
(leakage); :func:`fit_on_training` fits on the training samples and only *applies* the result
to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectorMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

if TYPE_CHECKING:
    from .ledger import FitLedger

__all__ = ["TopVariance", "MissingRateFilter", "clinical_pipeline", "fit_on_training"]


class TopVariance(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features with the largest variance on the training samples (a variance filter).

    Unlike scikit-learn's ``VarianceThreshold``, the number kept is fixed, whatever the scale.
    NaNs are ignored when ranking.
    """

    def __init__(self, k: int = 1000) -> None:
        self.k = k

    def fit(self, X: np.ndarray, y: object = None) -> TopVariance:  # noqa: N803 (scikit-learn's convention)
        values = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        variance = np.nanvar(values, axis=0)
        self.variances_ = np.nan_to_num(variance, nan=-np.inf)
        order = np.argsort(-self.variances_, kind="stable")
        self.support_ = np.zeros(len(variance), dtype=bool)
        self.support_[order[: min(self.k, len(variance))]] = True
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):  # NaN passes through (ranking ignores it)
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class MissingRateFilter(SelectorMixin, BaseEstimator):
    """Drop features missing in more than ``max_missing`` of the training samples (e.g. masked CpG probes)."""

    def __init__(self, max_missing: float = 0.1) -> None:
        self.max_missing = max_missing

    def fit(self, X: np.ndarray, y: object = None) -> MissingRateFilter:  # noqa: N803
        self.missing_rate_ = np.isnan(validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)).mean(axis=0)
        self.support_ = self.missing_rate_ <= self.max_missing
        if not self.support_.any():
            raise ValueError(f"every feature is missing in more than {self.max_missing:.0%} of the training samples")
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class _Log2Plus1(TransformerMixin, BaseEstimator):
    """log2(x + 1), feature names kept."""

    def fit(self, X: np.ndarray, y: object = None) -> _Log2Plus1:  # noqa: N803
        self.n_features_in_ = np.asarray(X).shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        values = np.asarray(X, dtype=float)
        if (values < 0).any():
            raise ValueError("log2(x + 1) of negative values: expected TPM or counts")
        return np.log2(values + 1.0)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        return getattr(self, "feature_names_in_", np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object))


def clinical_pipeline(numeric: Sequence[str], categorical: Sequence[str]) -> ColumnTransformer:
    """Clinical variables: numeric ones imputed with the training median and standardised; categories one-hot encoded.

    A category never seen in training becomes all zeros rather than an error, and a missing
    category is imputed with the most frequent training value.
    """
    numeric_steps = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical_steps = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    return ColumnTransformer(
        [("numeric", numeric_steps, list(numeric)), ("categorical", categorical_steps, list(categorical))], verbose_feature_names_out=False
    )


def fit_on_training(
    pipeline: Pipeline | ColumnTransformer, table: pd.DataFrame, train_ids: Sequence, *, ledger: FitLedger | None = None, step: str = "preprocessing"
) -> pd.DataFrame:
    """Fit ``pipeline`` on the training rows of ``table`` and transform every row.

    Parameters
    ----------
    pipeline : scikit-learn Pipeline or ColumnTransformer
    table : DataFrame
        Samples x features, indexed by sample id (rows of samples without this block are
        simply absent: they are masked later, not imputed).
    train_ids : sequence
        The training samples; those missing from ``table`` are ignored.
    ledger : FitLedger, optional
        Records the rows the pipeline was fitted on under ``step`` (see :mod:`mmsurv.ledger`).
    step : str, default "preprocessing"

    Returns
    -------
    DataFrame
        Transformed features, same index as ``table``; the fitted pipeline is in
        ``.attrs["pipeline"]`` and the ids it was fitted on in ``.attrs["fitted_on"]``.
    """
    fitted_on = table.index[table.index.isin(list(train_ids))]
    if len(fitted_on) < 2:
        raise ValueError(f"only {len(fitted_on)} training sample(s) in this block: cannot fit its preprocessing")
    pipeline.fit(table.loc[fitted_on])
    if ledger is not None:
        ledger.record(step, fitted_on)
    values = pipeline.transform(table)
    names = pipeline.get_feature_names_out()
    transformed = pd.DataFrame(np.asarray(values, dtype=np.float32), index=table.index, columns=[str(n) for n in names])
    transformed.attrs = {"pipeline": pipeline, "fitted_on": list(fitted_on)}
    return transformed
