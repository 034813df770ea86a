"""One place that checks survival inputs for every metric and statistic.

Every public metric calls :func:`check_survival` (or :func:`check_scores`) first, so a
student who passes NaN times, an event column coded 1/2, or arrays of different lengths
gets the same clear :class:`ValueError` wherever the mistake is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_survival", "check_scores", "check_binary_labels", "check_same_length", "labelled_ids"]


def _as_float_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    try:
        array = array.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric: {err}") from err
    return array


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless all named arrays have the same first dimension."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"length mismatch: {described}")


def check_scores(values: Any, name: str = "risk") -> np.ndarray:
    """Return ``values`` as a finite 1-D float array, or raise ``ValueError``."""
    array = _as_float_1d(values, name)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s)")
    return array


def check_binary_labels(values: Any, name: str = "y_true") -> np.ndarray:
    """Return 0/1 labels as an int array; raise ``ValueError`` for anything else."""
    array = check_scores(values, name)
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1, got values {np.unique(array)[:5]}")
    return array.astype(int)


def check_survival(
    time: Any,
    event: Any,
    risk: Any | None = None,
    *,
    require_events: bool = True,
    prefix: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate right-censored survival data.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up time (event or censoring); finite and non-negative.
    event : array-like, shape (n,)
        1 (or True) where the event was observed, 0 (or False) where the patient was censored.
    risk : array-like, shape (n,), optional
        Predicted risk score; must be finite.
    require_events : bool, default True
        Raise when every patient is censored (most metrics are undefined then).
    prefix : str
        Added in front of argument names in messages, e.g. ``"train_"``.

    Returns
    -------
    time : ndarray of float
    event : ndarray of bool
    risk : ndarray of float or None

    Raises
    ------
    ValueError
        On NaN or negative times, events not coded 0/1, length mismatch, non-finite
        risks, or (with ``require_events``) a set in which every patient is censored.
    """
    time_arr = _as_float_1d(time, f"{prefix}time")
    if np.isnan(time_arr).any():
        raise ValueError(f"{prefix}time contains {int(np.isnan(time_arr).sum())} NaN value(s)")
    if not np.isfinite(time_arr).all():
        raise ValueError(f"{prefix}time contains infinite value(s)")
    if (time_arr < 0).any():
        raise ValueError(f"{prefix}time contains {int((time_arr < 0).sum())} negative value(s)")
    event_arr = _as_float_1d(event, f"{prefix}event")
    if np.isnan(event_arr).any():
        raise ValueError(f"{prefix}event contains NaN value(s)")
    if not np.isin(event_arr, (0.0, 1.0)).all():
        raise ValueError(f"{prefix}event must be coded 0 (censored) / 1 (event), got values {np.unique(event_arr)[:5]}")
    arrays = {f"{prefix}time": time_arr, f"{prefix}event": event_arr}
    risk_arr = None
    if risk is not None:
        risk_arr = check_scores(risk, "risk")
        arrays["risk"] = risk_arr
    check_same_length(**arrays)
    event_bool = event_arr.astype(bool)
    if require_events and not event_bool.any():
        raise ValueError(f"all patients are censored ({prefix}event is all 0): the metric is undefined")
    return time_arr, event_bool, risk_arr


def labelled_ids(ids: Sequence[Any], labels: pd.Series, *, who: str = "patient") -> list[Any]:
    """The ``ids`` whose label is known (not NaN), in their order.

    Labels are looked up by id, never by position. An id with *no entry* in ``labels`` is an
    error (a patient dropped on the way), unlike an entry that is NaN (a patient censored before
    the landmark: no label by design, left out).

    Parameters
    ----------
    ids : sequence
    labels : Series
        Label by id, NaN for an unlabelled one.
    who : str, default "patient"
        What an id is, for the error message.

    Returns
    -------
    list

    Raises
    ------
    KeyError
        Some ids have no entry in ``labels``.
    """
    missing = [i for i in ids if i not in labels.index]
    if missing:
        raise KeyError(f"no label entry for {len(missing)} {who}(s), e.g. {missing[:3]}")
    return [i for i in ids if pd.notna(labels[i])]
