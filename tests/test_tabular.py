"""Preprocessing pipelines of tabular blocks (mmsurv.tabular, mmsurv.omics.preprocessing): fitted on training samples only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from mmsurv.omics.preprocessing import methylation_pipeline, rna_pipeline
from mmsurv.tabular import MissingRateFilter, TopVariance, clinical_pipeline, fit_on_training


def _samples(n: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_top_variance_keeps_the_k_most_variable_features_ignoring_nan():
    x = np.column_stack([np.arange(10.0), 3 * np.arange(10.0), np.zeros(10), 2 * np.arange(10.0)])
    x[0, 1] = np.nan
    selector = TopVariance(2).fit(x)
    assert selector.get_support().tolist() == [False, True, False, True]
    assert TopVariance(10).fit(x).get_support().sum() == 4  # k above the number of features keeps all


def test_missing_rate_filter_drops_probes_masked_in_too_many_training_samples():
    x = np.ones((10, 3))
    x[:2, 0] = np.nan  # 20% missing
    x[:1, 1] = np.nan  # 10% missing
    assert MissingRateFilter(0.1).fit(x).get_support().tolist() == [False, True, True]
    with pytest.raises(ValueError, match="every feature is missing"):
        MissingRateFilter(0.1).fit(np.full((5, 2), np.nan))


def test_preprocessing_statistics_come_from_training_samples_only():
    rng = np.random.default_rng(0)
    ids = _samples(60)
    tpm = pd.DataFrame(rng.gamma(2.0, 5.0, (60, 40)), index=ids, columns=[f"g{i}" for i in range(40)])
    train = ids[:40]
    out = fit_on_training(rna_pipeline(10), tpm, train)
    assert out.shape == (60, 10) and out.attrs["fitted_on"] == train
    # z-scores are centred on the training samples, not on all of them
    assert np.allclose(out.loc[train].mean(), 0, atol=1e-5)
    logged = np.log2(tpm.loc[train, out.columns] + 1)
    expected = StandardScaler().fit(logged).transform(np.log2(tpm[out.columns] + 1))
    assert np.allclose(out.to_numpy(), expected, atol=1e-4)
    # changing a test sample changes nothing that was fitted
    shifted = tpm.copy()
    shifted.iloc[50:] *= 100
    again = fit_on_training(rna_pipeline(10), shifted, train)
    assert list(again.columns) == list(out.columns) and np.allclose(again.loc[train], out.loc[train])


def test_methylation_pipeline_imputes_with_the_training_median():
    rng = np.random.default_rng(1)
    ids = _samples(30)
    betas = pd.DataFrame(rng.uniform(0, 1, (30, 12)), index=ids, columns=[f"cg{i}" for i in range(12)])
    betas.iloc[:, 0] = np.nan  # a probe masked everywhere: dropped
    betas.iloc[25, 3] = np.nan  # a gap in a test sample: the training median of that probe
    out = fit_on_training(methylation_pipeline(20), betas, ids[:20])
    assert "cg0" not in out.columns and not out.isna().to_numpy().any()
    pipeline = out.attrs["pipeline"]
    filled = pipeline[:2].transform(betas.iloc[[25]])[0, list(pipeline[0].get_feature_names_out()).index("cg3")]
    assert filled == pytest.approx(betas.iloc[:20, 3].median())


def test_clinical_pipeline_one_hot_encodes_and_tolerates_unseen_categories():
    ids = _samples(8)
    table = pd.DataFrame(
        {"age": [50, 60, np.nan, 70, 55, 65, 80, 45], "gender": ["female", "male"] * 3 + ["unknown", np.nan]},
        index=ids,
    )
    out = fit_on_training(clinical_pipeline(["age"], ["gender"]), table, ids[:6])
    assert list(out.columns) == ["age", "gender_female", "gender_male"]
    assert (out.loc[ids[6], ["gender_female", "gender_male"]] == 0).all()  # unseen in training: all zeros
    assert out.loc[ids[7], ["gender_female", "gender_male"]].sum() == 1  # missing: the most frequent training value
    with pytest.raises(ValueError, match="training sample"):
        fit_on_training(clinical_pipeline(["age"], ["gender"]), table, ["nobody"])
