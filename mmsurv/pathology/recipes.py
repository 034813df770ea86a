"""Pathology foundation models by name: one recipe per published tile encoder.

A recipe is everything that turns a checkpoint the user downloaded into the tile embedding its
authors publish: the architecture and its arguments, the input size, the channel statistics, how
the embedding is pooled from the network's tokens, the output dimension and parameter count, and
the checkpoint file the model card offers. Nothing is ever downloaded: every model here is gated
or licensed, and ``mmsurv embed --backbone NAME --weights PATH`` reads the file the user fetched.

The facts come from the models' public cards and the code of the toolkits that load them
(TRIDENT, STAMP, TIAToolbox, slide2vec, the models' own repositories), checked against timm
1.0.31 and transformers 5.24 (the versions in ``uv.lock``): every recipe builds there with the
parameter count given (tests/test_recipes.py). Pitfalls a hand-written ``timm:NAME`` falls into,
and which the recipes avoid:

- UNI's checkpoint holds LayerScale parameters (``blocks.N.ls1.gamma``) that timm only builds
  with ``init_values``;
- UNI2-h, Virchow2 and H-optimus-0 use packed SwiGLU MLPs and register tokens, which timm does not
  build from the architecture's name alone;
- timm's DINOv2-named architectures default to 518-px inputs even without pretrained weights,
  and Prov-GigaPath's weights use 16-px patches despite its "patch14" name;
- Virchow2's embedding is its class token concatenated with the mean of its *patch* tokens (the
  4 register tokens left out): 2,560 values, not the 1,280 of the class token alone;
- Phikon-v2 is a transformers folder whose attention weights transformers 5 renames on loading.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..models.backbones import load_matching_weights

__all__ = ["Recipe", "RECIPES", "RecipeEncoder", "recipe_network", "recipe_encoder", "load_transformers_folder", "count_parameters"]

_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class Recipe:
    """How one published tile encoder is built, fed, pooled and loaded.

    Attributes
    ----------
    name : str
        The name ``--backbone`` takes.
    model : str
        The model as its authors name it.
    library : {"timm", "transformers", "timm-features"}
        What builds the network: a timm model (``timm.create_model(architecture, **arguments)``),
        a transformers ``Dinov2Model``, or a timm CNN cut after a stage (``features_only``).
    architecture : str
        The timm architecture (a carrier for ``arguments``: these override its defaults).
    arguments : dict
        Keyword arguments; ``"mlp_layer": "swiglu_packed"`` and ``"act_layer": "silu"`` name the
        classes timm needs (they cannot be written in a config file).
    pooling : {"class token", "class token + mean of patch tokens", "average pool"}
        How the tile embedding comes from the network's output.
    n_features : int
        Length of the tile embedding.
    n_parameters : int
        Parameters of the network as built here (random weights; the tests check it).
    weights_file : str
        What the model card publishes, and what ``--weights`` takes.
    licence, hub_id : str
        For the README; the hub is never contacted.
    mean, std : tuple of float
        Channel statistics the input is normalised with.
    resize_px, crop_px : int
        Tiles are resized (shorter side) to ``resize_px`` and centre-cropped to ``crop_px``.
    interpolation : {"bilinear", "bicubic"}
    ignored_prefixes : tuple of str
        Checkpoint parameters the recipe does not use (a truncated network's later stages).
    """

    name: str
    model: str
    library: str
    architecture: str
    arguments: Mapping[str, Any]
    pooling: str
    n_features: int
    n_parameters: int
    weights_file: str
    licence: str
    hub_id: str
    mean: tuple[float, float, float] = _IMAGENET[0]
    std: tuple[float, float, float] = _IMAGENET[1]
    resize_px: int = 224
    crop_px: int = 224
    interpolation: str = "bilinear"
    ignored_prefixes: tuple[str, ...] = field(default=())


_TIMM_STATE_DICT = "pytorch_model.bin: a timm state dict, no prefix"

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="uni",
            model="UNI (Mahmood Lab), ViT-L/16",
            library="timm",
            architecture="vit_large_patch16_224",
            arguments={"img_size": 224, "patch_size": 16, "init_values": 1e-5, "dynamic_img_size": True},
            pooling="class token",
            n_features=1024,
            n_parameters=303_350_784,
            weights_file=_TIMM_STATE_DICT,
            licence="CC-BY-NC-ND 4.0 (gated, academic research)",
            hub_id="MahmoodLab/UNI",
        ),
        Recipe(
            name="uni2-h",
            model="UNI2-h (Mahmood Lab), ViT-H/14, SwiGLU, 8 register tokens",
            library="timm",
            architecture="vit_giant_patch14_224",
            arguments={
                "img_size": 224,
                "patch_size": 14,
                "embed_dim": 1536,
                "depth": 24,
                "num_heads": 24,
                "init_values": 1e-5,
                "mlp_ratio": 2.66667 * 2,
                "mlp_layer": "swiglu_packed",
                "act_layer": "silu",
                "reg_tokens": 8,
                "no_embed_class": True,
                "dynamic_img_size": True,
            },
            pooling="class token",
            n_features=1536,
            n_parameters=681_394_176,
            weights_file=_TIMM_STATE_DICT,
            licence="CC-BY-NC-ND 4.0 (gated, academic research)",
            hub_id="MahmoodLab/UNI2-h",
        ),
        Recipe(
            name="virchow2",
            model="Virchow2 (Paige), ViT-H/14, SwiGLU, 4 register tokens",
            library="timm",
            architecture="vit_huge_patch14_224",
            arguments={
                "img_size": 224,
                "init_values": 1e-5,
                "mlp_ratio": 5.3375,
                "mlp_layer": "swiglu_packed",
                "act_layer": "silu",
                "reg_tokens": 4,
                "dynamic_img_size": True,
            },
            pooling="class token + mean of patch tokens",
            n_features=2560,
            n_parameters=631_239_424,
            weights_file=_TIMM_STATE_DICT,
            licence="CC-BY-NC-ND 4.0 (gated)",
            hub_id="paige-ai/Virchow2",
            interpolation="bicubic",
        ),
        Recipe(
            name="h-optimus-0",
            model="H-optimus-0 (Bioptimus), ViT-g/14, 4 register tokens",
            library="timm",
            architecture="vit_giant_patch14_reg4_dinov2",
            arguments={"img_size": 224, "init_values": 1e-5, "dynamic_img_size": False},
            pooling="class token",
            n_features=1536,
            n_parameters=1_134_774_272,
            weights_file=_TIMM_STATE_DICT,
            licence="Apache-2.0 (gated)",
            hub_id="bioptimus/H-optimus-0",
            mean=(0.707223, 0.578729, 0.703617),
            std=(0.211883, 0.230117, 0.177517),
        ),
        Recipe(
            name="prov-gigapath",
            model="Prov-GigaPath tile encoder, ViT-g with 16-px patches",
            library="timm",
            architecture="vit_giant_patch14_dinov2",
            arguments={"img_size": 224, "patch_size": 16, "embed_dim": 1536, "depth": 40, "num_heads": 24, "init_values": 1e-5, "mlp_ratio": 5.33334},
            pooling="class token",
            n_features=1536,
            n_parameters=1_134_953_984,
            weights_file=_TIMM_STATE_DICT + " (the tile encoder, not slide_encoder.pth)",
            licence="Apache-2.0 per its repository; research use only (gated)",
            hub_id="prov-gigapath/prov-gigapath",
            resize_px=256,
            interpolation="bicubic",
        ),
        Recipe(
            name="phikon-v2",
            model="Phikon-v2 (Owkin), DINOv2 ViT-L/16",
            library="transformers",
            architecture="Dinov2Model",
            arguments={
                "hidden_size": 1024,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "patch_size": 16,
                "image_size": 224,
                "mlp_ratio": 4,
                "layerscale_value": 1.0,
                "use_swiglu_ffn": False,
                "qkv_bias": True,
                "layer_norm_eps": 1e-6,
                "hidden_act": "gelu",
            },
            pooling="class token",
            n_features=1024,
            n_parameters=303_351_808,
            weights_file="a transformers folder: config.json + model.safetensors (give the folder or the file)",
            licence="Owkin non-commercial licence",
            hub_id="owkin/phikon-v2",
        ),
        Recipe(
            name="resnet50-trunc",
            model="ResNet-50 (ImageNet) cut after layer 3, as in CLAM",
            library="timm-features",
            architecture="resnet50",
            arguments={"features_only": True, "out_indices": (3,)},
            pooling="average pool",
            n_features=1024,
            n_parameters=8_543_296,
            weights_file="torchvision's ImageNet ResNet-50 state dict (resnet50-*.pth) or timm's resnet50.tv_in1k; layer 4 and fc are ignored",
            licence="BSD-3-Clause (torchvision weights)",
            hub_id="timm/resnet50.tv_in1k",
            ignored_prefixes=("layer4.", "fc."),
        ),
    )
}


def _timm_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    from timm.layers import SwiGLUPacked

    named = {"swiglu_packed": SwiGLUPacked, "silu": nn.SiLU}
    return {key: named.get(value, value) if isinstance(value, str) else value for key, value in arguments.items()}


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    return RECIPES[name]


def recipe_network(name: str) -> nn.Module:
    """The recipe's network with random weights (built under ``torch.device("meta")`` it costs no memory).

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.

    Returns
    -------
    nn.Module
        The bare network (timm model, transformers ``Dinov2Model`` or timm feature extractor).
    """
    recipe = _recipe(name)
    if recipe.library in ("timm", "timm-features"):
        import timm

        extra = {"num_classes": 0} if recipe.library == "timm" else {}
        if recipe.pooling == "class token + mean of patch tokens":
            extra["global_pool"] = ""
        return timm.create_model(recipe.architecture, pretrained=False, **extra, **_timm_arguments(recipe.arguments))
    from transformers import Dinov2Config, Dinov2Model

    return Dinov2Model(Dinov2Config(**recipe.arguments))


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (buffers not counted)."""
    return sum(p.numel() for p in module.parameters())


class RecipeEncoder(nn.Module):
    """A recipe's network with its input preparation and pooling: [0, 1] tiles in, embeddings out.

    Parameters
    ----------
    recipe : Recipe
    network : nn.Module
        From :func:`recipe_network` (weights loaded or not).
    """

    def __init__(self, recipe: Recipe, network: nn.Module) -> None:
        super().__init__()
        self.recipe = recipe
        self.network = network
        self.register_buffer("mean", torch.tensor(recipe.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(recipe.std).view(1, 3, 1, 1))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Resize (shorter side to ``resize_px``), centre-crop to ``crop_px`` and normalise."""
        recipe = self.recipe
        height, width = images.shape[-2:]
        if min(height, width) != recipe.resize_px:
            scale = recipe.resize_px / min(height, width)
            size = (max(recipe.resize_px, round(height * scale)), max(recipe.resize_px, round(width * scale)))
            images = F.interpolate(images, size=size, mode=recipe.interpolation, align_corners=False, antialias=True)
        top, left = (images.shape[-2] - recipe.crop_px) // 2, (images.shape[-1] - recipe.crop_px) // 2
        images = images[..., top : top + recipe.crop_px, left : left + recipe.crop_px]
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.prepare(images)
        pooling = self.recipe.pooling
        if self.recipe.library == "transformers":
            return self.network(pixel_values=x).last_hidden_state[:, 0]
        if pooling == "average pool":
            return self.network(x)[-1].mean(dim=(2, 3))
        tokens = self.network.forward_features(x)
        if pooling == "class token":
            return tokens[:, 0]
        return torch.cat([tokens[:, 0], tokens[:, self.network.num_prefix_tokens :].mean(dim=1)], dim=1)


def recipe_encoder(name: str, state_dict: Mapping[str, torch.Tensor] | None = None) -> RecipeEncoder:
    """A recipe's encoder, with weights loaded from ``state_dict`` (random weights without one).

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    state_dict : mapping, optional
        The checkpoint's tensors by name (:func:`mmsurv.pathology.extractors.read_weights`); for
        ``phikon-v2`` use :func:`load_transformers_folder` instead.

    Raises
    ------
    ValueError
        The checkpoint does not fit the recipe: the message names the missing, unexpected and
        misshapen parameters (a UNI checkpoint given to ``uni2-h``, say).
    """
    recipe = _recipe(name)
    if state_dict is None:
        return RecipeEncoder(recipe, recipe_network(name))
    state = {k: v for k, v in state_dict.items() if not k.removeprefix("module.").startswith(recipe.ignored_prefixes)}
    with torch.device("meta"):  # no random initialisation of weights about to be replaced (1.1 B of them for a ViT-g)
        network = recipe_network(name)
    load_matching_weights(network, state, name, assign=True)
    network.float()  # a checkpoint saved in half precision runs in float32 like the others
    if any(t.is_meta for t in (*network.parameters(), *network.buffers())):  # a tensor the checkpoint does not hold: build it for real
        network = recipe_network(name)
        load_matching_weights(network, state, name)
    return RecipeEncoder(recipe, network)


def load_transformers_folder(name: str, path: str | os.PathLike) -> RecipeEncoder:
    """A transformers recipe (``phikon-v2``) loaded from the folder the model card publishes.

    The recipe's own configuration is used (the folder's ``config.json`` only has to agree), and
    transformers converts older parameter names on loading; anything left missing, unexpected or
    misshapen is an error.

    Parameters
    ----------
    name : str
    path : path
        The folder, or ``model.safetensors`` inside it.

    Raises
    ------
    ValueError
        No weights file in the folder, or weights that do not fit the recipe.
    """
    from transformers import Dinov2Config, Dinov2Model

    recipe = _recipe(name)
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    if not any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")):
        raise ValueError(f"{folder}: no model.safetensors or pytorch_model.bin (recipe {name!r} takes {recipe.weights_file})")
    try:
        network, info = Dinov2Model.from_pretrained(folder, config=Dinov2Config(**recipe.arguments), local_files_only=True, output_loading_info=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise ValueError(f"{folder}: these weights do not fit recipe {name!r} ({type(error).__name__}: {error})") from error
    problems = {kind: list(info.get(kind, [])) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems["missing_keys"] = [k for k in problems["missing_keys"] if k != "embeddings.mask_token"]  # not used for inference
    if any(problems.values()):
        listed = "; ".join(f"{len(v)} {k.replace('_', ' ')} ({', '.join(map(str, v[:3]))})" for k, v in problems.items() if v)
        raise ValueError(f"{folder}: these weights do not fit recipe {name!r}: {listed}")
    return RecipeEncoder(recipe, network)
