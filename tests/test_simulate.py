"""The virtual cohort is deterministic, plants the signal it claims, and censors sensibly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv import stats
from mmsurv.endpoints import DAYS_PER_YEAR, event_within
from mmsurv.metrics import concordance_index
from mmsurv.virtual.simulate import PLANTED_LOG_HAZARD, simulate_cohort


def test_same_seed_same_cohort_other_seed_other_cohort():
    a, b, c = (simulate_cohort(200, seed=s).patients for s in (7, 7, 8))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.time, c.time)


def test_planted_log_hazards_are_recovered():
    patients = simulate_cohort(4000, seed=0).patients.assign(age_per_decade=lambda d: (d.age - 60) / 10)
    fitted = np.log(stats.fit_cox(patients, "time", "event", ["proliferation", "immune", "invasion", "age_per_decade"]).table.hazard_ratio)
    for name, planted in PLANTED_LOG_HAZARD.items():
        assert fitted[name] == pytest.approx(planted, abs=0.08), name


def test_oracle_beats_clinical_proxies_and_clinical_beats_chance():
    patients = simulate_cohort(2000, seed=1).patients
    oracle = concordance_index(patients.time, patients.event, patients.true_risk)
    stage = concordance_index(patients.time, patients.event, patients.stage)
    assert oracle > 0.72
    assert 0.55 < stage < oracle - 0.05


def test_censoring_and_follow_up_are_plausible():
    patients = simulate_cohort(2000, seed=2).patients
    assert 0.3 < patients.event.mean() < 0.75  # both events and censoring are common
    assert patients.time.max() <= 10 * DAYS_PER_YEAR + 1  # nobody is followed past the study close
    assert (patients.time >= 1).all()
    assert (patients.recurrence_time <= patients.time).all()


def test_binary_endpoints_exclude_early_censoring():
    patients = simulate_cohort(1000, seed=3).patients
    horizon = 3 * DAYS_PER_YEAR
    early_censored = (patients.event == 0) & (patients.time <= horizon)
    assert patients.died_within_3y[early_censored].isna().all()
    assert (patients.died_within_3y[(patients.event == 1) & (patients.time <= horizon)] == 1).all()
    assert (patients.died_within_3y[patients.time > horizon] == 0).all()
    np.testing.assert_array_equal(event_within([1.0, 5.0, 5.0], [0, 1, 0], 3.0), [np.nan, 0.0, 0.0])


def test_centres_differ_in_case_mix():
    patients = simulate_cohort(3000, seed=4, n_centres=4).patients
    assert set(patients.centre) == {"C1", "C2", "C3", "C4"}
    mean_age = patients.groupby("centre").age.mean()
    assert mean_age["C4"] - mean_age["C1"] > 4


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_patients"):
        simulate_cohort(3)
