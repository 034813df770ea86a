"""Binary endpoints derived from survival data, and the time constants they use, shared by simulated and real cohorts."""

from __future__ import annotations

import numpy as np

from .validation import check_survival

__all__ = ["DAYS_PER_YEAR", "event_within"]

#: Days in a (Julian) year: survival times are kept in days, landmarks are given in years.
DAYS_PER_YEAR = 365.25


def event_within(time: np.ndarray, event: np.ndarray, horizon: float) -> np.ndarray:
    """Did the event happen by ``horizon``? Patients censored before it are unknown.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up time and event indicator (1 = event).
    horizon : float
        The landmark, in the units of ``time`` (e.g. 3 * 365.25 days).

    Returns
    -------
    ndarray of float, shape (n,)
        1.0 if the event occurred at or before ``horizon``; 0.0 if the patient was followed
        beyond ``horizon`` without it; NaN if censored at or before ``horizon`` (we cannot
        know: such patients must be *excluded*, not counted as survivors).
    """
    time, event, _ = check_survival(time, event, require_events=False)
    label = np.full(len(time), np.nan)
    label[event & (time <= horizon)] = 1.0
    label[time > horizon] = 0.0
    return label
