"""One seed reproduces a whole fusion fit, initial weights included (issue 30, point 11).

The cohort is scikit-survival's ``load_breast_cancer`` (``sksurv.datasets``, shipped with the
GPL-3 package): 198 node-negative breast cancers of Desmedt et al. (Clin Cancer Res 2007; GEO
GSE7390) with 76 expression probes and clinical variables - two real blocks for a Cox head.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.fusion import MultimodalDataset, MultimodalModel, fit_fusion, predict_fusion

SETTINGS = {"fusion": "concat", "n_outputs": 1, "embed_dim": 8, "hidden": 16, "dropout": 0.1, "modality_dropout": 0.2}


@pytest.fixture(scope="module")
def cohort() -> tuple[MultimodalDataset, MultimodalDataset]:
    from sksurv.datasets import load_breast_cancer

    x, y = load_breast_cancer()
    x.index = [f"patient_{i:03d}" for i in range(len(x))]
    expression = x.filter(like="X2")
    clinical = pd.concat([x[["age", "size"]], pd.get_dummies(x[["er", "grade"]], dtype=float)], axis=1)
    blocks = {name: (b - b.mean()) / b.std().replace(0, 1.0) for name, b in {"expression": expression, "clinical": clinical}.items()}
    targets = np.c_[y["t.tdm"], y["e.tdm"]].astype(float)
    ids = list(x.index)
    return MultimodalDataset(blocks, ids[:140], targets[:140]), MultimodalDataset(blocks, ids[140:], targets[140:])


def _fit(cohort, seed: int, **options) -> MultimodalModel:
    train, validation = cohort
    model = MultimodalModel(train.block_features, **SETTINGS)
    fit_fusion(model, train, validation, task="cox", epochs=4, batch_size=32, seed=seed, progress=False, **options)
    return model


def _same_weights(a: MultimodalModel, b: MultimodalModel) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_one_seed_reproduces_the_fit_whatever_torch_global_state(cohort):
    torch.manual_seed(1)
    first = _fit(cohort, seed=7)
    torch.manual_seed(2)  # another global state before building and fitting the second model
    torch.rand(1000)
    second = _fit(cohort, seed=7)
    assert _same_weights(first, second)
    np.testing.assert_array_equal(predict_fusion(first, cohort[1]), predict_fusion(second, cohort[1]))


def test_seeds_of_an_ensemble_give_different_members(cohort):
    torch.manual_seed(0)
    members = [_fit(cohort, seed=7 + k) for k in range(2)]
    assert not _same_weights(*members)
    predictions = [predict_fusion(m, cohort[1])[:, 0] for m in members]
    assert np.abs(predictions[0] - predictions[1]).max() > 1e-3


def test_reinitialise_draws_the_weights_of_a_model_built_after_manual_seed(cohort):
    # what notebooks 04 and 05 did before fit_fusion drew the weights itself: their results stay the same
    features = cohort[0].block_features
    torch.manual_seed(5)
    built_after_seed = MultimodalModel(features, **SETTINGS)
    model = MultimodalModel(features, **SETTINGS)
    assert not _same_weights(model, built_after_seed)
    state = torch.get_rng_state()
    model.reinitialise(5)
    assert _same_weights(model, built_after_seed)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left as it was


def test_reinitialise_false_trains_from_the_weights_given(cohort):
    train, _ = cohort
    torch.manual_seed(3)
    model = MultimodalModel(train.block_features, **SETTINGS)
    given = {k: v.clone() for k, v in model.state_dict().items()}
    fit_fusion(model, train, task="cox", epochs=0, seed=7, progress=False, reinitialise=False)
    assert all(torch.equal(given[k], v) for k, v in model.state_dict().items())
    fit_fusion(model, train, task="cox", epochs=0, seed=7, progress=False)
    assert _same_weights(model, MultimodalModel(train.block_features, **SETTINGS).reinitialise(7))
