"""Survival, classification and agreement metrics: numpy in, float or array out.

Convention used everywhere: ``risk`` is a risk score, **higher risk = earlier event**.
"""

from __future__ import annotations

from .agreement import CorrelationResult, icc, pearson, spearman
from .bootstrap import BootstrapResult, bootstrap_ci, resample_counts
from .censoring import CensoringDistribution, fit_censoring_distribution
from .classification import (
    DeLongResult,
    average_precision,
    confusion_counts,
    delong_test,
    multiclass_average_precision,
    multiclass_report,
    multiclass_roc_auc,
    roc_auc,
)
from .concordance import concordance_index, uno_concordance_index
from .multiple_testing import holm_adjust
from .survival_calibration import (
    CalibrationIndex,
    DCalibration,
    OneCalibration,
    d_calibration,
    integrated_calibration_index,
    one_calibration,
    predicted_survival_at,
)
from .survival_summary import survival_scores
from .time_dependent import brier_score, integrated_brier_score, time_dependent_auc, truncation_time

__all__ = [
    "BootstrapResult",
    "CalibrationIndex",
    "DCalibration",
    "OneCalibration",
    "CensoringDistribution",
    "CorrelationResult",
    "DeLongResult",
    "average_precision",
    "bootstrap_ci",
    "brier_score",
    "concordance_index",
    "confusion_counts",
    "d_calibration",
    "delong_test",
    "fit_censoring_distribution",
    "holm_adjust",
    "icc",
    "integrated_brier_score",
    "integrated_calibration_index",
    "multiclass_average_precision",
    "multiclass_report",
    "one_calibration",
    "multiclass_roc_auc",
    "pearson",
    "resample_counts",
    "roc_auc",
    "spearman",
    "survival_scores",
    "predicted_survival_at",
    "time_dependent_auc",
    "truncation_time",
    "uno_concordance_index",
]
