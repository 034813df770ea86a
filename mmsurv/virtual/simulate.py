"""The virtual cohort: simulated patients with known, planted prognostic signal.

Every notebook runs out of the box on a virtual cohort, and because we planted the
signal we know the right answer: the *oracle* risk is stored next to the data, so a
notebook can show how close its model comes to the best possible.

The generative story (v1: clinical data and outcomes; later versions add images,
volumes, omics and report text drawn from the same latent biology):

1. Each patient has three latent tumour traits, standard normal and correlated:
   ``proliferation``, ``immune`` (infiltration) and ``invasion``.
2. Clinical covariates are noisy read-outs of them: ``grade`` (1-3) follows proliferation,
   ``stage`` (1-4) follows invasion, and ``age`` varies by ``centre``; ``treatment`` depends
   on stage and centre.
3. The true log-hazard ``true_risk`` is a linear combination with planted coefficients
   (:data:`PLANTED_LOG_HAZARD`), and survival times come from a Weibull proportional-hazards
   model: ``S(t | x) = exp(-scale * t**shape * exp(true_risk))``.
4. Follow-up ends at the study's close (administrative censoring after staggered entry) or
   earlier when a patient is lost to follow-up (random censoring).
5. Recurrence follows its own Weibull model from the same traits and is censored by death
   or the end of follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..endpoints import DAYS_PER_YEAR, event_within

__all__ = ["PLANTED_LOG_HAZARD", "VirtualCohort", "simulate_cohort", "patient_code"]

#: Planted log-hazard ratios of death (per standard deviation of each trait; age per decade).
PLANTED_LOG_HAZARD: dict[str, float] = {
    "proliferation": 0.6,
    "immune": -0.5,
    "invasion": 0.5,
    "age_per_decade": 0.25,
}

#: Planted log-hazard ratios of recurrence.
PLANTED_RECURRENCE_LOG_HAZARD: dict[str, float] = {"proliferation": 0.4, "immune": -0.3, "invasion": 0.7}

_TRAIT_CORRELATION = np.array(
    [
        [1.0, -0.2, 0.3],  # proliferation
        [-0.2, 1.0, -0.1],  # immune
        [0.3, -0.1, 1.0],  # invasion
    ]
)


@dataclass
class VirtualCohort:
    """A simulated cohort and the truth behind it.

    Attributes
    ----------
    patients : DataFrame
        One row per patient: ``patient_id`` (a TCGA-style barcode, ``VIRT-01-0000``), ``centre``, the latent traits, ``age``,
        ``grade``, ``stage``, ``treatment``, ``time`` (days), ``event`` (1 = death),
        ``true_risk`` (the oracle log-hazard), ``died_within_2y`` and ``died_within_3y``
        (NaN when censored earlier), ``recurrence_time`` and ``recurrence_event``.
    weibull_shape, weibull_scale : float
        Baseline hazard ``h0(t) = scale * shape * t**(shape - 1)`` (t in days).
    seed : int
        The seed that generated it.
    """

    patients: pd.DataFrame
    weibull_shape: float
    weibull_scale: float
    seed: int
    planted_log_hazard: dict[str, float] = field(default_factory=lambda: dict(PLANTED_LOG_HAZARD))

    def oracle_survival(self, times: np.ndarray, patients: pd.DataFrame | None = None) -> np.ndarray:
        """True probability of being alive at each time, shape (n_patients, n_times).

        Parameters
        ----------
        times : array-like
            Times in days.
        patients : DataFrame, optional
            A subset of :attr:`patients` (e.g. the test split); default all.
        """
        rows = self.patients if patients is None else patients
        times = np.atleast_1d(np.asarray(times, dtype=float))
        cumulative_hazard = self.weibull_scale * times[None, :] ** self.weibull_shape
        return np.exp(-cumulative_hazard * np.exp(rows["true_risk"].to_numpy())[:, None])


def patient_code(centre: int, index: int, project: str = "VIRT") -> str:
    """A TCGA-style patient barcode for a virtual patient: ``VIRT-<centre>-<index in base 36>``.

    The centre plays the role of TCGA's tissue source site, so the kit's barcode helpers
    (:mod:`mmsurv.io.barcodes`) work on virtual and real patients alike.
    """
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    code = ""
    for _ in range(4):
        index, remainder = divmod(index, 36)
        code = digits[remainder] + code
    return f"{project}-{centre:02d}-{code}"


def _weibull_times(rng: np.random.Generator, log_hazard: np.ndarray, shape: float, scale: float) -> np.ndarray:
    """Invert S(t) = exp(-scale t^shape e^eta) at an exponential draw."""
    return (rng.exponential(size=len(log_hazard)) / (scale * np.exp(log_hazard))) ** (1.0 / shape)


def simulate_cohort(
    n_patients: int = 400,
    *,
    seed: int = 0,
    n_centres: int = 4,
    median_survival_years: float = 6.0,
    weibull_shape: float = 1.3,
    accrual_years: float = 5.0,
    study_years: float = 10.0,
    loss_to_follow_up_per_year: float = 0.03,
    extra_log_hazard: np.ndarray | None = None,
) -> VirtualCohort:
    """Simulate a virtual cohort with planted prognostic signal.

    Parameters
    ----------
    n_patients : int, default 400
    seed : int, default 0
        Everything is drawn from ``numpy.random.default_rng(seed)``: same seed, same cohort.
    n_centres : int, default 4
        Centres ``C1``..``Cn`` differ in case-mix (age, stage) and treatment policy, so one
        can be held out as an external validation cohort.
    median_survival_years : float, default 6.0
        Median survival of a patient with ``true_risk == 0``.
    weibull_shape : float, default 1.3
        > 1: hazard increases with time.
    accrual_years, study_years : float
        Patients enter uniformly over the first ``accrual_years``; the study closes at
        ``study_years`` (administrative censoring).
    loss_to_follow_up_per_year : float, default 0.03
        Rate of random (non-informative) censoring.
    extra_log_hazard : array of shape (n_patients,), optional
        Added to every patient's ``true_risk`` before survival is drawn: prognostic factors
        planted outside the latent traits, e.g. mutations with their own hazard ratio.

    Returns
    -------
    VirtualCohort
    """
    if not 10 <= n_patients <= 36**4:
        raise ValueError(f"n_patients must be between 10 and 36**4 (four base-36 digits), got {n_patients}")
    if n_centres < 1:
        raise ValueError(f"n_centres must be at least 1, got {n_centres}")
    if extra_log_hazard is not None and np.shape(extra_log_hazard) != (n_patients,):
        raise ValueError(f"extra_log_hazard must have shape ({n_patients},), got {np.shape(extra_log_hazard)}")
    rng = np.random.default_rng(seed)
    centre_index = rng.integers(0, n_centres, size=n_patients)
    traits = rng.multivariate_normal(np.zeros(3), _TRAIT_CORRELATION, size=n_patients)
    proliferation, immune, invasion = traits.T

    # clinical covariates: noisy read-outs of the latent traits, with centre case-mix
    centre_age_shift = np.linspace(-4.0, 4.0, n_centres) if n_centres > 1 else np.zeros(1)
    age = np.clip(58 + centre_age_shift[centre_index] + 11 * rng.standard_normal(n_patients), 25, 90).round()
    centre_stage_shift = np.linspace(-0.3, 0.3, n_centres) if n_centres > 1 else np.zeros(1)
    stage_latent = invasion + centre_stage_shift[centre_index] + 0.6 * rng.standard_normal(n_patients)
    stage = 1 + np.searchsorted([-0.6, 0.4, 1.3], stage_latent)
    grade = 1 + np.searchsorted([-0.5, 0.6], proliferation + 0.7 * rng.standard_normal(n_patients))
    chemo_policy = np.linspace(0.3, 0.7, n_centres) if n_centres > 1 else np.full(1, 0.5)
    advanced = stage >= 3
    treatment = np.where(
        advanced,
        np.where(rng.random(n_patients) < chemo_policy[centre_index], "chemoradiotherapy", "radiotherapy"),
        "surgery",
    )

    true_risk = (
        PLANTED_LOG_HAZARD["proliferation"] * proliferation
        + PLANTED_LOG_HAZARD["immune"] * immune
        + PLANTED_LOG_HAZARD["invasion"] * invasion
        + PLANTED_LOG_HAZARD["age_per_decade"] * (age - 60) / 10
    )
    if extra_log_hazard is not None:
        true_risk = true_risk + np.asarray(extra_log_hazard, dtype=float)
    median_days = median_survival_years * DAYS_PER_YEAR
    weibull_scale = np.log(2) / median_days**weibull_shape
    death_time = _weibull_times(rng, true_risk, weibull_shape, weibull_scale)

    entry = rng.uniform(0, accrual_years, size=n_patients)
    administrative = (study_years - entry) * DAYS_PER_YEAR
    lost = rng.exponential(1.0 / loss_to_follow_up_per_year, size=n_patients) * DAYS_PER_YEAR
    censor_time = np.minimum(administrative, lost)
    time = np.maximum(np.minimum(death_time, censor_time).round(), 1.0)  # whole days, as in GDC tables
    event = (death_time <= censor_time).astype(int)

    recurrence_risk = sum(PLANTED_RECURRENCE_LOG_HAZARD[k] * v for k, v in zip(("proliferation", "immune", "invasion"), traits.T))
    recurrence_draw = _weibull_times(rng, recurrence_risk, weibull_shape, np.log(2) / (0.6 * median_days) ** weibull_shape)
    recurrence_time = np.maximum(np.minimum(recurrence_draw, time).round(), 1.0)
    recurrence_event = (recurrence_draw <= time).astype(int)

    patients = pd.DataFrame(
        {
            "patient_id": [patient_code(c + 1, i) for c, i in zip(centre_index, range(n_patients))],
            "centre": [f"C{c + 1}" for c in centre_index],
            "proliferation": proliferation,
            "immune": immune,
            "invasion": invasion,
            "age": age,
            "grade": grade,
            "stage": stage,
            "treatment": treatment,
            "time": time,
            "event": event,
            "true_risk": true_risk,
            "recurrence_time": recurrence_time,
            "recurrence_event": recurrence_event,
        }
    )
    patients["died_within_2y"] = event_within(time, event, 2 * DAYS_PER_YEAR)
    patients["died_within_3y"] = event_within(time, event, 3 * DAYS_PER_YEAR)
    return VirtualCohort(patients=patients, weibull_shape=weibull_shape, weibull_scale=weibull_scale, seed=seed)
