"""Every metric rejects bad input with a ValueError that names the problem."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from mmsurv import metrics

TIME = np.array([5.0, 8.0, 3.0, 12.0, 7.0, 9.0])
EVENT = np.array([1, 0, 1, 1, 0, 1])
RISK = np.array([0.3, 0.1, 0.9, 0.2, 0.4, 0.5])
TIMES = np.array([4.0, 8.0])
SURV = np.full((6, 2), 0.5)

SURVIVAL_METRICS = {
    "harrell": lambda t, e, r: metrics.concordance_index(t, e, r),
    "uno": lambda t, e, r: metrics.uno_concordance_index(t, e, r, train_time=TIME, train_event=EVENT),
    "td_auc": lambda t, e, r: metrics.time_dependent_auc(t, e, r, TIMES, train_time=TIME, train_event=EVENT),
    "brier": lambda t, e, r: metrics.brier_score(t, e, SURV[: len(t)], TIMES, train_time=TIME, train_event=EVENT),
    "ibs": lambda t, e, r: metrics.integrated_brier_score(t, e, SURV[: len(t)], TIMES, train_time=TIME, train_event=EVENT),
}

BAD_CASES = {
    "nan time": (np.r_[np.nan, TIME[1:]], EVENT, RISK, "NaN"),
    "negative time": (np.r_[-1.0, TIME[1:]], EVENT, RISK, "negative"),
    "event not 0/1": (TIME, np.r_[2, EVENT[1:]], RISK, "coded 0"),
    "nan event": (TIME, np.r_[np.nan, EVENT[1:]], RISK, "NaN"),
    "length mismatch": (TIME, EVENT[:-1], RISK, "length mismatch"),
}


@pytest.mark.parametrize("metric", sorted(SURVIVAL_METRICS))
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_survival_input_raises(metric, case):
    time, event, risk, message = BAD_CASES[case]
    with pytest.raises(ValueError, match=message):
        SURVIVAL_METRICS[metric](time, event, risk)


@pytest.mark.parametrize("metric", ["harrell", "uno", "td_auc"])
def test_all_censored_raises(metric):
    with pytest.raises(ValueError, match="censored"):
        SURVIVAL_METRICS[metric](TIME, np.zeros(6, int), RISK)


@pytest.mark.parametrize("metric", ["harrell", "uno"])
def test_nan_risk_raises(metric):
    with pytest.raises(ValueError, match="risk contains"):
        SURVIVAL_METRICS[metric](TIME, EVENT, np.r_[np.nan, RISK[1:]])


def test_no_comparable_pairs_raises():
    # the only event is the last time: nobody is followed longer
    with pytest.raises(ValueError, match="no comparable pairs"):
        metrics.concordance_index([1.0, 2.0, 3.0], [0, 0, 1], [0.1, 0.2, 0.3])
    # two deaths at the same time are not comparable either
    with pytest.raises(ValueError, match="no comparable pairs"):
        metrics.concordance_index([4.0, 4.0], [1, 1], [0.1, 0.2])


def test_ipcw_beyond_training_follow_up_raises():
    with pytest.raises(ValueError, match="beyond the last training follow-up"):
        metrics.uno_concordance_index(TIME * 10, EVENT, RISK, train_time=TIME, train_event=EVENT)


def test_time_dependent_auc_outside_follow_up_raises():
    with pytest.raises(ValueError, match="no cases"):
        metrics.time_dependent_auc(TIME, EVENT, RISK, [1.0], train_time=TIME, train_event=EVENT)


def test_brier_rejects_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.brier_score(TIME, EVENT, SURV + 1, TIMES, train_time=TIME, train_event=EVENT)


@pytest.mark.parametrize(
    "call",
    [
        functools.partial(metrics.roc_auc, [0, 1, 2, 1]),
        functools.partial(metrics.average_precision, [0, 1, 2, 1]),
    ],
)
def test_labels_must_be_binary(call):
    with pytest.raises(ValueError, match="only 0 and 1"):
        call([0.1, 0.2, 0.3, 0.4])


def test_single_class_and_mismatch_raise():
    with pytest.raises(ValueError, match="only one class"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="length mismatch"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        metrics.average_precision([0, 1, 1], [0.1, np.nan, 0.3])


def test_correlation_and_icc_bad_input():
    with pytest.raises(ValueError, match="constant"):
        metrics.spearman([1, 1, 1, 1, 1], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="at least 4"):
        metrics.pearson([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        metrics.icc([[1, 2], [np.nan, 3], [2, 2]])
    with pytest.raises(ValueError, match="kind"):
        metrics.icc([[1, 2], [2, 3], [3, 3]], kind="ICC(1,1)")


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="length mismatch"):
        metrics.bootstrap_ci(metrics.concordance_index, TIME, EVENT[:-1], RISK)
    with pytest.raises(ValueError, match="censored"):
        metrics.bootstrap_ci(metrics.concordance_index, TIME, np.zeros(6), RISK)
