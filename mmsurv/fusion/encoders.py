"""Per-modality encoders: a vector of features in, a fixed-size embedding out.

Every modality - a tabular block (RNA, methylation, mutations, clinical variables), a
slide-level image embedding, a report-text embedding - is first mapped to an embedding of the
same size, so that the fusion operators (:mod:`mmsurv.fusion.operators`) can combine them.

Two kinds of fully connected encoder are offered:

* ``"snn"``, a self-normalising network (Klambauer et al. 2017): Linear + SELU + AlphaDropout,
  with LeCun-normal initial weights. It keeps activations at zero mean and unit variance
  without batch normalisation, which suits small cohorts with many features; PathomicFusion
  and PORPOISE encode genomic features this way.
* ``"mlp"``: Linear + ReLU + Dropout, the usual baseline.

:class:`BagEncoder` pools a padded batch of tile embeddings (a slide as a bag of tiles) into
one vector per slide with gated attention (Ilse et al. 2018), for when only tile-level
features are at hand.

References
----------
Klambauer G. et al. "Self-normalizing neural networks." NeurIPS 2017.
Chen R. J. et al. "Pathomic Fusion." IEEE Trans. Med. Imaging 41(4), 2022.
Chen R. J. et al. "Pan-cancer integrative histology-genomic analysis via multimodal deep
learning (PORPOISE)." Cancer Cell 40(8), 2022.
Ilse M., Tomczak J. M., Welling M. "Attention-based deep multiple instance learning." ICML 2018.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ENCODERS", "TabularEncoder", "BagEncoder", "dense_block"]

#: The kinds of :class:`TabularEncoder`.
ENCODERS = ("snn", "mlp")


def dense_block(in_features: int, out_features: int, *, dropout: float = 0.25, kind: str = "snn") -> nn.Sequential:
    """One fully connected layer with its activation and dropout.

    Parameters
    ----------
    in_features, out_features : int
    dropout : float, default 0.25
    kind : {"snn", "mlp"}, default "snn"
        ``"snn"``: Linear + SELU + AlphaDropout (LeCun-normal weights); ``"mlp"``: Linear + ReLU + Dropout.

    Returns
    -------
    nn.Sequential
    """
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder kind {kind!r}: use one of {ENCODERS}")
    linear = nn.Linear(in_features, out_features)
    if kind == "mlp":
        return nn.Sequential(linear, nn.ReLU(), nn.Dropout(dropout))
    # LeCun-normal initialisation keeps a SELU network self-normalising (Klambauer et al. 2017)
    nn.init.normal_(linear.weight, std=1.0 / math.sqrt(in_features))
    nn.init.zeros_(linear.bias)
    return nn.Sequential(linear, nn.SELU(), nn.AlphaDropout(dropout))


class TabularEncoder(nn.Module):
    """Two dense layers from a feature vector to an embedding.

    Parameters
    ----------
    in_features : int
        Features of the block (columns of its table, or the size of an image / text embedding).
    out_features : int, default 32
        Size of the embedding.
    hidden : int, default 64
        Width of the hidden layer.
    dropout : float, default 0.25
    kind : {"snn", "mlp"}, default "snn"
        See the module docstring.

    ``forward(x)`` maps (batch, in_features) to (batch, out_features).
    """

    def __init__(self, in_features: int, out_features: int = 32, *, hidden: int = 64, dropout: float = 0.25, kind: str = "snn") -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or hidden < 1:
            raise ValueError(f"in_features, out_features and hidden must be positive, got {in_features}, {out_features}, {hidden}")
        self.in_features, self.out_features, self.kind = in_features, out_features, kind
        self.layers = nn.Sequential(
            dense_block(in_features, hidden, dropout=dropout, kind=kind),
            dense_block(hidden, out_features, dropout=dropout, kind=kind),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BagEncoder(nn.Module):
    """Gated-attention pooling of a padded batch of bags (tiles of slides) into one vector per bag.

    Parameters
    ----------
    in_features : int
        Size of each tile embedding.
    out_features : int, default 32
        Size of the pooled vector.
    hidden : int, default 64
        Width of the attention network.
    dropout : float, default 0.25

    ``forward(bags, tile_mask)`` takes ``bags`` (batch, n_tiles, in_features), padded to the
    longest bag, and ``tile_mask`` (batch, n_tiles), 1 for a real tile and 0 for padding; it
    returns (batch, out_features). Padding tiles get attention weight 0, so their values never
    matter. :meth:`attention` returns the weights (batch, n_tiles), each row summing to 1.
    Unlike :class:`mmsurv.models.AttentionMIL`, it takes many bags at once and has no head.
    """

    def __init__(self, in_features: int, out_features: int = 32, *, hidden: int = 64, dropout: float = 0.25) -> None:
        super().__init__()
        self.out_features = out_features
        self.project = nn.Sequential(nn.Linear(in_features, out_features), nn.ReLU(), nn.Dropout(dropout))
        self.attention_v = nn.Sequential(nn.Linear(out_features, hidden), nn.Tanh())
        self.attention_u = nn.Sequential(nn.Linear(out_features, hidden), nn.Sigmoid())
        self.attention_w = nn.Linear(hidden, 1)

    def _weights(self, bags: torch.Tensor, tile_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if bags.ndim != 3 or tile_mask.shape != bags.shape[:2]:
            raise ValueError(
                f"bags must be (batch, n_tiles, features) and tile_mask (batch, n_tiles), got {tuple(bags.shape)} and {tuple(tile_mask.shape)}"
            )
        real = tile_mask > 0.5
        if not bool(real.any(dim=1).all()):
            raise ValueError("every bag needs at least one real tile (tile_mask all zero in a row)")
        hidden = self.project(torch.where(real.unsqueeze(-1), bags, 0.0))
        scores = self.attention_w(self.attention_v(hidden) * self.attention_u(hidden)).squeeze(-1)
        return torch.softmax(scores.masked_fill(~real, float("-inf")), dim=1), hidden

    def attention(self, bags: torch.Tensor, tile_mask: torch.Tensor) -> torch.Tensor:
        """Attention weight of each tile, (batch, n_tiles); padding gets 0 and each row sums to 1."""
        return self._weights(bags, tile_mask)[0]

    def forward(self, bags: torch.Tensor, tile_mask: torch.Tensor) -> torch.Tensor:
        weights, hidden = self._weights(bags, tile_mask)
        return (weights.unsqueeze(-1).to(hidden.dtype) * hidden).sum(dim=1)  # softmax runs in float32 under autocast
