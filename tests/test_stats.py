"""Survival statistics: Cox against published R results, log-rank by hand, LASSO-Cox, calibration."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi

from mmsurv import stats
from mmsurv.virtual.simulate import simulate_cohort


def test_cox_matches_r_coxph_on_rossi():
    # R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
    # (Fox & Weisberg, "Cox proportional-hazards regression for survival data in R", 2011)
    r_coefficients = {"fin": -0.37942, "age": -0.05744, "race": 0.31390, "wexp": -0.14980, "mar": -0.43370, "paro": -0.08487, "prio": 0.09150}
    result = stats.fit_cox(load_rossi(), "week", "arrest")
    fitted = np.log(result.table["hazard_ratio"])
    for name, coefficient in r_coefficients.items():
        assert fitted[name] == pytest.approx(coefficient, abs=2e-4)
    assert (result.table.ci_low < result.table.hazard_ratio).all() and (result.table.hazard_ratio < result.table.ci_high).all()


def test_proportional_hazards_check_flags_rossi_age():
    # Fox & Weisberg: cox.zph flags age (p ~ 0.007) and wexp in the Rossi data
    result = stats.fit_cox(load_rossi(), "week", "arrest")
    check = stats.proportional_hazards_check(result)
    assert check.loc["age", "p_value"] < 0.05
    assert check.loc["fin", "p_value"] > 0.05


def _logrank_by_hand(time, event, groups):
    """Two-group log-rank statistic: sum(O - E)^2 / sum(V) over distinct event times."""
    g = groups == groups[0]
    o_minus_e, variance = 0.0, 0.0
    for t in np.unique(time[event == 1]):
        at_risk = time >= t
        n, n1 = at_risk.sum(), (at_risk & g).sum()
        d = ((time == t) & (event == 1)).sum()
        d1 = ((time == t) & (event == 1) & g).sum()
        o_minus_e += d1 - d * n1 / n
        if n > 1:
            variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    return o_minus_e**2 / variance


def test_logrank_matches_hand_computation():
    rossi = load_rossi()
    result = stats.logrank(rossi.week, rossi.arrest, rossi.fin)
    assert result.statistic == pytest.approx(_logrank_by_hand(rossi.week.to_numpy(), rossi.arrest.to_numpy(), rossi.fin.to_numpy()), rel=1e-8)
    assert result.degrees_of_freedom == 1


def test_logrank_needs_two_groups():
    with pytest.raises(ValueError, match="two groups"):
        stats.logrank([1, 2, 3], [1, 0, 1], ["a", "a", "a"])


def test_fit_cox_rejects_missing_values():
    data = load_rossi().astype(float)
    data.loc[0, "age"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        stats.fit_cox(data, "week", "arrest")


def test_risk_cutoff_is_learned_on_training_only():
    train_risk = np.arange(10.0)
    cutoff = stats.fit_risk_cutoff(train_risk)
    assert cutoff.cutoff == pytest.approx(4.5)
    # a shifted test set keeps the training threshold: everybody is "high"
    assert (cutoff.assign(train_risk + 100) == "high").all()
    assert stats.fit_risk_cutoff(train_risk, quantile=0.75).cutoff == pytest.approx(6.75)
    with pytest.raises(ValueError, match="quantile"):
        stats.fit_risk_cutoff(train_risk, quantile=1.5)


def test_high_vs_low_hazard_ratio_on_planted_signal():
    patients = simulate_cohort(600, seed=3).patients
    groups = stats.fit_risk_cutoff(patients.true_risk).assign(patients.true_risk)
    hr = stats.high_vs_low_hazard_ratio(patients.time, patients.event, groups)
    assert hr.hazard_ratio > 2 and hr.ci_low > 1.5
    adjusted = stats.high_vs_low_hazard_ratio(patients.time, patients.event, groups, patients[["age"]])
    assert adjusted.hazard_ratio > 1.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_hazard_ratio_removes_a_centre_confounder(seed):
    """A score that only tells the centres apart: within a centre it says nothing about survival.

    Centre B's patients die twice as fast and all score "high" more often (a stain shift, say),
    so the pooled HR is far above 1; stratified by centre (R: ``coxph(Surv(t, e) ~ high +
    strata(centre))``) the HR is about 1, and it still finds a real within-centre effect.
    """
    rng = np.random.default_rng(seed)
    n = 600
    centre = np.repeat(["A", "B"], n // 2)
    high = np.where(rng.random(n) < np.where(centre == "B", 0.8, 0.2), "high", "low")
    baseline = np.where(centre == "B", 2.0, 1.0)
    time = rng.exponential(1 / baseline)
    censor = rng.exponential(2.0, size=n)
    observed, event = np.minimum(time, censor), (time <= censor).astype(int)
    pooled = stats.high_vs_low_hazard_ratio(observed, event, high)
    within = stats.high_vs_low_hazard_ratio(observed, event, high, strata=centre)
    assert pooled.hazard_ratio > 1.3 and pooled.ci_low > 1.0
    assert within.ci_low < 1.0 < within.ci_high and abs(np.log(within.hazard_ratio)) < 0.25
    real = np.minimum(rng.exponential(1 / (baseline * np.where(high == "high", 2.0, 1.0))), censor)
    effect = stats.high_vs_low_hazard_ratio(real, (real < censor).astype(int), high, strata=centre)
    assert effect.ci_low > 1.3  # planted HR 2 within each centre


def test_lasso_cox_selects_planted_features_over_noise():
    patients = simulate_cohort(500, seed=1).patients
    rng = np.random.default_rng(0)
    noise = pd.DataFrame(rng.normal(size=(len(patients), 20)), columns=[f"noise_{i}" for i in range(20)])
    features = pd.concat([patients[["proliferation", "immune", "invasion"]], noise], axis=1)
    result = stats.fit_lasso_cox(features, patients.time, patients.event, seed=0, one_standard_error=True)
    assert {"proliferation", "immune", "invasion"} <= set(result.selected)
    assert len([f for f in result.selected if f.startswith("noise")]) <= 3
    assert result.coefficients["proliferation"] > 0 and result.coefficients["immune"] < 0
    assert result.cv_table.mean_c_index.max() > 0.68
    assert result.risk(features).shape == (len(patients),)


def test_lasso_cox_scores_each_fold_at_every_penalty_when_its_path_ends_early(monkeypatch):
    """Coxnet ends a path once the deviance stops improving, as glmnet does; glmnet's ``predict(s = lambda)`` then gives a
    fold's last fit for the smaller penalties. Left unscored, a small penalty's mean C came from the folds that reached it
    only: here one fold's 0.765 was the best mean, its standard error was undefined and the one-standard-error rule crashed."""
    from mmsurv.stats import lasso_cox

    rng = np.random.default_rng(19)
    features = pd.DataFrame((rng.random((40, 4)) < 0.1).astype(float), columns=list("abcd"))  # rare mutations
    time, event = rng.exponential(1000, 40), rng.random(40) < 0.6
    lengths, fit_path = [], lasso_cox._fit_path

    def recording(x, y, l1_ratio, alphas):
        path = fit_path(x, y, l1_ratio, alphas)
        lengths.append(len(path.alphas_))
        return path

    monkeypatch.setattr(lasso_cox, "_fit_path", recording)
    result = stats.fit_lasso_cox(features, time, event, seed=0, one_standard_error=True)
    assert min(lengths[1:]) < lengths[0] == len(result.cv_table)  # a fold's path stopped before the grid's end
    assert np.isfinite(result.fold_c_index).all() and result.cv_table["sd_c_index"].notna().all()


def test_lasso_cox_path_keeps_the_penalties_that_converged(monkeypatch):
    """Coxnet spends ``max_iter`` over the whole path and returns the unfinished fits after it with a ConvergenceWarning;
    glmnet keeps the solutions for the larger penalties only, and so does the kit (here with a budget of 50 iterations)."""
    from sklearn.exceptions import ConvergenceWarning
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    from mmsurv.stats import lasso_cox

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 6)), Surv.from_arrays(rng.random(80) < 0.6, rng.exponential(1000, 80))
    monkeypatch.setattr(lasso_cox, "_MAX_ITER", 50)
    grid = lasso_cox._fit_path(x, y, 1.0, None).alphas_
    with pytest.warns(ConvergenceWarning):  # what coxnet returns: the same grid, its end unfinished
        unfinished = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=np.append(grid, grid[-1] * 0.9), max_iter=50).fit(x, y)
    assert 1 < len(grid) < 48 and len(unfinished.alphas_) > len(grid)  # 48 penalties converge with the default budget
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=grid, max_iter=50).fit(x, y)  # every kept penalty converged
    # a fold whose first penalty already fails stays unscored (rare mutations; fold 4 of this cohort, default budget)
    monkeypatch.setattr(lasso_cox, "_MAX_ITER", 100_000)
    rng = np.random.default_rng(168)
    features = pd.DataFrame((rng.random((40, 4)) < 0.1).astype(float), columns=list("abcd"))
    time, event = rng.exponential(1000, 40), rng.random(40) < 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = stats.fit_lasso_cox(features, time, event, seed=0)
    assert np.isnan(result.fold_c_index).all(axis=1).tolist() == [False, False, False, False, True]


def test_lasso_cox_that_selects_nothing_says_so_without_a_warning():
    rng = np.random.default_rng(14)  # pure noise: at this seed no feature enters any fold's path
    features = pd.DataFrame(rng.normal(size=(60, 5)), columns=list("abcde"))
    time, event = rng.exponential(1000, 60), rng.random(60) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # coxnet's "all coefficients are zero" is a result here: nothing selected
        result = stats.fit_lasso_cox(features, time, event, seed=0, one_standard_error=True)
    assert result.selected == [] and (result.risk(features) == 0).all()


def test_lasso_cox_refuses_too_few_events_to_cross_validate():
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(30, 3)), columns=list("abc"))
    event = np.zeros(30, dtype=bool)
    event[:1] = True  # one death: a single fold can rank anyone
    with pytest.raises(ValueError, match="too few events to choose a penalty"):
        stats.fit_lasso_cox(features, rng.exponential(1000, 30), event, seed=0)


def test_oracle_survival_is_calibrated():
    cohort = simulate_cohort(3000, seed=2)
    at = 3 * 365.25
    predicted = cohort.oracle_survival([at])[:, 0]
    table = stats.calibration_at_time(cohort.patients.time, cohort.patients.event, predicted, at, n_bins=5)
    assert len(table) == 5
    assert np.abs(table.predicted - table.observed).max() < 0.06
    assert ((table.observed_low <= table.observed) & (table.observed <= table.observed_high)).all()


def test_kaplan_meier_plot_draws_each_group():
    import matplotlib

    matplotlib.use("Agg")
    rossi = load_rossi()
    ax = stats.plot_kaplan_meier(rossi.week, rossi.arrest, rossi.fin.map({0: "no aid", 1: "aid"}), time_unit="weeks")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any(label.startswith("aid") for label in labels) and any(label.startswith("no aid") for label in labels)


def test_selection_helpers_find_planted_features_and_refit_selection_inside_folds():
    from mmsurv.metrics import concordance_index
    from mmsurv.stats import cross_validated_risk, frequent_features, selection_recovery, selection_stability

    rng = np.random.default_rng(3)
    n, p = 200, 40
    x = pd.DataFrame((rng.random((n, p)) < 0.25).astype(float), columns=[f"g{k}" for k in range(p)], index=[f"P{k}" for k in range(n)])
    log_hazard = 1.2 * x["g0"] - 1.2 * x["g1"]
    time = rng.exponential(1 / np.exp(log_hazard))
    censor = rng.exponential(2.0, n)
    event, time = (time <= censor).astype(int), np.minimum(time, censor)
    assert frequent_features(x.assign(rare=0.0), x.index[:100], 5) == list(x.columns)  # "rare" never mutated
    fit = stats.fit_lasso_cox(x, time, event, seed=0, one_standard_error=True)
    frequency = selection_stability(x, time, event, alpha=fit.alpha, n_bootstrap=20, seed=0)
    assert set(frequency.index[:2]) == {"g0", "g1"} and frequency[["g0", "g1"]].min() > 0.9
    recovery = selection_recovery(fit.selected, ["g0", "g1", "not_a_candidate"], x.columns)
    assert recovery["recall"] == 1.0 and recovery["n_findable"] == 2 and recovery["chance_precision"] == 2 / p
    with pytest.raises(ValueError, match="not candidates"):
        selection_recovery(["elsewhere"], ["g0"], x.columns)
    risk, per_fold = cross_validated_risk(x, time, event, seed=0)
    assert len(per_fold) == 5 and not np.isnan(risk).any()
    assert concordance_index(time, event, risk) > 0.65
