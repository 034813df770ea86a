"""The fit ledger: which patients every fitting step of a pipeline saw.

A held-out estimate is honest only if no fitting step - scaler, imputer, PCA, feature filter,
selection, model, early stopping, ensemble member, risk cut-off, calibration - saw a held-out
patient. A leak of one step is easy to write and invisible in the numbers when it is small. The
ledger makes it visible by construction: each fitting step records the ids it was fitted on,
``record_metrics`` writes the ledger into ``metrics.json``, and :func:`check_ledger` (called by
each notebook before it records, and by the notebooks' tests on the written file) fails when
any step saw a held-out patient, whatever the size of the leak.

Package functions that fit take ``ledger=`` and record what they really used (e.g.
:func:`mmsurv.tabular.fit_on_training`, :func:`mmsurv.fusion.fit_fusion`,
:func:`mmsurv.stats.fit_lasso_cox`, :func:`mmsurv.stats.fit_risk_cutoff`); a scikit-learn
estimator fitted in a notebook goes through :meth:`FitLedger.fit`, which records the index of the
table it is given.

Examples
--------
>>> ledger = FitLedger(held_out=["P3"])
>>> _ = ledger.record("scaler", ["P1", "P2"])
>>> ledger.leaks()
{}
>>> _ = ledger.record("cut-off", ["P1", "P3"])
>>> ledger.leaks()
{'cut-off': ['P3']}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = ["FitLedger", "HeldOutLeakError", "check_ledger", "ledger_leaks"]


class HeldOutLeakError(AssertionError):
    """A fitting step saw a held-out patient."""


class FitLedger:
    """Patient ids seen by each named fitting step, beside the held-out patients.

    Parameters
    ----------
    held_out : iterable of str
        Patients that no fitting step may see (test, internal validation, external centre).
    patient_of : mapping or callable, optional
        Turns a recorded id into a patient id, for pipelines whose rows are not patients
        (sample units, slides): a mapping ``{id: patient}`` or a function. Ids missing from a
        mapping are taken as patient ids.

    Notes
    -----
    Recording the same step twice adds to it (the members of an ensemble, the folds of a
    cross-fit): the entry is every patient any call saw.
    """

    def __init__(self, held_out: Iterable[str], *, patient_of: Mapping[str, str] | Callable[[str], str] | None = None) -> None:
        self.held_out = sorted({str(p) for p in held_out})
        self._patient_of = patient_of
        self.steps: dict[str, list[str]] = {}

    def _patient(self, sample: Any) -> str:
        sample = str(sample)
        if self._patient_of is None:
            return sample
        if callable(self._patient_of):
            return str(self._patient_of(sample))
        return str(self._patient_of.get(sample, sample))

    def record(self, step: str, ids: Iterable[Any]) -> list[Any]:
        """Record that ``step`` was fitted on ``ids``; returns the ids as a list, unchanged.

        Parameters
        ----------
        step : str
            A name a reader understands, e.g. ``"RNA preprocessing"`` or ``"Cox head: early stopping"``.
        ids : iterable
            The ids of the rows the step was fitted on (patients, or units ``patient_of`` maps).

        Returns
        -------
        list
        """
        ids = list(ids)
        if not ids:
            raise ValueError(f"fit ledger: step {step!r} was fitted on no one")
        seen = set(self.steps.get(step, [])) | {self._patient(i) for i in ids}
        self.steps[step] = sorted(seen)
        return ids

    def fit(self, step: str, estimator: Any, table: pd.DataFrame | pd.Series, target: Any = None, **fit_params: Any) -> Any:
        """Fit a scikit-learn style ``estimator`` on ``table`` and record the table's index.

        Parameters
        ----------
        step : str
        estimator : object with ``fit``
        table : DataFrame or Series
            Indexed by the ids of its rows (the index is what gets recorded).
        target : array-like, optional
            Passed to ``fit`` as ``y`` when given.
        **fit_params
            Passed on to ``fit``.

        Returns
        -------
        object
            The fitted estimator.
        """
        if not isinstance(table, (pd.DataFrame, pd.Series)):
            raise TypeError(f"fit ledger: step {step!r} needs a DataFrame or Series indexed by id, got {type(table).__name__}")
        self.record(step, table.index)
        return estimator.fit(table, **fit_params) if target is None else estimator.fit(table, target, **fit_params)

    def record_history(self, step: str, samples: Mapping[str, Iterable[Any]]) -> None:
        """Record a training history's samples: ``{"train": ids, "validation": ids}`` as two steps.

        The early-stopping set is a fitting step too (it chooses the weights): it is recorded as
        ``"<step>: early stopping"``, the training set as ``"<step>: fit"``.
        """
        for role, ids in samples.items():
            self.record(f"{step}: {'early stopping' if role == 'validation' else 'fit' if role == 'train' else role}", ids)

    def leaks(self) -> dict[str, list[str]]:
        """Each step that saw a held-out patient, with those patients."""
        return ledger_leaks(self.as_dict())

    def check(self) -> None:
        """Raise :class:`HeldOutLeakError` if any step saw a held-out patient."""
        check_ledger(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """``{"held_out": [...], "steps": {step: [patients]}}``, the form ``metrics.json`` holds."""
        return {"held_out": list(self.held_out), "steps": {step: list(ids) for step, ids in self.steps.items()}}


def ledger_leaks(ledger: Mapping[str, Any]) -> dict[str, list[str]]:
    """The steps of a ledger (as :meth:`FitLedger.as_dict` writes it) that saw held-out patients.

    Parameters
    ----------
    ledger : mapping
        ``{"held_out": [...], "steps": {step: [...]}}``.

    Returns
    -------
    dict
        ``{step: sorted held-out patients it saw}``; empty when there is no leak.
    """
    held_out = set(ledger["held_out"])
    leaks = {step: sorted(held_out.intersection(ids)) for step, ids in ledger["steps"].items()}
    return {step: patients for step, patients in leaks.items() if patients}


def check_ledger(ledger: Mapping[str, Any]) -> None:
    """Raise :class:`HeldOutLeakError` naming every step that saw a held-out patient.

    Parameters
    ----------
    ledger : mapping
        As :meth:`FitLedger.as_dict` writes it.
    """
    leaks = ledger_leaks(ledger)
    if leaks:
        lines = [f"{step}: {len(p)} held-out patient(s), e.g. {', '.join(p[:3])}" for step, p in leaks.items()]
        raise HeldOutLeakError("fitting steps saw held-out patients - " + "; ".join(lines))
