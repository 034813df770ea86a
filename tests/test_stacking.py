"""Stacking on cross-fitted block predictions (mmsurv.stats.stacking) and the Uno's C truncation rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv import metrics
from mmsurv.ledger import FitLedger
from mmsurv.metrics.time_dependent import time_dependent_auc, truncation_time
from mmsurv.stats.stacking import fit_stacked_classifier


def _cohort(n: int = 240, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    signal = rng.normal(size=n)
    labels = pd.Series((signal + rng.normal(scale=0.8, size=n) > 0).astype(float), index=ids)
    clinical = pd.DataFrame({"c0": signal + rng.normal(scale=0.3, size=n), "c1": rng.normal(size=n)}, index=ids)
    noise = pd.DataFrame(rng.normal(size=(n, 30)), index=ids).add_prefix("g")
    image = pd.DataFrame(rng.normal(size=(n, 5)), index=ids).add_prefix("i").iloc[: n - 40]  # 40 patients without a slide
    return ids, labels, {"clinical": clinical, "mutations": noise, "image": image}


def test_stacker_trusts_the_informative_block_and_does_not_lose_to_it():
    ids, labels, blocks = _cohort()
    train, test = ids[:120], ids[120:]
    stacked = fit_stacked_classifier(blocks, labels, train, seed=0)
    weights = stacked.weights
    assert weights["clinical"] > 2 * max(abs(weights["mutations"]), abs(weights["image"]))
    y = labels.loc[test].to_numpy()
    clinical_only = stacked.block_log_odds(blocks, test)["clinical"].to_numpy()
    # the stacked model ranks within noise of its best block (seed 0: 0.878 vs 0.880); never far below it
    assert metrics.roc_auc(y, stacked.predict(blocks, test).to_numpy()) > metrics.roc_auc(y, clinical_only) - 0.03
    assert stacked.predict(blocks, test).index.tolist() == test  # keyed by id; a patient without a slide is still scored
    assert stacked.cross_fitted.index.tolist() == [p for p in train if pd.notna(labels[p])]


def test_stacking_records_only_training_patients_and_reselects_inside_each_fold():
    ids, labels, blocks = _cohort()
    train, test = ids[:120], ids[120:]
    ledger = FitLedger(held_out=test)
    seen: list[list[str]] = []

    def select(name, fit_on):  # a stand-in for a LASSO: records what it saw, keeps the first two columns
        seen.append(list(fit_on))
        ledger.record(f"selection: {name}", fit_on)
        return list(blocks[name].columns[:2])

    fit_stacked_classifier(blocks, labels, train, n_folds=4, select=select, ledger=ledger)
    assert not ledger.leaks()
    assert len(seen) == 3 * (4 + 1)  # every block in each fold, then once on all training patients
    assert {"stacked fusion: stacker", "stacked fusion: clinical", "stacked fusion: image (cross-fit folds)"} <= set(ledger.steps)
    assert max(len(s) for s in seen[:-3]) < len(train)  # the folds' selections saw only part of the training patients


def test_an_empty_selection_leaves_the_block_at_the_prior():
    ids, labels, blocks = _cohort()
    stacked = fit_stacked_classifier(blocks, labels, ids[:120], select=lambda name, fit_on: [] if name == "mutations" else list(blocks[name].columns))
    assert stacked.block_models["mutations"].model is None
    assert np.allclose(stacked.block_log_odds(blocks, ids[120:])["mutations"], stacked.prior)


def test_stacking_refuses_a_single_class():
    ids, labels, blocks = _cohort()
    with pytest.raises(ValueError, match="one class"):
        fit_stacked_classifier(blocks, labels * 0, ids[:120])


def test_truncation_time_by_hand():
    # test times 1..20: 10 must stay at risk (max(10, 10% of 20)) -> the 10th longest, 11;
    # training times 1..15: 10 -> 6; tau is the smaller: 6
    assert truncation_time(np.arange(1.0, 21.0), np.arange(1.0, 16.0)) == 6.0
    # 200 test patients: 10% = 20 must remain -> the 20th longest of 1..200 is 181
    assert truncation_time(np.arange(1.0, 201.0), np.arange(1.0, 1001.0)) == 181.0
    with pytest.raises(ValueError, match="remain at risk"):
        truncation_time(np.arange(1.0, 6.0), np.arange(1.0, 100.0))


def test_uno_and_td_auc_cope_when_test_follow_up_outlasts_training():
    rng = np.random.default_rng(3)
    train_time, train_event = rng.exponential(5.0, 150).clip(max=8.0), rng.random(150) < 0.7
    time, event = rng.exponential(5.0, 80), rng.random(80) < 0.7  # no cap: some test patients outlast training follow-up
    risk = -time + rng.normal(size=80)
    assert time.max() > train_time.max()
    # what tau = the longest test time does: G is 0 after the last (administratively censored) training time, or unknown
    with pytest.raises(ValueError, match="zero at an event time|beyond the last training follow-up"):
        metrics.uno_concordance_index(time, event, risk, train_time=train_time, train_event=train_event, tau=float(time.max()))
    tau = truncation_time(time, train_time)
    assert tau <= train_time.max()
    assert metrics.uno_concordance_index(time, event, risk, train_time=train_time, train_event=train_event, tau=tau) > 0.6
    # td-AUC at a time inside training follow-up needs G only at cases before it
    auc, _ = time_dependent_auc(time, event, risk, np.array([3.0]), train_time=train_time, train_event=train_event)
    assert auc[0] > 0.6


def test_lasso_cox_selector_finds_a_planted_feature_and_keeps_an_unpenalised_block_whole():
    from mmsurv.stats.stacking import lasso_cox_selector

    rng = np.random.default_rng(1)
    ids = [f"P{i:03d}" for i in range(150)]
    x = pd.DataFrame(rng.normal(size=(150, 20)), index=ids).add_prefix("g")
    time = pd.Series(rng.exponential(np.exp(-1.5 * x["g0"].to_numpy())), index=ids)
    survival = pd.DataFrame({"time": time, "event": rng.random(150) < 0.8}, index=ids)
    clinical = pd.DataFrame({"age": rng.normal(size=150)}, index=ids)
    ledger = FitLedger(held_out=ids[100:])
    select = lasso_cox_selector({"genes": x, "clinical": clinical}, survival.loc[ids[:100]], {"genes": 0.05}, ledger=ledger)
    assert "g0" in select("genes", ids[:100])
    assert select("clinical", ids[:100]) == ["age"]
    assert select("genes", ids[100:]) == []  # the selector only knows training outcomes: nothing to select on
    assert not ledger.leaks()


def test_non_negative_stacker_does_not_turn_a_block_upside_down():
    from mmsurv.stats.stacking import _fit_meta

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(size=200) > 0).astype(int)
    free = _fit_meta(x, y, 1.0, non_negative=False)
    bounded = _fit_meta(x, y, 1.0, non_negative=True)
    assert free.coef_[0, 1] < -0.5  # a block whose log-odds run against the label: unconstrained, the stacker flips it
    assert bounded.coef_[0, 1] == pytest.approx(0.0, abs=1e-8) and (bounded.coef_ >= 0).all() and bounded.coef_[0, 0] > 1.0
    # where the free fit is already non-negative, the bounded one is scikit-learn's own fit
    y2 = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=200) > 0).astype(int)
    assert np.allclose(_fit_meta(x, y2, 1.0, non_negative=True).coef_[0, :2], _fit_meta(x, y2, 1.0, non_negative=False).coef_[0, :2])
