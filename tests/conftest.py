"""Shared fixtures: real survival data sets that ship inside scikit-survival and lifelines, and the virtual cohorts."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import numpy as np
import pytest

# pytest-xdist runs the suite in several worker processes (``-n auto``: one per core). Each
# worker's torch and BLAS would otherwise start one thread per core, and oversubscribed
# OpenMP threads spin against each other: share the cores out instead. Set before any test
# module imports torch; a value the caller exported wins.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)


def _veterans():
    from sksurv.datasets import load_veterans_lung_cancer

    x, y = load_veterans_lung_cancer()
    # Karnofsky score: a low score means a sicker patient, so risk = -score; many tied scores
    return y["Survival_in_days"].astype(float), y["Status"].astype(int), -x["Karnofsky_score"].to_numpy(float)


def _gbsg2():
    from sksurv.datasets import load_gbsg2

    x, y = load_gbsg2()
    # positive lymph nodes: heavily tied integer risk; GBSG2 also has tied times
    return y["time"].astype(float), y["cens"].astype(int), x["pnodes"].to_numpy(float)


def _breast_cancer_expression():
    from sksurv.datasets import load_breast_cancer

    x, y = load_breast_cancer()
    # 198 patients with gene expression; a single probe as the risk score, rounded to create ties
    return y["t.tdm"].astype(float), y["e.tdm"].astype(int), x["X202240_at"].to_numpy(float).round(1)


def _lung():
    from lifelines.datasets import load_lung

    data = load_lung().dropna(subset=["ph.ecog"])
    return data["time"].to_numpy(float), data["status"].to_numpy(int), data["ph.ecog"].to_numpy(float)


REAL_DATASETS = {
    "veterans": _veterans,
    "gbsg2": _gbsg2,
    "breast_cancer_198": _breast_cancer_expression,
    "lifelines_lung": _lung,
}


@pytest.fixture(params=sorted(REAL_DATASETS))
def real_survival(request):
    """(name, time, event, risk) for each real data set; risks and times contain ties."""
    time, event, risk = REAL_DATASETS[request.param]()
    assert len(np.unique(risk)) < len(risk), "fixture should contain tied risks"
    return request.param, np.asarray(time), np.asarray(event), np.asarray(risk)


class _SmokeCohorts(Mapping):
    """The smoke-size virtual cohorts, each written on first access (and cached in the data folder across runs).

    Lazy, so that a worker writes only the cohorts its tests read; two workers asking for the
    same cohort wait for one writer (``virtual_cohort_files`` holds a lock per cohort).
    """

    def __init__(self) -> None:
        from mmsurv.virtual.dataset import COHORTS

        self.names = COHORTS
        self._cohorts: dict[str, object] = {}

    def __getitem__(self, name: str) -> object:
        from mmsurv.virtual import virtual_cohort_files

        if name not in self.names:
            raise KeyError(name)
        if name not in self._cohorts:
            self._cohorts[name] = virtual_cohort_files(name, seed=0, size="smoke", progress=False)
        return self._cohorts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@pytest.fixture(scope="session")
def virtual_files() -> Mapping:
    """The smoke-size virtual cohorts on disk, by name, each written once on first use."""
    return _SmokeCohorts()
