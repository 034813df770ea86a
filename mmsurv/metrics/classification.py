"""Binary and multiclass discrimination: ROC AUC, average precision, DeLong's test, a per-class report.

Definitions follow scikit-learn (``roc_auc_score``, ``average_precision_score``) so the
numbers match; the DeLong variance uses the fast algorithm of Sun & Xu (2014).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..validation import check_binary_labels, check_same_length, check_scores
from .bootstrap import bootstrap_ci

__all__ = [
    "roc_auc",
    "average_precision",
    "multiclass_roc_auc",
    "multiclass_average_precision",
    "DeLongResult",
    "delong_test",
    "multiclass_report",
    "confusion_counts",
]


def _check_binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y_true = check_binary_labels(y_true)
    y_score = check_scores(y_score, "y_score")
    check_same_length(y_true=y_true, y_score=y_score)
    if y_true.min() == y_true.max():
        raise ValueError("y_true contains only one class: AUC and average precision are undefined")
    return y_true, y_score


def roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Area under the ROC curve of a binary classifier.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        0/1 labels.
    y_score : array-like, shape (n,)
        Score, **higher means more likely class 1**.

    Returns
    -------
    float
        P(score of a random positive > score of a random negative), ties counting 1/2
        (the Mann-Whitney statistic divided by n_pos * n_neg).
    """
    y_true, y_score = _check_binary(y_true, y_score)
    ranks = stats.rankdata(y_score)  # average ranks give ties one half
    n_pos = y_true.sum()
    n_neg = len(y_true) - n_pos
    return float((ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Average precision: the step-wise area under the precision-recall curve.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        0/1 labels.
    y_score : array-like, shape (n,)
        Score, **higher means more likely class 1**.

    Returns
    -------
    float
        ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, highest first (no
        interpolation, as scikit-learn). Chance level is the prevalence of class 1.
    """
    y_true, y_score = _check_binary(y_true, y_score)
    order = np.argsort(-y_score, kind="mergesort")
    y_sorted, score_sorted = y_true[order], y_score[order]
    # the last position of each block of tied scores is a threshold
    threshold_end = np.flatnonzero(np.r_[np.diff(score_sorted) != 0, True])
    true_pos = np.cumsum(y_sorted)[threshold_end]
    predicted_pos = threshold_end + 1
    precision = true_pos / predicted_pos
    recall = true_pos / y_true.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _one_vs_rest(metric, y_true, y_proba) -> tuple[np.ndarray, float]:
    labels = np.asarray(y_true)
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2:
        raise ValueError(f"y_proba must be 2-D (n_samples, n_classes), got shape {proba.shape}")
    check_same_length(y_true=labels, y_proba=proba)
    n_classes = proba.shape[1]
    if not np.isin(labels, np.arange(n_classes)).all():
        raise ValueError(f"y_true must hold class indices 0..{n_classes - 1}")
    per_class = np.array([metric((labels == k).astype(int), proba[:, k]) for k in range(n_classes)])
    return per_class, float(per_class.mean())


def multiclass_roc_auc(y_true: np.ndarray, y_proba: np.ndarray) -> tuple[np.ndarray, float]:
    """One-vs-rest ROC AUC for each class and their unweighted (macro) mean.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Class index 0..K-1 of each sample.
    y_proba : array-like, shape (n, K)
        Predicted class probabilities (or scores); column k scores class k.

    Returns
    -------
    per_class : ndarray, shape (K,)
    macro : float
        Equal to scikit-learn ``roc_auc_score(y_true, y_proba, multi_class="ovr")``.
    """
    return _one_vs_rest(roc_auc, y_true, y_proba)


def multiclass_average_precision(y_true: np.ndarray, y_proba: np.ndarray) -> tuple[np.ndarray, float]:
    """One-vs-rest average precision for each class and their macro mean (see :func:`multiclass_roc_auc`)."""
    return _one_vs_rest(average_precision, y_true, y_proba)


@dataclass(frozen=True)
class DeLongResult:
    """Paired comparison of two AUCs on the same samples.

    Attributes
    ----------
    auc_a, auc_b : float
        The two AUCs.
    difference : float
        ``auc_a - auc_b``.
    ci_low, ci_high : float
        Confidence interval of the difference.
    z, p_value : float
        DeLong's z statistic and two-sided p-value (H0: equal AUCs).
    ci_a, ci_b : tuple of float
        Confidence interval of each AUC.
    """

    auc_a: float
    auc_b: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]


def _structural_components(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong's placement values V10 (per positive) and V01 (per negative)."""
    positives, negatives = scores[:, y_true == 1], scores[:, y_true == 0]
    m, n = positives.shape[1], negatives.shape[1]
    rank_all = np.apply_along_axis(stats.rankdata, 1, np.concatenate([positives, negatives], axis=1))
    rank_pos = np.apply_along_axis(stats.rankdata, 1, positives)
    rank_neg = np.apply_along_axis(stats.rankdata, 1, negatives)
    v10 = (rank_all[:, :m] - rank_pos) / n
    v01 = 1.0 - (rank_all[:, m:] - rank_neg) / m
    return v10.mean(axis=1), v10, v01


def delong_test(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, *, confidence: float = 0.95) -> DeLongResult:
    """DeLong's test and confidence intervals for two correlated (paired) ROC AUCs.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        0/1 labels.
    score_a, score_b : array-like, shape (n,)
        Two scores for the same samples; higher means more likely class 1.
    confidence : float, default 0.95
        Level of the confidence intervals.

    Returns
    -------
    DeLongResult

    References
    ----------
    DeLong E. R. et al. "Comparing the areas under two or more correlated receiver operating
    characteristic curves: a nonparametric approach." Biometrics 44(3), 1988.
    Sun X. & Xu W. "Fast implementation of DeLong's algorithm." IEEE SPL 21(11), 2014.
    """
    y_true, score_a = _check_binary(y_true, score_a)
    score_b = check_scores(score_b, "score_b")
    check_same_length(y_true=y_true, score_b=score_b)
    aucs, v10, v01 = _structural_components(y_true, np.vstack([score_a, score_b]))
    m, n = v10.shape[1], v01.shape[1]
    covariance = np.cov(v10) / m + np.cov(v01) / n
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    diff = aucs[0] - aucs[1]
    var_diff = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    sd_diff = np.sqrt(max(var_diff, 0.0))
    if sd_diff > 0:
        z = diff / sd_diff
        p_value = 2 * stats.norm.sf(abs(z))
    else:  # identical scores: no evidence of a difference
        z, p_value = 0.0, 1.0
    sd = np.sqrt(np.diag(covariance))
    return DeLongResult(
        auc_a=float(aucs[0]),
        auc_b=float(aucs[1]),
        difference=float(diff),
        ci_low=float(diff - z_crit * sd_diff),
        ci_high=float(diff + z_crit * sd_diff),
        z=float(z),
        p_value=float(p_value),
        ci_a=(float(aucs[0] - z_crit * sd[0]), float(aucs[0] + z_crit * sd[0])),
        ci_b=(float(aucs[1] - z_crit * sd[1]), float(aucs[1] + z_crit * sd[1])),
    )


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix of counts: rows are true classes, columns predicted classes.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n,)
        Class indices 0..n_classes-1 (``y_pred`` is usually ``y_proba.argmax(axis=1)``).
    n_classes : int
        K; classes that never occur still get a row and a column.

    Returns
    -------
    ndarray of int, shape (K, K)
        ``counts[i, j]`` is the number of samples of class i predicted as class j, as
        scikit-learn ``confusion_matrix(y_true, y_pred, labels=range(K))``. The diagonal
        holds the correct predictions; each row sums to the class size.
    """
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes}")
    n_classes = int(n_classes)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"y_true and y_pred must be one-dimensional, got shapes {y_true.shape} and {y_pred.shape}")
    check_same_length(y_true=y_true, y_pred=y_pred)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.isin(labels, np.arange(n_classes)).all():
            raise ValueError(f"{name} must hold class indices 0..{n_classes - 1}")
    flat = y_true.astype(int) * n_classes + y_pred.astype(int)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _macro_auc(y_true: np.ndarray, y_proba: np.ndarray) -> float:
    return multiclass_roc_auc(y_true, y_proba)[1]


def _macro_ap(y_true: np.ndarray, y_proba: np.ndarray) -> float:
    return multiclass_average_precision(y_true, y_proba)[1]


def multiclass_report(
    y_true: np.ndarray,
    y_proba: np.ndarray,
    *,
    class_names: Sequence[str],
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One-vs-rest ROC AUC and average precision of each class, with bootstrap intervals.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        Class index 0..K-1 of each sample.
    y_proba : array-like, shape (n, K)
        Predicted class probabilities; column k scores class k.
    class_names : sequence of str, length K
        Row labels, in column order of ``y_proba`` (e.g. ``["LUAD", "LUSC", "normal"]``).
    groups : array-like, shape (n,), optional
        Patient id of each row when rows are slides or tiles: the bootstrap then draws whole
        patients, so correlated rows of one patient do not narrow the interval.
    n_resamples : int, default 1000
    seed : int, default 0
        Every metric sees the same resamples (see :func:`mmsurv.metrics.bootstrap_ci`).
    confidence : float, default 0.95

    Returns
    -------
    DataFrame
        Indexed by class name plus a final ``"macro"`` row (the unweighted mean over classes,
        as scikit-learn ``roc_auc_score(..., multi_class="ovr")``), with columns ``auc``,
        ``auc_low``, ``auc_high``, ``ap``, ``ap_low``, ``ap_high`` and ``n_positive`` (rows of
        that class; all rows for ``"macro"``). ``table.attrs["n_clusters"]`` is the number of
        units the bootstrap resampled: distinct ``groups`` (patients), or rows when ``groups``
        is None - a check that the intervals were drawn by patient, as intended.

    Raises
    ------
    ValueError
        If a class has no samples (its AUC is undefined), or the shapes disagree.

    Notes
    -----
    Percentile bootstrap. A resample in which a class is absent (or is the only class
    drawn) leaves that class's metrics undefined: it is skipped for that class and for the
    macro row, as :func:`~mmsurv.metrics.bootstrap_ci` does; with rare classes and few
    patients, check ``n_failed`` by calling ``bootstrap_ci`` directly.
    """
    y_true, y_proba = np.asarray(y_true), np.asarray(y_proba, dtype=float)
    multiclass_roc_auc(y_true, y_proba)  # validates shapes, labels and that every class occurs
    names = [str(name) for name in class_names]
    if len(names) != y_proba.shape[1]:
        raise ValueError(f"class_names has {len(names)} entries, y_proba has {y_proba.shape[1]} columns")
    if "macro" in names or len(set(names)) != len(names):
        raise ValueError(f'class_names must be distinct and not "macro" (the macro-average row), got {names}')
    options = {"n_resamples": n_resamples, "seed": seed, "confidence": confidence, "groups": groups}
    rows = {}
    for k, name in enumerate(names):
        positive, score = (y_true == k).astype(int), y_proba[:, k]
        auc = bootstrap_ci(roc_auc, positive, score, **options)
        ap = bootstrap_ci(average_precision, positive, score, **options)
        rows[name] = (auc, ap, int(positive.sum()))
    rows["macro"] = (bootstrap_ci(_macro_auc, y_true, y_proba, **options), bootstrap_ci(_macro_ap, y_true, y_proba, **options), len(y_true))
    table = pd.DataFrame(
        [
            {
                "auc": auc.estimate,
                "auc_low": auc.ci_low,
                "auc_high": auc.ci_high,
                "ap": ap.estimate,
                "ap_low": ap.ci_low,
                "ap_high": ap.ci_high,
                "n_positive": n,
            }
            for auc, ap, n in rows.values()
        ],
        index=pd.Index(list(rows), name="class"),
    )
    table.attrs["n_clusters"] = len(y_true) if groups is None else int(pd.unique(np.asarray(groups)).size)
    return table
