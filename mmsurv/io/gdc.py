"""GDC (Genomic Data Commons) tables: mutations, expression, methylation, clinical, sample sheets.

TCGA data come from the GDC as one file per sample, named by a file UUID, inside a folder of
that UUID; the *sample sheet* saved with a download says which file belongs to which sample.
The readers below take files exactly as the GDC serves them:

``*.wxs.aliquot_ensemble_masked.maf.gz``
    Masked somatic mutations (MAF): gzip, ``#`` comment lines, then a tab-separated table.
``*.rna_seq.augmented_star_gene_counts.tsv``
    STAR gene counts: a ``# gene-model: GENCODE v36`` line, a header, four ``N_*`` summary
    rows, then one row per gene (versioned Ensembl ids; ``unstranded``, ``tpm_unstranded``,
    ``fpkm_unstranded`` ... columns). Genes of the pseudo-autosomal regions appear twice, the
    Y copy with a ``_PAR_Y`` suffix (``ENSG00000002586.20_PAR_Y``) and zero counts.
``*.methylation_array.sesame.level3betas.txt``
    SeSAMe beta values: two columns (probe, beta), no header, ``NA`` for masked probes.
``clinical.tsv``
    From a clinical cart download: columns prefixed by entity (``demographic.vital_status``),
    several rows per case (one per diagnosis / treatment), ``'--`` for missing.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from .barcodes import patient_barcode
from .errors import DataFormatError, DataWarning

__all__ = [
    "NON_SILENT",
    "MAF_REQUIRED",
    "read_maf",
    "mutation_matrix",
    "read_star_counts",
    "expression_matrix",
    "read_methylation_betas",
    "methylation_matrix",
    "read_gdc_clinical",
    "DIAGNOSIS_RULES",
    "read_sample_sheet",
    "sheet_source",
    "write_sample_sheet",
    "sample_files",
]

#: Variant classifications counted as protein-altering (maftools' default "non-synonymous" set).
NON_SILENT: tuple[str, ...] = (
    "Frame_Shift_Del",
    "Frame_Shift_Ins",
    "Splice_Site",
    "Translation_Start_Site",
    "Nonsense_Mutation",
    "Nonstop_Mutation",
    "In_Frame_Del",
    "In_Frame_Ins",
    "Missense_Mutation",
)
MAF_REQUIRED = ("Hugo_Symbol", "Variant_Classification", "Tumor_Sample_Barcode")
_STAR_REQUIRED = ("gene_id", "gene_name", "gene_type", "unstranded", "tpm_unstranded", "fpkm_unstranded")
_GDC_MISSING = ["'--", "--", "", "NA", "not reported", "Not Reported", "Unknown", "unknown"]


def _text_lines(path: Path) -> str:
    """The file's text, gunzipped when needed; a damaged file raises a DataFormatError naming it."""
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot be read: {type(error).__name__}: {error} (truncated or corrupt?)") from error


def _read_table(path: Path, text: str, **options) -> pd.DataFrame:
    """``pd.read_csv`` of a file's text; an empty or ragged table raises a DataFormatError naming the file.

    pandas' own errors (``EmptyDataError``, ``ParserError``) say what went wrong but not in
    which file - useless when a notebook reads hundreds of them.
    """
    if not text.strip():
        raise DataFormatError(path, "is empty")
    try:
        return pd.read_csv(io.StringIO(text), **options)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise DataFormatError(path, f"is not a table pandas can read ({type(error).__name__}: {error}); cut off or not this file type?") from None


def read_maf(path: str | os.PathLike) -> pd.DataFrame:
    """Read a MAF file (plain or gzip); all columns kept as strings.

    Raises
    ------
    DataFormatError
        Missing / corrupt file, or a table without the required columns
        (``Hugo_Symbol``, ``Variant_Classification``, ``Tumor_Sample_Barcode``).
    """
    path = Path(path)
    body = "".join(line for line in _text_lines(path).splitlines(keepends=True) if not line.startswith("#"))
    if not body.strip():
        raise DataFormatError(path, "has no MAF table after its comment lines")
    table = _read_table(path, body, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    missing = [c for c in MAF_REQUIRED if c not in table.columns]
    if missing:
        raise DataFormatError(path, f"is not a MAF: missing required column(s) {missing}")
    table.attrs["source"] = str(path)
    return table


def _maf_source(table: pd.DataFrame) -> str:
    """The file a MAF table was read from (``attrs["source"]``, set by :func:`read_maf`), for error messages."""
    return table.attrs.get("source", "<MAF table without a source file>")


def _maf_patients(table: pd.DataFrame) -> list[str]:
    """The patient of each row's tumour barcode; a DataFormatError naming the MAF (``attrs["source"]``) if one is not a TCGA barcode."""
    patients, bad = [], []
    for row, barcode in enumerate(table["Tumor_Sample_Barcode"].astype(str)):
        try:
            patients.append(patient_barcode(barcode))
        except ValueError:
            bad.append((row, barcode))
    if bad:
        rows = ", ".join(f"table row {row + 1}: {barcode!r}" for row, barcode in bad[:3])
        raise DataFormatError(
            _maf_source(table),
            f"{len(bad)} Tumor_Sample_Barcode value(s) are not TCGA barcodes ({rows}); expected e.g. 'TCGA-A7-A0CE-01A-11D-A00Z-09'",
        )
    return patients


def mutation_matrix(
    maf: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    patients: Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
    classifications: Iterable[str] = NON_SILENT,
    unknown: str = "raise",
) -> pd.DataFrame:
    """Patients x genes matrix: 1 where the patient's tumour carries a counted variant.

    Parameters
    ----------
    maf : DataFrame or iterable of DataFrames
        From :func:`read_maf` (one per file, as the GDC serves them, or concatenated).
    patients : iterable of str, optional
        Rows of the result, in order. Patients without any variant get a row of zeros -
        a MAF lists only what was found, so pass the sequenced patients here.
    genes : iterable of str, optional
        Columns of the result; default every gene with a counted variant.
    classifications : iterable of str, default :data:`NON_SILENT`
        ``Variant_Classification`` values counted.
    unknown : {"raise", "drop"}, default "raise"
        What to do with MAF samples whose patient is not in ``patients``.

    Returns
    -------
    DataFrame of int8

    Raises
    ------
    DataFormatError
        Naming the MAF file: a ``Tumor_Sample_Barcode`` that is not a TCGA barcode, or (with
        ``unknown="raise"``) a patient not in ``patients``.
    """
    if unknown not in ("raise", "drop"):
        raise ValueError(f"unknown must be 'raise' or 'drop', got {unknown!r}")
    patients = list(patients) if patients is not None else None
    frames = [maf] if isinstance(maf, pd.DataFrame) else list(maf)
    frames = [frame.assign(patient=_maf_patients(frame)) for frame in frames]
    if patients is not None and unknown == "raise":
        known = set(patients)
        for frame in frames:
            strangers = sorted(set(frame["patient"]) - known)
            if strangers:
                raise DataFormatError(
                    _maf_source(frame),
                    f"has {len(strangers)} patient(s) not in `patients`: {strangers[:5]}; pass unknown='drop' to ignore them",
                )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*MAF_REQUIRED, "patient"])
    counted = table[table["Variant_Classification"].isin(list(classifications))]
    if patients is not None:
        counted = counted[counted["patient"].isin(patients)]
    rows = patients if patients is not None else sorted(table["patient"].unique())
    columns = list(genes) if genes is not None else sorted(counted["Hugo_Symbol"].unique())
    matrix = pd.crosstab(counted["patient"], counted["Hugo_Symbol"]).clip(upper=1)
    return matrix.reindex(index=rows, columns=columns, fill_value=0).fillna(0).astype(np.int8).rename_axis(index="patient", columns="gene")


def read_star_counts(path: str | os.PathLike) -> pd.DataFrame:
    """Read one GDC STAR gene-counts file.

    Returns
    -------
    DataFrame
        Indexed by Ensembl gene id without version (``ENSG00000141510``), columns
        ``gene_name``, ``gene_type``, ``unstranded`` (counts), ``tpm_unstranded``,
        ``fpkm_unstranded``. The ``N_*`` summary rows are in ``attrs["summary"]``.
        The ``_PAR_Y`` rows are left out (their count in ``attrs["par_y_dropped"]``): without
        its version, each would take its X copy's id, and the GDC's STAR pipeline gives them
        zero counts anyway.

    Raises
    ------
    DataFormatError
        Missing / corrupt file, missing columns, no gene rows, missing or negative counts, or
        a gene id listed twice.
    """
    path = Path(path)
    text = _text_lines(path)
    lines = text.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    body = "\n".join(line for line in lines if not line.startswith("#"))
    table = _read_table(path, body, sep="\t")
    missing = [c for c in _STAR_REQUIRED if c not in table.columns]
    if missing:
        raise DataFormatError(path, f"is not a STAR gene-counts file: missing column(s) {missing}")
    summary_rows = table["gene_id"].astype(str).str.startswith("N_")
    genes = table[~summary_rows].copy()
    if genes.empty:
        raise DataFormatError(path, "has no gene rows")
    par_y = genes["gene_id"].astype(str).str.endswith("_PAR_Y")
    genes = genes[~par_y]
    genes["gene_id"] = genes["gene_id"].astype(str).str.split(".").str[0]
    repeated = genes["gene_id"][genes["gene_id"].duplicated()].unique().tolist()
    if repeated:
        raise DataFormatError(path, f"lists {len(repeated)} gene id(s) more than once (ignoring versions): {repeated[:5]}")
    genes = genes.set_index("gene_id")[list(_STAR_REQUIRED[1:])]
    for column in _STAR_REQUIRED[3:]:
        # a count of "abc" (or a row cut off mid-line) must not reach the comparison below as text
        values = pd.to_numeric(genes[column], errors="coerce")
        bad = genes.index[values.isna() | (values < 0)]
        if len(bad):
            raise DataFormatError(path, f"has missing, non-numeric or negative {column} for {len(bad)} gene(s), e.g. {bad[:3].tolist()}")
        genes[column] = values
    genes.attrs["summary"] = pd.to_numeric(table[summary_rows].set_index("gene_id")["unstranded"], errors="coerce").to_dict()
    genes.attrs["gene_model"] = comments[0].lstrip("# ").strip() if comments else ""
    genes.attrs["par_y_dropped"] = int(par_y.sum())
    return genes


def expression_matrix(files: Mapping[str, str | os.PathLike], *, value: str = "log2_tpm", gene_names: bool = True) -> pd.DataFrame:
    """Genes x samples expression from STAR-counts files.

    Parameters
    ----------
    files : mapping sample id -> path
        E.g. from :func:`sample_files`.
    value : {"log2_tpm", "tpm", "counts", "fpkm"}, default "log2_tpm"
        ``log2_tpm`` is log2(TPM + 1).
    gene_names : bool, default True
        Index by gene symbol (TPM and counts of symbols shared by several Ensembl ids are
        summed) instead of Ensembl id.

    Returns
    -------
    DataFrame
    """
    column = {"log2_tpm": "tpm_unstranded", "tpm": "tpm_unstranded", "counts": "unstranded", "fpkm": "fpkm_unstranded"}
    if value not in column:
        raise ValueError(f"value must be one of {sorted(column)}, got {value!r}")
    series = {}
    for sample, path in files.items():
        table = read_star_counts(path)
        values = table[column[value]]
        if gene_names:
            values = values.groupby(table["gene_name"]).sum()
        series[sample] = values
    matrix = pd.DataFrame(series)
    if value == "log2_tpm":
        matrix = np.log2(matrix + 1.0)
    return matrix.rename_axis(index="gene" if gene_names else "gene_id", columns="sample")


def read_methylation_betas(path: str | os.PathLike) -> pd.Series:
    """Read a SeSAMe beta-value file: probe id -> beta in [0, 1], NaN for masked probes."""
    path = Path(path)
    text = _text_lines(path)
    table = _read_table(path, text, sep="\t", header=None, na_values=["NA"], keep_default_na=False)
    if table.shape[1] != 2:
        raise DataFormatError(path, f"expected two columns (probe, beta) without a header, found {table.shape[1]}")
    betas = pd.to_numeric(table[1], errors="coerce")
    if betas.isna().sum() > table[1].isin(["NA"]).sum() + table[1].isna().sum():
        raise DataFormatError(path, "has beta values that are not numbers (a header line?)")
    if ((betas < 0) | (betas > 1)).any():
        raise DataFormatError(path, "has beta values outside [0, 1]")
    return pd.Series(betas.to_numpy(), index=table[0].astype(str), name=path.name).rename_axis("probe")


def methylation_matrix(files: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """CpG probes x samples beta values (NaN where masked)."""
    return pd.DataFrame({sample: read_methylation_betas(path) for sample, path in files.items()}).rename_axis(columns="sample")


def _column(table: pd.DataFrame, name: str, path: Path, required: bool = True, numeric: bool = False) -> pd.Series | None:
    """A GDC clinical field, with or without an entity prefix.

    A cart download names it ``diagnoses.days_to_last_follow_up``; the API's TSV flattens
    lists as ``diagnoses.0.days_to_last_follow_up``, ``diagnoses.1....``. Several matching
    columns are combined: the largest number, or the first value present.
    """
    matches = [c for c in table.columns if c == name or c.endswith("." + name)]
    if not matches:
        if required:
            raise DataFormatError(path, f"has no {name!r} column (looked for it with and without an entity prefix)")
        return None
    if numeric:
        return table[matches].apply(pd.to_numeric, errors="coerce").max(axis=1)
    # the first value present, left to right; with numpy, as pandas' bfill on text columns warns
    # (FutureWarning: downcasting object arrays) on every real export
    values = table[matches].to_numpy(dtype=object)
    present = pd.notna(values)
    first = values[np.arange(len(values)), present.argmax(axis=1)]
    return pd.Series(np.where(present.any(axis=1), first, np.nan), index=table.index, dtype=object)


#: Per-case fields of :func:`read_gdc_clinical` that describe one diagnosis (the others describe the person).
_DIAGNOSIS_FIELDS = ("stage", "figo_stage", "grade", "histology")
#: How :func:`read_gdc_clinical` chose each case's diagnosis row, best first (its ``diagnosis_rule`` column).
DIAGNOSIS_RULES = ("diagnosis_is_primary_disease", "classification_of_tumor", "first row")


def _diagnosis_rank(raw: pd.DataFrame, path: Path) -> pd.Series:
    """Each row's rank as a source of its case's diagnosis: 0 flagged primary disease, 1 a primary tumour, 2 other.

    Since 2024 a GDC export lists every diagnosis of a case (a thyroid cancer's patient may
    also have had a leiomyosarcoma), one row per diagnosis and treatment;
    ``diagnosis_is_primary_disease`` marks the diagnosis the project is about. Older
    exports lack that field; ``classification_of_tumor == "primary"`` is the next best clue.
    """
    rank = pd.Series(2, index=raw.index)
    clues = (("classification_of_tumor", "primary", 1), ("diagnosis_is_primary_disease", "true", 0))
    for field, value, level in clues:  # the better clue last, so it wins
        column = _column(raw, field, path, required=False)
        if column is not None:
            rank = rank.mask(column.astype("string").str.strip().str.lower().eq(value).fillna(False).astype(bool), level)
    return rank


def _diagnoses(table: pd.DataFrame, rank: pd.Series, path: Path) -> pd.DataFrame:
    """One diagnosis per case: its stage, grade and histology from its best-ranked rows, and the rule that chose them.

    Warns (DataWarning) naming the cases whose chosen rows still disagree on the histology:
    no rule could decide between their diagnoses, and the first listed is kept.
    """
    fields = [f for f in _DIAGNOSIS_FIELDS if f in table]
    best = rank.groupby(table["patient"], sort=False).transform("min")
    chosen = table[rank.eq(best)]
    diagnoses = chosen.groupby("patient", sort=False)[fields].first() if fields else pd.DataFrame(index=chosen["patient"].unique())
    diagnoses["diagnosis_rule"] = best.groupby(table["patient"], sort=False).first().map(dict(enumerate(DIAGNOSIS_RULES)))
    if "histology" in fields:
        undecided = chosen.groupby("patient", sort=False)["histology"].nunique().loc[lambda n: n > 1]
        if len(undecided):
            examples = {case: chosen.loc[chosen["patient"].eq(case), "histology"].dropna().unique().tolist() for case in undecided.index[:3]}
            warnings.warn(
                f"{path}: {len(undecided)} case(s) have several diagnoses with different histologies and nothing "
                f"marking the primary one (e.g. {examples}): the first listed is used; check these cases",
                DataWarning,
                stacklevel=3,
            )
    return diagnoses


def read_gdc_clinical(path: str | os.PathLike) -> pd.DataFrame:
    """One row per case from a GDC ``clinical.tsv``, with overall survival by the GDC rule.

    Overall survival: a case whose ``vital_status`` is ``Dead`` is an event at
    ``days_to_death``; an ``Alive`` case is censored at the largest ``days_to_last_follow_up``
    over its rows. Any other case - vital status "Not Reported", "Unknown" or missing, a dead
    case without ``days_to_death``, a living one without follow-up - has unknown survival:
    ``os_time`` and ``os_event`` are both NaN (reading an unknown status as alive would censor
    the case and bias every survival estimate). Such cases stay in the table for their other
    columns, are listed in ``attrs["survival_unknown"]`` and counted in a :class:`DataWarning`.

    Stage, grade and histology describe one diagnosis, and a case may have several (exports
    since 2024 list every diagnosis: a prior cancer, a metastasis, a recurrence). They are
    taken from the rows of the case's primary diagnosis, found by the first rule that applies
    (see :data:`DIAGNOSIS_RULES`): rows with ``diagnosis_is_primary_disease`` true, else rows
    with ``classification_of_tumor`` "primary", else all the case's rows in file order (the
    first value present). The ``diagnosis_rule`` column says which rule decided each case.

    Returns
    -------
    DataFrame
        ``patient`` (the case's submitter id, a TCGA patient barcode), ``case_id``,
        ``project``, ``vital_status``, ``os_time`` (days), ``os_event`` (1.0 death, 0.0
        censored; both NaN when unknown), ``diagnosis_rule``, and ``age``, ``gender``,
        ``stage``, ``figo_stage``, ``grade`` (``tumor_grade``, e.g. "G2"), ``histology``
        (``primary_diagnosis``), ``smoking_status`` and ``pack_years`` (the exposure fields)
        where present.

    Raises
    ------
    DataFormatError
        An empty or unreadable file, missing columns, no case rows, or negative survival
        times (the message names the cases).

    Warns
    -----
    DataWarning
        Cases with unknown survival; cases with several diagnoses of different histology and
        nothing marking the primary one; or no case followed up at all (every known case
        censored at day 0, or none known), which no survival analysis can use.
    """
    path = Path(path)
    raw = _read_table(path, _text_lines(path), sep="\t", dtype=str, na_values=_GDC_MISSING, keep_default_na=False)
    submitter_columns = [c for c in raw.columns if c in ("cases.submitter_id", "submitter_id", "case_submitter_id")]
    if not submitter_columns:
        raise DataFormatError(path, "has no case submitter id column ('cases.submitter_id', 'submitter_id' or 'case_submitter_id')")
    raw = raw[raw[submitter_columns[0]].notna()]
    if raw.empty:
        raise DataFormatError(path, "has a header but no case rows (or none with a case submitter id)")
    table = pd.DataFrame(
        {
            "patient": raw[submitter_columns[0]],
            "case_id": _column(raw, "case_id", path),
            "project": _column(raw, "project_id", path, required=False),
            "vital_status": _column(raw, "vital_status", path),
            "days_to_death": _column(raw, "days_to_death", path, numeric=True),
            "days_to_last_follow_up": _column(raw, "days_to_last_follow_up", path, numeric=True),
        }
    )
    optional = (
        ("age_at_index", "age"),
        ("gender", "gender"),
        ("ajcc_pathologic_stage", "stage"),
        ("figo_stage", "figo_stage"),
        ("tumor_grade", "grade"),
        ("primary_diagnosis", "histology"),
        ("tobacco_smoking_status", "smoking_status"),
        ("pack_years_smoked", "pack_years"),
    )
    for field, name in optional:
        values = _column(raw, field, path, required=False, numeric=name in ("age", "pack_years"))
        if values is not None:
            table[name] = values
    cases = table.groupby("patient", sort=False).agg(
        {
            "case_id": "first",
            "project": "first",
            "vital_status": "first",
            "days_to_death": "max",
            "days_to_last_follow_up": "max",
            **{c: "first" for c in ("age", "gender", "smoking_status", "pack_years") if c in table},
        }
    )
    cases = cases.join(_diagnoses(table, _diagnosis_rank(raw, path), path))
    person = [c for c in ("smoking_status", "pack_years") if c in cases]
    cases = cases[[c for c in cases.columns if c not in person] + person]  # the columns in their usual order
    status = cases["vital_status"].astype("string").str.strip().str.lower()
    dead, alive = status.eq("dead").fillna(False).astype(bool), status.eq("alive").fillna(False).astype(bool)
    time = pd.Series(np.where(dead, cases["days_to_death"], np.where(alive, cases["days_to_last_follow_up"], np.nan)), index=cases.index, dtype=float)
    known = (dead | alive) & time.notna()
    cases["os_time"] = time.where(known)
    cases["os_event"] = dead.astype(float).where(known)
    negative = cases.index[cases["os_time"] < 0].tolist()
    if negative:
        raise DataFormatError(path, f"negative survival time for {len(negative)} case(s): {negative[:5]}")
    _warn_about_survival(path, cases, dead, alive, known)
    cases = cases.reset_index()
    cases.attrs["survival_unknown"] = cases.loc[~known.to_numpy(), "patient"].tolist()
    return cases


def _warn_about_survival(path: Path, cases: pd.DataFrame, dead: pd.Series, alive: pd.Series, known: pd.Series) -> None:
    """The DataWarnings of :func:`read_gdc_clinical`: cases with unknown survival, and tables without follow-up."""
    reasons = {
        "vital status not reported": ~(dead | alive),
        "dead without days_to_death": dead & cases["days_to_death"].isna(),
        "alive without days_to_last_follow_up": alive & cases["days_to_last_follow_up"].isna(),
    }
    if not known.all():
        counts = ", ".join(f"{int(mask.sum())} {reason}" for reason, mask in reasons.items() if mask.any())
        examples = cases.index[~known].tolist()[:3]
        warnings.warn(
            f"{path}: survival unknown for {int((~known).sum())} of {len(cases)} case(s) ({counts}; e.g. {examples}): "
            "their os_time and os_event are NaN, leave them out of survival analyses",
            DataWarning,
            stacklevel=3,
        )
    followed = cases.loc[known, "os_time"]
    if followed.empty or (followed.eq(0).all() and not dead[known].any()):
        warnings.warn(
            f"{path}: no case has any follow-up ({len(followed)} with known survival, all censored at day 0): "
            "nothing in this table can be used for survival; a clinical export made before follow-up?",
            DataWarning,
            stacklevel=3,
        )


_SHEET_REQUIRED = ("file_id", "file_name", "data_type", "case_id", "sample_id")


def read_sample_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a GDC sample sheet (the TSV saved with a download) with snake_case column names.

    The file's path is kept in ``attrs["source"]``, for the errors of :func:`sample_files`
    and :func:`mmsurv.io.gdc_samples.sample_units`. A ``sample_id`` may list several samples:
    a mutation file's tumour and normal, in either order (see
    :func:`mmsurv.io.barcodes.tumour_barcode`).
    """
    path = Path(path)
    table = _read_table(path, _text_lines(path), sep="\t", dtype=str)
    table.columns = [str(c).strip().lower().replace(" ", "_") for c in table.columns]
    missing = [c for c in _SHEET_REQUIRED if c not in table.columns]
    if missing:
        raise DataFormatError(path, f"is not a GDC sample sheet: missing column(s) {missing}")
    table.attrs["source"] = str(path)
    return table


def sheet_source(sheet: pd.DataFrame) -> str:
    """The file a sample sheet was read from (``attrs["source"]``, set by :func:`read_sample_sheet`), for error messages."""
    return sheet.attrs.get("source", "<sample sheet without a source file>")


def write_sample_sheet(path: str | os.PathLike, files: pd.DataFrame) -> Path:
    """Write a GDC sample sheet from snake_case columns (``file_id``, ``file_name``, ``data_type``, ``case_id``, ``sample_id`` ...).

    Column names are written the GDC's way (``File ID``, ``Sample Type``), atomically;
    :func:`read_sample_sheet` reads the file back.
    """
    gdc_names = files.rename(columns=lambda c: c.replace("_", " ").title().replace(" Id", " ID"))
    with atomic_path(path) as partial:
        gdc_names.to_csv(partial, sep="\t", index=False)
    return Path(path)


def sample_files(sheet: pd.DataFrame, root: str | os.PathLike, data_type: str) -> dict[str, Path]:
    """Sample id -> file path for one GDC data type, checking that every file is there.

    Parameters
    ----------
    sheet : DataFrame
        From :func:`read_sample_sheet`.
    root : path-like
        The download folder holding ``<file_id>/<file_name>``.
    data_type : str
        e.g. ``"Gene Expression Quantification"``, ``"Masked Somatic Mutation"``,
        ``"Methylation Beta Value"``, ``"Slide Image"``.

    Returns
    -------
    dict
        Keyed by the sheet's ``sample_id`` field as it is: a mutation file's key lists its
        tumour and normal (``"TCGA-CC-5258-10A, TCGA-CC-5258-01A"``, either order); take
        its tumour with :func:`mmsurv.io.barcodes.tumour_barcode`.

    Raises
    ------
    DataFormatError
        Naming the sample sheet: it lacks a required column, lists no file of ``data_type``,
        or leaves a file's id, name or sample empty; naming the file: it is not on disk.
    """
    root, source = Path(root), sheet_source(sheet)
    missing = [c for c in _SHEET_REQUIRED if c not in sheet.columns]
    if missing:
        raise DataFormatError(source, f"is not a GDC sample sheet: missing column(s) {missing}")
    rows = sheet[sheet["data_type"] == data_type]
    if rows.empty:
        listed = sorted(sheet["data_type"].dropna().astype(str).unique())
        raise DataFormatError(source, f"the sample sheet lists no {data_type!r} files; it has {listed}")
    incomplete = rows[rows[["file_id", "file_name", "sample_id"]].isna().any(axis=1)]
    if not incomplete.empty:
        raise DataFormatError(
            source,
            f"{len(incomplete)} {data_type!r} row(s) without a file id, file name or sample id (cut off?), "
            f"e.g. table row(s) {[int(i) + 1 for i in incomplete.index[:3]]}",
        )
    files = {}
    for _, row in rows.iterrows():
        path = root / str(row["file_id"]) / str(row["file_name"])
        if not path.is_file():
            raise DataFormatError(path, f"listed in the sample sheet {source} for sample {row['sample_id']} but not on disk")
        files[row["sample_id"]] = path
    return files
