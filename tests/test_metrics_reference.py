"""mmsurv.metrics agrees with lifelines, scikit-survival, scikit-learn and scipy to 1e-6.

Every comparison runs on real data that ships inside those packages (veterans lung cancer,
GBSG2, the 198-patient breast-cancer expression set, lifelines' NCCTG lung data), all of
which have tied times and tied risk scores.
"""

from __future__ import annotations

import numpy as np
import pytest
from lifelines.utils import concordance_index as lifelines_c
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score
from sksurv import metrics as sk
from sksurv.util import Surv

from mmsurv import metrics

TOL = 1e-6


def test_tied_times_present(real_survival):
    _, time, _, _ = real_survival
    assert len(np.unique(time)) < len(time)


def test_harrell_c_matches_lifelines_and_sksurv(real_survival):
    _, time, event, risk = real_survival
    ours = metrics.concordance_index(time, event, risk)
    # lifelines takes a predicted survival time (higher = later death): pass -risk
    assert ours == pytest.approx(lifelines_c(time, -risk, event), abs=TOL)
    assert ours == pytest.approx(sk.concordance_index_censored(event.astype(bool), time, risk)[0], abs=TOL)


@pytest.mark.parametrize("tau_quantile", [None, 0.6])
def test_uno_c_matches_sksurv(real_survival, tau_quantile):
    _, time, event, risk = real_survival
    tau = None if tau_quantile is None else float(np.quantile(time, tau_quantile))
    y = Surv.from_arrays(event, time)
    # evaluate on the patients followed no longer than the training maximum (G is defined there)
    test = time < time.max()
    expected = sk.concordance_index_ipcw(y, y[test], risk[test], tau=tau)[0]
    ours = metrics.uno_concordance_index(time[test], event[test], risk[test], train_time=time, train_event=event, tau=tau)
    assert ours == pytest.approx(expected, abs=TOL)


def test_time_dependent_auc_matches_sksurv(real_survival):
    _, time, event, risk = real_survival
    y = Surv.from_arrays(event, time)
    times = np.quantile(time[event == 1], [0.2, 0.4, 0.6, 0.8])
    expected, expected_mean = sk.cumulative_dynamic_auc(y, y, risk, times)
    auc, mean_auc = metrics.time_dependent_auc(time, event, risk, times, train_time=time, train_event=event)
    np.testing.assert_allclose(auc, expected, atol=TOL)
    assert mean_auc == pytest.approx(expected_mean, abs=TOL)


def test_brier_and_integrated_brier_match_sksurv(real_survival):
    _, time, event, risk = real_survival
    y = Surv.from_arrays(event, time)
    times = np.quantile(time[event == 1], [0.1, 0.3, 0.5, 0.7])
    # a survival probability that decreases with risk and with time, inside (0, 1)
    scaled = (risk - risk.min()) / (np.ptp(risk) + 1e-12)
    surv = np.exp(-np.outer(0.5 + scaled, times / times.max()))
    np.testing.assert_allclose(
        metrics.brier_score(time, event, surv, times, train_time=time, train_event=event),
        sk.brier_score(y, y, surv, times)[1],
        atol=TOL,
    )
    assert metrics.integrated_brier_score(time, event, surv, times, train_time=time, train_event=event) == pytest.approx(
        sk.integrated_brier_score(y, y, surv, times), abs=TOL
    )


def test_brier_scores_patients_followed_beyond_the_training_patients(real_survival):
    """An external patient followed longer than any training patient is a control at every time scored: the Brier score does
    not need the censoring distribution at her own time. scikit-survival refuses such a patient when the longest training
    follow-up ends in an event (the censoring distribution then never reaches 0); the reference is its score with her follow-up
    cut to just under the training maximum, which leaves her a control at every time."""
    _, time, event, risk = real_survival
    train = np.arange(len(time)) % 2 == 0
    train_time, train_event = time[train], event[train].copy()
    longest = np.argmax(train_time)
    train_event[longest] = 1
    test_time, test_event = time[~train], event[~train]
    test_time = np.where(np.arange(len(test_time)) < 5, train_time.max() + 100.0, test_time)  # five followed beyond the training patients
    times = np.quantile(test_time[test_event == 1], [0.2, 0.5, 0.8])
    assert times[-1] < train_time.max() - 1
    scaled = (risk[~train] - risk.min()) / (np.ptp(risk) + 1e-12)
    surv = np.exp(-np.outer(0.5 + scaled, times / times.max()))
    y_train = Surv.from_arrays(train_event, train_time)
    with pytest.raises(ValueError, match="largest observed time"):
        sk.brier_score(y_train, Surv.from_arrays(test_event, test_time), surv, times)
    cut = Surv.from_arrays(test_event, np.minimum(test_time, train_time.max() - 1))
    np.testing.assert_allclose(
        metrics.brier_score(test_time, test_event, surv, times, train_time=train_time, train_event=train_event),
        sk.brier_score(y_train, cut, surv, times)[1],
        atol=TOL,
    )


def test_binary_auc_and_average_precision_match_sklearn(real_survival):
    _, time, event, risk = real_survival
    label = event  # "did the event happen" scored by risk; risks are heavily tied
    assert metrics.roc_auc(label, risk) == pytest.approx(roc_auc_score(label, risk), abs=TOL)
    assert metrics.average_precision(label, risk) == pytest.approx(average_precision_score(label, risk), abs=TOL)


def test_multiclass_one_vs_rest_matches_sklearn():
    from sksurv.datasets import load_gbsg2

    x, _ = load_gbsg2()
    grade = x["tgrade"].cat.codes.to_numpy()  # 3 real classes
    rng = np.random.default_rng(0)
    features = np.column_stack([x["tsize"], x["pnodes"], x["age"]]).astype(float)
    logits = features @ rng.normal(size=(3, 3)) / 20
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    per_class, macro = metrics.multiclass_roc_auc(grade, proba)
    assert macro == pytest.approx(roc_auc_score(grade, proba, multi_class="ovr"), abs=TOL)
    for k in range(3):
        assert per_class[k] == pytest.approx(roc_auc_score(grade == k, proba[:, k]), abs=TOL)
    per_class_ap, macro_ap = metrics.multiclass_average_precision(grade, proba)
    expected_ap = [average_precision_score(grade == k, proba[:, k]) for k in range(3)]
    np.testing.assert_allclose(per_class_ap, expected_ap, atol=TOL)
    assert macro_ap == pytest.approx(np.mean(expected_ap), abs=TOL)


def test_correlations_match_scipy(real_survival):
    _, time, _, risk = real_survival
    pearson = metrics.pearson(time, risk)
    reference = stats.pearsonr(time, risk)
    assert pearson.estimate == pytest.approx(reference.statistic, abs=TOL)
    interval = reference.confidence_interval(0.95)  # scipy: Fisher z transform
    assert (pearson.ci_low, pearson.ci_high) == pytest.approx((interval.low, interval.high), abs=TOL)
    spearman = metrics.spearman(time, risk)
    assert spearman.estimate == pytest.approx(stats.spearmanr(time, risk).statistic, abs=TOL)
    assert spearman.ci_low < spearman.estimate < spearman.ci_high


def test_icc_matches_shrout_fleiss_table():
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
    # Reported: ICC(2,1) = 0.29, ICC(3,1) = 0.71.
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert metrics.icc(ratings, "ICC(2,1)") == pytest.approx(0.29, abs=0.005)
    assert metrics.icc(ratings, "ICC(3,1)") == pytest.approx(0.71, abs=0.005)


def test_icc_consistency_ignores_a_fixed_offset_but_agreement_does_not():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=50)
    ratings = np.column_stack([truth + 0.1 * rng.normal(size=50), truth + 2.0 + 0.1 * rng.normal(size=50)])
    assert metrics.icc(ratings, "ICC(3,1)") > 0.95
    assert metrics.icc(ratings, "ICC(2,1)") < 0.5


def _delong_variance_naive(y, score):
    """Textbook DeLong variance from the O(n^2) placement values (DeLong et al. 1988)."""
    pos, neg = score[y == 1], score[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)


def test_delong_matches_textbook_placement_values(real_survival):
    _, time, event, risk = real_survival
    other = -time + np.random.default_rng(0).normal(scale=time.std(), size=len(time))
    result = metrics.delong_test(event, risk, other)
    assert result.auc_a == pytest.approx(roc_auc_score(event, risk), abs=TOL)
    assert result.auc_b == pytest.approx(roc_auc_score(event, other), abs=TOL)
    half_width = (result.ci_a[1] - result.ci_a[0]) / 2
    assert half_width == pytest.approx(stats.norm.ppf(0.975) * np.sqrt(_delong_variance_naive(event, risk)), abs=TOL)


def test_delong_paired_comparison_worked_by_hand():
    """A correlated pair small enough to work DeLong's test out by hand (DeLong et al. 1988, eqs. for V10, V01, S).

    Three cases and three controls, two scores. Placement values (share of the other class each
    sample beats): A: V10 = (1, 1, 2/3), V01 = (2/3, 1, 1); B: V10 = (1, 1, 1/3), V01 = (2/3, 2/3, 1).
    AUC A = 8/9, B = 7/9. Sample covariances (ddof=1, as pROC's ``roc.test``): S10 = [[1/27, 2/27],
    [2/27, 4/27]], S01 = [[1/27, 1/54], [1/54, 1/27]]. Var(A - B) = (1/27 + 4/27 - 4/27) / 3 +
    (1/27 + 1/27 - 1/27) / 3 = 2/81, so Z = (1/9) / (sqrt(2) / 9) = 1 / sqrt(2) and p = 0.4795.
    Without the covariance term (unpaired) Var would be 7/81, Z = 1 / sqrt(7), p = 0.7055: this
    test fails if the term goes.
    """
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.6, 0.4, 0.5, 0.3, 0.1])
    b = np.array([0.8, 0.7, 0.2, 0.6, 0.4, 0.1])
    result = metrics.delong_test(y, a, b)
    assert result.auc_a == pytest.approx(8 / 9, abs=1e-12) and result.auc_b == pytest.approx(7 / 9, abs=1e-12)
    assert result.z == pytest.approx(1 / np.sqrt(2), abs=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(1 / np.sqrt(2)), abs=1e-12)  # 0.4795
    half_width = stats.norm.ppf(0.975) * np.sqrt(2 / 81)
    assert (result.ci_low, result.ci_high) == pytest.approx((1 / 9 - half_width, 1 / 9 + half_width), abs=1e-12)
    assert (result.ci_a[1] - result.ci_a[0]) / 2 == pytest.approx(stats.norm.ppf(0.975) * np.sqrt(2 / 81), abs=1e-12)  # (1/27 + 1/27) / 3


def test_delong_same_scores_give_no_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = y + rng.normal(size=200)
    result = metrics.delong_test(y, score, score)
    assert result.difference == 0 and result.p_value == 1.0


def test_delong_detects_a_better_score():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    strong, weak = y + 0.5 * rng.normal(size=400), y + 3 * rng.normal(size=400)
    result = metrics.delong_test(y, strong, weak)
    assert result.difference > 0 and result.p_value < 0.001 and result.ci_low > 0


def test_holm_matches_the_worked_example_and_r_p_adjust():
    """Hand-worked: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04, made non-decreasing: 0.02, 0.03, 0.06,
    0.06 (R 4.x: ``p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm")`` prints 0.03 0.06 0.06 0.02)."""
    assert metrics.holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)
    assert metrics.holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert metrics.holm_adjust([0.02, 0.02]) == pytest.approx([0.04, 0.04])  # ties
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.holm_adjust([0.2, float("nan")])


def _gbsg2_three_class():
    """GBSG2 tumour grade (3 real classes) scored by a fixed random softmax of three covariates."""
    from sksurv.datasets import load_gbsg2

    x, _ = load_gbsg2()
    grade = x["tgrade"].cat.codes.to_numpy()
    features = np.column_stack([x["tsize"], x["pnodes"], x["age"]]).astype(float)
    logits = features @ np.random.default_rng(0).normal(size=(3, 3)) / 20
    return grade, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_multiclass_report_matches_sklearn_and_brackets_the_estimates():
    grade, proba = _gbsg2_three_class()
    report = metrics.multiclass_report(grade, proba, class_names=["I", "II", "III"], n_resamples=200)
    assert list(report.index) == ["I", "II", "III", "macro"]
    assert list(report.columns) == ["auc", "auc_low", "auc_high", "ap", "ap_low", "ap_high", "n_positive"]
    for k, name in enumerate(["I", "II", "III"]):
        assert report.loc[name, "auc"] == pytest.approx(roc_auc_score(grade == k, proba[:, k]), abs=TOL)
        assert report.loc[name, "ap"] == pytest.approx(average_precision_score(grade == k, proba[:, k]), abs=TOL)
        assert report.loc[name, "n_positive"] == (grade == k).sum()
    assert report.loc["macro", "auc"] == pytest.approx(roc_auc_score(grade, proba, multi_class="ovr"), abs=TOL)
    expected_ap = np.mean([average_precision_score(grade == k, proba[:, k]) for k in range(3)])
    assert report.loc["macro", "ap"] == pytest.approx(expected_ap, abs=TOL)
    assert report.loc["macro", "n_positive"] == len(grade)
    assert (report["auc_low"] <= report["auc"]).all() and (report["auc"] <= report["auc_high"]).all()
    assert (report["ap_low"] <= report["ap"]).all() and (report["ap"] <= report["ap_high"]).all()


def test_multiclass_report_resamples_whole_patients():
    # three identical tiles per patient: resampling patients reproduces the per-patient bootstrap
    # exactly (AUC and AP do not change when every row is repeated), resampling tiles is too narrow
    grade, proba = _gbsg2_three_class()
    names = ["I", "II", "III"]
    per_patient = metrics.multiclass_report(grade, proba, class_names=names, n_resamples=200, seed=3)
    tiles_grade, tiles_proba, patient = np.repeat(grade, 3), np.repeat(proba, 3, axis=0), np.repeat(np.arange(len(grade)), 3)
    grouped = metrics.multiclass_report(tiles_grade, tiles_proba, class_names=names, groups=patient, n_resamples=200, seed=3)
    ungrouped = metrics.multiclass_report(tiles_grade, tiles_proba, class_names=names, n_resamples=200, seed=3)
    columns = ["auc", "auc_low", "auc_high", "ap", "ap_low", "ap_high"]
    np.testing.assert_allclose(grouped[columns], per_patient[columns], atol=TOL)
    assert (ungrouped["auc_high"] - ungrouped["auc_low"] < grouped["auc_high"] - grouped["auc_low"]).all()


def test_multiclass_report_skips_resamples_missing_a_class_and_checks_names():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(40, int), np.ones(40, int), np.full(2, 2)]  # class 2: two samples, absent from ~13% of resamples
    proba = rng.dirichlet(np.ones(3), size=len(y))
    report = metrics.multiclass_report(y, proba, class_names=["LUAD", "LUSC", "normal"], n_resamples=100)
    assert report[["auc_low", "auc_high", "ap_low", "ap_high"]].notna().all().all()
    with pytest.raises(ValueError, match="class_names"):
        metrics.multiclass_report(y, proba, class_names=["LUAD", "LUSC"])


def test_confusion_counts_matches_sklearn():
    from sklearn.metrics import confusion_matrix

    grade, proba = _gbsg2_three_class()
    predicted = proba.argmax(axis=1)
    np.testing.assert_array_equal(metrics.confusion_counts(grade, predicted, 3), confusion_matrix(grade, predicted, labels=[0, 1, 2]))
    # a class never predicted (or never present) keeps its row and column
    np.testing.assert_array_equal(metrics.confusion_counts([0, 0, 1], [0, 1, 1], 4), confusion_matrix([0, 0, 1], [0, 1, 1], labels=[0, 1, 2, 3]))
    with pytest.raises(ValueError, match="class indices"):
        metrics.confusion_counts([0, 3], [0, 1], 3)


def test_multiclass_report_counts_the_clusters_it_resampled():
    # 12 sample units of 6 patients (a tumour and a normal unit each): grouped by patient the
    # bootstrap draws 6 clusters; without groups (or grouped by unit) it draws the 12 rows
    rng = np.random.default_rng(0)
    y = np.tile([0, 1, 2], 4)
    proba = rng.dirichlet(np.ones(3), size=len(y))
    patient = np.repeat([f"P{i}" for i in range(6)], 2)
    by_patient = metrics.multiclass_report(y, proba, class_names=["LUAD", "LUSC", "normal"], groups=patient, n_resamples=20)
    by_unit = metrics.multiclass_report(y, proba, class_names=["LUAD", "LUSC", "normal"], groups=np.arange(len(y)), n_resamples=20)
    ungrouped = metrics.multiclass_report(y, proba, class_names=["LUAD", "LUSC", "normal"], n_resamples=20)
    assert by_patient.attrs["n_clusters"] == 6
    assert by_unit.attrs["n_clusters"] == ungrouped.attrs["n_clusters"] == 12
