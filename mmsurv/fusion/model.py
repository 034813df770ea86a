"""One multimodal network: an encoder per block, a fusion operator, a prediction head.

The same class serves every multimodal notebook: lung cancer subtypes (slide embedding, RNA,
methylation, clinical; class logits), cervical cancer survival (slides, mutations, clinical;
a Cox log-hazard) and MRI recurrence (image features, report-text embeddings, clinical; one
logit or a log-hazard). Only ``block_features``, ``fusion`` and ``n_outputs`` change.

::

    block "rna"      (batch, 2000) -> encoder -> (batch, 32) --+
    block "slide"    (batch, 1024) -> encoder -> (batch, 32) --+--> fusion --> head --> (batch, n_outputs)
    block "clinical" (batch, 12)   -> encoder -> (batch, 32) --+        ^
    "mask"           (batch, 3)    ----------------------------------------+

Missing modalities are handled by the mask alone: their values (zeros, garbage, even NaN) are
replaced before encoding and their embeddings are replaced before fusion, so they never move
the output. *Modality dropout* (training only) hides present modalities at random, so that
the network learns not to lean on any one of them - the usual remedy for a model that fails
when a modality is missing at test time.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..environment import seeded_torch
from .encoders import TabularEncoder, dense_block
from .operators import FUSIONS, ConcatFusion, GatedAttentionFusion, KroneckerFusion, LateFusion, check_modality_mask

__all__ = ["MultimodalModel"]


class MultimodalModel(nn.Module):
    """Encoders per block, a fusion operator and a head.

    Parameters
    ----------
    block_features : dict of str to int
        Number of features of each block, in the order of the columns of ``inputs["mask"]``
        (:attr:`mmsurv.fusion.MultimodalDataset.block_features` gives it).
    fusion : {"concat", "gated", "kronecker", "late"}, default "concat"
        See :mod:`mmsurv.fusion.operators`.
    n_outputs : int, default 1
        K class logits for a K-class problem, 1 logit for a binary one, 1 log-hazard for Cox.
    embed_dim : int, default 32
        Size of each modality's embedding.
    hidden : int, default 64
        Hidden width of the encoders, the attention network and the head.
    dropout : float, default 0.25
    modality_dropout : float, default 0.0
        In training mode only, each present modality of each sample is hidden (its mask set
        to 0) with this probability; a sample that would lose all its modalities keeps one of
        them, drawn at random. Nothing is dropped in evaluation mode.
    encoder : {"snn", "mlp"}, default "snn"
        Kind of :class:`TabularEncoder` (and of the head's hidden layer).

    Notes
    -----
    ``forward(inputs)`` takes a dict with one tensor (batch, n_features) per block and
    ``"mask"`` (batch, M), 1 = present, 0 = missing; it returns (batch, n_outputs).
    A sample whose mask is all zeros raises ``ValueError``.

    For ``concat``, ``gated`` and ``kronecker`` the head is a dense layer and a linear layer on
    the fused embedding. For ``late`` each modality has its own linear head and the output is
    the mean of the present modalities' outputs; :meth:`embed` then returns the per-modality
    embeddings concatenated, a missing one as zeros (what the heads see, side by side: the
    embeddings of different encoders live in different spaces, so they are not averaged).

    The initial weights are drawn from PyTorch's global random state; :meth:`reinitialise`
    draws them from a seed alone (:func:`mmsurv.fusion.fit_fusion` calls it with its ``seed``).
    """

    def __init__(
        self,
        block_features: Mapping[str, int],
        *,
        fusion: str = "concat",
        n_outputs: int = 1,
        embed_dim: int = 32,
        hidden: int = 64,
        dropout: float = 0.25,
        modality_dropout: float = 0.0,
        encoder: str = "snn",
    ) -> None:
        super().__init__()
        if not block_features:
            raise ValueError("block_features is empty: give at least one block")
        if "mask" in block_features:
            raise ValueError("'mask' is reserved for the modality mask and cannot name a block")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}: use one of {FUSIONS}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be positive, got {n_outputs}")
        self.block_names = tuple(block_features)
        self.block_features = dict(block_features)
        # what reinitialise() needs to build the same network again
        self._settings = {
            "fusion": fusion,
            "n_outputs": n_outputs,
            "embed_dim": embed_dim,
            "hidden": hidden,
            "dropout": dropout,
            "modality_dropout": modality_dropout,
            "encoder": encoder,
        }
        self.fusion_name, self.n_outputs, self.modality_dropout = fusion, n_outputs, modality_dropout
        n_blocks = len(self.block_names)
        self.encoders = nn.ModuleDict(
            {name: TabularEncoder(n, embed_dim, hidden=hidden, dropout=dropout, kind=encoder) for name, n in block_features.items()}
        )
        if fusion == "concat":
            self.fusion = ConcatFusion(n_blocks, embed_dim)
        elif fusion == "gated":
            self.fusion = GatedAttentionFusion(n_blocks, embed_dim, hidden=hidden)
        elif fusion == "kronecker":
            self.fusion = KroneckerFusion(n_blocks, embed_dim, dropout=dropout)
        else:
            self.fusion = LateFusion(n_blocks, embed_dim, n_outputs)
        self.side_by_side = ConcatFusion(n_blocks, embed_dim)  # late fusion's embed(): no parameters
        self.head = None
        if fusion != "late":
            self.head = nn.Sequential(dense_block(self.fusion.out_features, hidden, dropout=dropout, kind=encoder), nn.Linear(hidden, n_outputs))

    def reinitialise(self, seed: int) -> MultimodalModel:
        """Draw every weight afresh from ``seed`` alone, whatever PyTorch's global random state.

        The weights are those of the same model built right after ``torch.manual_seed(seed)``
        (the network is built again, on the CPU, in a forked random state, and its weights
        copied in), so the caller's random state is left as it was and the model stays on its
        device.

        Parameters
        ----------
        seed : int

        Returns
        -------
        MultimodalModel
            The model itself.
        """
        with seeded_torch(seed):
            fresh = MultimodalModel(self.block_features, **self._settings)
        self.load_state_dict(fresh.state_dict())
        return self

    def _embeddings(self, inputs: Mapping[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each block's embedding and the mask used (after modality dropout in training mode)."""
        missing = [name for name in (*self.block_names, "mask") if name not in inputs]
        if missing:
            raise KeyError(f"inputs lack {missing}: expected the blocks {list(self.block_names)} and 'mask'")
        mask = inputs["mask"]
        present = check_modality_mask(mask, len(self.block_names))
        if self.training and self.modality_dropout > 0:
            present = self._drop_modalities(present)
        embeddings = []
        for m, name in enumerate(self.block_names):
            x = inputs[name]
            x = torch.where(present[:, m : m + 1], x, torch.zeros((), dtype=x.dtype, device=x.device))  # a missing block's values never enter
            embeddings.append(self.encoders[name](x))
        return embeddings, present.to(embeddings[0].dtype)

    def _drop_modalities(self, present: torch.Tensor) -> torch.Tensor:
        kept = present & (torch.rand(present.shape, device=present.device) >= self.modality_dropout)
        emptied = ~kept.any(dim=1)
        if emptied.any():  # keep one present modality, drawn at random, of samples that lost them all
            draw = torch.rand(present.shape, device=present.device).masked_fill(~present, -1.0)
            rescued = nn.functional.one_hot(draw.argmax(dim=1), present.shape[1]).bool()
            kept = torch.where(emptied.unsqueeze(1), rescued, kept)
        return kept

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        embeddings, mask = self._embeddings(inputs)
        if self.head is None:
            return self.fusion(embeddings, mask)
        return self.head(self.fusion(embeddings, mask))

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The fused embedding, before the head: (batch, fusion.out_features).

        For late fusion, the per-modality embeddings concatenated, missing ones as zeros
        (batch, M * embed_dim).
        """
        embeddings, mask = self._embeddings(inputs)
        return self.side_by_side(embeddings, mask) if self.head is None else self.fusion(embeddings, mask)

    @property
    def embedding_features(self) -> int:
        """Size of :meth:`embed`'s output."""
        return self.side_by_side.out_features if self.head is None else self.fusion.out_features
