"""Cox and LASSO-Cox fits on real cohorts, checked against scikit-survival and glmnet (issue 30, points 9-10).

Every cohort here ships inside scikit-survival (``sksurv.datasets``, GPL-3 package; the data
are public research data sets):

* ``load_flchain``: serum free light chains, 7,874 residents of Olmsted County (Dispenzieri
  et al., Mayo Clin Proc 2012; R package survival's ``flchain``).
* ``load_aids``: the AIDS Clinical Trials Group 320 trial, 1,151 patients (Hosmer, Lemeshow
  and May, *Applied Survival Analysis*, 2nd ed.).
* ``load_whas500``: Worcester Heart Attack Study, 500 patients (Hosmer, Lemeshow and May).
* ``load_gbsg2``: German Breast Cancer Study Group 2, 686 patients (R package TH.data).
* ``load_veterans_lung_cancer``: the Veterans' Administration lung cancer trial, 137 patients
  (Kalbfleisch and Prentice).
* ``load_breast_cancer``: 198 node-negative breast cancers with 76 expression probes
  (Desmedt et al., Clin Cancer Res 2007; GEO GSE7390).

The reference Cox fit is scikit-survival's ``CoxPHSurvivalAnalysis(ties="efron")``, the tie
handling of lifelines, which ``mmsurv.stats.fit_cox`` wraps. It is fitted on standardised
covariates (its Newton steps overflow on raw ones such as a year of sampling) and its
coefficients divided by the standard deviations: the same model, reparametrised.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold
from sksurv.column import encode_categorical
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from mmsurv.stats import fit_cox, fit_lasso_cox, proportional_hazards_check
from mmsurv.stats.cox import CONVERGENCE_PENALIZER, CoxConvergenceError, CoxConvergenceWarning


def _reference_coefficients(x: pd.DataFrame, event: np.ndarray, time: np.ndarray, alpha: float | np.ndarray = 0.0) -> pd.Series:
    """scikit-survival's Cox fit, on raw covariates' scale.

    ``CoxPHSurvivalAnalysis(alpha=a, ties="efron").fit(z, Surv.from_arrays(event, time))`` on
    z = (x - mean) / sd (sd with ddof=1, as lifelines normalises). Its objective is
    ``-loglik + a / 2 * ||w||**2``; lifelines' penalizer p adds ``n * p / 2 * ||w||**2`` on
    the same standardised scale, so ``a = n * p`` is the same ridge.
    """
    sd = x.std()
    model = CoxPHSurvivalAnalysis(alpha=alpha, ties="efron").fit((x - x.mean()) / sd, Surv.from_arrays(event.astype(bool), time))
    return pd.Series(model.coef_ / sd.to_numpy(), index=x.columns)


def _flchain() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    from sksurv.datasets import load_flchain

    x, y = load_flchain()
    return x, y["death"].astype(int), y["futime"].astype(float)


def _covariates(x: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric columns as floats and categorical ones one-hot encoded (first level as reference)."""
    encoded = encode_categorical(x[categorical].astype(str).astype("category")) if categorical else pd.DataFrame(index=x.index)
    return pd.concat([x[numeric].astype(float), encoded.astype(float)], axis=1)


# ---------------------------------------------------------------- point 9: a Cox fit that did not converge


def _flchain_chapter_skin() -> pd.DataFrame:
    """kappa and lambda light chains, MGUS, and death from a skin disease (4 of the 2,169 deaths)."""
    x, event, time = _flchain()
    covariates = pd.DataFrame(
        {
            "kappa": x["kappa"],
            "lambda": x["lambda"],
            "mgus": (x["mgus"] == "yes").astype(float),
            "chapter_skin": (x["chapter"] == "Skin").astype(float),  # NaN chapter: alive
        }
    )
    return covariates.assign(time=time, event=event)


def _flchain_age_kappa() -> pd.DataFrame:
    x, event, time = _flchain()
    return pd.DataFrame({"age": x["age"], "kappa": x["kappa"], "time": time, "event": event})


@pytest.mark.parametrize(
    ("cohort", "covariate", "lifelines_hazard_ratio"),
    [(_flchain_age_kappa, "kappa", 2.7e-4), (_flchain_chapter_skin, "chapter_skin", 7.4e4)],
    ids=["age+kappa", "rare chapter"],
)
def test_a_fit_lifelines_leaves_unconverged_on_flchain_is_refitted_to_scikit_survival_optimum(cohort, covariate, lifelines_hazard_ratio):
    """lifelines' full Newton step overshoots on the long-tailed light chains of flchain (7,874 patients).

    lifelines 0.30 alone stops after a ConvergenceWarning at a log-likelihood tens of
    thousands below the optimum and reports absurd hazard ratios with p = 0: kappa 0.0003
    (scikit-survival: 1.27), or 74,000 for a skin-disease death carried by 4 events. fit_cox
    must not return that: it refits with a shorter step and lands on scikit-survival's optimum.
    """
    data = cohort()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = CoxPHFitter().fit(data, "time", "event")
    assert any(issubclass(w.category, ConvergenceWarning) and "failed to converge" in str(w.message) for w in caught)
    assert raw.hazard_ratios_[covariate] == pytest.approx(lifelines_hazard_ratio, rel=0.05)

    with warnings.catch_warnings():
        warnings.simplefilter("error", CoxConvergenceWarning)  # no penalty needed: the same model converges
        result = fit_cox(data, "time", "event")
    covariates = [c for c in data.columns if c not in ("time", "event")]
    reference = _reference_coefficients(data[covariates], data["event"].to_numpy(), data["time"].to_numpy())
    np.testing.assert_allclose(result.model.params_[covariates], reference, atol=1e-3)
    assert result.converged and (result.penalizer == 0).all()
    assert "step_size=0.5" in result.note and "failed to converge" in result.note
    assert result.model.log_likelihood_ > raw.log_likelihood_ + 5000  # the unconverged fit was thousands below


def _aids_with_treatment_groups() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """ACTG 320 with one-hot treatment groups: groups 3 (1 patient) and 4 (2 patients) have no event."""
    from sksurv.datasets import load_aids

    x, y = load_aids()
    covariates = _covariates(x, ["age", "cd4", "priorzdv"], ["karnof", "txgrp", "ivdrug", "sex"])
    return covariates, y["censor"].astype(int), y["time"].astype(float)


def test_a_separated_covariate_is_penalised_and_named_not_returned_silently():
    """Two treatment groups of the AIDS trial have no event: their maximum-likelihood hazard ratio is 0.

    lifelines "converges" anyway, without a warning, and reports a hazard ratio of about 1e-5
    for them. fit_cox names them, penalises them alone (CONVERGENCE_PENALIZER), warns, and
    the penalised fit equals scikit-survival's with the same ridge on those two covariates.
    """
    covariates, event, time = _aids_with_treatment_groups()
    data = covariates.assign(time=time, event=event)
    separated = ["txgrp=3", "txgrp=4"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = CoxPHFitter().fit(data, "time", "event")
    assert not any("failed to converge" in str(w.message) for w in caught)  # silent
    assert (raw.hazard_ratios_[separated] < 1e-3).all()

    with pytest.warns(CoxConvergenceWarning, match=r"txgrp=3.*txgrp=4"):
        result = fit_cox(data, "time", "event")
    assert not result.converged
    assert "separation" in result.note and "txgrp=4" in result.note
    assert result.penalizer[separated].eq(CONVERGENCE_PENALIZER).all() and result.penalizer.drop(separated).eq(0).all()
    # scikit-survival, CoxPHSurvivalAnalysis(alpha=n * penalizer, ties="efron") on standardised covariates
    reference = _reference_coefficients(covariates, event, time, alpha=len(data) * result.penalizer.to_numpy())
    np.testing.assert_allclose(result.model.params_, reference, atol=1e-3)
    assert np.isfinite(result.table.to_numpy()).all()
    # the other hazard ratios are those of the model without the two separated groups (within 1 %)
    without = fit_cox(data.drop(columns=separated), "time", "event")
    np.testing.assert_allclose(result.table["hazard_ratio"].drop(separated), without.table["hazard_ratio"], rtol=0.01)
    assert sorted(proportional_hazards_check(result).index) == sorted(covariates.columns)

    with pytest.raises(CoxConvergenceError, match=r"txgrp=4.*no event among the 2 patient"):
        fit_cox(data, "time", "event", on_failure="raise")


def test_a_covariate_with_one_value_is_refused_by_name():
    covariates, event, time = _aids_with_treatment_groups()
    data = covariates.assign(time=time, event=event, everyone=1.0)
    with pytest.raises(ValueError, match=r"\['everyone'\] take a single value"):
        fit_cox(data, "time", "event")


def _whas500():
    from sksurv.datasets import load_whas500

    x, y = load_whas500()
    return x.astype(float), y["fstat"].astype(int), y["lenfol"].astype(float)


def _gbsg2():
    from sksurv.datasets import load_gbsg2

    x, y = load_gbsg2()
    return _covariates(x, ["age", "estrec", "pnodes", "progrec", "tsize"], ["horTh", "menostat", "tgrade"]), y["cens"].astype(int), y["time"]


def _veterans():
    from sksurv.datasets import load_veterans_lung_cancer

    x, y = load_veterans_lung_cancer()
    numeric = ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"]
    return _covariates(x, numeric, ["Celltype", "Prior_therapy", "Treatment"]), y["Status"].astype(int), y["Survival_in_days"]


def _aids_converging():
    from sksurv.datasets import load_aids

    x, y = load_aids()
    return _covariates(x, ["age", "cd4", "priorzdv"], ["karnof", "tx", "raceth", "sex"]), y["censor"].astype(int), y["time"]


def _breast_cancer():
    from sksurv.datasets import load_breast_cancer

    x, y = load_breast_cancer()
    probes = ["X202240_at", "X204014_at", "X216103_at", "X219724_s_at"]
    return _covariates(x, ["age", "size", *probes], ["er", "grade"]).drop(columns="grade=unkown"), y["e.tdm"].astype(int), y["t.tdm"]


def _flchain_without_chapter():
    x, event, time = _flchain()
    return _covariates(x, ["age", "kappa", "lambda"], ["sex", "mgus", "flc.grp"]), event, time


@pytest.mark.parametrize(
    "cohort",
    [_whas500, _gbsg2, _veterans, _aids_converging, _breast_cancer, _flchain_without_chapter],
    ids=["whas500", "gbsg2", "veterans", "aids", "breast_cancer", "flchain"],
)
def test_fit_cox_matches_scikit_survival_where_both_converge(cohort):
    """Coefficients to 1e-3 of scikit-survival's ``CoxPHSurvivalAnalysis(ties="efron")`` (see _reference_coefficients)."""
    covariates, event, time = cohort()
    data = covariates.assign(time=np.asarray(time, dtype=float), event=np.asarray(event))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoxConvergenceWarning)
        result = fit_cox(data, "time", "event")
    reference = _reference_coefficients(covariates, np.asarray(event), np.asarray(time, dtype=float))
    np.testing.assert_allclose(result.model.params_[covariates.columns], reference, atol=1e-3)
    assert result.converged and result.note == ""


# ---------------------------------------------------------------- point 10: LASSO-Cox lambda.1se as cv.glmnet


def _glmnet_lambda_1se(alphas: np.ndarray, cvraw: np.ndarray, fold_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """cv.glmnet's cvm, cvsd and lambda.1se for type.measure = "C", line by line (glmnet 4.1-8, cran/glmnet).

    R/cv.coxnet.R (C-index): ``N = apply(good, 2, sum)``; ``weights = tapply(weights, foldid, sum)``
    R/cvstats.R::

        cvm=with(cvstuff,apply(cvraw, 2, weighted.mean, w = weights, na.rm = TRUE))
        cvsd=with(cvstuff, sqrt(apply(scale(cvraw, cvm, FALSE)^2, 2, weighted.mean,
                                     w = weights, na.rm = TRUE)/(N - 1)))

    R/getOptcv.glmnet.R::

        if(match(cvname,c("AUC","C-index"),0))cvm=-cvm
        cvmin = min(cvm, na.rm = TRUE)
        idmin = cvm <= cvmin
        lambda.min = max(lambda[idmin], na.rm = TRUE)
        idmin = match(lambda.min, lambda)
        semin = (cvm + cvsd)[idmin]
        id1se = cvm <= semin
        lambda.1se = max(lambda[id1se], na.rm = TRUE)
    """
    n = np.isfinite(cvraw).sum(axis=0)  # every fold scores every penalty here: N = nfolds
    cvm = np.array([np.average(column, weights=fold_sizes) for column in cvraw.T])
    cvsd = np.sqrt(np.array([np.average((column - m) ** 2, weights=fold_sizes) for column, m in zip(cvraw.T, cvm)]) / (n - 1))
    negated = -cvm
    lambda_min = alphas[negated <= negated.min()].max()
    semin = (negated + cvsd)[np.flatnonzero(alphas == lambda_min)[0]]
    return cvm, cvsd, alphas[negated <= semin].max()


def test_lasso_cox_one_standard_error_rule_is_cv_glmnet_s():
    """198 breast cancers, 76 probes and 4 clinical variables (load_breast_cancer), 5 folds.

    The standard error is cv.glmnet's cvsd, the folds' sample standard deviation (ddof=1)
    over sqrt(N), not ddof=0: on this cohort the population version keeps 22 features, the
    glmnet rule 20.
    """
    from sksurv.datasets import load_breast_cancer

    x, y = load_breast_cancer()
    features = x.select_dtypes("number")
    time, event = y["t.tdm"].astype(float), y["e.tdm"].astype(int)
    result = fit_lasso_cox(features, time, event, seed=0, one_standard_error=True)
    alphas, scores = result.cv_table["alpha"].to_numpy(), result.fold_c_index

    # the fold scores are what they say: fold 0 refitted here with scikit-survival
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(features, event))
    z = ((features - result.mean) / result.scale).to_numpy()
    train, held = folds[0]
    path = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=alphas, max_iter=100000).fit(z[train], Surv.from_arrays(event[train], time[train]))
    chosen = int(np.flatnonzero(alphas == result.alpha)[0])
    held_c = concordance_index_censored(event[held].astype(bool), time[held], z[held] @ path.coef_[:, chosen])[0]
    assert scores[0, chosen] == pytest.approx(held_c, abs=1e-12)

    fold_sizes = np.array([len(h) for _, h in folds], dtype=float)
    cvm, cvsd, lambda_1se = _glmnet_lambda_1se(alphas, scores, fold_sizes)
    np.testing.assert_allclose(result.cv_table["mean_c_index"], cvm, rtol=1e-12)
    np.testing.assert_allclose(result.cv_table["sd_c_index"], cvsd, rtol=1e-12)
    assert result.alpha == lambda_1se
    assert len(result.selected) == 20

    # the ddof=0 standard error would have chosen a smaller penalty and more features
    se_population = np.std(scores, axis=0) / np.sqrt(len(scores))
    best = int(np.argmax(cvm))
    population_choice = alphas[cvm >= cvm[best] - se_population[best]].max()
    assert population_choice < result.alpha
    assert result.cv_table.set_index("alpha").loc[population_choice, "n_selected"] == 22
