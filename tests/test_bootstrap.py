"""The vectorised bootstrap gives the same resamples, and the same values, as a plain loop."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines.utils import concordance_index as lifelines_c

from mmsurv import metrics
from mmsurv.metrics.bootstrap import resample_counts


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n).round(1)  # ties in risk
    time = rng.exponential(scale=np.exp(-risk)).round(1) + 0.1  # ties in time
    event = (rng.random(n) < 0.7).astype(int)
    return time, event, risk


def test_resample_counts_are_bootstrap_draws():
    counts = resample_counts(50, 400, seed=3)
    assert counts.shape == (400, 50)
    assert (counts.sum(axis=1) == 50).all()
    # each patient is drawn on average once; about 36.8% are left out of each resample
    assert counts.mean() == pytest.approx(1.0)
    assert (counts == 0).mean() == pytest.approx((1 - 1 / 50) ** 50, abs=0.02)


def test_batched_harrell_equals_loop_with_lifelines():
    time, event, risk = _data()
    counts = resample_counts(len(time), 30, seed=1)
    batched = metrics.bootstrap_ci(metrics.concordance_index, time, event, risk, n_resamples=30, seed=1).values
    rows = np.arange(len(time))
    reference = [lifelines_c(time[np.repeat(rows, c)], -risk[np.repeat(rows, c)], event[np.repeat(rows, c)]) for c in counts]
    np.testing.assert_allclose(batched, reference, atol=1e-9)


def test_batched_and_looped_paths_give_the_same_interval():
    time, event, risk = _data()
    batched = metrics.bootstrap_ci(metrics.concordance_index, time, event, risk, n_resamples=100, seed=5)
    looped = metrics.bootstrap_ci(lambda *a: metrics.concordance_index(*a), time, event, risk, n_resamples=100, seed=5)
    np.testing.assert_allclose(batched.values, looped.values, atol=1e-12)
    assert (batched.ci_low, batched.ci_high) == pytest.approx((looped.ci_low, looped.ci_high))


def test_interval_covers_estimate_and_narrows_with_more_patients():
    small = metrics.bootstrap_ci(metrics.concordance_index, *_data(100), n_resamples=300, seed=0)
    large = metrics.bootstrap_ci(metrics.concordance_index, *_data(1600), n_resamples=300, seed=0)
    for result in (small, large):
        assert result.ci_low < result.estimate < result.ci_high
    assert (large.ci_high - large.ci_low) < 0.5 * (small.ci_high - small.ci_low)


def test_group_bootstrap_resamples_whole_patients():
    # three tiles per patient: resampling patients keeps a patient's tiles together
    rng = np.random.default_rng(0)
    patient = np.repeat(np.arange(40), 3)
    x = rng.normal(size=40)[patient] + 0.1 * rng.normal(size=120)
    copies_per_id = []

    def mean_recording_copies(values, ids):
        copies_per_id.append(np.unique(ids, return_counts=True)[1])
        return float(np.mean(values))

    metrics.bootstrap_ci(mean_recording_copies, x, patient, n_resamples=20, seed=0, groups=patient)
    # every drawn patient brings all three tiles, so each id appears a multiple of 3 times
    assert all((copies % 3 == 0).all() for copies in copies_per_id)


def test_failed_resamples_are_counted_not_fatal():
    time = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    event = np.array([1, 0, 0, 0, 0, 0, 0, 0])  # one event: many resamples have none
    result = metrics.bootstrap_ci(lambda t, e, r: metrics.concordance_index(t, e, r), time, event, -time, n_resamples=200, seed=0)
    assert result.n_failed > 0 and np.isfinite(result.ci_low)


def test_uno_through_partial_is_bootstrapped():
    time, event, risk = _data()
    uno = functools.partial(metrics.uno_concordance_index, train_time=time, train_event=event)
    result = metrics.bootstrap_ci(uno, time[time < time.max()], event[time < time.max()], risk[time < time.max()], n_resamples=50)
    assert 0.5 < result.estimate < 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 60))
def test_c_index_invariant_to_monotone_transform(seed, n):
    time, event, risk = _data(n, seed)
    event[0] = 1
    time[0] = time.min() - 0.05  # guarantees comparable pairs
    c = metrics.concordance_index(time, event, risk)
    assert metrics.concordance_index(time, event, np.exp(3 * risk) + 7) == pytest.approx(c, abs=1e-12)
    # reversing the ranking reflects C around 1/2 (ties stay 1/2)
    assert metrics.concordance_index(time, event, -risk) == pytest.approx(1 - c, abs=1e-12)
