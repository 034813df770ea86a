"""GDC files as the GDC serves them, read right or refused by name (issue 30, points 1 and 2).

The files are cuts of real public files, listed with origin and licence in
``tests/data/real/gdc/SOURCES.md``:

``clinical_coad_2025.tsv``
    A 2025 clinical-cart export of TCGA-COAD (AnnaVBB/COAD, ``clinical.tsv`` at
    702864a9526db5cd3b0fb7e16c35433019e60acd; no licence given, GDC open-access data):
    entity-prefixed columns, one row per diagnosis and treatment, several diagnoses per case
    for some. 28 of its 458 cases, rows kept whole and in order.
``clinical_cesc_2022.tsv``
    A 2022 export of TCGA-CESC (Lee0025/ceRNA, ``clinical.tsv`` at
    5604e311c6fe4b99bc082ffafbea6975ea69fb35; no licence given, GDC open-access data): no
    prefixes, no ``diagnosis_is_primary_disease``. Its first 60 rows (30 cases).
``gdc_sample_sheet_lihc_chol_snv.tsv``
    A GDC sample sheet of TCGA-LIHC / TCGA-CHOL somatic VCFs (raghavagps/mutation_bench,
    ``gdc_sample_sheet.tsv`` at de9ddaf6bf23e28ca85c72410b2a58b8a64e19d2; repository GPL-3.0,
    GDC open-access metadata): tumour and normal listed in either order. 48 of 3352 rows.
``d832db0a-...rna_seq.augmented_star_gene_counts.tsv``
    A GDC STAR counts file of TCGA-44-6146-01A (valdugay/OMICS_Lung_Cancer at
    24129871677c2a1989cb981d933cdebbab7528dc; no licence given, GDC open-access data): its
    first 206 lines.
``tcga_laml_60.maf.gz``
    TCGA-LAML somatic mutations (PoisonAlien/maftools ``inst/extdata/tcga_laml.maf.gz`` at
    c8ff3283f7395e4a7d4fb56158e638b554d5ada0, MIT): its header and first 60 rows.

No small real SeSAMe beta-value file could be found; :func:`_sesame_betas` writes one in
its layout with Python's ``csv`` module.
"""

from __future__ import annotations

import csv
import gzip
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmsurv.io.barcodes import listed_samples, tumour_barcode
from mmsurv.io.errors import DataFormatError, DataWarning
from mmsurv.io.gdc import (
    DIAGNOSIS_RULES,
    mutation_matrix,
    read_gdc_clinical,
    read_maf,
    read_methylation_betas,
    read_sample_sheet,
    read_star_counts,
    sample_files,
)
from mmsurv.io.gdc_samples import sample_units

REAL = Path(__file__).parent / "data" / "real" / "gdc"
COAD_2025 = REAL / "clinical_coad_2025.tsv"
CESC_2022 = REAL / "clinical_cesc_2022.tsv"
SHEET = REAL / "gdc_sample_sheet_lihc_chol_snv.tsv"
STAR = REAL / "d832db0a-348f-4e28-953a-741192fe0826.rna_seq.augmented_star_gene_counts.tsv"
MAF = REAL / "tcga_laml_60.maf.gz"
SNV_TYPES = {"annotated": "Annotated Somatic Mutation", "raw": "Raw Simple Somatic Mutation"}


def _rows(path: Path) -> list[dict[str, str]]:
    """A TSV's rows with Python's csv module: an independent reading to compare the kit's with."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


#: How a GDC export writes "missing" (the kit reads these as NaN).
_MISSING = {"'--", "--", "", "NA", "not reported", "Not Reported", "Unknown", "unknown"}


def _value(text: str) -> str:
    """A field as the kit should report it, missing values as "missing" (NaN compares unequal to itself)."""
    return "missing" if text in _MISSING else text


def _read_clinical(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """``read_gdc_clinical``'s cases and DataWarnings, pandas' FutureWarnings made errors: real exports must read without them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        warnings.simplefilter("error", FutureWarning)
        cases = read_gdc_clinical(path).set_index("patient")
    return cases, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


# ---------------------------------------------------------------- 1. several diagnoses per case


def test_2025_export_takes_stage_and_histology_from_the_primary_diagnosis():
    rows = _rows(COAD_2025)
    primary = {}  # case -> its first row flagged as the primary disease
    for row in rows:
        if row["diagnoses.diagnosis_is_primary_disease"] == "true":
            primary.setdefault(row["cases.submitter_id"], row)
    cases, warned = _read_clinical(COAD_2025)
    # every case is decided: no warning about undecided diagnoses (two cases' vital status is not reported, as in the export)
    assert [w.split(": ", 1)[1][:22] for w in warned] == ["survival unknown for 2"]
    assert len(cases) == 28 and set(cases.index) == set(primary)
    assert (cases["diagnosis_rule"] == "diagnosis_is_primary_disease").all()
    assert cases["histology"].fillna("missing").to_dict() == {case: _value(row["diagnoses.primary_diagnosis"]) for case, row in primary.items()}
    assert cases["stage"].fillna("missing").to_dict() == {case: _value(row["diagnoses.ajcc_pathologic_stage"]) for case, row in primary.items()}
    # the first listed row of these cases is another diagnosis: what the kit used to report
    assert cases.loc["TCGA-AA-3844", "histology"] == "Adenocarcinoma, NOS"  # not "Malignant melanoma, NOS"
    assert cases.loc["TCGA-AA-3556", "histology"] == "Mucinous adenocarcinoma"  # not "Multiple myeloma"
    assert cases.loc["TCGA-A6-2682", "stage"] == "Stage IV"  # not "Stage II"
    # follow-up is still the largest over all the case's rows, whatever diagnosis they belong to
    follow_up: dict[str, float] = {}
    for row in rows:
        if row["diagnoses.days_to_last_follow_up"] not in _MISSING:
            case = row["cases.submitter_id"]
            follow_up[case] = max(follow_up.get(case, -1.0), float(row["diagnoses.days_to_last_follow_up"]))
    assert cases["days_to_last_follow_up"].dropna().to_dict() == follow_up


def _without(path: Path, target: Path, *columns: str) -> Path:
    """A copy of a real export without some columns, as an export made before they existed."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.drop(columns=list(columns)).to_csv(target, sep="\t", index=False)
    return target


def test_diagnosis_rule_falls_back_to_the_primary_tumour_then_to_the_first_row(tmp_path):
    expected = _read_clinical(COAD_2025)[0]["histology"]
    without_flag = _without(COAD_2025, tmp_path / "no_flag.tsv", "diagnoses.diagnosis_is_primary_disease")
    cases, warned = _read_clinical(without_flag)
    assert (cases["diagnosis_rule"] == "classification_of_tumor").all()  # "primary" marks the same rows here
    assert cases["histology"].equals(expected) and not any("several diagnoses" in w for w in warned)
    neither = _without(COAD_2025, tmp_path / "neither.tsv", "diagnoses.diagnosis_is_primary_disease", "diagnoses.classification_of_tumor")
    cases, warned = _read_clinical(neither)
    undecided = [w for w in warned if "several diagnoses" in w]
    assert len(undecided) == 1 and re.match(r".*neither\.tsv: \d+ case\(s\) have several diagnoses with different histologies.*TCGA-", undecided[0])
    assert (cases["diagnosis_rule"] == "first row").all() and set(DIAGNOSIS_RULES) >= set(cases["diagnosis_rule"])


def test_pre_2024_export_reads_without_future_warnings():
    rows = _rows(CESC_2022)
    cases, _ = _read_clinical(CESC_2022)
    assert len(cases) == 30 and (cases["diagnosis_rule"] == "first row").all()
    first = {}
    for row in rows:
        first.setdefault(row["case_submitter_id"], row)
    assert cases["figo_stage"].fillna("missing").to_dict() == {c: _value(r["figo_stage"]) for c, r in first.items()}
    dead = [c for c, r in first.items() if r["vital_status"] == "Dead" and r["days_to_death"] not in _MISSING]
    assert dead and cases.loc[dead, "os_event"].eq(1).all()
    assert cases.loc[dead, "os_time"].tolist() == [float(first[c]["days_to_death"]) for c in dead]


# ---------------------------------------------------------------- 2. tumour and normal in either order


def _download(sheet_rows: list[dict[str, str]], root: Path) -> Path:
    """A download folder with an (empty) file at ``<File ID>/<File Name>`` for every sheet row."""
    for row in sheet_rows:
        (root / row["File ID"]).mkdir(parents=True, exist_ok=True)
        (root / row["File ID"] / row["File Name"]).touch()
    return root


def _tumour_by_sample_type(row: dict[str, str]) -> str:
    """A sheet row's tumour, read from its ``Sample Type`` names (independent of the barcodes' codes)."""
    samples, kinds = row["Sample ID"].split(", "), row["Sample Type"].split(", ")
    (tumour,) = [sample for sample, kind in zip(samples, kinds) if "Normal" not in kind]
    return tumour


def test_real_sheet_lists_pairs_in_both_orders():
    orders = {row["Sample Type"] for row in _rows(SHEET)}
    assert {"Blood Derived Normal, Primary Tumor", "Primary Tumor, Blood Derived Normal"} <= orders
    assert {"Solid Tissue Normal, Primary Tumor", "Primary Tumor, Solid Tissue Normal"} <= orders
    assert {"Blood Derived Normal, Recurrent Tumor", "Recurrent Tumor, Blood Derived Normal"} <= orders


def test_tumour_barcode_goes_by_sample_type_not_position():
    for row in _rows(SHEET):
        assert tumour_barcode(row["Sample ID"]) == _tumour_by_sample_type(row)


def test_paired_mutation_files_are_filed_under_their_tumour(tmp_path):
    rows = _rows(SHEET)
    sheet = read_sample_sheet(SHEET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # some tumours have two VCFs of one type
        units = sample_units(sheet, _download(rows, tmp_path), SNV_TYPES)
    expected = {_tumour_by_sample_type(row)[:15] for row in rows}
    assert set(units.index) == expected
    assert (units["kind"] == "tumour").all() and set(units["sample_type"]) == {"Primary Tumor", "Recurrent Tumor"}
    for name, data_type in SNV_TYPES.items():
        for row in (r for r in rows if r["Data Type"] == data_type):
            assert pd.notna(units.loc[_tumour_by_sample_type(row)[:15], name])
    project = {_tumour_by_sample_type(row)[:15]: row["Project ID"] for row in rows}
    assert units["project"].to_dict() == project
    # the patient-level lookup of notebook 04
    files = sample_files(sheet, tmp_path, SNV_TYPES["raw"])
    assert {tumour_barcode(s)[:12] for s in files} == {listed_samples(s)[0][:12] for s in files}


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("TCGA-CC-5258-10A, TCGA-CC-5258-11A", "lists no tumour sample"),
        ("TCGA-CC-5258-01A, TCGA-CC-5258-02A", "lists 2 tumour samples"),
        ("TCGA-CC-5258-10A, C3L-02707-75", "unknown barcode"),
        ("TCGA-CC-5258", "is a patient barcode"),
    ],
)
def test_fields_without_exactly_one_tumour_are_refused_naming_the_sheet(tmp_path, field, problem):
    with pytest.raises(DataFormatError, match=rf"^sheet\.tsv: sample id field .*{problem}"):
        tumour_barcode(field, source="sheet.tsv")
    rows = _rows(SHEET)[:3]
    rows[1]["Sample ID"] = field
    path = tmp_path / "damaged_sheet.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    with pytest.raises(DataFormatError, match=rf"^{re.escape(str(path))}: sample id field .*{problem}"):
        sample_units(read_sample_sheet(path), _download(rows, tmp_path / "gdc"), {"snv": rows[1]["Data Type"]})


# ---------------------------------------------------------------- damaged real files: refused by name


def _sesame_betas(path: Path) -> Path:
    """A SeSAMe level-3 beta file (probe, beta; no header; ``NA`` where masked), written with ``csv``."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        for number in range(200):
            writer.writerow([f"cg{29 + 79 * number:08d}", "NA" if number % 17 == 5 else f"{rng.uniform(0.02, 0.98):.6f}"])
    return path


def _drop_column(name: str) -> Callable[[bytes], bytes]:
    def damage(raw: bytes) -> bytes:
        lines = raw.decode().splitlines()
        start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        where = lines[start].split("\t").index(name)
        kept = lines[:start] + ["\t".join(f for i, f in enumerate(line.split("\t")) if i != where) for line in lines[start:]]
        return ("\n".join(kept) + "\n").encode()

    return damage


def _set_field(name: str, value: str, row: int = 1) -> Callable[[bytes], bytes]:
    """Put ``value`` in column ``name`` of the ``row``-th data row (a number column given text, say)."""

    def damage(raw: bytes) -> bytes:
        lines = raw.decode().splitlines()
        start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        header = lines[start].split("\t")
        data = [i for i in range(start + 1, len(lines)) if not lines[i].startswith("N_")]
        fields = lines[data[row - 1]].split("\t")
        fields[header.index(name) if name in header else int(name)] = value
        lines[data[row - 1]] = "\t".join(fields)
        return ("\n".join(lines) + "\n").encode()

    return damage


def _header_only(raw: bytes) -> bytes:
    lines = raw.decode().splitlines(keepends=True)
    return b"".join(line.encode() for line in lines[: 1 + sum(line.startswith("#") for line in lines)])


COMMON_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda raw: b"",
    "blank lines": lambda raw: b"\n\n",
    "header only": _header_only,
    "cut mid-line": lambda raw: raw[: len(raw) // 2 + 7],
    "cut gzip": lambda raw: gzip.compress(raw)[: len(gzip.compress(raw)) // 2],
    "not text": lambda raw: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "ragged": lambda raw: raw + b"x\ty\tz\t" * 400 + b"\n",
}
#: reader -> (real file, damages it must refuse on top of the common ones, damages it may read)
READERS: dict[str, tuple[Path, dict[str, Callable[[bytes], bytes]]]] = {
    "clinical 2025": (
        COAD_2025,
        {"no vital status": _drop_column("demographic.vital_status"), "text days": _set_field("demographic.days_to_death", "soon")},
    ),
    "clinical 2022": (CESC_2022, {"no submitter": _drop_column("case_submitter_id"), "text flag": _set_field("classification_of_tumor", "42")}),
    "sample sheet": (SHEET, {"no sample id": _drop_column("Sample ID"), "no file name": _set_field("File Name", "")}),
    "maf": (MAF, {"no barcode": _drop_column("Tumor_Sample_Barcode"), "odd barcode": _set_field("Tumor_Sample_Barcode", "sample-7")}),
    "star": (STAR, {"no tpm": _drop_column("tpm_unstranded"), "text count": _set_field("unstranded", "many")}),
    "betas": (
        None,
        {"one column": lambda raw: b"".join(line.split(b"\t")[0] + b"\n" for line in raw.splitlines()), "text beta": _set_field("1", "high", row=3)},
    ),
}
MUST_REFUSE = {
    "empty",
    "blank lines",
    "cut gzip",
    "not text",
    "no vital status",
    "no submitter",
    "no sample id",
    "no file name",
    "no barcode",
    "odd barcode",
}
MUST_REFUSE |= {"no tpm", "text count", "one column", "text beta"}


def _read(reader: str, path: Path, tmp_path: Path) -> object:
    """Everything the kit does with one file of this kind (a sheet: its files and units too)."""
    if reader.startswith("clinical"):
        return read_gdc_clinical(path)
    if reader == "sample sheet":
        sheet = read_sample_sheet(path)
        root = _download(_rows(SHEET), tmp_path / "gdc")
        sample_files(sheet, root, SNV_TYPES["raw"])
        return sample_units(sheet, root, SNV_TYPES)
    if reader == "maf":
        return mutation_matrix(read_maf(path))
    if reader == "star":
        return read_star_counts(path)
    return read_methylation_betas(path)


@pytest.mark.parametrize("reader", list(READERS))
def test_damaged_real_files_are_refused_naming_the_file(reader, tmp_path):
    source, specific = READERS[reader]
    source = source or _sesame_betas(tmp_path / "0a1b2c3d.methylation_array.sesame.level3betas.txt")
    raw = source.read_bytes()
    if source.suffix == ".gz":
        raw = gzip.decompress(raw)
    outcomes = {}
    for name, damage in {**COMMON_DAMAGE, **specific}.items():
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        path = folder / source.name.removesuffix(".gz")
        path.write_bytes(damage(raw))
        if name == "cut gzip":
            path = path.rename(path.with_name(path.name + ".gz"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                warnings.simplefilter("error", FutureWarning)
                _read(reader, path, folder)
            outcomes[name] = "read"
        except Exception as error:  # noqa: BLE001 - any error is checked: its type and its message
            assert isinstance(error, DataFormatError), f"{reader}, {name}: bare {type(error).__name__}: {error}"
            assert str(path) in str(error), f"{reader}, {name}: the message does not name the file: {error}"
            outcomes[name] = "refused"
    refused = {name for name, outcome in outcomes.items() if outcome == "refused"}
    assert refused >= MUST_REFUSE & set(outcomes), f"{reader}: read {sorted(MUST_REFUSE & set(outcomes) - refused)} without complaint"


def test_undamaged_real_files_read():
    assert read_star_counts(STAR).loc["ENSG00000000003", "unstranded"] == 791  # TSPAN6, as in the file
    assert read_star_counts(STAR).attrs["summary"]["N_unmapped"] == 43731666
    maf = read_maf(MAF)
    assert len(maf) == 60 and mutation_matrix(maf).to_numpy().sum() > 0
    assert len(read_sample_sheet(SHEET)) == 48
