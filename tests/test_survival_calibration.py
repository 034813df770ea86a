"""Calibration of predicted survival curves: D-calibration, 1-calibration and the ICI.

Reference: SurvivalEVAL 0.9.0 (Qi S.-A., Sun W., Greiner R., "SurvivalEVAL: a comprehensive open-source
library for evaluating individual survival distributions", AAAI Fall Symposium 2023; MIT licence),
a test dependency only (it imports matplotlib, which the metrics may not).

Real data: GBSG2, the German Breast Cancer Study Group 2 trial (686 patients, recurrence-free
survival; Schumacher et al., J Clin Oncol 1994), as shipped by scikit-survival
(``sksurv.datasets.load_gbsg2``, from the R package TH.data, GPL-2/3). A Cox model fitted on half
the patients predicts curves for the other half, which are scored here and by SurvivalEVAL.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmsurv.metrics.survival_calibration import d_calibration, integrated_calibration_index, one_calibration, predicted_survival_at


@pytest.fixture(scope="module")
def gbsg2_curves():
    from sksurv.datasets import load_gbsg2
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    x, y = load_gbsg2()
    features = np.column_stack([x["age"], x["tsize"], np.log1p(x["pnodes"]), np.log1p(x["progrec"]), x["horTh"] == "yes"]).astype(float)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2 :]
    cox = CoxPHSurvivalAnalysis().fit(features[train], y[train])
    grid = np.unique(y["time"][train][y["cens"][train]])
    curves = np.array([fn(grid) for fn in cox.predict_survival_function(features[test])])
    return curves, grid, y["time"][test].astype(float), y["cens"][test].astype(bool), y[train]


def test_d_calibration_matches_survivaleval_on_gbsg2(gbsg2_curves):
    from SurvivalEVAL.evaluations.calibration.distributional.distribution_calibration import d_calibration as reference

    curves, grid, time, event, _ = gbsg2_curves
    s = predicted_survival_at(curves, grid, time)
    assert (~event).sum() > 100 and s.min() > 0 and (s == 1).any()  # censored patients; some times before the first event (S = 1)
    ours = d_calibration(s, event)
    statistic, p_value, histogram = reference(s, event.astype(int), num_bins=10)
    np.testing.assert_allclose(ours.histogram, histogram[::-1], atol=1e-9)  # SurvivalEVAL counts its bins from the top
    assert ours.statistic == pytest.approx(statistic, abs=1e-9) and ours.p_value == pytest.approx(p_value, abs=1e-12)
    assert ours.histogram.sum() == pytest.approx(len(time))


def test_d_calibration_edge_values_match_survivaleval():
    from SurvivalEVAL.evaluations.calibration.distributional.distribution_calibration import d_calibration as reference

    s = np.array([1.0, 0.0, 0.95, 0.05, 0.5, 1.0, 0.0, 0.31, 0.77, 0.12])
    event = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    np.testing.assert_allclose(d_calibration(s, event).histogram, reference(s, event.astype(int), num_bins=10)[2][::-1], atol=1e-12)


def test_one_calibration_matches_survivaleval_on_gbsg2(gbsg2_curves):
    from SurvivalEVAL.evaluations.calibration.single_time.one_calibration import one_calibration as reference

    curves, grid, time, event, _ = gbsg2_curves
    at_time = 1825.0  # five years
    p = 1.0 - predicted_survival_at(curves, grid, np.full(len(time), at_time))
    ours = one_calibration(p, time, event, at_time)
    p_value, details = reference(p, time, event.astype(int), at_time, num_bins=10, return_details=True)
    np.testing.assert_allclose(ours.observed, details["observed_probabilities"], atol=1e-12)
    np.testing.assert_allclose(ours.expected, details["expected_probabilities"], atol=1e-12)
    np.testing.assert_allclose(ours.variance, details["variances"], rtol=1e-9)
    assert ours.statistic == pytest.approx(details["statistics"], rel=1e-9) and ours.p_value == pytest.approx(p_value, rel=1e-6)


def test_integrated_calibration_index_matches_survivaleval_on_gbsg2(gbsg2_curves):
    from SurvivalEVAL.evaluations.calibration.single_time.integrated_calibration_index import integrated_calibration_index as reference

    curves, grid, time, event, _ = gbsg2_curves
    at_time = 1825.0
    p = 1.0 - predicted_survival_at(curves, grid, np.full(len(time), at_time))
    ours = integrated_calibration_index(p, time, event, at_time)
    theirs = reference(p, time, event.astype(int), at_time)
    # the same spline space and the same Cox partial likelihood (Efron); the baseline hazards differ
    # (Breslow here, Efron there) by far less than the calibration errors measured
    assert ours.ici == pytest.approx(theirs["ICI"], abs=2e-3)
    assert ours.e50 == pytest.approx(theirs["E50"], abs=3e-3) and ours.e90 == pytest.approx(theirs["E90"], abs=3e-3)
    np.testing.assert_allclose(ours.observed_on_grid, theirs["curve"]["cal_pred"], atol=5e-3)


def _exponential_cohort(seed: int, n: int = 4000):
    """Exponential event times with known rates, uniform censoring: the oracle's curves are exact."""
    rng = np.random.default_rng(seed)
    rate = np.exp(0.7 * rng.normal(size=n)) / 10.0
    event_time = rng.exponential(1.0 / rate)
    censor_time = rng.uniform(0, 15, size=n)
    return rate, np.minimum(event_time, censor_time), event_time <= censor_time


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_d_calibration_flags_curves_shifted_on_purpose_and_passes_the_oracle(seed):
    rate, time, event = _exponential_cohort(seed)
    oracle = d_calibration(np.exp(-rate * time), event)
    doubled_hazard = d_calibration(np.exp(-2.0 * rate * time), event)  # every curve too pessimistic
    # the oracle's bins hold 10% each within sampling error (SD of a proportion ~0.005 here)
    assert np.abs(oracle.proportions - 0.1).max() < 0.025, oracle.proportions
    assert oracle.p_value > 1e-4  # uniform under the oracle: below 1e-4 once in 10,000 cohorts
    assert doubled_hazard.p_value < 1e-6
    assert doubled_hazard.proportions[0] > 0.15  # too many patients whose curve was already low at their time


@pytest.mark.parametrize("seed", [0, 1])
def test_one_calibration_and_ici_flag_shifted_probabilities_and_pass_the_oracle(seed):
    rate, time, event = _exponential_cohort(seed)
    at_time = 3.0  # predicted probabilities from about 0.05 to 0.9: no group whose Kaplan-Meier estimate reaches 0 or 1
    truth = 1.0 - np.exp(-rate * at_time)
    shifted = 1.0 - np.exp(-2.0 * rate * at_time)
    assert one_calibration(shifted, time, event, at_time).p_value < 1e-6
    assert one_calibration(truth, time, event, at_time).p_value > 1e-4
    oracle_ici, shifted_ici = integrated_calibration_index(truth, time, event, at_time), integrated_calibration_index(shifted, time, event, at_time)
    assert oracle_ici.ici < 0.02 < shifted_ici.ici
    assert shifted_ici.ici == pytest.approx(np.mean(shifted - truth), rel=0.25)  # the curve recovers the planted shift


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        d_calibration(np.array([0.5, 1.2]), np.array([1, 0]))
    with pytest.raises(ValueError, match="same length"):
        d_calibration(np.array([0.5, 0.2]), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match="strictly increasing"):
        predicted_survival_at(np.ones((2, 2)), np.array([2.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="event_probability"):
        one_calibration(np.array([0.5, np.nan]), np.array([1.0, 2.0]), np.array([1, 0]), 1.5)
    assert predicted_survival_at(np.array([[0.9, 0.5]]), np.array([1.0, 2.0]), np.array([0.5]))[0] == 1.0  # before the first time


def test_calibration_figure_shows_the_three_views(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from mmsurv.stats import plot_survival_calibration

    rate, time, event = _exponential_cohort(0, n=1500)
    grid = np.linspace(0.1, 12, 60)
    fig = plot_survival_calibration(np.exp(-np.outer(rate, grid)), grid, time, event, [3.0, 6.0], label="oracle")
    left, middle, right = fig.axes
    assert len(left.lines) == 2 * 5 + 2 + 1  # observed and predicted per group, two legend entries, the time marker
    assert "ICI" in " ".join(t.get_text() for t in middle.get_legend().get_texts())
    assert right.get_title().startswith("D-calibration: p = ")
    fig.savefig(tmp_path / "calibration.png")


def test_survival_scores_match_scikit_survival_and_survivaleval_on_gbsg2(gbsg2_curves):
    """One row of notebook 04/05's survival table, each measure against its reference: scikit-survival's (0.28 in the lock)
    ``concordance_index_ipcw``, ``cumulative_dynamic_auc``, ``brier_score`` and ``integrated_brier_score`` (IPCW with the
    training censoring distribution), SurvivalEVAL's D-calibration."""
    from sksurv.metrics import brier_score, concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score
    from SurvivalEVAL.evaluations.calibration.distributional.distribution_calibration import d_calibration as reference_d_calibration

    from mmsurv.metrics import survival_scores

    curves, grid, time, event, train = gbsg2_curves
    test = np.array(list(zip(event, time)), dtype=train.dtype)
    horizon, tau, start = 1825.0, 2000.0, 365.0
    risk = -curves.sum(axis=1)
    row = survival_scores(
        time, event, risk, horizon, train_time=train["time"], train_event=train["cens"], tau=tau, curves=curves, grid=grid, integrate_from=start
    )
    assert row["uno_c"] == pytest.approx(concordance_index_ipcw(train, test, risk, tau=tau)[0], abs=1e-9)
    assert row["td_auc_at_horizon"] == pytest.approx(cumulative_dynamic_auc(train, test, risk, [horizon])[0][0], abs=1e-9)
    at_horizon = predicted_survival_at(curves, grid, np.full(len(time), horizon))
    assert row["brier_at_horizon"] == pytest.approx(brier_score(train, test, at_horizon[:, None], [horizon])[1][0], abs=1e-9)
    span = (grid >= start) & (grid <= tau)
    assert row["integrated_brier"] == pytest.approx(integrated_brier_score(train, test, curves[:, span], grid[span]), abs=1e-9)
    assert row["d_calibration_p"] == pytest.approx(
        reference_d_calibration(predicted_survival_at(curves, grid, time), event.astype(int))[1], abs=1e-12
    )

    # a landmark classifier gives P(event by the horizon) only: ranking and the Brier score there, no curve measure
    classifier = survival_scores(
        time, event, 1 - at_horizon, horizon, train_time=train["time"], train_event=train["cens"], tau=tau, survival_at_horizon=at_horizon
    )
    assert (
        classifier["brier_at_horizon"] == pytest.approx(row["brier_at_horizon"])
        and np.isnan(classifier["integrated_brier"])
        and np.isnan(classifier["d_calibration_p"])
    )
    ranking_only = survival_scores(time, event, risk, horizon, train_time=train["time"], train_event=train["cens"], tau=tau)
    assert np.isnan(ranking_only["brier_at_horizon"]) and ranking_only["uno_c"] == pytest.approx(row["uno_c"])
    with pytest.raises(ValueError, match="grid"):
        survival_scores(time, event, risk, horizon, train_time=train["time"], train_event=train["cens"], curves=curves)
