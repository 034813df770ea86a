"""Cox proportional-hazards models and risk groups, with lifelines underneath.

The rule that matters most here: a cut-off that splits patients into "high" and "low"
risk is learned on the **training set only** and then applied unchanged to the test and
external sets; choosing it on the test set would make every log-rank test look better
than it is.

A Cox fit that did not converge is never returned as if it had: :func:`fit_cox` checks
every fit (see its Notes) and either repairs it - a smaller Newton step, or a small ridge
penalty on the covariates at fault, said in the result and in a
:class:`CoxConvergenceWarning` - or raises :class:`CoxConvergenceError` naming them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from lifelines.statistics import proportional_hazard_test

from ..validation import check_scores, check_survival

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = [
    "CONVERGENCE_PENALIZER",
    "CoxConvergenceError",
    "CoxConvergenceWarning",
    "CoxResult",
    "fit_cox",
    "proportional_hazards_check",
    "RiskCutoff",
    "fit_risk_cutoff",
    "high_vs_low_hazard_ratio",
]

#: Ridge penaliser (lifelines' scale: ``n * penalizer / 2 * (coef * sd) ** 2`` is added to the
#: negative log partial likelihood) that :func:`fit_cox` puts on a covariate whose coefficient
#: does not converge. On a binary covariate carried by k patients it adds about ``0.005 * k *
#: coef ** 2``: enough to give a finite estimate, too little to move the other coefficients
#: (by ~0.1 % on scikit-survival's AIDS trial cohort).
CONVERGENCE_PENALIZER = 0.01

#: Newton step sizes tried, after lifelines' default of 0.95, when a fit does not converge:
#: a full step can overshoot on covariates with long tails (the serum free light chains of
#: the flchain cohort) and run away from the optimum, which a shorter step reaches.
_RETRY_STEP_SIZES = (0.5, 0.1)

#: Coefficients beyond these are running away to infinity, not estimates: a hazard ratio
#: above e**20 (5e8) between a binary covariate's two values, or above e**10 (22,000) per
#: standard deviation of any covariate.
_MAX_BINARY_LOG_HR = 20.0
_MAX_LOG_HR_PER_SD = 10.0

#: The warnings of lifelines that fit_cox passed on, so that each is shown once per place, as lifelines' own.
_SHOWN: dict = {}

#: lifelines' words for a Newton-Raphson that stopped without converging.
_LIFELINES_FAILURES = ("failed to converge", "norm(delta) is still high", "suspiciously close to 0")


class CoxConvergenceWarning(UserWarning):
    """:func:`fit_cox` had to add a ridge penalty for the fit to converge (the reason is in ``CoxResult.note``)."""


class CoxConvergenceError(ValueError):
    """A Cox model that does not converge even with a small ridge penalty; the message names the covariates at fault."""


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
    converged : bool, default True
        Whether the model asked for (these covariates, this ``penalizer``) converged. False:
        :func:`fit_cox` added a ridge penalty to the covariates named in ``note``, whose
        hazard ratios are then shrunk estimates, not maximum-likelihood ones.
    penalizer : Series, optional
        The ridge penaliser each covariate's coefficient had in the returned fit.
    note : str, default ""
        What :func:`fit_cox` had to do for the fit to converge, and why; empty if nothing.
    """

    table: pd.DataFrame
    model: CoxPHFitter
    concordance: float
    data: pd.DataFrame
    converged: bool = True
    penalizer: pd.Series | None = None
    note: str = ""

    def risk(self, covariates: pd.DataFrame) -> np.ndarray:
        """Linear predictor (log partial hazard) of new patients: higher = earlier event."""
        return np.asarray(self.model.predict_log_partial_hazard(covariates), dtype=float)

    def survival_at(self, covariates: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Predicted probability of being event-free at each time, shape (n_patients, n_times)."""
        return self.model.predict_survival_function(covariates, times=np.atleast_1d(times)).to_numpy().T


@dataclass
class _Attempt:
    """One lifelines fit and what went wrong with it (``problems``: covariate or None -> reason)."""

    model: CoxPHFitter | None
    caught: list[warnings.WarningMessage]
    problems: dict[str | None, str] = field(default_factory=dict)
    step_size: float | None = None
    retried_because: str = ""


def fit_cox(
    data: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: list[str] | None = None,
    *,
    penalizer: float = 0.0,
    strata: list[str] | None = None,
    on_failure: str = "penalise",
    ledger: FitLedger | None = None,
    step: str = "Cox model",
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
    on_failure : {"penalise", "raise"}, default "penalise"
        What to do when the fit does not converge even with a shorter Newton step (see
        Notes): refit with a ridge penalty of :data:`CONVERGENCE_PENALIZER` on the covariates
        at fault, with a :class:`CoxConvergenceWarning`, or raise :class:`CoxConvergenceError`.
    ledger : FitLedger, optional
        Records the rows of ``data`` (its index) under ``step`` (see :mod:`mmsurv.ledger`).
    step : str, default "Cox model"

    Returns
    -------
    CoxResult
        ``converged``, ``penalizer`` and ``note`` say whether and how the fit was repaired.

    Raises
    ------
    ValueError
        On missing values in the chosen columns, a covariate with a single value, or invalid
        survival data.
    CoxConvergenceError
        If the fit does not converge even with the penalty (or ``on_failure="raise"``); the
        message names the covariates at fault.

    Notes
    -----
    lifelines maximises the partial likelihood by Newton-Raphson and may stop without
    converging, with only a warning, and return a model whose hazard ratios mean nothing:
    on scikit-survival's flchain cohort (7,874 patients) ``age`` and ``kappa`` alone send it to a
    log-likelihood 47,000 below the optimum, with a kappa hazard ratio of 0.0003 (p = 0)
    instead of 1.27. Each fit is therefore checked for

    * lifelines giving up (``ConvergenceError``) or warning that Newton-Raphson failed;
    * a coefficient that is not finite or is running away (a hazard ratio above e**20 between
      a binary covariate's two values, or above e**10 per standard deviation);
    * *separation*: an unpenalised binary covariate one of whose values has no event (two
      patients of the AIDS trial cohort in treatment group 4, neither with an event). Its
      maximum-likelihood hazard ratio is 0 or infinite, so no fit can converge; lifelines
      stops anyway and reports a finite one.

    A failed fit is first refitted with shorter Newton steps (0.5, then 0.1): the same
    model, which then matches scikit-survival's ``CoxPHSurvivalAnalysis``; ``note`` says so.
    If that fails too, or for separation, the covariates at fault (all of them if none can be
    named) get a ridge penalty of :data:`CONVERGENCE_PENALIZER`, the others keep
    ``penalizer``; ``converged`` is then False and ``note`` names them.
    """
    if on_failure not in ("penalise", "raise"):
        raise ValueError(f"on_failure must be 'penalise' or 'raise', got {on_failure!r}")
    strata = list(strata or [])
    covariates = covariates or [c for c in data.columns if c not in (duration_col, event_col, *strata)]
    missing = [c for c in [duration_col, event_col, *covariates, *strata] if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing}")
    frame = data[[duration_col, event_col, *covariates, *strata]]
    if ledger is not None:
        ledger.record(step, data.index)
    n_missing = frame.isna().any(axis=1).sum()
    if n_missing:
        raise ValueError(f"{n_missing} row(s) have missing values in {list(frame.columns)}: drop or impute them first")
    check_survival(frame[duration_col], frame[event_col])
    constant = [c for c in covariates if frame[c].nunique() < 2]
    if constant:
        raise ValueError(f"covariate(s) {constant} take a single value: no hazard ratio can be estimated for them; leave them out")

    asked = pd.Series(float(penalizer), index=covariates)
    attempt = _fit_converging(frame, duration_col, event_col, strata, asked)
    converged, penalties, note = not attempt.problems, asked, _step_note(attempt)
    if attempt.problems:
        at_fault = [c for c in attempt.problems if c is not None] or covariates
        reasons = _describe(attempt.problems)
        penalties = asked.copy()
        penalties[at_fault] = np.maximum(penalties[at_fault], CONVERGENCE_PENALIZER)
        if on_failure == "raise" or penalties.equals(asked):
            raise CoxConvergenceError(f"the Cox model does not converge, because of {at_fault}: {reasons}")
        attempt = _fit_converging(frame, duration_col, event_col, strata, penalties)
        if attempt.problems:
            raise CoxConvergenceError(
                f"the Cox model does not converge, because of {at_fault}: {reasons}; "
                f"with a ridge penalty of {CONVERGENCE_PENALIZER} on them it still does not: {_describe(attempt.problems)}"
            )
        note = (
            f"the maximum-likelihood fit does not converge ({reasons}); refitted with a ridge penalty of {CONVERGENCE_PENALIZER} on {at_fault} "
            "(lifelines' penalizer), whose hazard ratios are therefore shrunk estimates, not maximum-likelihood ones"
        )
        warnings.warn(f"fit_cox: {note}", CoxConvergenceWarning, stacklevel=2)
    for caught in attempt.caught:  # lifelines' own warnings about the fit, shown as it would have shown them (once per place)
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno, registry=_SHOWN, source=caught.source)
    model = attempt.model
    summary = model.summary
    table = pd.DataFrame(
        {
            "hazard_ratio": summary["exp(coef)"],
            "ci_low": summary["exp(coef) lower 95%"],
            "ci_high": summary["exp(coef) upper 95%"],
            "p_value": summary["p"],
        }
    )
    return CoxResult(
        table=table,
        model=model,
        concordance=float(model.concordance_index_),
        data=frame,
        converged=converged,
        penalizer=penalties,
        note=note,
    )


def _fit_converging(frame: pd.DataFrame, duration_col: str, event_col: str, strata: list[str], penalties: pd.Series) -> _Attempt:
    """Fit with lifelines' default Newton step, then shorter ones while the fit does not converge.

    Separation is a property of the data, which no step size changes: it is not retried.
    """
    attempt = _fit_once(frame, duration_col, event_col, strata, penalties, None)
    separated = _separated(frame, event_col, penalties)
    first = _describe(attempt.problems)
    for step_size in _RETRY_STEP_SIZES:
        if not attempt.problems or separated:
            break
        attempt = _fit_once(frame, duration_col, event_col, strata, penalties, step_size)
        attempt.retried_because = first
    attempt.problems.update(separated)
    return attempt


def _fit_once(frame: pd.DataFrame, duration_col: str, event_col: str, strata: list[str], penalties: pd.Series, step_size: float | None) -> _Attempt:
    """One lifelines fit, its warnings, and what says it did not converge."""
    # one number when every covariate has the same penalty: exactly the fit lifelines made before these checks
    penalizer = float(penalties.iloc[0]) if penalties.nunique() == 1 else penalties.to_numpy()
    fit_options = None if step_size is None else {"step_size": step_size}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = CoxPHFitter(penalizer=penalizer).fit(
                frame, duration_col=duration_col, event_col=event_col, strata=strata or None, fit_options=fit_options
            )
        except ConvergenceError as error:
            return _Attempt(None, [], {None: f"lifelines gave up ({str(error).split('.')[0]})"}, step_size)
    problems = {}
    failures = [w for w in caught if issubclass(w.category, ConvergenceWarning) and any(f in str(w.message) for f in _LIFELINES_FAILURES)]
    if failures:
        problems[None] = f"lifelines: {str(failures[0].message).split('.')[0]}"
    problems.update(_runaway(model, frame))
    kept = [w for w in caught if w not in failures]
    return _Attempt(model, kept, problems, step_size)


def _runaway(model: CoxPHFitter, frame: pd.DataFrame) -> dict[str, str]:
    """Covariates whose coefficient or standard error is not finite, or is running away to infinity."""
    problems = {}
    for name, coef in model.params_.items():
        values = frame[name].to_numpy(dtype=float)
        spread = np.ptp(values) if len(np.unique(values)) == 2 else np.nan
        if not (np.isfinite(coef) and np.isfinite(model.standard_errors_[name])):
            problems[name] = "its coefficient or standard error is not finite"
        elif abs(coef) * spread > _MAX_BINARY_LOG_HR or abs(coef) * values.std() > _MAX_LOG_HR_PER_SD:
            problems[name] = f"its hazard ratio, {np.exp(coef):.3g}, is running away to {'0' if coef < 0 else 'infinity'}"
    return problems


def _separated(frame: pd.DataFrame, event_col: str, penalties: pd.Series) -> dict[str, str]:
    """Unpenalised binary covariates one of whose two values has no event: their maximum-likelihood hazard ratio is 0 or infinite."""
    events = frame[event_col].to_numpy() != 0
    problems = {}
    for name in penalties.index[penalties == 0]:
        values = frame[name].to_numpy()
        levels = np.unique(values)
        if len(levels) != 2:
            continue
        for level in levels:
            carriers = values == level
            if not events[carriers].any():
                problems[name] = f"no event among the {int(carriers.sum())} patient(s) with {name} = {level} (separation)"
    return problems


def _describe(problems: dict[str | None, str]) -> str:
    return "; ".join(reason if name is None else f"{name}: {reason}" for name, reason in problems.items())


def _step_note(attempt: _Attempt) -> str:
    """What the shorter Newton step repaired, if it was needed and did."""
    if attempt.step_size is None or attempt.problems:
        return ""
    return (
        f"lifelines' Newton-Raphson did not converge with its default step of 0.95 ({attempt.retried_because}); "
        f"refitted with step_size={attempt.step_size}, which converged: the same model, maximum-likelihood estimates"
    )


def proportional_hazards_check(result: CoxResult) -> pd.DataFrame:
    """Schoenfeld-residual test of the proportional-hazards assumption, one row per covariate.

    A small p-value says the covariate's hazard ratio changes over time (rank-transformed
    time, as lifelines ``proportional_hazard_test``; cf. R's ``cox.zph``). For a fit that
    :func:`fit_cox` had to penalise (``result.converged`` False), it tests the penalised fit.
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


def fit_risk_cutoff(
    train_risk: np.ndarray | pd.Series, quantile: float = 0.5, *, ledger: FitLedger | None = None, step: str = "risk cut-off"
) -> RiskCutoff:
    """Learn a high/low risk cut-off from the training set (median by default).

    Parameters
    ----------
    train_risk : array-like or Series
        Risk scores of the **training** patients (a Series indexed by patient when ``ledger``
        is given: its index is what gets recorded).
    quantile : float in (0, 1), default 0.5
    ledger : FitLedger, optional
        Records the patients of ``train_risk`` under ``step`` (see :mod:`mmsurv.ledger`).
    step : str, default "risk cut-off"

    Returns
    -------
    RiskCutoff
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if ledger is not None:
        if not isinstance(train_risk, pd.Series):
            raise TypeError("fit_risk_cutoff(ledger=...) needs train_risk as a Series indexed by patient, to record whom it saw")
        ledger.record(step, train_risk.index)
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

    Notes
    -----
    If one group has no event (a small test set), the hazard ratio has no finite estimate:
    :func:`fit_cox` then penalises the indicator and warns (:class:`CoxConvergenceWarning`),
    and the ratio returned is a shrunk one.
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
