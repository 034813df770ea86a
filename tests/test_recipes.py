"""Foundation-model recipes (mmsurv.pathology.recipes): built as their cards say, loaded from the published layout, refused when wrong.

No weights are downloaded: each test builds a recipe with random weights, saves them in the layout
the model card publishes, and reads them back through ``mmsurv embed --backbone NAME --weights``.
Parameter counts and output dimensions are checked on the meta device (no memory) against the
figures the model cards and papers publish.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.cli import main
from mmsurv.environment import seeded_torch
from mmsurv.io.slides import open_slide, tile_grid
from mmsurv.io.tiles import TileDataset
from mmsurv.pathology.cohort_embedding import find_slides
from mmsurv.pathology.extractors import ExtractorSpec
from mmsurv.pathology.feature_files import read_slide_features
from mmsurv.pathology.recipes import RECIPES, RecipeEncoder, count_parameters, recipe_encoder, recipe_network

# What the model cards / papers publish: (tile embedding length, parameters, source). A published count
# is rounded (and "307M" for a ViT-L includes an ImageNet head): the build must agree within 1.5%.
CARDS = {
    "uni": (1024, 307e6, "UNI card / TRIDENT README: ViT-L/16, 1024-d; ~307M"),
    "uni2-h": (1536, None, "UNI README: ViT-h/14-reg8, 1536-d (no parameter count published)"),
    "virchow2": (2560, 632e6, "Vorontsov et al., arXiv 2408.00738: 632 million parameters; card: class token + mean patch token, 2560-d"),
    "h-optimus-0": (1536, 1.13e9, "H-optimus-0 card: ViT-g/14, 1.13B parameters, 1536-d"),
    "prov-gigapath": (1536, 1.13e9, "Xu et al. 2024 (Prov-GigaPath): ViT-g tile encoder, ~1.13B parameters, 1536-d"),
    "phikon-v2": (1024, 303e6, "Phikon-v2 card: ViT-L/16 (DINOv2), 1024-d"),
    "resnet50-trunc": (1024, None, "CLAM: ResNet-50 to layer 3, 1024-d"),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_builds_with_its_cards_parameter_count_and_dimension(name):
    recipe = RECIPES[name]
    dimension, published, _ = CARDS[name]
    with torch.device("meta"):
        encoder = RecipeEncoder(recipe, recipe_network(name))
        out = encoder(torch.zeros(2, 3, 256, 256, device="meta"))  # any tile size: resized and cropped to the recipe's input
    assert count_parameters(encoder.network) == recipe.n_parameters
    if published is not None:
        assert abs(recipe.n_parameters - published) / published < 0.015
    assert tuple(out.shape) == (2, recipe.n_features) and recipe.n_features == dimension


class _Tokens(torch.nn.Module):
    """A stand-in ViT whose tokens are known: token k of every image is the constant k."""

    num_prefix_tokens = 5  # class token + 4 registers, as Virchow2

    def forward_features(self, x):
        return torch.arange(13.0).view(1, 13, 1).expand(len(x), 13, 2)


def test_virchow2_pools_the_class_token_with_the_mean_of_patch_tokens_only():
    """Card: embedding = cat(output[:, 0], output[:, 5:].mean(1)); the 4 register tokens are left out."""
    out = RecipeEncoder(RECIPES["virchow2"], _Tokens())(torch.rand(2, 3, 224, 224))
    assert out.tolist() == [[0.0, 0.0, 8.5, 8.5]] * 2  # class token 0, patch tokens 5..12 average 8.5 (with the registers: 6.5)


def test_a_recipe_without_weights_says_what_to_download_and_downloads_nothing():
    with pytest.raises(ValueError, match=r"needs --weights.*pytorch_model\.bin.*MahmoodLab/UNI.*nothing is downloaded"):
        ExtractorSpec("uni").build()


@pytest.fixture(scope="module")
def few_slides(virtual_files, tmp_path_factory):
    """Two slides of the smoke breast cohort (links), tiled coarsely: a few 224-px tiles each."""
    folder = tmp_path_factory.mktemp("two_slides")
    for path in list(find_slides(virtual_files["brca"].root).values())[:2]:
        (folder / path.name).symlink_to(path.resolve())
    return folder


_MPP = 2.0  # coarse: 3 tiles of 224 px per smoke slide keep a ViT-L on a CPU to seconds


def _direct_features(encoder: torch.nn.Module, slide_path) -> np.ndarray:
    """The encoder run directly on the same tiles ``mmsurv embed`` reads."""
    grid = tile_grid(open_slide(slide_path), mpp=_MPP, tile_px=224, min_tissue=0.5)
    dataset = TileDataset(grid)  # single reads, [0, 1] floats; embed reads strips, the same pixels
    tiles = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    with torch.no_grad():
        return encoder.eval()(tiles).numpy()


def _embed_and_compare(name: str, weights, encoder, few_slides, tmp_path, capsys) -> None:
    status = main(
        ["embed", str(few_slides), "--out", str(tmp_path / "features"), "--backbone", name, "--weights", str(weights)]
        + ["--mpp", str(_MPP), "--tile-px", "224", "--batch-size", "8", "--device", "cpu", "--no-progress"]
    )
    assert status == 0, capsys.readouterr().err
    (folder,) = (tmp_path / "features").iterdir()
    assert folder.name.startswith(f"{name}-")
    for slide_id, path in find_slides(few_slides).items():
        features = read_slide_features(folder / f"{slide_id}.h5").features
        direct = _direct_features(encoder, path)
        assert features.shape == direct.shape and features.shape[1] == RECIPES[name].n_features and len(features) > 0
        np.testing.assert_allclose(features, direct, rtol=1e-4, atol=1e-4)


def test_uni_round_trips_through_mmsurv_embed_and_its_checkpoint_is_refused_by_uni2_h(few_slides, tmp_path, capsys):
    """UNI's published layout: a timm state dict in pytorch_model.bin. Given to uni2-h, it fails before any slide is read."""
    with seeded_torch(0):
        encoder = recipe_encoder("uni")
    weights = tmp_path / "uni" / "pytorch_model.bin"
    weights.parent.mkdir()
    torch.save(encoder.network.state_dict(), weights)
    _embed_and_compare("uni", weights, encoder, few_slides, tmp_path, capsys)
    status = main(["embed", str(tmp_path / "no-such-cohort"), "--out", str(tmp_path / "f2"), "--backbone", "uni2-h", "--weights", str(weights)])
    err = capsys.readouterr().err
    assert status == 2 and "do not fit backbone 'uni2-h'" in err and "of another shape" in err and "reg_token" in err


def test_resnet50_trunc_takes_torchvisions_full_checkpoint(few_slides, tmp_path, capsys):
    """CLAM's truncated ResNet-50 loads torchvision's ImageNet state dict: layer 4 and fc are left out, the rest must fit."""
    from torchvision.models import resnet50

    with seeded_torch(1):
        full = resnet50(weights=None).state_dict()
    weights = tmp_path / "resnet50-0676ba61.pth"
    torch.save(full, weights)
    encoder = recipe_encoder("resnet50-trunc", full)
    assert torch.equal(encoder.network.state_dict()["layer3.5.conv3.weight"], full["layer3.5.conv3.weight"])
    _embed_and_compare("resnet50-trunc", weights, encoder, few_slides, tmp_path, capsys)


def test_phikon_v2_loads_the_transformers_folder(few_slides, tmp_path, capsys):
    """Phikon-v2's card publishes a transformers folder (config.json + model.safetensors)."""
    with seeded_torch(2):
        encoder = RecipeEncoder(RECIPES["phikon-v2"], recipe_network("phikon-v2"))
    folder = tmp_path / "phikon-v2"
    encoder.network.save_pretrained(folder)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    _embed_and_compare("phikon-v2", folder, encoder, few_slides, tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["uni2-h", "virchow2", "h-optimus-0", "prov-gigapath"])
def test_the_large_recipes_round_trip_through_mmsurv_embed(name, few_slides, tmp_path, capsys):
    """The 0.6-1.1 B-parameter recipes, as UNI above: 2.5-4.5 GB checkpoints, minutes each on a CPU (``pytest -m slow``)."""
    with seeded_torch(3):
        encoder = recipe_encoder(name)
    weights = tmp_path / name / "pytorch_model.bin"
    weights.parent.mkdir()
    torch.save(encoder.network.state_dict(), weights)
    _embed_and_compare(name, weights, encoder, few_slides, tmp_path, capsys)


def test_a_recipe_named_as_a_trained_tile_network_is_refused_with_the_way_to_use_it():
    # notebooks 01 and 03 train their tile network; a foundation model is a frozen encoder with the user's weights
    from mmsurv.pathology import fit_tile_regressor

    tiles = pd.DataFrame({"split": ["train", "validation"], "patient_id": ["a", "b"]})
    with pytest.raises(ValueError, match=r"'uni' is a foundation model.*mmsurv embed .*--backbone uni --weights.*features_dir.*notebook 04"):
        fit_tile_regressor(None, tiles, np.zeros((2, 1), np.float32), backbone="uni")
