"""GDC tables and TCGA barcodes: hand-written files with known answers, and the virtual cohort's files."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mmsurv.io import DataFormatError, DataWarning
from mmsurv.io.barcodes import parse_barcode, patient_barcode, sample_barcode, sample_kind
from mmsurv.io.gdc import (
    NON_SILENT,
    expression_matrix,
    methylation_matrix,
    mutation_matrix,
    read_gdc_clinical,
    read_maf,
    read_methylation_betas,
    read_sample_sheet,
    read_star_counts,
    sample_files,
)
from mmsurv.io.gdc_samples import sample_units, unit_id
from mmsurv.virtual.omics import PROLIFERATION_GENES

# ---------------------------------------------------------------- barcodes


def test_barcodes_split_into_patient_and_sample_type():
    aliquot = "TCGA-A7-A0CE-01A-11R-A00Z-07"
    parts = parse_barcode(aliquot)
    assert (parts.project, parts.tss, parts.participant, parts.sample, parts.analyte, parts.plate, parts.centre) == (
        "TCGA",
        "A7",
        "A0CE",
        "01",
        "R",
        "A00Z",
        "07",
    )
    assert patient_barcode(aliquot) == "TCGA-A7-A0CE"
    assert sample_barcode(aliquot) == "TCGA-A7-A0CE-01A"
    assert sample_kind(aliquot) == "tumour"
    assert sample_kind("TCGA-A7-A0CE-11A") == "normal"
    assert sample_kind("TCGA-A7-A0CE-10A-01D") == "normal"
    assert parse_barcode("TCGA-A7-A0CE-01Z-00-DX1").slide == "DX1"
    assert patient_barcode("VIRT-01-00A3-01Z-00-DX1") == "VIRT-01-00A3"  # the virtual cohort's barcodes parse too


@pytest.mark.parametrize("bad", ["TCGA-A7", "A7-A0CE-01A", "TCGA_A7_A0CE", "LUNG1-001", ""])
def test_unknown_barcodes_are_refused(bad):
    with pytest.raises(ValueError, match="unknown barcode"):
        patient_barcode(bad)


# ---------------------------------------------------------------- MAF

_MAF_HEADER = (
    "#version gdc-1.0.0\n#annotation.spec gdc-2.0.0-aliquot-merged-masked\nHugo_Symbol\tVariant_Classification\tTumor_Sample_Barcode\tHGVSp_Short\n"
)


def _write_maf(path, rows, header=_MAF_HEADER):
    body = header + "".join("\t".join(r) + "\n" for r in rows)
    with gzip.open(path, "wt") as handle:
        handle.write(body)
    return path


def test_mutation_matrix_counts_only_non_silent_variants(tmp_path):
    maf = read_maf(
        _write_maf(
            tmp_path / "a.maf.gz",
            [
                ("TP53", "Missense_Mutation", "TCGA-AA-0001-01A-11D-A000-09", "p.R175H"),
                ("TP53", "Nonsense_Mutation", "TCGA-AA-0001-01A-11D-A000-09", "p.R196*"),  # two hits: still 1
                ("PIK3CA", "Silent", "TCGA-AA-0001-01A-11D-A000-09", "p.#"),  # '#' inside a value is data, not a comment
                ("KRAS", "Intron", "TCGA-AA-0002-01A-11D-A000-09", ""),
                ("KRAS", "Splice_Site", "TCGA-AA-0003-01A-11D-A000-09", ""),
            ],
        )
    )
    assert maf.loc[2, "HGVSp_Short"] == "p.#"
    matrix = mutation_matrix(maf, patients=["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003", "TCGA-AA-0004"])
    assert matrix.to_dict(orient="index") == {
        "TCGA-AA-0001": {"KRAS": 0, "TP53": 1},
        "TCGA-AA-0002": {"KRAS": 0, "TP53": 0},  # an intronic variant does not count
        "TCGA-AA-0003": {"KRAS": 1, "TP53": 0},
        "TCGA-AA-0004": {"KRAS": 0, "TP53": 0},  # sequenced, nothing found: a row of zeros
    }
    wide = mutation_matrix(maf, classifications=list(NON_SILENT) + ["Silent"], genes=["PIK3CA", "TP53"])
    assert wide.loc["TCGA-AA-0001"].tolist() == [1, 1]


def test_maf_bad_input(tmp_path):
    bad = _write_maf(tmp_path / "bad.maf.gz", [("TP53", "x")], header="#version gdc-1.0.0\nHugo_Symbol\tVariant_Classification\n")
    with pytest.raises(DataFormatError, match=r"bad\.maf\.gz.*missing required column.*Tumor_Sample_Barcode"):
        read_maf(bad)
    good = _write_maf(tmp_path / "good.maf.gz", [("TP53", "Missense_Mutation", "TCGA-AA-0009-01A", "")])
    cut = tmp_path / "cut.maf.gz"
    cut.write_bytes(good.read_bytes()[:30])
    with pytest.raises(DataFormatError, match=r"cut\.maf\.gz.*truncated or corrupt"):
        read_maf(cut)
    assert mutation_matrix(read_maf(good), patients=["TCGA-AA-0001"], unknown="drop").to_numpy().sum() == 0


def test_maf_with_unknown_or_malformed_barcodes_names_the_file(tmp_path):
    good = _write_maf(tmp_path / "good.maf.gz", [("TP53", "Missense_Mutation", "TCGA-AA-0009-01A", "")])
    stranger = _write_maf(tmp_path / "stranger.maf.gz", [("TP53", "Missense_Mutation", "TCGA-AA-0001-01A", "")])
    # a patient the caller did not list, in the second of two files: that file is named
    with pytest.raises(DataFormatError, match=r"stranger\.maf\.gz.*not in `patients`.*TCGA-AA-0001"):
        mutation_matrix([read_maf(good), read_maf(stranger)], patients=["TCGA-AA-0009"])
    # a barcode that is no TCGA barcode at all: the file and the row are named
    malformed = _write_maf(
        tmp_path / "malformed.maf.gz", [("TP53", "Missense_Mutation", "TCGA-AA-0001-01A", ""), ("KRAS", "Missense_Mutation", "sample-7", "")]
    )
    with pytest.raises(DataFormatError, match=r"malformed\.maf\.gz.*1 Tumor_Sample_Barcode.*row 2: 'sample-7'"):
        mutation_matrix([read_maf(good), read_maf(malformed)])


# ---------------------------------------------------------------- STAR counts and methylation

_STAR = """# gene-model: GENCODE v36
gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded
N_unmapped\t\t\t100\t100\t100\t\t\t
N_multimapping\t\t\t50\t50\t50\t\t\t
N_noFeature\t\t\t20\t20\t20\t\t\t
N_ambiguous\t\t\t10\t10\t10\t\t\t
ENSG00000000003.15\tTSPAN6\tprotein_coding\t300\t150\t150\t15.0\t5.0\t6.0
ENSG00000000005.6\tTNMD\tprotein_coding\t0\t0\t0\t0.0\t0.0\t0.0
ENSG00000281887.1\tTSPAN6\tlncRNA\t10\t5\t5\t1.0\t0.5\t0.6
"""


def test_star_counts_drop_summary_rows_and_versions(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text(_STAR)
    table = read_star_counts(path)
    assert list(table.index) == ["ENSG00000000003", "ENSG00000000005", "ENSG00000281887"]
    assert table.attrs["summary"] == {"N_unmapped": 100, "N_multimapping": 50, "N_noFeature": 20, "N_ambiguous": 10}
    assert table.attrs["gene_model"] == "gene-model: GENCODE v36"
    by_symbol = expression_matrix({"S1": path}, value="tpm")
    assert by_symbol.loc["TSPAN6", "S1"] == 16.0  # two Ensembl ids share the symbol: TPMs add up
    assert expression_matrix({"S1": path}, value="log2_tpm").loc["TSPAN6", "S1"] == pytest.approx(np.log2(17.0))
    assert expression_matrix({"S1": path}, value="counts", gene_names=False).loc["ENSG00000000003", "S1"] == 300
    broken = tmp_path / "broken.tsv"
    broken.write_text(_STAR.replace("tpm_unstranded", "tpm"))
    with pytest.raises(DataFormatError, match=r"broken\.tsv.*missing column.*tpm_unstranded"):
        read_star_counts(broken)


def test_star_counts_with_par_y_genes_in_different_orders(tmp_path):
    # GENCODE v36 lists pseudo-autosomal genes twice; the Y copy has a _PAR_Y suffix and zero counts
    rows = [
        "ENSG00000002586.20\tCD99\tprotein_coding\t500\t250\t250\t40.0\t12.0\t13.0",
        "ENSG00000002586.20_PAR_Y\tCD99\tprotein_coding\t0\t0\t0\t0.0\t0.0\t0.0",
        "ENSG00000000003.15\tTSPAN6\tprotein_coding\t300\t150\t150\t15.0\t5.0\t6.0",
    ]
    head = "\n".join(_STAR.splitlines()[:6]) + "\n"
    first, second = tmp_path / "first.tsv", tmp_path / "second.tsv"
    first.write_text(head + "\n".join(rows) + "\n")
    second.write_text(head + "\n".join(rows[::-1]) + "\n")  # the same genes in another order
    table = read_star_counts(first)
    assert table.index.is_unique and table.loc["ENSG00000002586", "unstranded"] == 500 and table.attrs["par_y_dropped"] == 1
    for gene_names in (True, False):
        matrix = expression_matrix({"S1": first, "S2": second}, value="counts", gene_names=gene_names)
        assert matrix.shape == (2, 2) and (matrix["S1"] == matrix["S2"]).all()
    assert expression_matrix({"S1": first}, value="counts").loc["CD99", "S1"] == 500  # the X copy alone, not doubled
    # an id listed twice for another reason is refused, naming the file
    (tmp_path / "twice.tsv").write_text(head + rows[0] + "\n" + rows[0].replace(".20", ".19") + "\n")
    with pytest.raises(DataFormatError, match=r"twice\.tsv.*gene id.*more than once.*ENSG00000002586"):
        read_star_counts(tmp_path / "twice.tsv")


def test_methylation_betas_keep_masked_probes_as_nan(tmp_path):
    path = tmp_path / "b.txt"
    path.write_text("cg00000029\t0.53\ncg00000108\tNA\ncg00000109\t0.91\n")
    betas = read_methylation_betas(path)
    assert betas.index.tolist() == ["cg00000029", "cg00000108", "cg00000109"]
    assert np.isnan(betas["cg00000108"]) and betas["cg00000109"] == 0.91
    (tmp_path / "out.txt").write_text("cg1\t1.7\n")
    with pytest.raises(DataFormatError, match=r"out\.txt.*outside \[0, 1\]"):
        read_methylation_betas(tmp_path / "out.txt")
    (tmp_path / "three.txt").write_text("cg1\t0.5\textra\n")
    with pytest.raises(DataFormatError, match="two columns"):
        read_methylation_betas(tmp_path / "three.txt")


def test_virtual_expression_carries_the_proliferation_score(virtual_files):
    cohort = virtual_files["brca"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    expression = expression_matrix(sample_files(sheet, cohort.gdc, "Gene Expression Quantification"))
    genes = expression.loc[list(PROLIFERATION_GENES)]
    score = genes.sub(genes.mean(axis=1), axis=0).div(genes.std(axis=1), axis=0).mean()
    truth = cohort.truth.set_index("patient_id").loc[[patient_barcode(s) for s in score.index]]
    assert spearmanr(score, truth["proliferation"]).statistic > 0.8
    assert abs(spearmanr(expression.loc["VGENE0001"], truth["proliferation"]).statistic) < 0.4  # background genes carry nothing


def test_virtual_methylation_and_mutations_carry_planted_modules(virtual_files):
    cohort = virtual_files["lung_tcga"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    betas = methylation_matrix(sample_files(sheet, cohort.gdc, "Methylation Beta Value"))
    tumours = [s for s in betas.columns if sample_kind(s) == "tumour"]
    # most tumours were profiled (as in TCGA, not all), plus normal lung samples
    assert 0.7 * len(cohort.truth) < len(tumours) < len(cohort.truth) and len(betas.columns) > len(tumours)
    truth = cohort.truth.set_index("patient_id").loc[[patient_barcode(s) for s in tumours]]
    module = betas.loc[betas.index[:20], tumours].mean()  # the proliferation CpG module
    assert spearmanr(module, truth["proliferation"]).statistic > 0.7
    assert betas.isna().to_numpy().mean() > 0  # masked probes survive as NaN
    mafs = [read_maf(p) for p in sample_files(sheet, cohort.gdc, "Masked Somatic Mutation").values()]
    matrix = mutation_matrix(mafs, patients=cohort.truth["patient_id"])
    table = cohort.truth.set_index("patient_id")
    assert (
        table.loc[matrix.index[matrix["TP53"] == 1], "proliferation"].mean()
        > table.loc[matrix.index[matrix["TP53"] == 0], "proliferation"].mean() + 0.2
    )


_LUNG_MODALITIES = {"slide": "Slide Image", "rna": "Gene Expression Quantification", "methylation": "Methylation Beta Value"}


def test_virtual_lung_units_have_normal_slides_smoking_and_missing_modalities(virtual_files):
    cohort = virtual_files["lung_tcga"]
    units = sample_units(read_sample_sheet(cohort.sample_sheet), cohort.gdc, _LUNG_MODALITIES)
    truth = cohort.truth.set_index("patient_id")
    normals = units[units["kind"] == "normal"]
    assert len(normals) == truth["has_normal_sample"].sum() and set(normals["sample_type"]) == {"Solid Tissue Normal"}
    # normal slides are tissue slides (TS), as TCGA's mostly frozen normal sections; tumour slides diagnostic (DX)
    assert normals["slide"].dropna().map(lambda p: "-11A-01-TS1." in p.name).all() and normals["slide"].notna().sum() > 10
    assert units.loc[units["kind"] == "tumour", "slide"].dropna().map(lambda p: "-01Z-00-DX1." in p.name).all()
    # every unit has RNA; some lack a slide or a methylation array
    assert units["rna"].notna().all() and units["slide"].isna().any() and units["methylation"].isna().any()
    assert units["patient_id"].isin(truth.index).all() and set(units["project"]) == {"VIRT-LUAD", "VIRT-LUSC"}
    clinical = read_gdc_clinical(cohort.gdc / "clinical.tsv").set_index("patient")
    never = clinical["smoking_status"] == "Lifelong Non-Smoker"
    assert never.any() and clinical.loc[never, "pack_years"].isna().all() and clinical.loc[~never, "pack_years"].notna().all()
    squamous = truth.loc[clinical.index, "subtype"] == "LUSC"
    assert clinical.loc[squamous.to_numpy(), "pack_years"].mean() > clinical.loc[~squamous.to_numpy(), "pack_years"].mean()


def test_sample_units_keep_the_first_of_repeated_files_and_warn(tmp_path):
    rows = []
    for sample, name in [("TCGA-AA-0001-01A", "b.tsv"), ("TCGA-AA-0001-01B", "a.tsv"), ("TCGA-AA-0001-11A", "c.tsv"), ("TCGA-AA-0002-10A", "d.tsv")]:
        (tmp_path / name[0]).mkdir()
        (tmp_path / name[0] / name).write_text("x")
        rows.append(
            {"file_id": name[0], "file_name": name, "data_type": "Gene Expression Quantification", "case_id": sample[:12], "sample_id": sample}
        )
    sheet = pd.DataFrame(rows)
    with pytest.warns(DataWarning, match="1 sample unit.*several rna files"):
        units = sample_units(sheet, tmp_path, {"rna": "Gene Expression Quantification"})
    assert list(units.index) == ["TCGA-AA-0001-01", "TCGA-AA-0001-11"]  # blood-derived normal (10) left out
    assert units.loc["TCGA-AA-0001-01", "rna"].name == "b.tsv"  # vial A before vial B and list(units["kind"]) == ["tumour", "normal"]
    assert unit_id("TCGA-AA-0001-01Z-00-DX1") == "TCGA-AA-0001-01"
    with pytest.raises(ValueError, match="names no sample"):
        unit_id("TCGA-AA-0001")


def test_sample_sheet_names_missing_files(virtual_files, tmp_path):
    cohort = virtual_files["brca"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    with pytest.raises(DataFormatError, match="listed in the sample sheet.*not on disk"):
        sample_files(sheet, tmp_path, "Slide Image")
    with pytest.raises(ValueError, match="lists no 'Methylation Beta Value'"):
        sample_files(sheet, cohort.gdc, "Methylation Beta Value")


# ---------------------------------------------------------------- clinical

_CLINICAL = """project.project_id\tcases.case_id\tcases.submitter_id\tdemographic.vital_status\tdemographic.days_to_death\tdiagnoses.days_to_last_follow_up\tdemographic.age_at_index\ttreatments.treatment_type
TCGA-XX\tu1\tTCGA-AA-0001\tAlive\t'--\t400\t51\tRadiation Therapy, NOS
TCGA-XX\tu1\tTCGA-AA-0001\tAlive\t'--\t1200\t51\tPharmaceutical Therapy, NOS
TCGA-XX\tu2\tTCGA-AA-0002\tDead\t730\t300\t66\tRadiation Therapy, NOS
TCGA-XX\tu2\tTCGA-AA-0002\tDead\t730\t'--\t66\tSurgery, NOS
TCGA-XX\tu3\tTCGA-AA-0003\tAlive\t'--\t'--\t70\tRadiation Therapy, NOS
"""


def test_gdc_clinical_overall_survival_rule(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(_CLINICAL)
    with pytest.warns(DataWarning, match="survival unknown for 1 of 3 case"):
        cases = read_gdc_clinical(path).set_index("patient")
    assert cases.loc["TCGA-AA-0001", ["os_time", "os_event"]].tolist() == [1200, 0]  # alive: the latest follow-up
    assert cases.loc["TCGA-AA-0002", ["os_time", "os_event"]].tolist() == [730, 1]  # dead: days_to_death
    assert np.isnan(cases.loc["TCGA-AA-0003", "os_time"])  # no follow-up at all: unknown, kept, not invented
    assert cases.loc["TCGA-AA-0001", "age"] == 51


def test_gdc_clinical_unknown_vital_status_is_not_a_censored_patient(tmp_path):
    path = tmp_path / "clinical.tsv"
    path.write_text(
        _CLINICAL
        + "TCGA-XX\tu4\tTCGA-AA-0004\tNot Reported\t'--\t800\t60\tSurgery, NOS\n"
        + "TCGA-XX\tu5\tTCGA-AA-0005\t'--\t'--\t500\t61\tSurgery, NOS\n"
        + "TCGA-XX\tu6\tTCGA-AA-0006\tDead\t'--\t250\t62\tSurgery, NOS\n"
    )
    with pytest.warns(
        DataWarning,
        match=r"clinical\.tsv: survival unknown for 4 of 6 case.*2 vital status not reported, "
        r"1 dead without days_to_death, 1 alive without days_to_last_follow_up",
    ):
        cases = read_gdc_clinical(path)
    unknown = ["TCGA-AA-0003", "TCGA-AA-0004", "TCGA-AA-0005", "TCGA-AA-0006"]
    assert cases.attrs["survival_unknown"] == unknown
    cases = cases.set_index("patient")
    assert cases.loc[unknown, ["os_time", "os_event"]].isna().all().all()  # neither censored at follow-up nor a death at NaN
    assert cases.loc["TCGA-AA-0004", "age"] == 60  # the case is kept for its other columns
    assert cases.loc[["TCGA-AA-0001", "TCGA-AA-0002"], "os_event"].tolist() == [0, 1]


def test_gdc_clinical_without_any_follow_up_warns(tmp_path):
    path = tmp_path / "baseline.tsv"
    path.write_text(
        _CLINICAL.splitlines()[0] + "\n" + "".join(f"TCGA-XX\tu{i}\tTCGA-AA-000{i}\tAlive\t'--\t0\t50\tSurgery, NOS\n" for i in range(1, 6))
    )
    with pytest.warns(DataWarning, match=r"baseline\.tsv: no case has any follow-up \(5 with known survival, all censored at day 0\)"):
        cases = read_gdc_clinical(path)
    assert cases["os_event"].sum() == 0 and len(cases) == 5


def test_gdc_clinical_api_layout_with_indexed_columns(tmp_path):
    path = tmp_path / "cases.tsv"
    path.write_text(
        "case_id\tsubmitter_id\tdemographic.vital_status\tdemographic.days_to_death\t"
        "diagnoses.0.days_to_last_follow_up\tdiagnoses.1.days_to_last_follow_up\n"
        "u1\tTCGA-AA-0001\tAlive\t\t100\t900\n"
    )
    assert read_gdc_clinical(path).loc[0, "os_time"] == 900


def test_gdc_clinical_refuses_negative_times(tmp_path):
    path = tmp_path / "neg.tsv"
    path.write_text(_CLINICAL.replace("\t730\t", "\t-3\t"))
    with pytest.raises(DataFormatError, match=r"neg\.tsv.*negative survival time.*TCGA-AA-0002"):
        read_gdc_clinical(path)
    (tmp_path / "cols.tsv").write_text("cases.submitter_id\tcases.case_id\nTCGA-AA-0001\tu1\n")
    with pytest.raises(DataFormatError, match="vital_status"):
        read_gdc_clinical(tmp_path / "cols.tsv")


def test_virtual_clinical_tsv_gives_back_the_simulated_outcomes(virtual_files):
    for name in ("brca", "lung_tcga", "cesc"):
        cohort = virtual_files[name]
        cases = read_gdc_clinical(cohort.gdc / "clinical.tsv").set_index("patient").loc[cohort.truth["patient_id"]]
        assert np.array_equal(cases["os_time"].to_numpy(), cohort.truth["time"].to_numpy())
        assert np.array_equal(cases["os_event"].to_numpy(), cohort.truth["event"].to_numpy())
    assert set(pd.read_csv(virtual_files["cesc"].gdc / "clinical.tsv", sep="\t")["diagnoses.figo_stage"]) <= {
        "Stage IB",
        "Stage II",
        "Stage III",
        "Stage IVA",
    }
