"""The fusion layer: dataset masks, operators, the model, modality dropout, the Cox loss, training and attribution.

Synthetic tasks only, small enough to run in seconds on two CPU cores. The learning tests'
margins were measured at seeds 0, 1 and 2 (and the modality-dropout one at 0-4).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score
from torch.utils.data import DataLoader

from mmsurv.environment import seeded_torch
from mmsurv.fusion import (
    FUSIONS,
    BagEncoder,
    KroneckerFusion,
    MultimodalDataset,
    MultimodalModel,
    TabularEncoder,
    cox_loss,
    embed_fusion,
    fit_fusion,
    modality_attribution,
    predict_fusion,
)
from mmsurv.metrics import concordance_index

SIZES = {"a": 6, "b": 5, "c": 4}
TASK_OUTPUTS = {"multiclass": 3, "binary": 1, "cox": 1}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These networks are tiny: one thread is faster, and spares a busy machine's other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _dataset(blocks: dict[str, np.ndarray], targets: np.ndarray) -> MultimodalDataset:
    ids = [f"s{i}" for i in range(len(targets))]
    return MultimodalDataset({name: pd.DataFrame(values, index=ids) for name, values in blocks.items()}, ids, targets)


def _random_inputs(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    inputs = _random_inputs_for(SIZES, n, seed)
    inputs["mask"][::3, 1] = 0  # every third sample lacks "b"
    inputs["mask"][1::4, 0] = 0  # some lack "a"
    inputs["mask"][5] = torch.tensor([0.0, 0.0, 1.0])  # one has "c" only
    return inputs


def _random_inputs_for(sizes: dict[str, int], n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(n, size, generator=generator) for name, size in sizes.items()}
    return inputs | {"mask": torch.ones(n, len(sizes))}


def _model(fusion: str, n_outputs: int = 1, seed: int = 0, **options) -> MultimodalModel:
    with seeded_torch(seed):
        return MultimodalModel(SIZES, fusion=fusion, n_outputs=n_outputs, embed_dim=8, hidden=16, **options)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("task", TASK_OUTPUTS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_operator_gives_the_output_and_embedding_shapes(fusion, task):
    model = _model(fusion, TASK_OUTPUTS[task]).eval()
    inputs = _random_inputs(10)
    assert model(inputs).shape == (10, TASK_OUTPUTS[task])
    assert model.embed(inputs).shape == (10, model.embedding_features)
    expected = {"concat": 3 * 8, "gated": 8, "kronecker": 8, "late": 3 * 8}[fusion]
    assert model.embedding_features == expected


def test_encoders_and_kronecker_sizes():
    assert TabularEncoder(7, 5, kind="mlp")(torch.randn(4, 7)).shape == (4, 5)
    with pytest.raises(ValueError, match="unknown encoder kind"):
        TabularEncoder(7, kind="cnn")
    # the default factor keeps the product at <= 256 features: 16^2, 6^3, 4^4
    assert [KroneckerFusion(m, 32).product_features for m in (2, 3, 4)] == [256, 216, 256]
    four = MultimodalModel({"a": 3, "b": 2, "c": 2, "d": 1}, fusion="kronecker").eval()
    assert four(_random_inputs_for({"a": 3, "b": 2, "c": 2, "d": 1}, 5)).shape == (5, 1)
    with pytest.raises(ValueError, match="use 'concat' or 'gated'"):
        KroneckerFusion(9, 32)
    with pytest.raises(ValueError, match="unknown fusion"):
        MultimodalModel(SIZES, fusion="sum")


def test_bag_encoder_ignores_padding_tiles():
    torch.manual_seed(0)
    encoder = BagEncoder(4, 6, hidden=8).eval()
    bags, tile_mask = torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).float()
    weights = encoder.attention(bags, tile_mask)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2)) and torch.all(weights[0, 3:] == 0)
    garbage = bags.clone()
    garbage[0, 3:] = torch.nan
    assert torch.equal(encoder(bags, tile_mask), encoder(garbage, tile_mask))
    assert torch.allclose(encoder(bags[:1, :3], tile_mask[:1, :3]), encoder(bags, tile_mask)[:1], atol=1e-6)


# ---------------------------------------------------------------- masks


def test_late_fusion_output_is_the_mean_of_the_present_heads():
    model = _model("late", 1).eval()
    inputs = _random_inputs(12)
    with torch.no_grad():
        heads = model.fusion.predictions([model.encoders[name](inputs[name]) for name in SIZES])[..., 0]
        output = model(inputs)[:, 0]
    mask = inputs["mask"]
    assert mask[0].tolist() == [1.0, 0.0, 1.0]  # sample 0 lacks "b": the mean of heads a and c
    assert float(output[0]) == pytest.approx(float(heads[0, [0, 2]].mean()), abs=1e-6)
    assert torch.allclose(output, (heads * mask).sum(1) / mask.sum(1), atol=1e-6)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_masked_block_has_no_effect_whatever_its_values(fusion):
    model = _model(fusion, 3).eval()
    inputs = _random_inputs(12)
    garbage = dict(inputs)
    masked_b = inputs["mask"][:, 1] == 0
    garbage["b"] = inputs["b"].clone()
    garbage["b"][masked_b] = torch.tensor(1e6)
    garbage["b"][0, 0] = torch.nan
    with torch.no_grad():
        assert torch.allclose(model(inputs), model(garbage), atol=1e-6, rtol=0)
        assert torch.allclose(model.embed(inputs), model.embed(garbage), atol=1e-6, rtol=0)
    # and the mask is what decides: unmasking "b" changes those samples' outputs
    revealed = dict(inputs, mask=torch.ones_like(inputs["mask"]))
    with torch.no_grad():
        assert not torch.allclose(model(inputs)[masked_b], model(revealed)[masked_b])


@pytest.mark.parametrize("fusion", FUSIONS)
def test_a_sample_without_any_modality_is_refused(fusion):
    inputs = _random_inputs(6)
    inputs["mask"][2] = 0
    with pytest.raises(ValueError, match=r"sample\(s\) at batch position 2 have no modality: at least one block must be present"):
        _model(fusion)(inputs)


def test_modality_dropout_drops_at_its_rate_never_everything_and_only_in_training():
    model = _model("concat", 1, modality_dropout=0.5, dropout=0.0)
    with seeded_torch(0):
        kept = model._drop_modalities(torch.ones(4000, 3, dtype=torch.bool))
    # each of 3 modalities dropped with p = 0.5, but the 1/8 of samples that lose all get one back: 1.5 - 0.125 of 3
    assert kept.any(dim=1).all() and float(1 - kept.float().mean()) == pytest.approx(1.375 / 3, abs=0.015)
    present = torch.rand(4000, 3, generator=torch.Generator().manual_seed(0)) > 0.5
    present[present.sum(1) == 0, 0] = True
    with seeded_torch(0):
        kept = model._drop_modalities(present)
    assert kept.any(dim=1).all() and not (kept & ~present).any()  # never all; never revives a missing one
    # in training mode, even at 0.9 no batch ever ends up with an empty sample (the fusion would raise)
    model = _model("gated", 1, modality_dropout=0.9, dropout=0.0).train()
    inputs = _random_inputs(64)
    outputs = [model(inputs) for _ in range(30)]
    assert not all(torch.equal(outputs[0], o) for o in outputs[1:])
    # in evaluation mode nothing is dropped: the output is the deterministic one of the same weights without it
    model.eval()
    twin = _model("gated", 1, modality_dropout=0.0, dropout=0.0).eval()
    with torch.no_grad():
        assert torch.equal(model(inputs), model(inputs)) and torch.allclose(model(inputs), twin(inputs))


# ---------------------------------------------------------------- dataset


def _tables() -> tuple[dict[str, pd.DataFrame], list[str]]:
    ids = ["p1", "p2", "p3", "p4"]
    rna = pd.DataFrame({"g1": [1.0, 2.0, 3.0, 4.0], "g2": [0.5, 0.5, 0.5, 0.5]}, index=ids)
    # p2 is absent, p3's row is all NaN, p9 is not in the cohort
    slide = pd.DataFrame({"f1": [1.0, np.nan, 3.0], "f2": [1.0, np.nan, 2.0], "f3": [0.0, np.nan, 1.0]}, index=["p1", "p3", "p9"])
    clinical = pd.DataFrame({"age": [60.0, 70.0]}, index=["p2", "p3"])
    return {"rna": rna, "slide": slide, "clinical": clinical}, ids


def test_dataset_masks_absent_samples_and_all_nan_rows():
    tables, ids = _tables()
    dataset = MultimodalDataset(tables, ids, np.array([0, 1, 2, 1]))
    assert dataset.block_names == ("rna", "slide", "clinical")
    assert dataset.block_features == {"rna": 2, "slide": 3, "clinical": 1}
    np.testing.assert_array_equal(dataset.mask, [[1, 1, 0], [1, 0, 1], [1, 0, 1], [1, 0, 0]])
    item = dataset[2]
    assert item["index"] == 2 and item["target"].dtype == torch.long and int(item["target"]) == 2
    assert set(item["inputs"]) == {"rna", "slide", "clinical", "mask"}
    assert item["inputs"]["slide"].dtype == torch.float32 and torch.equal(item["inputs"]["slide"], torch.zeros(3))  # zero-filled
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["inputs"]["mask"].shape == (4, 3) and batch["target"].shape == (4,)
    subset = dataset.subset([3, 0])
    assert subset.sample_ids == ["p4", "p1"] and subset.mask.tolist() == [[1, 0, 0], [1, 1, 0]]
    cox = MultimodalDataset(tables, ids, np.array([[5.0, 1], [3.0, 0], [2.0, 1], [8.0, 0]]))
    assert cox[1]["target"].dtype == torch.float32 and cox[1]["target"].tolist() == [3.0, 0.0]


def test_dataset_refuses_partly_missing_rows_and_samples_without_any_block():
    tables, ids = _tables()
    tables["slide"].loc["p1", "f2"] = np.nan
    with pytest.raises(ValueError, match=r"block 'slide': sample\(s\) \['p1'\] have some NaN values"):
        MultimodalDataset(tables, ids, np.zeros(4, int))
    tables, ids = _tables()
    with pytest.raises(ValueError, match=r"sample\(s\) \['p7'\] have no modality"):
        MultimodalDataset(tables, [*ids, "p7"], np.zeros(5, int))
    with pytest.raises(ValueError, match="non-numeric"):
        MultimodalDataset({"clinical": pd.DataFrame({"stage": ["I", "II"]}, index=["p1", "p2"])}, ["p1", "p2"], np.zeros(2, int))
    with pytest.raises(ValueError, match="class indices"):
        MultimodalDataset(tables, ids, np.array([0.5, 1.0, 0.0, 1.0]))


def test_with_missing_masks_a_fraction_but_never_a_sample_s_last_block():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 2)), rng.normal(size=(40, 3))
    b[:10] = np.nan  # 30 samples have "b"
    a[10] = np.nan  # sample 10 has "b" and nothing else
    dataset = _dataset({"a": a, "b": b}, np.zeros(40, int))
    assert dataset.mask[:, 1].sum() == 30 and dataset.mask[10].tolist() == [0, 1]
    half = dataset.with_missing("b", 0.5, seed=1)
    assert half.n_removed in (14, 15) and half.mask[:, 1].sum() == 30 - half.n_removed
    assert np.all(half.values["b"][half.mask[:, 1] == 0] == 0) and dataset.mask[:, 1].sum() == 30  # a copy; the original kept
    np.testing.assert_array_equal(half.mask, dataset.with_missing("b", 0.5, seed=1).mask)  # seeded
    everything = dataset.with_missing("b", 1.0)
    assert everything.n_removed == 29 and everything.mask[:, 1].tolist() == [0] * 10 + [1] + [0] * 29
    assert dataset.with_missing("b", 0.0).n_removed == 0 and dataset.n_removed == 0


def test_with_missing_removes_several_blocks_from_the_same_samples():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(30, 2)), rng.normal(size=(30, 3)), rng.normal(size=(30, 1))
    b[:5] = np.nan  # samples 0-4 have a and c only
    c[5:10] = np.nan  # samples 5-9 have a and b only
    a[10], c[10] = np.nan, np.nan  # sample 10 has b alone: it keeps it
    dataset = _dataset({"a": a, "b": b, "c": c}, np.zeros(30, int))
    both = dataset.with_missing(["b", "c"], 1.0)
    assert both.n_removed == 29 and both.mask[:, 1:].sum() == 1 and both.mask[10].tolist() == [0, 1, 0]
    assert np.all(both.values["b"][:10] == 0) and np.all(both.values["c"][11:] == 0) and dataset.mask[:, 1:].sum() == 25 + 24
    half = dataset.with_missing(("b", "c"), 0.5, seed=3)
    dropped = (half.mask[:, 1:] == 0).all(axis=1) & (dataset.mask[:, 1:] > 0).any(axis=1)
    assert half.n_removed in (14, 15) and dropped.sum() == half.n_removed  # each drawn sample loses both blocks
    with pytest.raises(KeyError, match="unknown block"):
        dataset.with_missing(["b", "z"], 0.5)


# ---------------------------------------------------------------- Cox loss


def test_cox_loss_hand_computed_values_and_no_event_batches():
    # Cox (1972) without ties, log-hazards 0: events at t=1 (risk set 2) and t=2 (risk set 1):
    # pll = log(1/2) + log(1/1); the mean over the 2 events is log(2) / 2
    assert float(cox_loss(torch.zeros(2, 1), torch.tensor([[1.0, 1], [2.0, 1]]))) == pytest.approx(np.log(2) / 2, abs=1e-6)
    higher_for_the_early_event = torch.tensor([2.0, 0.0])
    assert float(cox_loss(higher_for_the_early_event, torch.tensor([[1.0, 1], [2.0, 1]]))) < np.log(2) / 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Efron (1977) ties: two events tied at t=1 with a third subject at risk (censored at 2), log-hazards 0:
        # the denominators are 3 and 3 - 1/2 * 2 = 2, so -pll = log(3) + log(2) for one unique event time
        ties = torch.tensor([[1.0, 1], [1.0, 1], [2.0, 0]])
        assert float(cox_loss(torch.zeros(3), ties)) == pytest.approx(np.log(6), abs=1e-6)  # Breslow would give log(9)
        # no event: zero, yet backward runs through the model's graph (torchsurv returns a detached zero)
        layer = torch.nn.Linear(2, 1)
        loss = cox_loss(layer(torch.randn(4, 2)), torch.tensor([[1.0, 0], [2.0, 0], [3.0, 0], [4.0, 0]]))
        assert float(loss.detach()) == 0.0 and loss.grad_fn is not None
        loss.backward()
        assert torch.all(layer.weight.grad == 0)
    assert not [w for w in caught if "Ties" in str(w.message) or "No events" in str(w.message)]  # torchsurv's warnings, silenced
    with pytest.raises(ValueError, match="target must be"):
        cox_loss(torch.zeros(3), torch.zeros(3))


# ---------------------------------------------------------------- learning


def _split_signal(n: int, seed: int) -> MultimodalDataset:
    """Three classes by the tertiles of a[:, 0] + b[:, 0]: the signal is split across two blocks; "c" is noise."""
    rng = np.random.default_rng(seed)
    blocks = {name: rng.normal(size=(n, size)).astype(np.float32) for name, size in SIZES.items()}
    signal = blocks["a"][:, 0] + blocks["b"][:, 0]
    return _dataset(blocks, np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3])))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_operator_learns_a_signal_split_across_two_blocks(fusion):
    # held-out macro AUC at seeds 0, 1, 2: concat .95-.97, gated .94-.95, kronecker .92-.93, late .94-.95
    train, validation, test = _split_signal(200, 0), _split_signal(100, 100), _split_signal(300, 200)
    with seeded_torch(0):
        model = MultimodalModel(train.block_features, fusion=fusion, n_outputs=3, embed_dim=16, hidden=32, dropout=0.1)
    history = fit_fusion(model, train, validation, task="multiclass", epochs=40, learning_rate=3e-3, patience=15, progress=False)
    assert history.samples["train"] == train.sample_ids and history.samples["validation"] == validation.sample_ids
    probabilities = predict_fusion(model, test, probabilities=True)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert roc_auc_score(test.targets, probabilities, multi_class="ovr", average="macro") > 0.8
    assert embed_fusion(model, test).shape == (300, model.embedding_features)


def _survival(n: int, seed: int) -> MultimodalDataset:
    """Exponential event times with log-hazard a[:, 0] + b[:, 1], independent censoring (~40 %), times rounded (ties)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 6)), rng.normal(size=(n, 5))
    risk = a[:, 0] + b[:, 1]
    event_time, censoring = rng.exponential(np.exp(-risk)), rng.exponential(2.0, n)
    time = np.round(np.minimum(event_time, censoring), 1) + 0.1
    return _dataset({"a": a, "b": b}, np.c_[time, event_time <= censoring])


def test_the_cox_head_learns_a_survival_signal():
    # held-out C-index at seeds 0, 1, 2: 0.77-0.84 (the true log-hazard scores 0.78-0.86)
    train, validation, test = _survival(200, 0), _survival(100, 100), _survival(300, 200)
    with seeded_torch(0):
        model = MultimodalModel(train.block_features, fusion="concat", n_outputs=1, embed_dim=16, hidden=32, dropout=0.1)
    with pytest.raises(ValueError, match="n_outputs=1"):
        fit_fusion(MultimodalModel(train.block_features, n_outputs=2), train, task="cox")
    fit_fusion(model, train, validation, task="cox", epochs=30, learning_rate=3e-3, patience=8, progress=False)
    risk = predict_fusion(model, test)[:, 0]
    assert concordance_index(test.targets[:, 0], test.targets[:, 1], risk) > 0.68


def _redundant(n: int, seed: int) -> MultimodalDataset:
    """Each block alone carries the signal: "a" strongly (3z), "b" noisily (z + noise, plus 10 noise features)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    a = np.c_[3 * z, rng.normal(size=(n, 4))]
    b = np.c_[z + rng.normal(size=n), rng.normal(size=(n, 10))]
    return _dataset({"a": a, "b": b}, (z > 0).astype(int))


def test_modality_dropout_makes_the_model_robust_to_a_missing_block():
    # Without modality dropout the network leans on the easy block "a" and is lost without it. Held-out
    # log-loss with "a" removed, at seeds 0-4: 0.98-1.59 without modality dropout, 0.61-0.77 with 0.5; the increase over
    # the full data shrinks by 0.19-0.93.
    train, test = _redundant(200, 0), _redundant(1000, 200)
    without_a = test.with_missing("a", 1.0)
    increase = {}
    for rate in (0.0, 0.5):
        with seeded_torch(0):
            model = MultimodalModel(train.block_features, n_outputs=1, embed_dim=16, hidden=32, dropout=0.1, modality_dropout=rate)
        fit_fusion(model, train, task="binary", epochs=80, batch_size=50, learning_rate=3e-3, progress=False)
        losses = [log_loss(d.targets, predict_fusion(model, d, probabilities=True)[:, 0], labels=[0, 1]) for d in (test, without_a)]
        increase[rate] = losses[1] - losses[0]
    assert increase[0.5] < increase[0.0] - 0.1


# ---------------------------------------------------------------- attribution


def test_modality_attribution_credits_the_informative_block_and_adds_up():
    rng = np.random.default_rng(0)
    n = 300
    blocks = {name: rng.normal(size=(n, size)) for name, size in SIZES.items()}
    blocks["b"][rng.random(n) < 0.3] = np.nan  # ~30 % lack "b"
    dataset = _dataset(blocks, (blocks["a"][:, 0] > 0).astype(int))  # only "a" is informative
    train, test = dataset.subset(np.arange(200)), dataset.subset(np.arange(200, 300))
    with seeded_torch(0):
        model = MultimodalModel(train.block_features, fusion="concat", n_outputs=1, embed_dim=8, hidden=16, dropout=0.1)
    fit_fusion(model, train, task="binary", epochs=30, learning_rate=3e-3, progress=False)
    attribution = modality_attribution(model, test)
    assert list(attribution.columns) == ["a", "b", "c"] and list(attribution.index) == test.sample_ids
    share = attribution.abs().sum() / attribution.abs().to_numpy().sum()
    assert share["a"] > 0.7  # measured 0.86-0.93 at seeds 0, 1, 2
    assert (attribution["b"][test.mask[:, 1] == 0] == 0).all()  # a missing modality gets nothing
    output = predict_fusion(model, test)[:, 0]
    np.testing.assert_allclose(attribution.sum(axis=1) + attribution.attrs["reference"], output, atol=1e-4)  # efficiency
    assert attribution.attrs["reference"] == pytest.approx(float(output.mean()), abs=1e-5)
    sampled = modality_attribution(model, test, n_samples=3)
    np.testing.assert_allclose(sampled.sum(axis=1) + sampled.attrs["reference"], output, atol=1e-4)
    with pytest.raises(ValueError, match="give target"):
        modality_attribution(MultimodalModel(train.block_features, n_outputs=3), test)


def test_modality_attribution_of_a_log_probability_adds_up_to_the_evidence_over_the_prior():
    rng = np.random.default_rng(1)
    n = 300
    blocks = {name: rng.normal(size=(n, size)) for name, size in SIZES.items()}
    labels = blocks["a"][:, :3].argmax(axis=1)  # three classes, from block "a" only
    dataset = _dataset(blocks, labels)
    train, test = dataset.subset(np.arange(200)), dataset.subset(np.arange(200, 300))
    with seeded_torch(0):
        # trained with modality dropout, so that every coalition of blocks is an input it has seen
        model = MultimodalModel(train.block_features, fusion="concat", n_outputs=3, embed_dim=8, hidden=16, dropout=0.1, modality_dropout=0.5)
    fit_fusion(model, train, task="multiclass", epochs=60, learning_rate=3e-3, progress=False)
    prior = np.log(np.bincount(train.targets, minlength=3) / len(train))
    for k in range(3):
        attribution = modality_attribution(model, test, target=k, log_probability=True, reference=float(prior[k]))
        log_p = np.log(predict_fusion(model, test, probabilities=True)[:, k])
        np.testing.assert_allclose(attribution.sum(axis=1) + prior[k], log_p, atol=1e-4)  # efficiency, in nats
        own = attribution[test.targets == k]
        assert own["a"].mean() > 0.3 and own["a"].mean() > 3 * own[["b", "c"]].abs().to_numpy().mean()  # "a" is the evidence
    assert modality_attribution(model, test, target=0, log_probability=True).attrs["reference"] == pytest.approx(-np.log(3))
    with pytest.raises(ValueError, match="multiclass"):
        modality_attribution(MultimodalModel(train.block_features, n_outputs=1), test, log_probability=True)
