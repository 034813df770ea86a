"""How much each modality moved each prediction: Shapley values over the modality mask.

The players of the game are the modalities, a coalition is a set of them left visible to the
model (the others masked, as if missing), and the payout is the model's output. A modality's
Shapley value is its average contribution over all the orders in which the modalities could
be revealed (Shapley 1953; Lundberg & Lee 2017 for model explanations). Because the model was
built to run on any non-empty subset of modalities (:class:`MultimodalModel`), masking is a
faithful way to remove one: nothing needs to be imputed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ..environment import seeded_torch
from ..training import autocast_for
from .data import MultimodalDataset
from .model import MultimodalModel
from .train import predict_fusion

__all__ = ["modality_attribution"]


def modality_attribution(
    model: MultimodalModel,
    dataset: MultimodalDataset,
    *,
    target: int | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    reference: float | None = None,
    log_probability: bool = False,
    n_samples: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Shapley value of each modality for each sample's prediction, with captum.

    Parameters
    ----------
    model : MultimodalModel
    dataset : MultimodalDataset
    target : int, optional
        The class whose output is explained; required when the model has several outputs.
    device : str, default "cpu"
    batch_size : int, default 256
    reference : float, optional
        The output given to the empty coalition (no modality visible). By default the mean
        output of the model over ``dataset`` (see Notes); with ``log_probability``, log(1/K),
        a model that knows nothing and gives every class the same probability.
    log_probability : bool, default False
        Explain the log-probability of ``target`` (log-softmax of a multiclass model) instead of
        its logit. A multiclass logit has no natural zero (adding a constant to every class's
        logit changes no probability), so a logit's "reference" is arbitrary; a log-probability
        has one: the log of the class's prior (pass ``reference=np.log(prior)``, e.g. the
        class's share of the training samples). Each sample's values then add up to
        ``log P(target | its modalities) - reference``: the evidence, in nats, that each
        modality brought for the class.
    n_samples : int, optional
        None: exact Shapley values (``captum.attr.ShapleyValues``, all M! orders; fine up to
        M = 6 or so). An integer: ``captum.attr.ShapleyValueSampling`` with that many random
        orders, for many modalities.
    seed : int, default 0
        Seeds the sampled orders (``n_samples`` only).

    Returns
    -------
    DataFrame
        Rows are ``dataset.sample_ids``, columns the block names; values are in units of the
        model output (the logit of ``target`` for a classifier, or its log-probability with
        ``log_probability``; the logit for a binary model; the log-hazard for Cox).
        ``result.attrs["reference"]`` holds the reference.

    Notes
    -----
    The empty coalition cannot be run: the model refuses a sample with no modality. Its value
    is defined as the *reference*, by default the model's average output over ``dataset``,
    each sample with the modalities it has (with every modality present for every sample,
    the mean output of the model with all modalities present) - the expected value SHAP
    explanations start from - or, with ``log_probability``, log(1/K). So for every sample

    ``attributions.sum(axis=1) + reference == model output``   (efficiency)

    and a modality's value says how far it moved this sample's output away from the
    reference, alone and together with the others. A sample's missing modalities are masked in
    the input and in the baseline alike, so they cannot change anything and get exactly 0;
    coalitions holding none of a sample's modalities are empty for it and get the reference.
    The model is run in evaluation mode (no dropout, no modality dropout).

    Choose the reference with care. The default mean is over ``dataset``: give it samples of
    every class, not of one - over the samples of one class that mean already holds the
    answer, and every modality then seems to pull the output *down* to what it alone can say.
    For a multiclass model prefer ``log_probability`` with the class's training prior as
    ``reference``.

    References
    ----------
    Shapley L. S. "A value for n-person games." Contributions to the Theory of Games II, 1953.
    Lundberg S. M., Lee S.-I. "A unified approach to interpreting model predictions." NeurIPS 2017.
    """
    from captum.attr import ShapleyValues, ShapleyValueSampling  # imported here: captum takes seconds to import

    if model.n_outputs > 1 and target is None:
        raise ValueError(f"the model has {model.n_outputs} outputs: give target, the class whose output to explain")
    if log_probability and model.n_outputs < 2:
        raise ValueError("log_probability explains a class's log-softmax: it needs a multiclass model (n_outputs >= 2)")
    column = 0 if target is None else int(target)
    if not 0 <= column < model.n_outputs:
        raise ValueError(f"target {target} is not among the model's {model.n_outputs} outputs")
    model.to(device).eval()
    if reference is None and log_probability:
        reference = float(-np.log(model.n_outputs))
    elif reference is None:
        reference = float(predict_fusion(model, dataset, device=device, batch_size=batch_size)[:, column].mean())
    n_blocks = len(model.block_names)
    groups = torch.arange(n_blocks, device=device).unsqueeze(0)  # one feature group per modality
    attributions = []
    with seeded_torch(seed, device):
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            inputs = {name: tensor.to(device) for name, tensor in batch["inputs"].items()}
            mask = inputs["mask"].float()

            def output(visible: torch.Tensor, inputs: dict = inputs, mask: torch.Tensor = mask) -> torch.Tensor:
                empty = ~(visible > 0.5).any(dim=1)
                runnable = torch.where(empty.unsqueeze(1), mask, visible)  # any valid mask; the rows are overwritten below
                with autocast_for(device):
                    scores = model({**inputs, "mask": runnable}).float()
                scores = (torch.log_softmax(scores, dim=1) if log_probability else scores)[:, column]
                return torch.where(empty, torch.full_like(scores, reference), scores)

            explainer = ShapleyValues(output) if n_samples is None else ShapleyValueSampling(output)
            options = {} if n_samples is None else {"n_samples": n_samples}
            values = explainer.attribute(mask, baselines=0.0, feature_mask=groups, **options)
            attributions.append((values * mask).detach().float().cpu().numpy())
    values = np.concatenate(attributions) if attributions else np.zeros((0, n_blocks))
    result = pd.DataFrame(values, index=pd.Index(dataset.sample_ids, name="sample_id"), columns=list(model.block_names))
    result.attrs["reference"] = reference
    return result
