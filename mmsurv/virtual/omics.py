"""Virtual omics files in GDC formats: STAR gene counts, SeSAMe betas and masked MAFs.

Each patient's latent traits (``proliferation``, ``immune``, ``invasion``, and any extra
factor such as a histological subtype) drive *modules* of genes and CpG probes, on top of
gene-specific baselines and noise:

* the 11-gene proliferation score genes (BIRC5, CCNB1, CDC20, NUF2, CEP55, NDC80, MKI67,
  PTTG1, RRM2, TYMS, UBE2C; Nielsen et al. 2010) follow ``proliferation``;
* an immune module (CD8A, GZMB, PRF1, CXCL9, ...) follows ``immune``;
* an invasion / EMT module (VIM, SNAI2, ZEB1, FN1, ...) follows ``invasion``;
* CpG modules: probes hypermethylated with proliferation, hypomethylated with immune;
* driver mutations whose probability rises with a trait (TP53 with proliferation,
  PIK3CA / KRAS with invasion ...), plus silent and non-coding variants that a correct
  reader must not count.

Gene and probe identifiers are synthetic (``ENSG9...``, ``cg9...``), so they can never be
mistaken for measurements of real genes; gene *symbols* are real, so the same code selects
the same genes in TCGA files.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path

__all__ = [
    "PROLIFERATION_GENES",
    "IMMUNE_GENES",
    "INVASION_GENES",
    "DRIVER_GENES",
    "gene_panel",
    "simulate_expression",
    "write_star_counts",
    "simulate_methylation",
    "write_methylation_betas",
    "simulate_mutations",
    "write_maf",
]

#: The 11-gene proliferation score of Nielsen et al. (2010), as used by Ekholm et al. (2024).
PROLIFERATION_GENES = ("BIRC5", "CCNB1", "CDC20", "NUF2", "CEP55", "NDC80", "MKI67", "PTTG1", "RRM2", "TYMS", "UBE2C")
IMMUNE_GENES = ("CD8A", "CD3E", "GZMB", "PRF1", "CXCL9", "CXCL10", "IFNG", "CD274", "LAG3", "CCL5")
INVASION_GENES = ("VIM", "SNAI2", "TWIST1", "ZEB1", "FN1", "CDH2", "MMP2", "SPARC", "COL1A1", "TGFB1")
HOUSEKEEPING_GENES = ("ACTB", "GAPDH", "B2M", "RPLP0", "TBP", "HPRT1", "PGK1", "PPIA")
#: gene -> (trait, log-odds per SD, baseline probability)
DRIVER_GENES: dict[str, tuple[str, float, float]] = {
    "TP53": ("proliferation", 0.9, 0.35),
    "PIK3CA": ("invasion", 0.5, 0.25),
    "KRAS": ("invasion", 0.6, 0.15),
    "PTEN": ("proliferation", 0.4, 0.08),
    "ARID1A": ("immune", -0.4, 0.08),
    "FBXW7": ("proliferation", 0.5, 0.06),
    "STK11": ("immune", -0.7, 0.10),
    "KEAP1": ("invasion", 0.4, 0.10),
    "EP300": ("invasion", 0.3, 0.06),
    "LRP1B": ("proliferation", 0.0, 0.20),
}
_MODULES = {"proliferation": PROLIFERATION_GENES, "immune": IMMUNE_GENES, "invasion": INVASION_GENES}
_NON_SILENT_MIX = {
    "Missense_Mutation": 0.62,
    "Nonsense_Mutation": 0.12,
    "Frame_Shift_Del": 0.09,
    "Frame_Shift_Ins": 0.04,
    "Splice_Site": 0.07,
    "In_Frame_Del": 0.03,
    "In_Frame_Ins": 0.01,
    "Translation_Start_Site": 0.01,
    "Nonstop_Mutation": 0.01,
}
_PASSENGER_CLASSES = ("Silent", "Intron", "3'UTR", "5'UTR", "RNA", "IGR", "3'Flank")


@dataclass(frozen=True)
class GenePanel:
    """Gene symbols with synthetic Ensembl-style ids, baselines (log2 TPM) and module loadings."""

    symbols: tuple[str, ...]
    ensembl_ids: tuple[str, ...]
    baseline: np.ndarray
    loadings: pd.DataFrame  # genes x factors


def gene_panel(n_background: int = 200, *, seed: int = 0, extra_factors: dict[str, tuple[str, ...]] | None = None) -> GenePanel:
    """The genes of the virtual expression files.

    Parameters
    ----------
    n_background : int, default 200
        Genes without planted signal (named ``VGENE0001``...).
    seed : int, default 0
    extra_factors : dict factor -> genes, optional
        More modules, e.g. ``{"squamous": ("KRT5", "TP63", "SOX2")}`` for a lung subtype.
    """
    rng = np.random.default_rng(seed)
    modules = dict(_MODULES, **(extra_factors or {}))
    named = [g for genes in modules.values() for g in genes] + list(HOUSEKEEPING_GENES)
    symbols = tuple(dict.fromkeys(named)) + tuple(f"VGENE{i:04d}" for i in range(1, n_background + 1))
    ids = tuple(f"ENSG9{i:010d}.{1 + i % 7}" for i in range(1, len(symbols) + 1))
    baseline = rng.uniform(1.0, 7.0, size=len(symbols))
    baseline[[symbols.index(g) for g in HOUSEKEEPING_GENES]] = rng.uniform(8.0, 11.0, size=len(HOUSEKEEPING_GENES))
    loadings = pd.DataFrame(0.0, index=list(symbols), columns=list(modules))
    for factor, genes in modules.items():
        loadings.loc[list(genes), factor] = rng.uniform(0.7, 1.2, size=len(genes))
    return GenePanel(symbols=symbols, ensembl_ids=ids, baseline=baseline, loadings=loadings)


def simulate_expression(panel: GenePanel, factors: pd.DataFrame, *, seed: int, noise_sd: float = 0.5) -> pd.DataFrame:
    """TPM (genes x samples) from latent factors (samples x factors, standardised)."""
    rng = np.random.default_rng(seed)
    aligned = factors.reindex(columns=panel.loadings.columns, fill_value=0.0).to_numpy(dtype=float)
    log2_tpm = panel.baseline[:, None] + panel.loadings.to_numpy() @ aligned.T
    log2_tpm += rng.normal(0.0, noise_sd, size=log2_tpm.shape)
    tpm = np.maximum(2.0**log2_tpm - 1.0, 0.0)
    tpm = tpm / tpm.sum(axis=0, keepdims=True) * 1e6 * (len(panel.symbols) / 60_000)  # the panel is a slice of the genome
    return pd.DataFrame(tpm, index=list(panel.symbols), columns=factors.index)


def write_star_counts(path: str | os.PathLike, panel: GenePanel, tpm: pd.Series, *, seed: int, library_size: float = 3e7) -> Path:
    """Write one sample's STAR gene-counts TSV exactly as the GDC lays it out."""
    rng = np.random.default_rng(seed)
    length_kb = np.random.default_rng(7).uniform(0.8, 6.0, size=len(panel.symbols))  # fixed per gene
    expected = tpm.to_numpy() * length_kb
    counts = rng.poisson(expected / max(expected.sum(), 1e-9) * library_size)
    fpkm = counts / length_kb / (counts.sum() / 1e6)
    lines = [
        "# gene-model: GENCODE v36 (virtual cohort subset)",
        "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded",
    ]
    for name in ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"):
        n = int(rng.integers(1_000_000, 3_000_000))
        lines.append(f"{name}\t\t\t{n}\t{n}\t{n}\t\t\t")
    for gene_id, symbol, c, t, f in zip(panel.ensembl_ids, panel.symbols, counts, tpm.to_numpy(), fpkm):
        half = int(c // 2)
        lines.append(f"{gene_id}\t{symbol}\tprotein_coding\t{c}\t{half}\t{c - half}\t{t:.4f}\t{f:.4f}\t{f * 1.2:.4f}")
    with atomic_path(path) as partial:
        partial.write_text("\n".join(lines) + "\n")
    return Path(path)


def simulate_methylation(
    factors: pd.DataFrame, *, n_probes: int = 300, seed: int, masked_fraction: float = 0.01, extra_modules: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Beta values (probes x samples): modules hyper-methylated with proliferation, hypo with immune.

    ``extra_modules`` names more factor columns (e.g. a lung subtype), each given a module of
    15 probes after the first 55, alternately hyper- and hypo-methylated.
    """
    rng = np.random.default_rng(seed)
    probes = [f"cg9{i:07d}" for i in range(1, n_probes + 1)]
    base = np.random.default_rng(11).normal(0.0, 2.0, size=n_probes)  # fixed per probe: bimodal betas
    names = ["proliferation", "immune", "invasion", *extra_modules]
    if 55 + 15 * len(extra_modules) > n_probes:
        raise ValueError(f"{n_probes} probes cannot hold {len(names)} methylation modules")
    loading = np.zeros((n_probes, len(names)))
    loading[:20, 0] = 0.9  # proliferation CpG module
    loading[20:40, 1] = -0.9  # immune CpG module
    loading[40:55, 2] = 0.7  # invasion CpG module
    for number in range(len(extra_modules)):
        loading[55 + 15 * number : 70 + 15 * number, 3 + number] = 0.9 if number % 2 == 0 else -0.9
    traits = factors.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    logit = base[:, None] + loading @ traits.T + rng.normal(0.0, 0.4, size=(n_probes, len(factors)))
    betas = 1.0 / (1.0 + np.exp(-logit))
    betas[rng.random(betas.shape) < masked_fraction] = np.nan
    return pd.DataFrame(betas, index=probes, columns=factors.index)


def write_methylation_betas(path: str | os.PathLike, betas: pd.Series) -> Path:
    """Write one sample's SeSAMe level-3 betas: two columns, no header, NA for masked probes."""
    text = "".join(f"{probe}\t{'NA' if np.isnan(b) else f'{b:.6f}'}\n" for probe, b in betas.items())
    with atomic_path(path) as partial:
        partial.write_text(text)
    return Path(path)


def simulate_mutations(
    factors: pd.DataFrame,
    *,
    seed: int,
    passengers_per_sample: float = 6.0,
    planted: pd.DataFrame | None = None,
    n_neutral_genes: int = 0,
) -> pd.DataFrame:
    """Variants of every sample: trait-driven drivers plus silent and non-coding passengers.

    Parameters
    ----------
    factors : DataFrame
        One row per sample, the latent traits as columns.
    seed : int
    passengers_per_sample : float, default 6.0
        Mean number of silent / non-coding variants per sample (a reader must not count them).
    planted : DataFrame of 0/1, optional
        Samples x genes: prognostic mutations the caller drew (and gave a hazard ratio); each 1
        becomes a non-silent variant of that gene.
    n_neutral_genes : int, default 0
        Genes ``VGENE0001``... that carry *non-silent* variants unrelated to any trait or to
        outcome, each at its own rate (median about 5%): the many candidates among which a
        feature selection has to find the planted genes.

    Returns
    -------
    DataFrame
        A long table with ``sample``, ``Hugo_Symbol``, ``Variant_Classification``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    classes, weights = zip(*_NON_SILENT_MIX.items())
    weights = np.asarray(weights) / np.sum(weights)
    neutral = [f"VGENE{i:04d}" for i in range(1, n_neutral_genes + 1)]
    neutral_rate = np.clip(np.random.default_rng(seed + 1).beta(1.5, 20.0, size=n_neutral_genes), 0.01, 0.3)
    for sample, traits in factors.iterrows():
        for gene, (trait, slope, base) in DRIVER_GENES.items():
            logit = np.log(base / (1 - base)) + slope * float(traits.get(trait, 0.0))
            if rng.random() < 1 / (1 + np.exp(-logit)):
                rows.append((sample, gene, str(rng.choice(classes, p=weights))))
        for _ in range(rng.poisson(passengers_per_sample)):
            gene = str(rng.choice(list(DRIVER_GENES) + [f"VGENE{i:04d}" for i in range(1, 41)]))
            rows.append((sample, gene, str(rng.choice(_PASSENGER_CLASSES))))
        if n_neutral_genes:
            for gene in np.asarray(neutral)[rng.random(n_neutral_genes) < neutral_rate]:
                rows.append((sample, str(gene), str(rng.choice(classes, p=weights))))
        if planted is not None and sample in planted.index:
            for gene in planted.columns[planted.loc[sample].to_numpy() > 0]:
                rows.append((sample, str(gene), str(rng.choice(classes, p=weights))))
    return pd.DataFrame(rows, columns=["sample", "Hugo_Symbol", "Variant_Classification"])


_MAF_COLUMNS = (
    "Hugo_Symbol",
    "Entrez_Gene_Id",
    "Center",
    "NCBI_Build",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Strand",
    "Variant_Classification",
    "Variant_Type",
    "Reference_Allele",
    "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2",
    "dbSNP_RS",
    "Tumor_Sample_Barcode",
    "Matched_Norm_Sample_Barcode",
    "Mutation_Status",
    "HGVSp_Short",
    "t_depth",
    "t_alt_count",
)


def write_maf(path: str | os.PathLike, variants: pd.DataFrame, tumour_barcode: str, normal_barcode: str, *, seed: int) -> Path:
    """Write one aliquot's masked somatic MAF (gzip, ``#`` header lines), as the GDC serves it."""
    rng = np.random.default_rng(seed)
    lines = [
        "#version gdc-1.0.0",
        "#filedate 20260101",
        "#annotation.spec gdc-2.0.0-aliquot-merged-masked",
        "#tumor.aliquot " + tumour_barcode,
        "\t".join(_MAF_COLUMNS),
    ]
    for _, variant in variants.iterrows():
        position = int(rng.integers(1_000_000, 200_000_000))
        is_deletion = variant["Variant_Classification"] in ("Frame_Shift_Del", "In_Frame_Del")
        is_insertion = variant["Variant_Classification"] in ("Frame_Shift_Ins", "In_Frame_Ins")
        ref, alt = ("C", "-") if is_deletion else ("-", "A") if is_insertion else ("C", "T")
        depth = int(rng.integers(30, 200))
        record = {
            "Hugo_Symbol": variant["Hugo_Symbol"],
            "Entrez_Gene_Id": "0",
            "Center": "VIRT",
            "NCBI_Build": "GRCh38",
            "Chromosome": f"chr{int(rng.integers(1, 23))}",
            "Start_Position": str(position),
            "End_Position": str(position),
            "Strand": "+",
            "Variant_Classification": variant["Variant_Classification"],
            "Variant_Type": "DEL" if is_deletion else "INS" if is_insertion else "SNP",
            "Reference_Allele": ref,
            "Tumor_Seq_Allele1": ref,
            "Tumor_Seq_Allele2": alt,
            "dbSNP_RS": "novel",
            "Tumor_Sample_Barcode": tumour_barcode,
            "Matched_Norm_Sample_Barcode": normal_barcode,
            "Mutation_Status": "Somatic",
            "HGVSp_Short": "",
            "t_depth": str(depth),
            "t_alt_count": str(int(depth * rng.uniform(0.1, 0.6))),
        }
        lines.append("\t".join(record[c] for c in _MAF_COLUMNS))
    with atomic_path(path) as partial:
        with gzip.open(partial, "wt") as handle:
            handle.write("\n".join(lines) + "\n")
    return Path(path)
