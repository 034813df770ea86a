"""Backbones, the shared training loop, attention MIL, slide aggregation and the embedding cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from mmsurv.models import AttentionMIL, TileRegressor, tile_backbone
from mmsurv.omics.signatures import PROLIFERATION_GENES, gene_expression, proliferation_score
from mmsurv.pathology import SlideBags, aggregate_tiles, embed_slides, tile_cohort
from mmsurv.training import predict, train_model


class _Brightness(Dataset):
    """Images whose mean brightness is the target: a signal any CNN can learn."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.targets = rng.uniform(0, 1, n).astype(np.float32)
        noise = rng.uniform(-0.2, 0.2, (n, 3, 16, 16)).astype(np.float32)
        self.images = torch.from_numpy(np.clip(self.targets[:, None, None, None] * 0.6 + 0.2 + noise, 0, 1))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "target": torch.tensor([self.targets[i]]), "index": i}


def test_training_loop_learns_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = TileRegressor("small", n_outputs=1, pretrained=False)
    history = train_model(
        model,
        DataLoader(_Brightness(256, 0), batch_size=32, shuffle=True),
        DataLoader(_Brightness(64, 1), batch_size=64),
        epochs=15,
        learning_rate=3e-3,
        patience=5,
        progress=False,
    )
    assert history.validation_loss[history.best_epoch] == min(history.validation_loss)
    held_out = _Brightness(64, 2)
    prediction, index = predict(model, DataLoader(held_out, batch_size=16), progress=False)
    assert np.array_equal(index, np.arange(64))
    assert np.corrcoef(prediction[:, 0], held_out.targets)[0, 1] > 0.8


def test_resnet18_backbone_is_offline_and_warns_without_cached_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    with pytest.warns(UserWarning, match="random initialisation"):
        model, n_features = tile_backbone("resnet18", pretrained=True)
    assert n_features == 512 and model(torch.rand(2, 3, 64, 64)).shape == (2, 512)
    with pytest.raises(ValueError, match="unknown backbone"):
        tile_backbone("vit")


def test_attention_mil_weights_sum_to_one_and_it_learns_from_bags():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # a bag's label is the mean of feature 0 over its "tumour" tiles (feature 1 > 0); other tiles are noise
    features, targets = {}, []
    for b in range(80):
        n = int(rng.integers(10, 30))
        bag = rng.normal(size=(n, 8)).astype(np.float32)
        tumour = bag[:, 1] > 0
        targets.append(bag[tumour, 0].mean() if tumour.any() else 0.0)
        features[f"s{b}"] = bag
    ids = list(features)
    model = AttentionMIL(8, 1, hidden=32, dropout=0.0)
    weights = model.attention(torch.as_tensor(features["s0"]))
    assert weights.shape == (len(features["s0"]),) and float(weights.detach().sum()) == pytest.approx(1.0, abs=1e-5)
    train = SlideBags(features, ids[:60], np.array(targets[:60]))
    test = SlideBags(features, ids[60:], np.array(targets[60:]))
    train_model(model, DataLoader(train, batch_size=1, shuffle=True), epochs=25, learning_rate=3e-3, progress=False)
    prediction, _ = predict(model, DataLoader(test, batch_size=1), progress=False)
    assert np.corrcoef(prediction[:, 0], targets[60:])[0, 1] > 0.6


def test_proliferation_score_is_the_mean_of_standardised_genes():
    rng = np.random.default_rng(0)
    expression = pd.DataFrame(rng.normal(5, 2, (len(PROLIFERATION_GENES) + 1, 6)), index=list(PROLIFERATION_GENES) + ["ACTB"])
    score = proliferation_score(expression)
    genes = expression.loc[list(PROLIFERATION_GENES)]
    expected = ((genes.T - genes.mean(axis=1)) / genes.std(axis=1)).mean(axis=1)
    assert np.allclose(score.to_numpy(), expected.to_numpy())
    assert gene_expression(expression, "ACTB").equals(expression.loc["ACTB"].rename("ACTB"))
    with pytest.raises(KeyError, match="MKI67"):
        proliferation_score(expression.drop(index="MKI67"))


def test_aggregate_tiles_mean_and_median():
    tiles = pd.DataFrame({"slide_id": ["a", "a", "a", "b"]})
    summary = aggregate_tiles(tiles, np.array([1.0, 2.0, 9.0, 4.0]))
    assert summary.loc["a", "mean"] == 4.0 and summary.loc["a", "median"] == 2.0 and summary.loc["b", "mean"] == 4.0
    two = aggregate_tiles(tiles, np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 1.0], [4.0, 2.0]]))
    assert list(two.columns) == ["mean_0", "median_0", "mean_1", "median_1"] and two.loc["a", "mean_0"] == 3.0


def test_embedding_cache_is_reused_and_refreshed_when_tiling_changes(virtual_files, tmp_path):
    from mmsurv.io.gdc import read_sample_sheet, sample_files

    cohort = virtual_files["brca"]
    slides = dict(list(sample_files(read_sample_sheet(cohort.sample_sheet), cohort.gdc, "Slide Image").items())[:2])
    grids, tiles = tile_cohort(slides, mpp=2.0, tile_px=32, max_tiles=6, progress=False)
    assert tiles.groupby("slide_id").size().max() <= 6
    calls = []

    def embed(images):
        calls.append(len(images))
        return images.mean(dim=(2, 3))

    first = embed_slides(embed, grids, list(slides), tmp_path, progress=False)
    assert all(v.shape == (len(g), 3) for v, g in zip(first.values(), grids))
    n_calls = len(calls)
    second = embed_slides(embed, grids, list(slides), tmp_path, progress=False)
    assert len(calls) == n_calls and all(np.array_equal(first[k], second[k]) for k in first)  # read from the cache
    regridded, _ = tile_cohort(slides, mpp=2.0, tile_px=32, max_tiles=4, seed=1, progress=False)
    embed_slides(embed, regridded, list(slides), tmp_path, progress=False)
    assert len(calls) > n_calls  # the tiling changed: recomputed


def test_model_fingerprint_changes_with_the_weights():
    from mmsurv.training import model_fingerprint

    torch.manual_seed(0)
    model = TileRegressor("small", pretrained=False)
    before = model_fingerprint(model)
    assert model_fingerprint(model) == before and len(before) == 12
    with torch.no_grad():
        model.head[1].bias.add_(1.0)
    assert model_fingerprint(model) != before
