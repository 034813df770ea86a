"""Gene-expression signatures used as targets: the 11-gene proliferation score and MKI67.

The proliferation score of Nielsen et al. (2010), the proliferation component of the PAM50
risk-of-recurrence score, as Ekholm et al. (2024) computed it from RNA-seq: each of the 11
genes is log-transformed and standardised across samples, and the score is their mean.

References
----------
Nielsen T.O. et al., "A comparison of PAM50 intrinsic subtyping with immunohistochemistry and
clinical prognostic factors in tamoxifen-treated estrogen receptor-positive breast cancer",
Clin Cancer Res 16(21):5222-5232 (2010).
Ekholm M. et al., "Deep learning-based prediction of the 11-gene proliferation score and MKI67
from whole-slide images of breast cancer", BMC Cancer (2024).
"""

from __future__ import annotations

import pandas as pd

__all__ = ["PROLIFERATION_GENES", "proliferation_score", "gene_expression"]

#: BIRC5, CCNB1, CDC20, NUF2 (CDCA1), CEP55, NDC80 (KNTC2), MKI67, PTTG1, RRM2, TYMS, UBE2C.
PROLIFERATION_GENES: tuple[str, ...] = ("BIRC5", "CCNB1", "CDC20", "NUF2", "CEP55", "NDC80", "MKI67", "PTTG1", "RRM2", "TYMS", "UBE2C")


def proliferation_score(log_expression: pd.DataFrame, genes: tuple[str, ...] = PROLIFERATION_GENES) -> pd.Series:
    """Mean of the standardised log expression of the proliferation genes, per sample.

    Parameters
    ----------
    log_expression : DataFrame
        Genes x samples, log scale (e.g. log2(TPM + 1) from
        :func:`mmsurv.io.gdc.expression_matrix`), indexed by gene symbol.
    genes : tuple of str
        Default the 11 genes of Nielsen et al. (2010).

    Returns
    -------
    Series
        One score per sample (mean 0 across the samples given).

    Raises
    ------
    KeyError
        If genes are missing from the table (the message lists them).
    """
    missing = [g for g in genes if g not in log_expression.index]
    if missing:
        raise KeyError(f"proliferation genes missing from the expression table: {missing}")
    values = log_expression.loc[list(genes)]
    spread = values.std(axis=1).replace(0.0, 1.0)
    standardised = values.sub(values.mean(axis=1), axis=0).div(spread, axis=0)
    return standardised.mean().rename("proliferation_score")


def gene_expression(log_expression: pd.DataFrame, gene: str = "MKI67") -> pd.Series:
    """One gene's log expression per sample (e.g. MKI67, the Ki-67 antigen)."""
    if gene not in log_expression.index:
        raise KeyError(f"{gene} is not in the expression table")
    return log_expression.loc[gene].rename(gene)
