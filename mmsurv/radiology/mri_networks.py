"""The multi-scale MRI networks of notebook 05: a ConvNeXt branch, a dual-path ViT branch, and the MSM.

All three are built from torchvision's own classes (:class:`torchvision.models.ConvNeXt`,
:class:`torchvision.models.VisionTransformer`), with the first layer widened to the 2.5D
input's channels (T2 and diffusion slices) and the classification head removed:

===================  ========================================================================
branch               what it sees
===================  ========================================================================
``convnext``         the tight tumour crop: local texture and brightness
``vit`` (dual path)  one ViT per scale - tumour crop and pelvic context - their class tokens
                     concatenated
===================  ========================================================================

:class:`RecurrenceNet` puts one or both branches in front of a small bottleneck and a logit:
``branches=("convnext",)`` and ``("vit",)`` are the paper's single-branch rungs, both together
the multi-scale model (MSM). The bottleneck (``embed``) is what the fusion layer receives.

``variant="paper"`` gives ConvNeXt-Tiny and ViT-B/16 at 224 px (for a GPU); ``"cpu"`` narrow
variants at 32 px that train in seconds. Neither has pretrained weights here: the first layer's
channels differ from ImageNet's three, and the kit never downloads weights at run time.

Interpretation: :func:`vit_attention_rollout` (Abnar & Zuidema 2020) and :func:`convnext_gradcam`
(Selvaraju et al. 2017, through captum).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import ConvNeXt, VisionTransformer
from torchvision.models.convnext import CNBlockConfig

__all__ = [
    "BRANCHES",
    "VARIANTS",
    "convnext_branch",
    "vit_branch",
    "DualPathViT",
    "RecurrenceNet",
    "vit_attention_rollout",
    "convnext_gradcam",
    "share_inside",
]

BRANCHES = ("convnext", "vit")
#: Input size and widths of each variant.
VARIANTS: dict[str, dict] = {
    "cpu": {
        "size_px": 32,
        "convnext": [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)],
        "convnext_stem": 2,
        "vit": {"patch_size": 4, "num_layers": 2, "num_heads": 4, "hidden_dim": 32, "mlp_dim": 64},
    },
    "paper": {
        "size_px": 224,
        "convnext": [CNBlockConfig(96, 192, 3), CNBlockConfig(192, 384, 3), CNBlockConfig(384, 768, 9), CNBlockConfig(768, None, 3)],
        "convnext_stem": 4,
        "vit": {"patch_size": 16, "num_layers": 12, "num_heads": 12, "hidden_dim": 768, "mlp_dim": 3072},
    },
}


def _variant(variant: str) -> dict:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    return VARIANTS[variant]


def convnext_branch(in_channels: int, variant: str = "cpu") -> tuple[ConvNeXt, int]:
    """A torchvision ConvNeXt taking ``in_channels`` channels, without its classification layer.

    Returns
    -------
    (model, n_features)
        ``model(x)`` gives (batch, n_features) pooled, layer-normed features.
    """
    spec = _variant(variant)
    setting = spec["convnext"]
    model = ConvNeXt(setting, stochastic_depth_prob=0.0 if variant == "cpu" else 0.1)
    stem = spec["convnext_stem"]
    model.features[0][0] = nn.Conv2d(in_channels, setting[0].input_channels, kernel_size=stem, stride=stem)
    model.classifier[2] = nn.Identity()
    return model, setting[-1].input_channels


def vit_branch(in_channels: int, variant: str = "cpu", *, dropout: float = 0.1) -> tuple[VisionTransformer, int]:
    """A torchvision VisionTransformer taking ``in_channels`` channels; ``model(x)`` gives its class token."""
    spec = _variant(variant)
    vit = VisionTransformer(image_size=spec["size_px"], dropout=dropout, num_classes=1, **spec["vit"])
    patch, hidden = spec["vit"]["patch_size"], spec["vit"]["hidden_dim"]
    vit.conv_proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)
    vit.heads = nn.Identity()
    return vit, hidden


class DualPathViT(nn.Module):
    """Two ViTs, one per scale (tumour crop, pelvic context), their class tokens concatenated."""

    def __init__(self, in_channels: int, variant: str = "cpu") -> None:
        super().__init__()
        self.tumour_path, hidden = vit_branch(in_channels, variant)
        self.context_path, _ = vit_branch(in_channels, variant)
        self.out_features = 2 * hidden

    def forward(self, tumour: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tumour_path(tumour), self.context_path(context)], dim=1)


class RecurrenceNet(nn.Module):
    """ConvNeXt, dual-path ViT, or both (the MSM), then a bottleneck and one logit of recurrence.

    Parameters
    ----------
    branches : sequence of {"convnext", "vit"}, default both (the MSM)
    in_channels : int, default 6
        Channels of each scale's input (T2 and diffusion slices).
    variant : {"cpu", "paper"}, default "cpu"
    bottleneck : int, default 8
        Width of :meth:`embed`, the image features handed to the fusion layer.
    dropout : float, default 0.3
    """

    def __init__(
        self, branches: Sequence[str] = BRANCHES, *, in_channels: int = 6, variant: str = "cpu", bottleneck: int = 8, dropout: float = 0.3
    ) -> None:
        super().__init__()
        unknown = set(branches) - set(BRANCHES)
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {list(branches)}")
        self.branches = tuple(b for b in BRANCHES if b in branches)
        self.size_px = _variant(variant)["size_px"]
        width = 0
        if "convnext" in self.branches:
            self.convnext, n = convnext_branch(in_channels, variant)
            width += n
        if "vit" in self.branches:
            self.vit = DualPathViT(in_channels, variant)
            width += self.vit.out_features
        self.bottleneck = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, bottleneck), nn.GELU())
        self.head = nn.Linear(bottleneck, 1)

    def features(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The branches' concatenated features, before the bottleneck."""
        parts = []
        if "convnext" in self.branches:
            parts.append(self.convnext(inputs["tumour"]))
        if "vit" in self.branches:
            parts.append(self.vit(inputs["tumour"], inputs["context"]))
        return torch.cat(parts, dim=1)

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(batch, bottleneck) image features for the fusion layer."""
        return self.bottleneck(self.features(inputs))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.embed(inputs))


@torch.no_grad()
def vit_attention_rollout(vit: VisionTransformer, images: torch.Tensor, *, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout: how much the class token draws on each patch, through all layers.

    Each layer's head-averaged attention, mixed with the identity for the residual connection
    (``residual * I + (1 - residual) * A``, rows renormalised), is multiplied through the layers;
    the class token's row over the patches is the map.

    Parameters
    ----------
    vit : torchvision VisionTransformer
    images : tensor (batch, channels, size, size)
    residual : float, default 0.5

    Returns
    -------
    tensor (batch, grid, grid)
        Sums to 1 over the patches of each image.

    References
    ----------
    Abnar S, Zuidema W. Quantifying attention flow in transformers. ACL 2020.
    """
    vit.eval()
    x = vit._process_input(images)
    x = torch.cat([vit.class_token.expand(len(x), -1, -1), x], dim=1) + vit.encoder.pos_embedding
    rollout = torch.eye(x.shape[1], device=x.device).expand(len(x), -1, -1)
    for layer in vit.encoder.layers:
        y = layer.ln_1(x)
        y, weights = layer.self_attention(y, y, y, need_weights=True, average_attn_weights=True)
        x = x + y
        x = x + layer.mlp(layer.ln_2(x))
        mixed = residual * torch.eye(x.shape[1], device=x.device) + (1 - residual) * weights
        rollout = (mixed / mixed.sum(dim=-1, keepdim=True)) @ rollout
    patches = rollout[:, 0, 1:]
    grid = int(round(patches.shape[1] ** 0.5))
    patches = patches / patches.sum(dim=1, keepdim=True)
    return patches.reshape(len(x), grid, grid)


def convnext_gradcam(model: RecurrenceNet, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Grad-CAM of the recurrence logit on the ConvNeXt branch's last stage, upsampled to the input.

    Returns
    -------
    tensor (batch, size, size)
        Positive part of the class-activation map, scaled to a maximum of 1 per image.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    if "convnext" not in model.branches:
        raise ValueError("the model has no ConvNeXt branch")
    model.eval()
    context = inputs["context"]

    def logit(tumour: torch.Tensor) -> torch.Tensor:
        return model({"tumour": tumour, "context": context})[:, 0]

    cam = LayerGradCam(logit, model.convnext.features[-1]).attribute(inputs["tumour"], relu_attributions=True)
    cam = LayerAttribution.interpolate(cam, inputs["tumour"].shape[-2:], interpolate_mode="bilinear")[:, 0].detach()
    return cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


def share_inside(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's mass that falls inside its mask, the mask average-pooled onto the map's grid."""
    masks = masks.float()[:, None]
    if masks.shape[-1] != maps.shape[-1]:
        masks = F.adaptive_avg_pool2d(masks, maps.shape[-2:])
    masks = masks[:, 0]
    return (maps * masks).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp_min(1e-12)
