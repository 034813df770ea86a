"""Survival statistics for the notebooks: Kaplan-Meier, log-rank, Cox, risk groups, LASSO-Cox, calibration."""

from __future__ import annotations

from .calibration import calibration_at_time, plot_calibration, plot_survival_calibration
from .cox import (
    CONVERGENCE_PENALIZER,
    CoxConvergenceError,
    CoxConvergenceWarning,
    CoxResult,
    RiskCutoff,
    fit_cox,
    fit_risk_cutoff,
    high_vs_low_hazard_ratio,
    proportional_hazards_check,
)
from .kaplan_meier import LogRankResult, logrank, plot_kaplan_meier, survival_at
from .lasso_cox import LassoCoxResult, fit_lasso_cox
from .selection import concordance_screen, cross_validated_risk, frequent_features, selection_recovery, selection_stability
from .stacking import StackedClassifier, fit_stacked_classifier, lasso_cox_selector

__all__ = [
    "StackedClassifier",
    "fit_stacked_classifier",
    "lasso_cox_selector",
    "CONVERGENCE_PENALIZER",
    "CoxConvergenceError",
    "CoxConvergenceWarning",
    "CoxResult",
    "LassoCoxResult",
    "LogRankResult",
    "RiskCutoff",
    "calibration_at_time",
    "fit_cox",
    "fit_lasso_cox",
    "fit_risk_cutoff",
    "high_vs_low_hazard_ratio",
    "logrank",
    "plot_calibration",
    "plot_survival_calibration",
    "plot_kaplan_meier",
    "proportional_hazards_check",
    "concordance_screen",
    "cross_validated_risk",
    "frequent_features",
    "selection_recovery",
    "selection_stability",
    "survival_at",
]
