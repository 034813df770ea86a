"""Shared fixtures: real survival data sets that ship inside scikit-survival and lifelines."""

from __future__ import annotations

import numpy as np
import pytest


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


@pytest.fixture(scope="session")
def virtual_files():
    """The smoke-size virtual cohorts on disk, written once (cached in the data folder across runs)."""
    from mmsurv.virtual import virtual_cohort_files

    return {name: virtual_cohort_files(name, seed=0, size="smoke", progress=False) for name in ("brca", "lung_tcga", "cesc", "lung_ct", "cesc_mri")}
