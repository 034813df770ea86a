"""Benchmark: 1,000 bootstrap resamples of Harrell's C at n = 10,000.

Compares mmsurv's vectorised ``bootstrap_ci`` with the usual loop that calls lifelines'
``concordance_index`` once per resample, on the *same* resamples, and checks that the point
values are identical. Prints the two timings and the speed-up (target: at least 50x).

Run: ``python3 -m uv run python benchmarks/bootstrap_cindex.py [--n 10000] [--resamples 1000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from lifelines.utils import concordance_index as lifelines_c

from mmsurv.environment import environment_report
from mmsurv.metrics import bootstrap_ci, concordance_index, resample_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    risk = rng.normal(size=args.n).round(2)  # ties in risk
    time_days = np.ceil(rng.exponential(scale=1000 * np.exp(-0.7 * risk)))  # ties in time
    event = (rng.random(args.n) < 0.6).astype(int)

    bootstrap_ci(concordance_index, time_days[:500], event[:500], risk[:500], n_resamples=10)  # warm-up
    ours_s = []
    for _ in range(3):
        start = time.perf_counter()
        ours = bootstrap_ci(concordance_index, time_days, event, risk, n_resamples=args.resamples, seed=args.seed)
        ours_s.append(time.perf_counter() - start)

    start = time.perf_counter()
    counts = resample_counts(args.n, args.resamples, args.seed)  # the very same resamples
    rows = np.arange(args.n)
    reference = np.empty(args.resamples)
    for b, count in enumerate(counts):
        index = np.repeat(rows, count)
        reference[b] = lifelines_c(time_days[index], -risk[index], event[index])
    lifelines_s = time.perf_counter() - start

    point_lifelines = lifelines_c(time_days, -risk, event)
    report = environment_report("cpu")
    print(
        f"Harrell's C bootstrap, n = {args.n}, {args.resamples} resamples ({report['cpu_count']} CPUs, numpy {report['packages']['numpy']}, lifelines {report['packages']['lifelines']})"
    )
    print(
        f"  point estimate  mmsurv {ours.estimate:.12f}   lifelines {point_lifelines:.12f}   identical: {abs(ours.estimate - point_lifelines) < 1e-12}"
    )
    print(f"  max |resample difference| = {np.max(np.abs(ours.values - reference)):.2e}")
    print(f"  mmsurv vectorised : {min(ours_s):8.3f} s (best of 3; runs {', '.join(f'{s:.3f}' for s in ours_s)})")
    print(f"  lifelines loop    : {lifelines_s:8.3f} s")
    print(f"  speed-up          : {lifelines_s / min(ours_s):8.1f}x (target >= 50x)")
    print(
        f"  95% CI            : mmsurv {ours.ci_low:.4f}-{ours.ci_high:.4f}   loop {np.quantile(reference, 0.025):.4f}-{np.quantile(reference, 0.975):.4f}"
    )


if __name__ == "__main__":
    main()
