"""Fusion operators: combine per-modality embeddings into one, respecting which modalities are present.

Every operator takes a list of M embeddings, each (batch, d), and a modality mask (batch, M)
with 1 where the sample has the modality and 0 where it is missing. What a missing modality's
embedding holds never matters: each operator replaces it (``torch.where``, so even NaN is
harmless) before it can reach the output.

=============  ==========================================================  ==================
operator       what it does with the embeddings                            output
=============  ==========================================================  ==================
``concat``     concatenates them, a missing one as zeros (early fusion,    (batch, M * d)
               the fusion of the paper the notebooks follow)
``gated``      weighted sum, weights from gated attention over the          (batch, d)
               modalities, softmax over the present ones only
``kronecker``  outer product of the gated vectors, each with a 1 appended   (batch, d)
               (PathomicFusion), then a dense layer
``late``       each modality predicts on its own; the prediction is the     (batch, n_outputs)
               mean over the present modalities
=============  ==========================================================  ==================

The first three are *intermediate* fusion: the fused embedding goes on to one prediction head
(:class:`mmsurv.fusion.MultimodalModel`). :class:`LateFusion` holds the heads itself.

References
----------
Ilse M., Tomczak J. M., Welling M. "Attention-based deep multiple instance learning." ICML 2018.
Zadeh A. et al. "Tensor fusion network for multimodal sentiment analysis." EMNLP 2017.
Chen R. J. et al. "Pathomic Fusion." IEEE Trans. Med. Imaging 41(4), 2022.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .encoders import dense_block

__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "GatedAttentionFusion",
    "KroneckerFusion",
    "LateFusion",
    "check_modality_mask",
]

#: The fusion operators, by the name :class:`mmsurv.fusion.MultimodalModel` takes.
FUSIONS = ("concat", "gated", "kronecker", "late")

#: The most features the Kronecker product may have when ``factor_dim`` is left to its default.
_KRONECKER_FEATURES = 256


def check_modality_mask(mask: torch.Tensor, n_modalities: int) -> torch.Tensor:
    """Validate a modality mask and return it as booleans (True = present).

    Parameters
    ----------
    mask : Tensor, shape (batch, n_modalities)
        1 (present) or 0 (missing); values above 0.5 count as present.
    n_modalities : int

    Returns
    -------
    Tensor of bool, shape (batch, n_modalities)

    Raises
    ------
    ValueError
        If the shape is wrong, or a sample has no modality at all.
    """
    if mask.ndim != 2 or mask.shape[1] != n_modalities:
        raise ValueError(f"the modality mask must be (batch, {n_modalities}), got {tuple(mask.shape)}")
    present = mask > 0.5
    empty = (~present.any(dim=1)).nonzero().flatten()
    if len(empty):
        shown = ", ".join(str(int(i)) for i in empty[:10]) + (", ..." if len(empty) > 10 else "")
        raise ValueError(f"sample(s) at batch position {shown} have no modality: at least one block must be present")
    return present


def _checked(embeddings: Sequence[torch.Tensor], mask: torch.Tensor, n_modalities: int) -> torch.Tensor:
    if len(embeddings) != n_modalities:
        raise ValueError(f"expected {n_modalities} embeddings, got {len(embeddings)}")
    return check_modality_mask(mask, n_modalities)


def _masked(embeddings: Sequence[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
    """Stack to (batch, M, d) with missing modalities' embeddings replaced by zeros."""
    stacked = torch.stack(list(embeddings), dim=1)
    return torch.where(present.unsqueeze(-1), stacked, torch.zeros((), dtype=stacked.dtype, device=stacked.device))


class ConcatFusion(nn.Module):
    """Feature-level concatenation; a missing modality contributes zeros.

    Parameters
    ----------
    n_modalities : int
    embed_dim : int
        Size of each modality's embedding.

    ``forward(embeddings, mask)`` returns (batch, n_modalities * embed_dim).
    """

    def __init__(self, n_modalities: int, embed_dim: int) -> None:
        super().__init__()
        self.n_modalities, self.out_features = n_modalities, n_modalities * embed_dim

    def forward(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        present = _checked(embeddings, mask, self.n_modalities)
        return _masked(embeddings, present).flatten(1)


class GatedAttentionFusion(nn.Module):
    """Attention-weighted sum of the modality embeddings; missing modalities get weight 0.

    The score of each modality is gated attention (Ilse et al. 2018) on its embedding,
    ``w . (tanh(V h) * sigmoid(U h))``, the same network for every modality; a softmax over the
    present modalities turns scores into weights that sum to 1.

    Parameters
    ----------
    n_modalities : int
    embed_dim : int
    hidden : int, default 64
        Width of the attention network.

    ``forward(embeddings, mask)`` returns (batch, embed_dim); :meth:`weights` returns the
    attention (batch, n_modalities), which says how much each sample relied on each modality.
    """

    def __init__(self, n_modalities: int, embed_dim: int, *, hidden: int = 64) -> None:
        super().__init__()
        self.n_modalities, self.out_features = n_modalities, embed_dim
        self.attention_v = nn.Sequential(nn.Linear(embed_dim, hidden), nn.Tanh())
        self.attention_u = nn.Sequential(nn.Linear(embed_dim, hidden), nn.Sigmoid())
        self.attention_w = nn.Linear(hidden, 1)

    def _weights(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        present = _checked(embeddings, mask, self.n_modalities)
        stacked = _masked(embeddings, present)
        scores = self.attention_w(self.attention_v(stacked) * self.attention_u(stacked)).squeeze(-1)
        return torch.softmax(scores.masked_fill(~present, float("-inf")), dim=1), stacked

    def weights(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Attention over the modalities, (batch, n_modalities): 0 for missing ones, rows sum to 1."""
        return self._weights(embeddings, mask)[0]

    def forward(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        weights, stacked = self._weights(embeddings, mask)
        return (weights.unsqueeze(-1).to(stacked.dtype) * stacked).sum(dim=1)  # softmax runs in float32 under autocast


def _default_factor_dim(n_modalities: int, embed_dim: int) -> int:
    """The largest size f <= min(embed_dim, 16) with (f + 1) ** n_modalities <= 256 features."""
    factor = min(embed_dim, 16)
    while factor > 0 and (factor + 1) ** n_modalities > _KRONECKER_FEATURES:
        factor -= 1
    if factor == 0:
        raise ValueError(
            f"Kronecker fusion of {n_modalities} modalities would need more than {_KRONECKER_FEATURES} features even at "
            "factor_dim=1: use 'concat' or 'gated' fusion, or pass factor_dim explicitly"
        )
    return factor


class KroneckerFusion(nn.Module):
    """PathomicFusion's gated Kronecker product: every product of features across modalities.

    Each modality's embedding ``h_m`` is projected to ``factor_dim`` features and gated,
    ``o_m = sigmoid(G_m [h_1, ..., h_M]) * relu(W_m h_m)`` (the gate sees every present
    modality, as PathomicFusion's bilinear gates do). A 1 is appended to each gated vector and
    the outer product of the M vectors is taken:

    ``[o_1, 1] (x) [o_2, 1] (x) ... (x) [o_M, 1]``

    Thanks to the appended 1s the product holds every unimodal feature, every pairwise
    product, and so on up to the M-way products (so PathomicFusion's skip connection, which
    appends the unimodal vectors again, is left out). A missing modality's ``o_m`` is set to 0,
    so it contributes only its constant 1 and the product reduces to the other modalities'
    terms. A dense layer then maps the product to ``embed_dim`` features.

    Parameters
    ----------
    n_modalities : int
    embed_dim : int
        Size of the input embeddings and of the fused output.
    factor_dim : int, optional
        Features per modality entering the product, which then has ``(factor_dim + 1) **
        n_modalities`` features. By default the largest size up to ``min(embed_dim, 16)`` that
        keeps the product at or below 256 features: 15 for 2 modalities, 5 for 3, 3 for 4,
        2 for 5, 1 for 6 to 8. PathomicFusion fuses 2-3 modalities of 32 features without a
        projection, on about a thousand patients; with the few hundred samples of a teaching
        cohort, a larger product mostly overfits. An explicit ``factor_dim`` may take the
        product up to 65536 features.
    dropout : float, default 0.25
        Dropout on the product, before the dense layer.
    kind : {"snn", "mlp"}, default "mlp"
        Activation of the dense layer after the product.

    Raises
    ------
    ValueError
        If the product would be too large (more than 8 modalities with the default
        ``factor_dim``): use ``concat`` or ``gated`` fusion there.
    """

    def __init__(self, n_modalities: int, embed_dim: int, *, factor_dim: int | None = None, dropout: float = 0.25, kind: str = "mlp") -> None:
        super().__init__()
        factor_dim = _default_factor_dim(n_modalities, embed_dim) if factor_dim is None else factor_dim
        self.product_features = (factor_dim + 1) ** n_modalities
        if factor_dim < 1 or self.product_features > 2**16:
            raise ValueError(f"factor_dim={factor_dim} gives a Kronecker product of {self.product_features} features (at most 65536)")
        self.n_modalities, self.factor_dim, self.out_features = n_modalities, factor_dim, embed_dim
        self.project = nn.ModuleList(nn.Sequential(nn.Linear(embed_dim, factor_dim), nn.ReLU()) for _ in range(n_modalities))
        self.gate = nn.ModuleList(nn.Linear(n_modalities * embed_dim, factor_dim) for _ in range(n_modalities))
        self.post = nn.Sequential(nn.Dropout(dropout), dense_block(self.product_features, embed_dim, dropout=dropout, kind=kind))

    def forward(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        present = _checked(embeddings, mask, self.n_modalities)
        stacked = _masked(embeddings, present)
        everything = stacked.flatten(1)
        product = None
        for m in range(self.n_modalities):
            gated = torch.sigmoid(self.gate[m](everything)) * self.project[m](stacked[:, m])
            gated = gated * present[:, m : m + 1].to(gated.dtype)  # a missing modality keeps only its 1
            with_one = torch.cat([gated, torch.ones_like(gated[:, :1])], dim=1)
            product = with_one if product is None else (product.unsqueeze(2) * with_one.unsqueeze(1)).flatten(1)
        return self.post(product)


class LateFusion(nn.Module):
    """Late fusion: one linear head per modality, the prediction the mean over the present ones.

    Parameters
    ----------
    n_modalities : int
    embed_dim : int
    n_outputs : int
        Logits (classification) or log-hazard (Cox) per head.

    ``forward(embeddings, mask)`` returns (batch, n_outputs), the mean of the present
    modalities' outputs (logits and log-hazards are averaged as they are, before any softmax).
    :meth:`predictions` returns every head's output, (batch, n_modalities, n_outputs).
    """

    def __init__(self, n_modalities: int, embed_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.n_modalities, self.out_features = n_modalities, n_outputs
        self.heads = nn.ModuleList(nn.Linear(embed_dim, n_outputs) for _ in range(n_modalities))

    def predictions(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each modality's own prediction, (batch, n_modalities, n_outputs), missing ones included (meaningless there)."""
        if len(embeddings) != self.n_modalities:
            raise ValueError(f"expected {self.n_modalities} embeddings, got {len(embeddings)}")
        return torch.stack([head(e) for head, e in zip(self.heads, embeddings)], dim=1)

    def forward(self, embeddings: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        present = _checked(embeddings, mask, self.n_modalities)
        each = _masked(list(self.predictions(embeddings).unbind(1)), present)
        return each.sum(dim=1) / present.sum(dim=1, keepdim=True).to(each.dtype)
