"""Cross-fitting (mmsurv.crossfit): folds by patient, and features from a model that never saw the row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.crossfit import cross_fit, patient_folds


def _units(n_patients: int = 20):
    """Two sample units per patient (tumour, normal), a class per unit."""
    ids = [f"P{p:02d}-{kind}" for p in range(n_patients) for kind in ("T", "N")]
    patient_of = {u: u.split("-")[0] for u in ids}
    strata = {u: ("tumour" if u.endswith("T") else "normal") for u in ids}
    return ids, patient_of, strata


def test_folds_keep_a_patients_units_together_and_balance_the_strata():
    ids, patient_of, strata = _units()
    folds = patient_folds(ids, n_folds=4, seed=3, strata=strata, patient_of=patient_of)
    assert list(folds.index) == ids and set(folds) == {0, 1, 2, 3}
    by_patient = folds.groupby(pd.Series(patient_of)).nunique()
    assert (by_patient == 1).all()  # never one patient in two folds
    counts = pd.crosstab(folds, pd.Series(strata))
    assert (counts["tumour"] == counts["normal"]).all() and counts["tumour"].between(4, 6).all()
    assert folds.equals(patient_folds(ids, n_folds=4, seed=3, strata=strata, patient_of=patient_of))  # the seed decides
    assert not folds.equals(patient_folds(ids, n_folds=4, seed=4, strata=strata, patient_of=patient_of))


def test_folds_refuse_what_cannot_be_split():
    with pytest.raises(ValueError, match="at least 2 folds"):
        patient_folds(["a", "b", "c"], n_folds=1, seed=0)
    ids, patient_of, _ = _units(n_patients=2)
    with pytest.raises(ValueError, match="2 patients cannot fill 3 folds"):
        patient_folds(ids, n_folds=3, seed=0, patient_of=patient_of)


def _memorising_fit(calls):
    """A 'model' that is the set of ids it was fitted on; its feature says whether it saw the row."""

    def fit(ids, step):
        calls.append((step, list(ids)))
        return frozenset(ids)

    def features(model, ids):
        return pd.DataFrame({"seen": [float(i in model) for i in ids]}, index=list(ids))

    return fit, features


def _memorising_setup(n_folds: int):
    """30 training units in ``n_folds`` patient folds, 10 held out, and a memorising fit that logs its calls."""
    ids, patient_of, strata = _units()
    train, held_out = ids[:30], ids[30:]
    folds = patient_folds(train, n_folds=n_folds, seed=0, strata=strata, patient_of=patient_of)
    calls = []
    return train, held_out, folds, calls, *_memorising_fit(calls)


def test_every_training_row_gets_its_feature_from_a_model_that_never_saw_it():
    train, held_out, folds, calls, fit, features = _memorising_setup(n_folds=3)
    result = cross_fit(fit, features, train, held_out, folds, step="net")
    assert list(result.features.index) == train + held_out
    assert (result.features["seen"] == 0).all()  # out of fold for training rows; held-out rows were never fitted on
    assert (result.in_sample.loc[train, "seen"] == 1).all()  # the full model's features: in-sample for training rows
    assert [step for step, _ in calls] == ["net (fold 1)", "net (fold 2)", "net (fold 3)", "net"]
    for k, (_, fitted) in enumerate(calls[:3]):
        assert set(fitted) == {u for u in train if folds[u] != k}
    assert set(calls[3][1]) == set(train)


def test_a_given_full_model_is_reused_and_a_row_without_a_fold_is_refused():
    train, held_out, folds, calls, fit, features = _memorising_setup(n_folds=2)
    full = frozenset(train) | {held_out[0]}  # a stand-in that saw one held-out row, to see whose features are used
    result = cross_fit(fit, features, train, held_out, folds, full_model=full, step="net")
    assert [step for step, _ in calls] == ["net (fold 1)", "net (fold 2)"] and result.full_model is full
    assert result.features.loc[held_out[0], "seen"] == 1 and (result.features.loc[held_out[1:], "seen"] == 0).all()
    with pytest.raises(ValueError, match="have no fold"):
        cross_fit(fit, features, train + ["P99-T"], held_out, folds)


def test_cross_fitting_removes_the_optimism_of_a_model_that_memorises():
    """A 1-nearest-neighbour 'network' scores its own training rows perfectly; out of fold it does not."""
    rng = np.random.default_rng(0)
    x = pd.Series(rng.normal(size=60), index=[f"P{i:02d}" for i in range(60)])
    y = pd.Series(rng.integers(0, 2, size=60), index=x.index)  # no signal at all

    def fit(ids, step):
        return list(ids)

    def features(model, ids):
        nearest = [model[int(np.argmin(np.abs(x.loc[model].to_numpy() - x[i])))] for i in ids]
        return pd.DataFrame({"prediction": y.loc[nearest].to_numpy()}, index=list(ids))

    folds = patient_folds(list(x.index), n_folds=5, seed=1, strata=y)
    result = cross_fit(fit, features, list(x.index), [], folds)
    assert (result.in_sample["prediction"] == y).all()  # in-sample: every label recovered
    agreement = (result.features["prediction"] == y).mean()
    assert 0.3 < agreement < 0.7  # out of fold: chance
