"""Correlation with confidence intervals, and intraclass correlation for reproducibility.

Spearman's rho and Pearson's r answer "does the prediction rank / track the truth?"
(notebook 01); ICC(2,1) and ICC(3,1) answer "does the model give the same answer when the
patient is scanned twice?" (notebook 02's test-retest analysis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..validation import check_same_length, check_scores

__all__ = ["CorrelationResult", "pearson", "spearman", "icc"]


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation estimate with its confidence interval and p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def _check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = check_scores(x, "x"), check_scores(y, "y")
    check_same_length(x=x, y=y)
    if len(x) < 4:
        raise ValueError(f"a correlation confidence interval needs at least 4 pairs, got {len(x)}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("x or y is constant: the correlation is undefined")
    return x, y


def _fisher_interval(r: float, se: float, confidence: float) -> tuple[float, float]:
    z_crit = stats.norm.ppf(0.5 + confidence / 2)
    z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
    return float(np.tanh(z - z_crit * se)), float(np.tanh(z + z_crit * se))


def pearson(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95) -> CorrelationResult:
    """Pearson's r with a Fisher-z confidence interval (as ``scipy.stats.pearsonr``).

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Paired measurements, n >= 4.
    confidence : float, default 0.95

    Returns
    -------
    CorrelationResult
        r, its interval ``tanh(atanh(r) +/- z / sqrt(n - 3))`` and the two-sided p-value.
    """
    x, y = _check_pair(x, y)
    result = stats.pearsonr(x, y)
    low, high = _fisher_interval(result.statistic, 1.0 / np.sqrt(len(x) - 3), confidence)
    return CorrelationResult(float(result.statistic), low, high, float(result.pvalue), len(x))


def spearman(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95) -> CorrelationResult:
    """Spearman's rank correlation rho with a Fisher-z interval (Bonett & Wright variance).

    Parameters
    ----------
    x, y : array-like, shape (n,)
        Paired measurements, n >= 4; ties get average ranks.
    confidence : float, default 0.95

    Returns
    -------
    CorrelationResult
        rho (as ``scipy.stats.spearmanr``), interval ``tanh(atanh(rho) +/- z sqrt((1 + rho^2/2) / (n - 3)))``.

    References
    ----------
    Bonett D. G. & Wright T. A. "Sample size requirements for estimating Pearson, Kendall
    and Spearman correlations." Psychometrika 65, 2000.
    """
    x, y = _check_pair(x, y)
    result = stats.spearmanr(x, y)
    rho = float(result.statistic)
    low, high = _fisher_interval(rho, np.sqrt((1 + rho**2 / 2) / (len(x) - 3)), confidence)
    return CorrelationResult(rho, low, high, float(result.pvalue), len(x))


def icc(ratings: np.ndarray, kind: str = "ICC(2,1)") -> float:
    """Intraclass correlation of single measurements (Shrout & Fleiss 1979).

    Parameters
    ----------
    ratings : array-like, shape (n_subjects, n_raters)
        One row per subject (patient), one column per rater or repeated scan; no missing values.
    kind : {"ICC(2,1)", "ICC(3,1)"}
        ``ICC(2,1)``: two-way random effects, absolute agreement (raters are a sample of
        possible raters, a systematic offset between them counts as disagreement).
        ``ICC(3,1)``: two-way mixed effects, consistency (a fixed offset between the raters
        is ignored).

    Returns
    -------
    float
        ICC(2,1) = (BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n);
        ICC(3,1) = (BMS - EMS) / (BMS + (k - 1) EMS), from the two-way ANOVA mean squares
        (subjects BMS, raters JMS, residual EMS).

    References
    ----------
    Shrout P. E. & Fleiss J. L. "Intraclass correlations: uses in assessing rater
    reliability." Psychological Bulletin 86(2), 1979.
    """
    table = np.asarray(ratings, dtype=float)
    if table.ndim != 2 or table.shape[0] < 2 or table.shape[1] < 2:
        raise ValueError(f"ratings must be (n_subjects >= 2, n_raters >= 2), got shape {table.shape}")
    if not np.isfinite(table).all():
        raise ValueError("ratings contain NaN or infinite values: drop incomplete subjects first")
    n, k = table.shape
    grand = table.mean()
    ss_subjects = k * np.sum((table.mean(axis=1) - grand) ** 2)
    ss_raters = n * np.sum((table.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((table - grand) ** 2) - ss_subjects - ss_raters
    bms = ss_subjects / (n - 1)
    jms = ss_raters / (k - 1)
    ems = ss_error / ((n - 1) * (k - 1))
    if kind == "ICC(2,1)":
        return float((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n))
    if kind == "ICC(3,1)":
        return float((bms - ems) / (bms + (k - 1) * ems))
    raise ValueError(f"kind must be 'ICC(2,1)' or 'ICC(3,1)', got {kind!r}")
