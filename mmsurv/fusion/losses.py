"""The Cox partial-likelihood loss for a network's log-hazard, on batches the training loop gives.

A Cox head outputs one number per patient, the log relative hazard; the loss is the negative
partial log-likelihood of the observed order of events (Cox 1972), as in DeepSurv, PORPOISE
and PathomicFusion. It is torchsurv's, wrapped for mini-batch training:

* a batch without events (or of one sample) has no comparable pairs, so the partial
  likelihood is undefined; the loss is then 0 - with a graph, so ``backward`` still runs and
  the step only applies weight decay - instead of torchsurv's warning and detached zero;
* tied event times are handled with Efron's approximation; torchsurv warns on every batch with
  ties, which discrete follow-up (days, months) always has, so that warning is silenced here.

torchsurv is imported on the first call: it pulls in torchmetrics and torchvision, seconds of
import time that ``import mmsurv.fusion`` need not pay.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["cox_loss"]


def cox_loss(log_hazard: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative Cox partial log-likelihood, Efron ties, averaged over the events of the batch.

    Parameters
    ----------
    log_hazard : Tensor, shape (batch,) or (batch, 1)
        The network's output: higher means a higher risk, an earlier event.
    target : Tensor, shape (batch, 2)
        ``[time, event]`` per sample: follow-up time and 1 (event) or 0 (censored).

    Returns
    -------
    Tensor
        A scalar. 0 (still attached to ``log_hazard``'s graph) when the batch has no event or
        a single sample.

    Notes
    -----
    ``torchsurv.loss.cox.neg_partial_log_likelihood(log_hz, event, time, ties_method="efron",
    reduction="mean")``: the mean is over events (over unique event times when times are tied),
    so batches with more events do not weigh more. Because the risk set is the batch, the loss
    on mini-batches is a noisy estimate of the full-cohort loss: larger batches estimate it
    better (PORPOISE accumulates gradients over batches for that reason).

    References
    ----------
    Cox D. R. "Regression models and life-tables." J. R. Stat. Soc. B 34(2), 1972.
    Efron B. "The efficiency of Cox's likelihood function for censored data." JASA 72, 1977.
    """
    log_hazard = log_hazard.reshape(-1)
    if target.ndim != 2 or target.shape[1] != 2 or len(target) != len(log_hazard):
        raise ValueError(f"target must be (batch, 2) = [time, event] for {len(log_hazard)} log-hazards, got {tuple(target.shape)}")
    time, event = target[:, 0].float(), target[:, 1] > 0.5
    if len(log_hazard) < 2 or not bool(event.any()):
        return log_hazard.sum() * 0.0  # no comparable pair: zero, keeping the graph
    from torchsurv.loss.cox import neg_partial_log_likelihood

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Ties in `time` detected")
        return neg_partial_log_likelihood(log_hazard.float(), event, time, ties_method="efron", reduction="mean")
