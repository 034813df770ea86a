"""Cox proportional-hazards models and risk groups, with lifelines underneath.

The rule that matters most here: a cut-off that splits patients into "high" and "low"
risk is learned on the **training set only** and then applied unchanged to the test and
external sets; choosing it on the test set would make every log-rank test look better
than it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test

from ..validation import check_scores, check_survival

__all__ = [
    "CoxResult",
    "fit_cox",
    "proportional_hazards_check",
    "RiskCutoff",
    "fit_risk_cutoff",
    "high_vs_low_hazard_ratio",
]


@dataclass
class CoxResult:
    """A fitted Cox model and its hazard-ratio table.

    Attributes
    ----------
    table : DataFrame
        One row per covariate: ``hazard_ratio``, ``ci_low``, ``ci_high`` (95%), ``p_value``.
    model : lifelines.CoxPHFitter
        The fitted model (``model.predict_partial_hazard``, ``model.predict_survival_function``).
    concordance : float
        Harrell's C of the model on its own training data.
    data : DataFrame
        The rows and columns it was fitted on.
    """

    table: pd.DataFrame
    model: CoxPHFitter
    concordance: float
    data: pd.DataFrame

    def risk(self, covariates: pd.DataFrame) -> np.ndarray:
        """Linear predictor (log partial hazard) of new patients: higher = earlier event."""
        return np.asarray(self.model.predict_log_partial_hazard(covariates), dtype=float)

    def survival_at(self, covariates: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Predicted probability of being event-free at each time, shape (n_patients, n_times)."""
        return self.model.predict_survival_function(covariates, times=np.atleast_1d(times)).to_numpy().T


def fit_cox(
    data: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: list[str] | None = None,
    *,
    penalizer: float = 0.0,
    strata: list[str] | None = None,
) -> CoxResult:
    """Fit a Cox proportional-hazards model and tabulate hazard ratios with 95% CIs.

    Parameters
    ----------
    data : DataFrame
        One row per patient.
    duration_col, event_col : str
        Columns with follow-up time and event indicator (1 = event).
    covariates : list of str, optional
        Covariates to include (numeric; one-hot encode categories first). Default: every
        other column.
    penalizer : float, default 0.0
        Ridge penalty, useful with few events per covariate.
    strata : list of str, optional
        Columns whose levels each get their own baseline hazard (a stratified Cox model, R's
        ``coxph(Surv(time, event) ~ x + strata(centre))``): hazard ratios are then compared
        within strata only, so a stratum that differs in survival *and* in ``x`` - a centre
        with older patients and another scanner - cannot create an effect.

    Returns
    -------
    CoxResult

    Raises
    ------
    ValueError
        On missing values in the chosen columns, or invalid survival data.
    """
    strata = list(strata or [])
    covariates = covariates or [c for c in data.columns if c not in (duration_col, event_col, *strata)]
    missing = [c for c in [duration_col, event_col, *covariates, *strata] if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing}")
    frame = data[[duration_col, event_col, *covariates, *strata]]
    n_missing = frame.isna().any(axis=1).sum()
    if n_missing:
        raise ValueError(f"{n_missing} row(s) have missing values in {list(frame.columns)}: drop or impute them first")
    check_survival(frame[duration_col], frame[event_col])
    model = CoxPHFitter(penalizer=penalizer).fit(frame, duration_col=duration_col, event_col=event_col, strata=strata or None)
    summary = model.summary
    table = pd.DataFrame(
        {
            "hazard_ratio": summary["exp(coef)"],
            "ci_low": summary["exp(coef) lower 95%"],
            "ci_high": summary["exp(coef) upper 95%"],
            "p_value": summary["p"],
        }
    )
    return CoxResult(table=table, model=model, concordance=float(model.concordance_index_), data=frame)


def proportional_hazards_check(result: CoxResult) -> pd.DataFrame:
    """Schoenfeld-residual test of the proportional-hazards assumption, one row per covariate.

    A small p-value says the covariate's hazard ratio changes over time (rank-transformed
    time, as lifelines ``proportional_hazard_test``; cf. R's ``cox.zph``).
    """
    test = proportional_hazard_test(result.model, result.data, time_transform="rank")
    return test.summary[["test_statistic", "p"]].rename(columns={"p": "p_value"})


@dataclass(frozen=True)
class RiskCutoff:
    """A risk threshold learned on training data.

    Attributes
    ----------
    cutoff : float
        Patients with risk above it are "high" risk.
    quantile : float
        The training-set quantile it came from.
    """

    cutoff: float
    quantile: float

    def assign(self, risk: np.ndarray) -> np.ndarray:
        """Label each patient ``"high"`` (risk > cutoff) or ``"low"``."""
        risk = check_scores(risk)
        return np.where(risk > self.cutoff, "high", "low")


def fit_risk_cutoff(train_risk: np.ndarray, quantile: float = 0.5) -> RiskCutoff:
    """Learn a high/low risk cut-off from the training set (median by default).

    Parameters
    ----------
    train_risk : array-like
        Risk scores of the **training** patients.
    quantile : float in (0, 1), default 0.5

    Returns
    -------
    RiskCutoff
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return RiskCutoff(float(np.quantile(check_scores(train_risk, "train_risk"), quantile)), quantile)


def high_vs_low_hazard_ratio(
    time: np.ndarray,
    event: np.ndarray,
    groups: np.ndarray,
    covariates: pd.DataFrame | None = None,
    *,
    strata: np.ndarray | None = None,
) -> pd.Series:
    """Hazard ratio of the ``"high"`` versus the ``"low"`` risk group, optionally adjusted or stratified.

    Parameters
    ----------
    time, event : array-like, shape (n,)
    groups : array-like of {"high", "low"}, shape (n,)
        E.g. from :meth:`RiskCutoff.assign`.
    covariates : DataFrame, optional
        Numeric covariates to adjust for (same row order).
    strata : array-like, shape (n,), optional
        A stratum per patient (e.g. the centre): high and low are compared within strata, each
        with its own baseline hazard (see :func:`fit_cox`).

    Returns
    -------
    Series
        ``hazard_ratio``, ``ci_low``, ``ci_high``, ``p_value`` of the high-risk indicator.
    """
    time, event, _ = check_survival(time, event)
    groups = np.asarray(groups)
    if not set(np.unique(groups)) <= {"high", "low"} or len(np.unique(groups)) != 2:
        raise ValueError("groups must contain both 'high' and 'low'")
    frame = pd.DataFrame({"time": time, "event": event.astype(int), "high_risk": (groups == "high").astype(int)})
    if covariates is not None:
        frame = pd.concat([frame, covariates.reset_index(drop=True)], axis=1)
    if strata is not None:
        frame["stratum"] = np.asarray(strata)
    return fit_cox(frame, "time", "event", strata=["stratum"] if strata is not None else None).table.loc["high_risk"]
