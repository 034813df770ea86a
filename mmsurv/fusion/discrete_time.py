"""Discrete-time survival: time bins, a hazard per bin, the censoring-aware likelihood, whole survival curves.

A Cox head predicts one number per patient and needs a risk set in every batch; a classifier of
"event within 3 years" must drop every patient censored before 3 years. The discrete-time model
that PORPOISE, MCAT and SurvPath train does neither: follow-up is cut into ``K`` bins, the network
outputs one logit per bin, and ``sigmoid(logit_k)`` is the *hazard* of bin ``k`` - the
probability of the event in that bin for a patient still event-free when it starts. Then

* survival to the end of bin ``k`` is ``S_k = prod_{j <= k} (1 - h_j)``: a whole curve per patient;
* a patient with an event in bin ``y`` contributes ``log h_y + sum_{j < y} log(1 - h_j)`` to the
  log-likelihood, and a patient censored a fraction ``f`` of the way through bin ``y`` contributes
  ``sum_{j < y} log(1 - h_j) + f log(1 - h_y)``. **Every censored patient counts**, for as long as
  she was followed. (PORPOISE counts her as event-free to the end of bin ``y``, pycox's label
  transform only to its start: with 4-6 wide bins the first makes the curves visibly too
  optimistic - :meth:`TimeBins.targets` offers both, for comparison);
* each patient's term needs only her own outputs, so the loss works on batches of any size,
  one slide bag per batch included.

PORPOISE weights the likelihood with ``alpha``: ``(1 - alpha) * NLL + alpha * NLL_events``,
where ``NLL_events`` is the part from patients with an event (Zadeh and Schmid 2021 show the
plain likelihood is the unbiased choice; PORPOISE's scripts train with ``alpha = 0``, some of
its code defaults to 0.4). With ``alpha = 0`` (the default here) and whole bins for censored
patients, the loss is the negative log-likelihood of pycox's ``LogisticHazard`` (Kvamme and
Borgan 2021) exactly; the tests check it against pycox.

The bins are cut at quantiles of the **training** patients' event times (PORPOISE: of the
uncensored ones), so each bin holds about as many events: fitted on training patients, like
every other fit in the kit, and recorded in the fit ledger when one is given.

References
----------
Chen R.J. et al. "Pan-cancer integrative histology-genomic analysis via multimodal deep
learning" (PORPOISE). Cancer Cell 40(8):865-878, 2022.
Zadeh S.G., Schmid M. "Bias in cross-entropy-based training of deep survival networks."
IEEE TPAMI 43(9):3126-3137, 2021.
Kvamme H., Borgan O. "Continuous and discrete-time survival prediction with neural networks."
Lifetime Data Analysis 27:710-736, 2021.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ..ledger import FitLedger

__all__ = ["TimeBins", "fit_time_bins", "discrete_time_nll", "survival_curves", "curves_on_grid", "risk_from_curves"]


@dataclass(frozen=True)
class TimeBins:
    """The edges of ``K`` follow-up bins: bin ``k`` is ``[edges[k], edges[k + 1])``, the last one open-ended.

    Attributes
    ----------
    edges : ndarray, shape (K + 1,)
        ``0``, the ``K - 1`` cut points, and the last training time (where the curves end; later
        times fall in the last bin).
    """

    edges: np.ndarray

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    @property
    def curve_times(self) -> np.ndarray:
        """The times the predicted curves are given at: the end of each bin."""
        return self.edges[1:]

    def bin_of(self, time: np.ndarray) -> np.ndarray:
        """Each time's bin index, 0 ... K - 1 (a time on a cut point starts the next bin)."""
        return np.clip(np.searchsorted(self.edges[1:-1], np.asarray(time, dtype=float), side="right"), 0, self.n_bins - 1)

    def position(self, time: np.ndarray) -> np.ndarray:
        """Each time in bin units: ``k + f`` for a time a fraction ``f`` through bin ``k``; ``K`` at the last edge and beyond."""
        time = np.asarray(time, dtype=float)
        k = self.bin_of(time)
        fraction = np.clip((time - self.edges[k]) / (self.edges[k + 1] - self.edges[k]), 0.0, 1.0)
        return k + fraction

    def targets(self, time: np.ndarray, event: np.ndarray, *, censored: str = "elapsed") -> np.ndarray:
        """``(n, 2)`` float32 ``[position, event]`` rows: the targets of ``task="discrete_survival"``.

        ``position`` is the time in bin units (:meth:`position`): an event at position ``k + f``
        happened in bin ``k``.

        Parameters
        ----------
        time, event : array-like, shape (n,)
        censored : {"elapsed", "end", "start"}, default "elapsed"
            How much of bin ``y`` a patient censored inside it is credited with surviving.
            ``"elapsed"``: the fraction ``f`` she was followed, ``(1 - h_y) ** f`` in the
            likelihood (the hazard spread evenly over the bin, as :func:`curves_on_grid` reads the
            curves). ``"end"`` (PORPOISE): the whole bin - follow-up she did not have, which makes
            the curves too optimistic. ``"start"`` (pycox's label transform): none of it - too
            pessimistic.
        """
        event = np.asarray(event, dtype=float)
        if not np.isin(event, (0.0, 1.0)).all():
            raise ValueError("event must be 0 (censored) or 1 (event)")
        if censored not in ("elapsed", "end", "start"):
            raise ValueError(f"censored must be 'elapsed', 'end' or 'start', got {censored!r}")
        position = self.position(time)
        k = np.minimum(np.floor(position), self.n_bins - 1)
        if censored == "end":
            position = np.where(event == 0, k + 1, position)
        elif censored == "start":
            position = np.where(event == 0, k, position)
        return np.column_stack([position, event]).astype(np.float32)


def fit_time_bins(
    time: np.ndarray,
    event: np.ndarray,
    *,
    n_bins: int = 4,
    ids: Sequence[Any] | None = None,
    ledger: FitLedger | None = None,
    step: str = "discrete-time bins",
) -> TimeBins:
    """Cut follow-up into ``n_bins`` bins at quantiles of the training patients' event times.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        The **training** patients' follow-up.
    n_bins : int, default 4
        PORPOISE uses 4.
    ids : sequence, optional
        The patients' ids, recorded in ``ledger`` under ``step``.
    ledger : FitLedger, optional

    Returns
    -------
    TimeBins

    Raises
    ------
    ValueError
        Fewer events than bins, or cut points that coincide (too many tied event times).
    """
    from ..validation import check_survival

    time, event, _ = check_survival(time, event, require_events=True)
    if n_bins < 2:
        raise ValueError(f"n_bins must be at least 2, got {n_bins}")
    event_times = time[event]
    if len(event_times) < n_bins:
        raise ValueError(f"{len(event_times)} events cannot cut follow-up into {n_bins} bins")
    cuts = np.quantile(event_times, np.arange(1, n_bins) / n_bins)
    if np.any(np.diff(cuts) <= 0) or cuts[0] <= 0:
        raise ValueError(f"the event times are too tied for {n_bins} bins (cut points {cuts}): use fewer bins")
    if ledger is not None and ids is not None:
        ledger.record(step, ids)
    return TimeBins(edges=np.concatenate([[0.0], cuts, [max(float(time.max()), float(cuts[-1]) * (1 + 1e-9))]]))


def discrete_time_nll(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.0) -> torch.Tensor:
    """Negative log-likelihood of the discrete-time hazard model, averaged over the batch.

    Parameters
    ----------
    logits : Tensor, shape (batch, K)
        One logit per bin; the hazard of bin ``k`` is ``sigmoid(logits[:, k])``.
    target : Tensor, shape (batch, 2)
        ``[position, event]`` rows (:meth:`TimeBins.targets`): an event at position ``k + f`` is
        an event in bin ``k``; a patient censored at ``k + f`` survived the bins before ``k`` and
        a fraction ``f`` of bin ``k``. With whole-number positions for the censored rows (``k + 1``:
        bin ``k`` survived) this is pycox's ``nll_logistic_hazard`` with index ``k``.
    alpha : float, default 0.0
        PORPOISE's weight of the event patients' terms: ``(1 - alpha) * NLL + alpha * NLL_events``
        (see the module notes). 0 is the plain likelihood.

    Returns
    -------
    Tensor
        A scalar.
    """
    if target.ndim != 2 or target.shape[1] != 2 or len(target) != len(logits):
        raise ValueError(f"target must be (batch, 2) = [position, event] for {len(logits)} rows of logits, got {tuple(target.shape)}")
    n_bins = logits.shape[1]
    position, event = target[:, 0].to(logits.dtype), target[:, 1].to(logits.dtype)
    if bool((position < 0).any()) or bool((position > n_bins).any()):
        raise ValueError(f"positions must lie in [0, {n_bins}] (TimeBins.targets)")
    y = position.floor().long().clamp(max=n_bins - 1).unsqueeze(1)  # the bin of the event, or of the censoring
    elapsed = (position - y.squeeze(1)).clamp(0.0, 1.0)  # how much of that bin she was followed
    log_survive = F.logsigmoid(-logits)  # log(1 - h_k)
    before = torch.cumsum(log_survive, dim=1).gather(1, y).squeeze(1) - log_survive.gather(1, y).squeeze(1)  # sum_{j < y}
    event_term = -(before + F.logsigmoid(logits).gather(1, y).squeeze(1)) * event
    censored_term = -(before + elapsed * log_survive.gather(1, y).squeeze(1)) * (1.0 - event)
    return ((1.0 - alpha) * (event_term + censored_term) + alpha * event_term).mean()


def survival_curves(logits: np.ndarray | torch.Tensor) -> np.ndarray:
    """``S_k = prod_{j <= k} (1 - sigmoid(logit_j))``: each patient's survival at the end of each bin.

    Returns
    -------
    ndarray, shape (n, K)
        Non-increasing along each row; read it at :attr:`TimeBins.curve_times`.
    """
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    return torch.exp(torch.cumsum(F.logsigmoid(-logits), dim=1)).numpy()


def curves_on_grid(curves: np.ndarray, bins: TimeBins, grid: np.ndarray) -> np.ndarray:
    """Survival curves at any times, the hazard spread evenly over each bin (constant-hazard interpolation).

    :func:`survival_curves` gives survival at the bins' ends only: read as a step function, a
    patient's survival would stay 1 through the whole first bin and drop at its end, and
    D-calibration would see four values per patient. Between the ends of bin ``k - 1`` and
    ``k``, ``S(t) = S_{k-1} * (S_k / S_{k-1}) ** f``, ``f`` the fraction of the bin elapsed (pycox's
    constant-hazard interpolation); after the last edge the curve stays at its last value.

    Parameters
    ----------
    curves : array-like, shape (n, K)
        From :func:`survival_curves`.
    bins : TimeBins
    grid : array-like, shape (m,)
        Increasing times.

    Returns
    -------
    ndarray, shape (n, m)
    """
    curves = np.asarray(curves, dtype=float)
    grid = np.asarray(grid, dtype=float)
    if curves.ndim != 2 or curves.shape[1] != bins.n_bins:
        raise ValueError(f"curves must have {bins.n_bins} columns (one per bin), got shape {curves.shape}")
    start = np.column_stack([np.ones(len(curves)), curves[:, :-1]])  # survival at the start of each bin
    position = bins.position(grid)
    k = np.minimum(np.floor(position), bins.n_bins - 1).astype(int)
    fraction = position - k
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(start[:, k] > 0, curves[:, k] / start[:, k], 0.0)
    return start[:, k] * ratio**fraction


def risk_from_curves(curves: np.ndarray) -> np.ndarray:
    """A risk score from survival curves: minus their sum (PORPOISE's), so higher means an earlier event."""
    return -np.asarray(curves, dtype=float).sum(axis=1)
