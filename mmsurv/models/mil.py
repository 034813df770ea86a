"""Attention-based multiple-instance learning (Ilse, Tomczak & Welling, ICML 2018).

A slide is a *bag* of tile embeddings with one label. Gated attention scores every tile,
softmax turns the scores into weights, and the weighted mean of the embeddings is the slide's
representation. The weights say which tiles the model relied on - a built-in heatmap.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AttentionMIL"]


class AttentionMIL(nn.Module):
    """Gated-attention pooling of tile embeddings, then a linear prediction per slide.

    Parameters
    ----------
    in_features : int
        Size of each tile embedding.
    n_outputs : int, default 1
    hidden : int, default 128
    dropout : float, default 0.25

    ``forward(bag)`` takes (1, n_tiles, in_features) (a batch of one bag, as a DataLoader with
    ``batch_size=1`` gives it) or (n_tiles, in_features) and returns (1, n_outputs);
    :meth:`attention` returns the tile weights.
    """

    def __init__(self, in_features: int, n_outputs: int = 1, *, hidden: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention_v = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.attention_u = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.attention_w = nn.Linear(hidden, 1)
        self.head = nn.Linear(hidden, n_outputs)

    def _weights(self, bag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if bag.ndim == 3:
            if bag.shape[0] != 1:
                raise ValueError(f"AttentionMIL takes one bag at a time, got a batch of {bag.shape[0]}")
            bag = bag[0]
        hidden = self.project(bag)
        scores = self.attention_w(self.attention_v(hidden) * self.attention_u(hidden)).squeeze(-1)
        return torch.softmax(scores, dim=0), hidden

    def attention(self, bag: torch.Tensor) -> torch.Tensor:
        """Attention weight of each tile (they sum to 1), shape (n_tiles,)."""
        return self._weights(bag)[0]

    def pool(self, bag: torch.Tensor) -> torch.Tensor:
        """The slide's representation: the attention-weighted mean of its projected tiles, shape (hidden,)."""
        weights, hidden = self._weights(bag)
        return weights @ hidden

    def forward(self, bag: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(bag)).unsqueeze(0)
