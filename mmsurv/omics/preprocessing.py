"""Omics feature blocks for a model: RNA-seq and methylation preprocessing as scikit-learn pipelines.

Fit them with :func:`mmsurv.tabular.fit_on_training` on training samples only.

* **RNA-seq**: log2(TPM + 1), the ``n_genes`` most variable genes, z-scores.
* **Methylation** (beta values): probes masked in more than ``max_missing`` of the training
  samples dropped, the remaining gaps filled with the training median of each probe, the
  ``n_probes`` most variable probes, z-scores (kept as betas before scaling, not M-values:
  the network only sees standardised inputs either way).
"""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..tabular import MissingRateFilter, TopVariance, _Log2Plus1

__all__ = ["rna_pipeline", "methylation_pipeline"]


def rna_pipeline(n_genes: int = 1000, *, log_transform: bool = True) -> Pipeline:
    """log2(TPM + 1) (unless the matrix is already logged), variance filter, z-score."""
    steps = [("log2", _Log2Plus1())] if log_transform else []
    steps += [("variance", TopVariance(n_genes)), ("zscore", StandardScaler())]
    return Pipeline(steps).set_output(transform="default")


def methylation_pipeline(n_probes: int = 1000, *, max_missing: float = 0.1) -> Pipeline:
    """Probe missing-rate filter, training-median imputation, variance filter, z-score."""
    return Pipeline(
        [
            ("probe_filter", MissingRateFilter(max_missing)),
            ("impute", SimpleImputer(strategy="median")),
            ("variance", TopVariance(n_probes)),
            ("zscore", StandardScaler()),
        ]
    )
