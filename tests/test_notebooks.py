"""Each notebook runs in smoke mode through the kit's runner; its metrics.json must show
that the pipeline recovered the planted signal (with margins a broken pipeline would miss).

Notebooks are also checked to be committed clean: outputs stripped, a ``parameters`` cell
with the parameters every notebook shares.

Tests that share a notebook run (a module fixture) carry one ``xdist_group``, so that pytest-xdist
(``--dist loadgroup``) gives them to one worker and the notebook runs once; each notebook's
real-data-layout run is a group of its own and can run beside it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from mmsurv.ledger import check_ledger
from mmsurv.runner import NOTEBOOK_DIR, discover_notebooks, run_notebooks

REQUIRED_PARAMETERS = {"seed", "data_source", "data_dir", "smoke", "device", "results_dir"}


@pytest.mark.parametrize("path", discover_notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_clean_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code_cells), "strip outputs before committing"
    tagged = [c for c in code_cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    assigned = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert REQUIRED_PARAMETERS <= assigned
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # the runner writes (and times) the cohorts the metadata names before the kernel starts: it must name what the cells read
    read = set(re.findall(r'virtual_cohort_files\("(\w+)"', "".join(c.source for c in code_cells)))
    assert set(nb.metadata.get("mmsurv", {}).get("cohorts", [])) == read


def _run_smoke(number: str, results: Path, parameters: dict | None = None, *, cell_timeout: int = 600) -> tuple[dict, Path]:
    """Run notebook ``number`` in smoke mode into ``results``: its metrics.json document and its results folder."""
    (run,) = run_notebooks([number], smoke=True, parameters=parameters, results_root=results, progress_bar=False, cell_timeout=cell_timeout)
    assert run.status == "ok", run.error
    folder = Path(run.output_dir)
    return json.loads((folder / "metrics.json").read_text()), folder


@pytest.fixture(scope="module")
def primer_metrics(tmp_path_factory):
    return _run_smoke("00", tmp_path_factory.mktemp("results"), cell_timeout=300)[0]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-00")
def test_primer_recovers_planted_signal(primer_metrics):
    virtual = primer_metrics["metrics"]["virtual"]
    c_test = virtual["c_index_test"]
    model, oracle = c_test["Cox (age, stage, grade)"], c_test["oracle (planted true risk)"]
    permuted = c_test["permuted-label control (mean)"]
    assert oracle["estimate"] > 0.70  # the planted risk is strongly prognostic
    assert 0.60 < model["estimate"] < oracle["estimate"] + 0.03  # clinical proxies help, cannot beat the truth
    # shuffled outcomes: chance (the mean of 20 permutations varies by ~0.03 across seeds; leakage would give ~0.7)
    assert abs(permuted["estimate"] - 0.5) < 0.08
    assert model["ci_low"] < model["estimate"] < model["ci_high"]
    # the external centre, never used for training, still shows the signal
    assert virtual["c_index_external"]["Cox (age, stage, grade)"]["estimate"] > 0.6
    # Cox on the true traits recovers the planted log-hazard ratios
    for name, row in virtual["planted_vs_fitted_log_hr"].items():
        assert abs(row["fitted"] - row["planted"]) < 0.3, name
    # calibration / Brier: the oracle and the model beat "same prediction for everybody"
    ibs = virtual["integrated_brier_test"]
    assert ibs["oracle (planted true risk)"] < ibs["Kaplan-Meier (no covariates)"]
    assert ibs["Cox (age, stage, grade)"] < ibs["Kaplan-Meier (no covariates)"]
    assert virtual["td_auc_test"]["Cox (age, stage, grade)"]["mean_auc"] > 0.6
    groups = virtual["risk_groups_test"]
    assert groups["hr_model"]["hazard_ratio"] > 1.5 and groups["hr_model"]["ci_low"] > 1.0


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-00")
def test_primer_curve_calibration_flags_curves_broken_on_purpose_not_the_oracle(primer_metrics):
    table = primer_metrics["metrics"]["virtual"]["curve_calibration_test"]
    oracle, cox, broken = (
        table["oracle (planted true risk)"],
        table["Cox (age, stage, grade)"],
        table["Cox, every hazard doubled (broken on purpose)"],
    )
    # smoke seeds 0-5, test split + external centre (185 patients): D-calibration p of the doubled hazards
    # 5e-12 / 7e-12 / 2e-16 / 1.4e-5 / 3e-12 / 2e-9, of the oracle 0.89 / 0.41 / 0.99 / 0.93 / 0.93 / 0.54;
    # ICI at 3 years doubled 0.228 / 0.219 / 0.219 / 0.125 / 0.212 / 0.229, oracle 0.020 / 0.028 / 0.044 / 0.038 / 0.015 / 0.032,
    # Cox 0.029 / 0.016 / 0.041 / 0.059 / 0.045 / 0.032
    assert broken["D-calibration p"] < 1e-3
    assert oracle["D-calibration p"] > 1e-3  # a correct model's p-value is uniform: below 1e-3 once in 1,000 cohorts
    assert broken["ICI (3 y)"] > oracle["ICI (3 y)"] + 0.05 and broken["ICI (3 y)"] > cox["ICI (3 y)"] + 0.05
    assert cox["ICI (3 y)"] < 0.1
    assert broken["1-calibration p (3 y)"] < 0.05


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-00")
def test_primer_real_tcga_findings(primer_metrics):
    tcga = primer_metrics["metrics"]["tcga"]
    # advanced stage carries worse overall survival in TCGA-CESC
    assert tcga["logrank_stage"]["p_value"] < 0.05
    assert tcga["cox"]["stage"]["hazard_ratio"] > 1.1 and tcga["cox"]["stage"]["ci_low"] > 1.0
    # Kaplan-Meier mortality exceeds the naive death fraction, which counts censored patients as survivors
    assert tcga["km_death_by_5y"] > tcga["naive_death_fraction"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-00")
def test_primer_records_parameters_and_environment(primer_metrics):
    assert primer_metrics["parameters"]["smoke"] is True
    assert primer_metrics["seed"] == 0
    assert primer_metrics["environment"]["device"] == "cpu" or primer_metrics["environment"]["device"].startswith("cuda")
    assert primer_metrics["environment"]["packages"]["lifelines"]


@pytest.fixture(scope="module")
def breast_run(tmp_path_factory):
    return _run_smoke("01", tmp_path_factory.mktemp("results"))


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-01")
def test_breast_notebook_recovers_proliferation_from_slides(breast_run):
    metrics = breast_run[0]["metrics"]
    # held-out patients (internal test + external centre, pooled): the slides carry the planted proliferation. Smoke seeds 0-9:
    # score 0.811 / 0.657 / 0.848 / 0.813 / 0.692 / 0.615 / 0.433 / 0.890 / 0.528 / 0.707, MKI67 0.751 / 0.408 / 0.839 / 0.794 /
    # 0.694 / 0.678 / 0.290 / 0.722 / 0.333 / 0.590. Pooling lowers them where the centres' predictions sit at different levels
    # (seed 6: 0.645 in the test split and 0.657 at the external centre, 0.433 pooled); the 0.4 / 0.3 margins of seeds 0-3 failed at seed 6
    assert metrics["heldout_spearman_score"] >= 0.3
    assert metrics["heldout_spearman_mki67"] >= 0.2
    # the same training on shuffled slide labels: near zero (leakage would give ~0.8). Smoke seeds
    # 0 / 1 / 2 / 3, five retrainings each from its own initial weights: means 0.17 / 0.02 / 0.24 /
    # -0.01, single runs -0.28 to 0.52 (held out 0.81 / 0.65 / 0.82 / 0.80); seeds 4-9: 0.03 / -0.10 / -0.05 / 0.29 / 0.12 / -0.13
    permuted = metrics["permuted_control"]
    assert abs(permuted["estimate"]) < 0.4 and permuted["n_permutations"] >= 5
    assert metrics["heldout_spearman_score"] - permuted["estimate"] > 0.3  # seeds 0-9: 0.41 (seed 8) or more
    # attention MIL over the same tile embeddings also recovers it
    assert metrics["mil_spearman_heldout"] >= 0.3
    # the high predicted-score group does worse, compared within each centre: a score that only
    # told centres apart (by their stain) gives about 1 here, even where the pooled HR is high.
    # Smoke mode has 48 held-out patients, too few for a confidence bound (seed 1: HR 1.42, 0.51-3.93):
    # the Spearman checks above carry the image signal, this one the direction of the survival effect
    # Seeds 0-9: within centres 1.42 (seed 1) to 20.0; the pooled HR, recorded, was 0.99 at seed 6, where the centres'
    # predictions sat at different levels (above): the pooled figure is the confounded one section 9 warns of
    survival = metrics["survival"]
    assert survival["predicted score, within centres"]["hazard_ratio"] > 1.2
    assert survival["predicted score"]["hazard_ratio"] > 0
    # the oracle (planted proliferation) bounds what the RNA score can be predicted with
    correlations = metrics["correlations"]
    assert correlations["score|oracle|test"]["spearman"] > 0.8
    assert metrics["training"]["epochs_run"] > 0


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-01")
def test_breast_notebook_keeps_every_patient_slide_and_tile_in_one_split(breast_run):
    import pandas as pd

    tiles = pd.read_csv(breast_run[1] / "tiles.csv")
    assert tiles.groupby("patient_id")["split"].nunique().max() == 1
    assert tiles.groupby("slide_id")["split"].nunique().max() == 1
    assert not tiles.duplicated(["slide_id", "x", "y"]).any()
    assert set(tiles["split"]) == {"train", "validation", "test", "external"}
    n_patients = breast_run[0]["metrics"]["n_patients"]
    assert sum(n_patients.values()) == tiles["patient_id"].nunique()
    # the tiles the regressor trained on, and those that stopped it early, as its history recorded them
    fitted = tiles["fitted_as"].fillna("")
    assert (tiles.loc[fitted == "train", "split"] == "train").all() and (fitted[tiles["split"] == "train"] == "train").all()
    assert (tiles.loc[fitted == "validation", "split"] == "validation").all() and (fitted == "validation").any()
    assert (fitted[tiles["split"].isin(["test", "external"])] == "").all()  # held-out tiles never touched fitting


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-01")
def test_breast_notebook_fit_ledger_keeps_held_out_patients_out_of_every_fit(breast_run):
    import pandas as pd

    metrics, folder = breast_run[0]["metrics"], breast_run[1]
    ledger = metrics["fit_ledger"]
    check_ledger(ledger)  # no fitting step saw a test or external patient
    # the held-out set is the test split and the external centre, as the tiles' own split column says
    tiles = pd.read_csv(folder / "tiles.csv")
    held_out = set(tiles.loc[tiles["split"].isin(["test", "external"]), "patient_id"])
    split = metrics["split_patients"]
    assert set(ledger["held_out"]) == held_out == set(split["test"]) | set(split["external"])
    assert len(held_out) == metrics["n_patients"]["test"] + metrics["n_patients"]["external"]
    # every fitting step of the notebook is there, under the name the notebook gives it
    steps = ledger["steps"]
    expected = {f"{model}: {role}" for model in ("tile CNN", "permuted control: tile CNN", "attention MIL") for role in ("fit", "early stopping")}
    expected |= {
        "target standardisation",
        "permuted control: shuffled labels",
        "permuted control: target standardisation",
        "attention MIL: target standardisation",
        "risk cut-off",
        "covariate imputation (median)",
        "oracle risk cut-off",
    }
    assert expected <= set(steps), expected - set(steps)
    # ... recording what the fits really used: the tile CNN trained on the training patients' tiles and
    # stopped on the validation patients' (as tiles.csv's fitted_as, written from the training history, shows)
    fitted = tiles["fitted_as"].fillna("")
    assert set(steps["tile CNN: fit"]) == set(split["train"]) == set(tiles.loc[fitted == "train", "patient_id"])
    assert set(steps["tile CNN: early stopping"]) == set(split["validation"]) == set(tiles.loc[fitted == "validation", "patient_id"])
    assert set(steps["risk cut-off"]) == set(split["train"])
    assert set(steps["permuted control: shuffled labels"]) == set(split["train"]) | set(split["validation"])


def test_every_notebook_has_a_test():
    tested = {
        "00_survival_primer",
        "01_breast_proliferation_wsi",
        "02_lung_ct_3dcnn_prognosis",
        "03_lung_multiclass_fusion",
        "04_cervical_os_multimodal",
        "05_cervical_recurrence_mri",
    }
    assert {p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")} <= tested


def _fetch_from_gdc_stand_in(gdc: Path, rows, cases_tsv: str, manifest: str, destination: Path, *, with_projects: bool = False) -> None:
    """`mmsurv fetch <manifest>` into ``destination``, served by a local GDC stand-in holding the sheet ``rows``' files under ``gdc``.

    ``with_projects``: the stand-in also serves each file's project and sample type (from the sheet).
    """
    from fake_archive import FakeArchive, RunningArchive

    from mmsurv.environment import PROJECT_ROOT
    from mmsurv.fetch import fetch_manifest

    archive = FakeArchive(cases_tsv=cases_tsv)
    for _, row in rows.iterrows():
        path = gdc / row["file_id"] / row["file_name"]
        options = {"project": row["project_id"], "sample_type": row["sample_type"]} if with_projects else {}
        archive.add_file(row["file_id"], path, row["data_type"], row["case_id"], row["sample_id"], **options)
    with RunningArchive(archive) as server:
        fetch_manifest(PROJECT_ROOT / "data_manifests" / f"{manifest}.toml", destination, api_overrides={"gdc": server.url}, progress=False)


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-01-real-layout")
def test_breast_notebook_reads_a_fetched_gdc_folder(virtual_files, tmp_path):
    """data_source="tcga": the same cells read a folder made by `mmsurv fetch tcga-brca` (here from a local GDC stand-in)."""
    from mmsurv.io.gdc import read_sample_sheet

    cohort = virtual_files["brca"]
    fetched = tmp_path / "tcga-brca"
    _fetch_from_gdc_stand_in(cohort.gdc, read_sample_sheet(cohort.sample_sheet), (cohort.gdc / "clinical.tsv").read_text(), "tcga-brca", fetched)
    # the folder layout is under test here, not the control: one permuted retraining is enough
    metrics = _run_smoke("01", tmp_path / "results", {"data_source": "tcga", "data_dir": str(fetched), "n_permutations": 1})[0]["metrics"]
    assert metrics["heldout_spearman_score"] >= 0.4
    assert not any("oracle" in key for key in metrics["correlations"])  # real data has no planted truth
    check_ledger(metrics["fit_ledger"])
    assert "oracle risk cut-off" not in metrics["fit_ledger"]["steps"]


@pytest.fixture(scope="module")
def lung_ct_run(tmp_path_factory):
    return _run_smoke("02", tmp_path_factory.mktemp("results"))[0]["metrics"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-02")
def test_lung_ct_notebook_predicts_two_year_survival_from_the_tumour_cube(lung_ct_run):
    auc = lung_ct_run["auc_test"]
    # the test centre (never trained or tuned on): the cube carries size, texture and necrosis
    assert auc["3D CNN"]["estimate"] > 0.6 and lung_ct_run["training"]["epochs_run"] > 0
    # ... and the CNN reads more than the tumour's size: above volume alone, which an untrained
    # network or one trained on shuffled labels merely echoes (they scored at or below it)
    assert auc["3D CNN"]["estimate"] > auc["tumour volume alone"]["estimate"] + 0.02
    # no learned model beats the planted truth: above it means a leak
    for model in ("3D CNN", "clinical random forest"):
        assert auc[model]["estimate"] < auc["oracle (planted true risk)"]["estimate"] + 0.05, model
    # shuffled training labels: far below the trained CNN, and not far from chance. In CT one
    # retraining can land far from 0.5 (a network trained on noise still ranks by tumour size,
    # which is prognostic, with an arbitrary sign). Smoke seeds 0 / 1 / 2, three retrainings of at most
    # control_epochs = 10, each from its own initial weights: means 0.45 / 0.61 / 0.50, single runs
    # 0.27-0.76 (CNN 0.81 / 0.83 / 0.77, tumour volume alone 0.76 / 0.73 / 0.68)
    # (seed 0 rerun in issue 31, on the code before and after its change alike: permuted 0.64, CNN 0.81)
    permuted = lung_ct_run["permuted_control"]
    assert abs(permuted["estimate"] - 0.5) < 0.25 and permuted["n_permutations"] >= 3
    assert auc["3D CNN"]["estimate"] - permuted["estimate"] > 0.1
    assert lung_ct_run["risk_groups_test"]["3D CNN"]["hazard_ratio"] > 1.0
    # the same tumour rescanned, or contoured by another reader, gets nearly the same prediction
    robustness = lung_ct_run["robustness"]
    assert robustness["test_retest_icc_cnn"] > 0.8 and robustness["n_retest_patients"] >= 10
    assert robustness["inter_reader_spearman_cnn"] > 0.7
    assert set(lung_ct_run["n_patients"]) == {"train", "tune", "test"}
    # the test centre is the test set, and none of its patients trained or tuned any network
    split = lung_ct_run["split_patients"]
    assert set(split["test"]) == set(lung_ct_run["test_centre_patients"]) and len(split["test"]) >= 40
    assert not set(split["test"]) & (set(split["train"]) | set(split["tune"]) | set(lung_ct_run["training_patients"]))
    # the network's "dead" saliency falls on the tumour more than on the air around it (a map or
    # contour misaligned with the cube gives about 1), but so does the same network's before training
    # (Adebayo et al. 2018), so what training changed is checked by how little the two maps agree.
    # Smoke seeds 0 / 1 / 2 here: in the contour 1.57 / 2.47 / 2.00 (untrained 1.82 / 1.61 / 1.63), rank
    # correlation 0.63 / 0.61 / 0.63; the CI machine's seed 0 run trained to 1.36 (torch on another CPU)
    assert lung_ct_run["saliency_enrichment_in_contour"] > 1.1 and lung_ct_run["saliency_enrichment_untrained"] > 1.0
    assert lung_ct_run["saliency_rank_correlation_with_untrained"] < 0.85


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-02")
def test_lung_ct_transfer_learning_is_tested_on_unseen_surgery_patients(lung_ct_run):
    test_patients = set(lung_ct_run["surgery_test_patients"])
    assert len(test_patients) >= 20 and all(p.startswith("VSURG1-") for p in test_patients)
    assert not test_patients & set(lung_ct_run["training_patients"])
    assert lung_ct_run["transfer_surgery"]["transfer (frozen conv, retrained dense)"]["estimate"] > 0.55
    # transfer learning trained: the dense layers moved, the frozen conv blocks did not
    check = lung_ct_run["transfer_check"]
    assert check["epochs_run"] > 0 and check["convolutions_unchanged"] and check["deep_feature_change"] > 1e-3


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-02")
def test_lung_ct_fit_ledger_keeps_both_test_sets_out_of_every_fit(lung_ct_run):
    ledger = lung_ct_run["fit_ledger"]
    check_ledger(ledger)  # no fitting step saw a patient of the test centre or a surgery test patient
    # the held-out set is the radiotherapy test split (the test centre, with its patients censored
    # before 2 years) and the surgery test split, as the split columns' counts say
    held = lung_ct_run["held_out_splits"]
    assert set(ledger["held_out"]) == set(held["radiotherapy test"]) | set(held["surgery test"])
    assert len(held["radiotherapy test"]) == lung_ct_run["n_patients"]["test"] and len(held["surgery test"]) == lung_ct_run["surgery_split"]["test"]
    assert set(lung_ct_run["test_centre_patients"]) <= set(held["radiotherapy test"])
    assert set(lung_ct_run["surgery_test_patients"]) <= set(held["surgery test"])
    # every fitting step is there, under the name the notebook gives it
    steps = ledger["steps"]
    networks = ("3D CNN", "permuted control: 3D CNN", "transfer to surgery (dense layers)", "surgery CNN from scratch")
    expected = {f"{network}: {role}" for network in networks for role in ("fit", "early stopping")}
    expected |= {
        "permuted control: shuffled labels",
        "clinical random forest",
        "risk cut-off (3D CNN)",
        "risk cut-off (oracle)",
        "surgery clinical random forest",
        "deep-feature PCA (the figure's axes)",  # descriptive, but fitted all the same: on training patients
    }
    assert expected <= set(steps), expected - set(steps)
    # ... with the patients they really used: radiotherapy models on radiotherapy training / tuning
    # patients, surgery models on surgery patients only
    assert set(steps["3D CNN: fit"]) == set(lung_ct_run["split_patients"]["train"])
    assert set(steps["3D CNN: early stopping"]) == set(lung_ct_run["split_patients"]["tune"])
    assert set(steps["clinical random forest"]) == set(steps["risk cut-off (3D CNN)"]) == set(steps["3D CNN: fit"])
    assert set(steps["deep-feature PCA (the figure's axes)"]) == set(steps["3D CNN: fit"])
    for step in ("transfer to surgery (dense layers): fit", "surgery CNN from scratch: early stopping", "surgery clinical random forest"):
        assert all(p.startswith("VSURG1-") for p in steps[step]), step
    assert not any(p.startswith("VSURG1-") for p in steps["3D CNN: fit"] + steps["permuted control: 3D CNN: fit"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-02-real-layout")
def test_lung_ct_notebook_reads_a_tcia_folder(virtual_files, tmp_path):
    """data_source="tcia": the same cells read a TCIA-layout folder with Lung1's single-centre clinical table and no surgery cohort."""
    import shutil

    import pandas as pd

    source = virtual_files["lung_ct"].tcia
    fetched = tmp_path / "tcia"
    for collection in ("NSCLC-Radiomics", "RIDER-Lung-CT", "NSCLC-Radiomics-Interobserver1"):
        shutil.copytree(source / collection, fetched / collection)
    clinical = pd.read_csv(source / "NSCLC-Radiomics.clinical.csv")
    clinical.drop(columns="centre").to_csv(fetched / "NSCLC-Radiomics.clinical.csv", index=False)  # Lung1 is one centre
    # the folder layout and the single-centre split are under test here, not the network: 20 epochs and one permuted retraining suffice
    parameters = {"data_source": "tcia", "data_dir": str(fetched), "surgery_collection": "", "epochs": 20, "n_permutations": 1}
    metrics = _run_smoke("02", tmp_path / "results", parameters)[0]["metrics"]
    assert set(metrics["auc_test"]) == {"3D CNN", "tumour volume alone", "clinical random forest"}  # real data has no planted truth
    assert metrics["test_centre_patients"] is None and not set(metrics["split_patients"]["test"]) & set(metrics["training_patients"])
    assert metrics["auc_test"]["3D CNN"]["estimate"] > 0.55
    assert metrics["n_labelled"]["test"] >= 40  # a random 30% of the patients, no centre column
    assert metrics["transfer_surgery"] == {} and metrics["robustness"]["n_retest_patients"] >= 10
    # the random test split is the held-out set; without a surgery cohort there is no second one
    check_ledger(metrics["fit_ledger"])
    assert set(metrics["held_out_splits"]) == {"radiotherapy test"}
    assert set(metrics["fit_ledger"]["held_out"]) == set(metrics["held_out_splits"]["radiotherapy test"]) >= set(metrics["split_patients"]["test"])


def _warnings_printed(executed_notebook: str) -> list[str]:
    """The stream outputs of an executed notebook that mention a warning."""
    nb = nbformat.read(executed_notebook, as_version=4)
    streams = [
        "".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "stream"
    ]
    return [s for s in streams if "Warning" in s]


@pytest.fixture(scope="module")
def lung_fusion_run(tmp_path_factory):
    return _run_smoke("03", tmp_path_factory.mktemp("results"))[0]["metrics"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_beats_the_image_alone_and_its_permuted_control(lung_fusion_run):
    metrics = lung_fusion_run
    # on the same held-out units (those with a slide): expression and methylation carry the class
    # strongly, the slides weakly (planted so, as in the paper's 0.78 image-only macro AUC)
    # smoke seeds 0-4 (issue 30: fusion weights drawn from the seed): fused 1.000 at each, image only 0.767 / 0.684 / 0.743 / 0.731 / 0.733,
    # permuted 0.480 / 0.532 / 0.513 / 0.487 / 0.438; with the slide block cross-fitted (issue 31), seeds 0-3: permuted
    # 0.476 / 0.534 / 0.450 / 0.397 (each the mean of 10 permutations whose values spread from 0.22 to 0.85)
    assert metrics["macro_auc_fused"] > 0.9
    assert metrics["macro_auc_fused"] > metrics["macro_auc_image_only"] + 0.1
    assert metrics["macro_auc_image_only"] > 0.55  # the tile classifier learned some morphology
    assert metrics["macro_auc_fused_all_units"] > 0.9  # units without a slide or methylation are scored too
    # shuffled training labels: near chance
    permuted = metrics["permuted_control"]
    assert abs(metrics["macro_auc_permuted"] - 0.5) < 0.15 and permuted["n_permutations"] >= 3
    # every fusion operator learns the task
    by_model = metrics["macro_auc_by_model"]
    for fusion in ("concat", "gated", "kronecker", "late"):
        assert by_model[f"fused: {fusion}"] > 0.8, fusion  # smoke seeds 0-4: Kronecker (the lowest) 0.996 / 0.979 / 0.994 / 0.972 / 1.000
    assert by_model["oracle (planted class)"] == 1.0 and by_model["rna alone (logistic)"] > 0.9
    # per-modality Shapley values of log P(true class), from the training prior: the planted omics
    # blocks bring the evidence, clinical data next to none. Smoke seeds 0-4, lowest over classes of
    # min(RNA, methylation) minus clinical: 0.39 / 0.27 / 0.36 / 0.33 / 0.28 nats (cross-fitted slide block, seeds 0-3:
    # 0.39 / 0.40 / 0.51 / 0.31)
    for name, evidence in metrics["modality_attribution"].items():
        assert min(evidence["rna"], evidence["methylation"]) > evidence["clinical"] + 0.1, name


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_scores_units_with_a_modality_removed(lung_fusion_run):
    import pandas as pd

    table = pd.DataFrame(lung_fusion_run["missing_modality"])
    assert set(table["fraction"]) == {0.0, 0.25, 0.5, 1.0} and set(table["missing"]) == {"rna", "methylation", "slide", "rna+methylation"}
    assert table.loc[table["fraction"] == 1.0, "n_removed"].min() > 0
    # with any one block removed the other omics block still carries the class: the ranking survives
    # (smoke seeds 0-2, lowest: 0.994 / 0.996 / 0.997; seed 3, not used by the tests: 0.997)
    assert table.loc[table["missing"] != "rna+methylation", "macro_auc"].min() > 0.9
    # with both omics blocks removed from every held-out unit (slide and clinical data left), the
    # model trained with modality dropout ranks them better than the one trained without, which
    # meets inputs it never saw. Smoke seeds 0-2, three trainings each, cross-fitted slide block (2 folds):
    # macro AUC 0.756 / 0.795 / 0.774 with dropout vs 0.716 / 0.760 / 0.758 without (gap 0.040 /
    # 0.035 / 0.016); seed 3, not used by the tests: 0.749 vs 0.727 (gap 0.022). With the tile classifier's
    # in-sample features as slide block the gap was 0.09 / 0.08 / 0.03. With modality_dropout = 0 both
    # settings are the same trainings and the gap is 0: the strict inequality fails (reasoned, not run).
    no_omics = table[(table["missing"] == "rna+methylation") & (table["fraction"] == 1.0)].set_index("model")
    dropout = no_omics[no_omics.index.str.startswith("modality dropout")].iloc[0]
    plain = no_omics.loc["no modality dropout"]
    assert dropout["macro_auc_loss"] < plain["macro_auc_loss"]
    assert dropout["macro_auc"] > 0.65  # about the image-only model's level
    # Not asserted: which model loses less with one block removed. The units that matter then are the
    # few that lack methylation as well, and which model wins depends on the seed (log-loss with RNA
    # removed, seeds 0-4: 0.12 / 0.11 / 0.31 / 0.13 / 0.10 with dropout vs 0.18 / 0.17 / 0.09 / 0.12 / 0.13).


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_keeps_every_patient_in_one_split(lung_fusion_run):
    patients = lung_fusion_run["splits"]["patients"]
    assert set(patients) == {"train", "validation", "test", "external"}
    seen = [p for ids in patients.values() for p in ids]
    assert len(seen) == len(set(seen))  # no patient in two splits
    held_out = set(patients["test"]) | set(patients["external"])
    fitted = lung_fusion_run["splits"]
    for role, units in list(fitted["tile_classifier_fitted_on"].items()) + list(fitted["fusion_fitted_on"].items()):
        assert not {u.rsplit("-", 1)[0] for u in units} & held_out, role
    assert {u.rsplit("-", 1)[0] for u in fitted["fusion_fitted_on"]["train"]} <= set(patients["train"])


# Names of the fitting steps notebook 03 records (": fit" / ": early stopping" for trained networks).
LUNG_FUSION_LEDGER_STEPS = {
    "tile classifier: fit",
    "tile classifier: early stopping",
    "slide block network: fit",
    "slide block network: early stopping",
    *{f"slide block network (fold {k}): {role}" for k in (1, 2) for role in ("fit", "early stopping")},  # n_folds = 2
    "attention MIL: fit",
    "attention MIL: early stopping",
    "RNA preprocessing",
    "methylation preprocessing",
    "clinical preprocessing",
    "slide alone (logistic)",
    "rna alone (logistic)",
    "methylation alone (logistic)",
    "clinical alone (logistic)",
    "fusion: concat: fit",
    "fusion: concat: early stopping",
    "fusion: gated: fit",
    "fusion: kronecker: fit",
    "fusion: late: fit",
    "fusion ablation: fit",
    "fusion ablation: early stopping",
    "in-sample demo: fusion: fit",
    "in-sample demo: fusion: early stopping",
    "missing-modality replicates: fit",
    "missing-modality replicates: early stopping",
    "permuted control: fusion: fit",
    "permuted control: fusion: early stopping",
    "permuted control: tile classifier: fit",
    "permuted control: tile classifier: early stopping",
    "Cox head: fit",
    "Cox head: early stopping",
    "stage median fill",
    "risk cut-off",
    "2-year calibration",
}


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_ledger_shows_no_fit_saw_a_held_out_patient(lung_fusion_run):
    """Every fitting step of 03 records the patients it saw; none may be a test or external patient.

    Catches by construction (whatever the size of the leak): preprocessing fitted on all units,
    the Cox head early-stopped on held-out tumours, a calibration or cut-off fitted on held-out
    patients. The step names are listed so that dropping a record fails too.
    """
    ledger = lung_fusion_run["fit_ledger"]
    patients = lung_fusion_run["splits"]["patients"]
    assert set(ledger["held_out"]) == set(patients["test"]) | set(patients["external"])
    check_ledger(ledger)  # smoke seeds 0-2: 79 / 67 / 72 held-out patients, none seen by any of the 32 steps
    missing = LUNG_FUSION_LEDGER_STEPS - set(ledger["steps"])
    assert not missing, f"fitting steps not recorded: {sorted(missing)}"
    steps = ledger["steps"]
    for step, seen in steps.items():  # networks stop early on validation patients only
        if step.endswith(": early stopping"):
            assert set(seen) <= set(patients["validation"]), step
    assert set(steps["Cox head: fit"]) <= set(patients["train"])
    # the 2-year calibration is fitted on the validation tumours, not on those the Cox head trained on
    assert set(steps["2-year calibration"]) <= set(patients["validation"])
    assert lung_fusion_run["calibration_2y"]["fitted_on_tumours"] == len(steps["2-year calibration"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_cross_fits_the_slide_block(lung_fusion_run):
    """The fusion's slide block is cross-fitted: fold k's network never saw a patient of fold k.

    Every training and validation unit has a fold, a patient's units share one, and each fold
    network's ledger entries (fit and early stopping) hold exactly the patients of the other folds'
    slides - so a fold network fitted on all tiles (its own fold included) fails here, as does one
    that drops a fold. Held-out units are scored by the network fitted on all training patients.
    """
    metrics = lung_fusion_run
    cross, steps = metrics["cross_fit"], metrics["fit_ledger"]["steps"]
    patients = metrics["splits"]["patients"]
    training = set(patients["train"]) | set(patients["validation"])
    folds = cross["folds"]  # unit -> fold (0 .. n_folds - 1)
    patient_of = {u: u.rsplit("-", 1)[0] for u in folds}
    # every training and validation unit has a fold, and only those
    n_training_units = sum(sum(metrics["n_units"][split].values()) for split in ("train", "validation"))
    assert len(folds) == n_training_units and set(patient_of.values()) == training
    assert set(folds.values()) == set(range(cross["n_folds"])) and cross["n_folds"] >= 2
    fold_of_patient = {}
    for u, k in folds.items():
        assert fold_of_patient.setdefault(patient_of[u], k) == k, u  # folds by patient
    slide_patients = {patient_of[u] for u in cross["slide_units"]}
    for k in range(cross["n_folds"]):
        in_fold = {p for p, f in fold_of_patient.items() if f == k}
        fit, stop = (set(steps[f"slide block network (fold {k + 1}): {role}"]) for role in ("fit", "early stopping"))
        assert not (fit | stop) & in_fold, k  # the fold's own patients never reached its network
        assert fit == (slide_patients - in_fold) & set(patients["train"]), k  # ... and every other training slide did
        assert stop == (slide_patients - in_fold) & set(patients["validation"]), k
    # held-out units get a network of the same kind fitted on all training slides, early-stopped on the validation slides
    assert set(steps["slide block network: fit"]) == slide_patients & set(patients["train"])
    assert set(steps["slide block network: early stopping"]) == slide_patients & set(patients["validation"])
    check_ledger(metrics["fit_ledger"])
    # the bias cross-fitting removes: on the units it was fitted on, the full network's slide
    # prediction looks better than the out-of-fold predictions of networks that never saw them.
    # Smoke seeds 0-2 (2 folds), slide macro AUC on the training units, in-sample vs out-of-fold: 0.777 vs 0.718,
    # 0.790 vs 0.709, 0.827 vs 0.683; seed 3 (not used by the tests) 0.761 vs 0.711 (smallest gap 0.050);
    # held-out units 0.746 / 0.785 / 0.743 / 0.710
    quality = cross["slide_macro_auc"]
    assert quality["in-sample (training units)"] > quality["out-of-fold (training units)"] + 0.03
    # the in-sample demo is recorded both ways; the fused model on the cross-fitted block still learns the task
    assert set(cross["auc_heldout"]) == {"cross-fitted", "in-sample"} and cross["auc_heldout"]["cross-fitted"] > 0.9
    paired = cross["paired_difference"]
    assert paired["ci_low"] <= paired["estimate"] <= paired["ci_high"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_bootstraps_whole_patients(lung_fusion_run):
    """The intervals resample patients, not sample units: a patient's tumour and normal units are drawn together.

    Resampling units instead (groups=p.index, or no groups) makes "resampled" the number of units,
    which exceeds the number of patients for every model here (patients with a tumour and a normal unit).
    """
    patients = lung_fusion_run["splits"]["patients"]
    held_out = set(patients["test"]) | set(patients["external"])
    bootstrap = lung_fusion_run["bootstrap_units"]
    assert {"image only (tile CNN)", "rna alone (logistic)", "fused: concat"} <= set(bootstrap)
    for name, counts in bootstrap.items():
        assert counts["resampled"] == counts["patients"] < counts["units"], name
    # the fused model scores every held-out unit: the bootstrap draws from every held-out patient
    assert bootstrap["fused: concat"]["resampled"] == len(held_out)


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_scores_the_external_centre_on_its_own(lung_fusion_run):
    by_centre = lung_fusion_run["macro_auc_by_centre"]
    assert set(by_centre) == {"image only (tile CNN)", "rna alone (logistic)", "fused: concat"}
    for name, parts in by_centre.items():
        assert set(parts) == {"test", "external", "pooled", "test_minus_external"}, name
        for part, r in parts.items():
            assert r["ci_low"] <= r["estimate"] <= r["ci_high"], (name, part)
    # the omics carry the class in both places. Smoke seeds 0-2: fused 1.000 on the test split and at the external centre at each seed
    assert by_centre["fused: concat"]["external"]["estimate"] > 0.9 and by_centre["fused: concat"]["test"]["estimate"] > 0.9
    # image only, test vs external: 0.747 vs 0.803, 0.726 vs 0.702, 0.751 vs 0.762 (test minus external inside its CI at each seed)
    assert by_centre["image only (tile CNN)"]["external"]["estimate"] > 0.55
    # paired differences on the same held-out units, patient-level bootstrap: fused vs image only is significant
    paired = lung_fusion_run["paired_macro_auc_difference"]
    # smoke seeds 0-2: +0.235 (0.182 to 0.312), +0.309 (0.252 to 0.366), +0.256 (0.202 to 0.303)
    assert paired["fused: concat minus image only (tile CNN)"]["ci_low"] > 0.05


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03")
def test_lung_fusion_notebook_permuted_control_retrains_the_tile_classifier(lung_fusion_run):
    permuted = lung_fusion_run["permuted_control"]
    assert permuted["n_with_tile_classifier"] >= 1
    assert permuted["tile_classifier_seconds"] > 0 and len(permuted["values"]) == permuted["n_permutations"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-03-real-layout")
def test_lung_fusion_notebook_reads_fetched_tcga_luad_and_lusc_folders(virtual_files, tmp_path):
    """data_source="tcga": the same cells read two folders made by `mmsurv fetch tcga-luad` / `tcga-lusc` (from local GDC stand-ins)."""
    import pandas as pd

    from mmsurv.io.gdc import read_sample_sheet

    cohort = virtual_files["lung_tcga"]
    sheet = read_sample_sheet(cohort.sample_sheet)
    clinical = pd.read_csv(cohort.gdc / "clinical.tsv", sep="\t", dtype=str)
    for subtype in ("LUAD", "LUSC"):  # one archive per project, as the GDC answers a project's query
        cases = clinical[clinical["project.project_id"].str.endswith(subtype)].to_csv(sep="\t", index=False)
        rows = sheet[sheet["project_id"].str.endswith(subtype)]
        _fetch_from_gdc_stand_in(
            cohort.gdc, rows, cases, f"tcga-{subtype.lower()}", tmp_path / "tcga" / f"tcga-{subtype.lower()}", with_projects=True
        )
    # the two folders' layout is under test here: fewer permuted retrainings and missing-modality replicates
    parameters = {"data_source": "tcga", "data_dir": str(tmp_path / "tcga"), "n_permutations": 2, "n_replicates": 1}
    metrics = _run_smoke("03", tmp_path / "results", parameters)[0]["metrics"]
    assert {label for split in metrics["n_units"].values() for label in split} == {"LUAD", "LUSC", "normal"}  # normals from sample type 11
    assert metrics["macro_auc_fused"] > 0.9
    assert not any("oracle" in name for name in metrics["macro_auc_by_model"])  # real data has no planted truth
    assert not any("oracle" in name for name in metrics["risk_staging"])


@pytest.fixture(scope="module")
def cervical_os_run(tmp_path_factory):
    metrics, folder = _run_smoke("04", tmp_path_factory.mktemp("results"))
    return {**metrics, "executed_notebook": str(folder / "04_cervical_os_multimodal.ipynb")}


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_prints_no_warning(cervical_os_run):
    """No ConvergenceWarning from the bootstrap LASSO-Cox fits of the selection-stability plot (each runs a short warm-started path and a
    fit that still stops at max_iter is redrawn), nor any other warning."""
    assert not _warnings_printed(cervical_os_run["executed_notebook"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_beats_its_permuted_control_without_beating_the_oracle(cervical_os_run):
    metrics = cervical_os_run["metrics"]
    fused, permuted, oracle = metrics["auc_external_fused"], metrics["auc_permuted"], metrics["oracle_auc_external"]
    # the fused model is the stacked one; the permuted control reruns filter, LASSO-Cox, scaling and stacking on shuffled (time, event)
    # smoke seeds 0-4: fused 0.682 / 0.654 / 0.745 / 0.737 / 0.684, permuted 0.479 / 0.461 / 0.527 / 0.492 / 0.517, oracle 0.887 / 0.852 / 0.902 / 0.935 / 0.845.
    # Over seeds 0-15 fused minus permuted was 0.11 to 0.29 at 15 seeds and 0.037 at seed 7, where the stacker (three weights from
    # ~100 labelled patients) gave the clinical block 0.21 against image 0.81 and scored 0.538 on 38 labelled external patients,
    # whose AUC has a standard error of about 0.08: a margin of 0.1 failed there, so the test asks for the sign only
    assert fused > permuted
    assert fused < oracle + 0.05  # ~50 labelled external patients: a model cannot beat the planted risk beyond noise (at most -0.065, seeds 0-15)
    assert abs(permuted - 0.5) < 0.15  # the mean of n_permutations whole-pipeline reruns (0.440 to 0.553, seeds 0-15)
    # the stacked model is not significantly worse than the clinical block it contains (DeLong, paired, same patients). Seeds 0-15:
    # differences -0.129 to +0.134, upper 95% bounds +0.000 (seed 4: stacker weights 0 on image and mutations, the same model) to
    # +0.313. The former check, against the best single block - 0.05, failed at seeds 7, 11 and 15 (the stacker's clinical weight
    # 0.21, 0.77, 0.00): that block is picked on the external patients themselves, and a block without a slide or a MAF is scored on fewer
    delong = metrics["delong_fused_vs_clinical"]
    assert delong["ci_high"] >= 0
    assert set(cervical_os_run["headline"]) == {"AUC external fused", "AUC external clinical", "AUC oracle", "permuted control"}
    for key in (
        "auc_external_fused",
        "auc_external_clinical",
        "auc_permuted",
        "oracle_auc_external",
        "auc_external_leaky_selection",
        "auc_external_fused_neural",
    ):
        assert isinstance(metrics[key], float)


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_survival_native_model_keeps_the_censored_and_beats_its_permuted_control(cervical_os_run):
    metrics = cervical_os_run["metrics"]
    native = metrics["survival_native"]
    table = native["table"]
    model, oracle = table["fused, survival-native (every training patient)"], table["oracle (planted risk)"]
    permuted = table["permuted control (survival-native, mean)"]["uno_c"]
    # smoke seeds 0-3: external Uno's C 0.593 / 0.646 / 0.648 / 0.671, its permuted control 0.475 / 0.496 / 0.571 / 0.514,
    # the oracle 0.750 / 0.764 / 0.827 / 0.817; D-calibration p 0.74 / 0.80 / 0.38 / 0.63. Seeds 4-7: 0.592 / 0.615 / 0.665 / 0.608,
    # control 0.549 / 0.525 / 0.553 / 0.493, oracle 0.777 / 0.847 / 0.824 / 0.826; integrated Brier 0.251 at seed 4 (its D-calibration
    # p 0.04), so the curve measures' bounds below say only that they exist. Seed 6 stopped the notebook until the Brier score stopped
    # asking for G beyond the training follow-up (an external patient followed longer than every training patient, the longest of whom
    # died). Seeds 0-15: model minus control 0.043 (seed 4) to 0.202, below 0.078 only at seed 4; always below the oracle, by 0.116 or more
    assert model["uno_c"] > permuted + 0.02
    assert model["uno_c"] < oracle["uno_c"]
    assert abs(permuted - 0.5) < 0.15  # the mean of n_permutations reruns of selection and training
    assert native["permuted_control"]["n_permutations"] == cervical_os_run["parameters"]["n_permutations"]
    for name in ("fused, survival-native (every training patient)", "clinical Cox (linear predictor)"):
        assert 0 < table[name]["integrated_brier"] < 1 and 0 <= table[name]["d_calibration_p"] <= 1, name  # curves: both measures exist
    assert table["fused, stacked (image + mutations + clinical)"]["d_calibration_p"] is None  # a classifier has no curve to test
    # trained on every training patient, the ones censored before 3 years included, which the classifiers drop
    assert native["n_training_patients"] > native["n_training_labelled"]
    ledger, splits = metrics["fit_ledger"]["steps"], metrics["splits"]
    assert set(ledger["survival fusion ensemble: fit"]) == set(splits["train"])
    assert set(ledger["survival fusion ensemble: early stopping"]) == set(splits["validation"])
    assert set(ledger["neural fusion ensemble: fit"]) < set(splits["train"])  # the classifier ensemble: labelled patients only
    assert set(ledger["discrete-time bins"]) == set(splits["train"]) | set(splits["validation"])
    assert len(native["bins_days"]) == 5 and native["bins_days"][0] == 0


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_recovers_planted_genes_and_shows_selection_leakage(cervical_os_run):
    metrics = cervical_os_run["metrics"]
    recovery = metrics["selection_recovery"]
    # smoke seeds 0-2: precision 0.09 / 1.00 / 0.09 (3 of 33, 1 of 1, 5 of 53 selected) vs chance 0.028 / 0.027 / 0.026
    assert recovery["precision"] > 2 * recovery["chance_precision"] and recovery["n_true_positive"] >= 1
    assert set(metrics["selected_genes"]) <= set(metrics["candidate_genes"])
    demo = metrics["leakage_demo_shuffled_outcome"]  # a shuffled outcome: only the leaky estimate finds "signal"
    # smoke seeds 0-2: leaky 0.794 / 0.787 / 0.840, nested 0.522 / 0.467 / 0.612
    assert abs(demo["selection inside each fold (nested)"] - 0.5) < 0.2
    assert demo["selection on all, then CV (leaky)"] > demo["selection inside each fold (nested)"] + 0.1


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_keeps_splits_apart_and_drops_unlabelled_patients(cervical_os_run):
    metrics = cervical_os_run["metrics"]
    splits = metrics["splits"]
    every = [p for ids in splits.values() for p in ids]
    assert len(every) == len(set(every))  # no patient in two splits
    external_sites = cervical_os_run["parameters"]["external_sites"]
    assert {p.split("-")[1] for p in splits["external"]} == set(external_sites)
    assert not {p.split("-")[1] for p in splits["train"] + splits["validation"]} & set(external_sites)
    n_unlabelled = metrics["label_counts"]["censored before 3 y"]
    assert n_unlabelled > 0 and metrics["label_counts"]["ST"] > 0 and metrics["label_counts"]["LT"] > 0
    # the AUCs count only labelled external patients: fewer than the external centre holds
    assert metrics["auc_table"]["fused, stacked (image + mutations + clinical)"]["n"] < len(splits["external"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_ledger_shows_no_fit_saw_the_external_centre(cervical_os_run):
    """Every fitting step wrote down its patients; none is external. Fails by construction on a leak of any size:
    LASSO-Cox on all patients, the mutation filter counting every patient, scaling on everyone (issue 31's edits)."""
    metrics = cervical_os_run["metrics"]
    ledger, splits = metrics["fit_ledger"], metrics["splits"]
    assert sorted(ledger["held_out"]) == sorted(splits["external"])
    check_ledger(ledger)
    training = set(splits["train"]) | set(splits["validation"])
    expected = {
        "image: constant-feature filter",
        "mutation filter",
        "clinical preprocessing",
        "LASSO-Cox: genes",
        "LASSO-Cox: image features",
        "selection stability: genes",
        "standardisation: image",
        "standardisation: mutations",
        "clinical only (logistic)",
        "stacked fusion: stacker",
        "stacked fusion: clinical",
        "stacked fusion: clinical (cross-fit folds)",
        "neural fusion ensemble: fit",
        "neural fusion ensemble: early stopping",
        "clinical Cox",
        "censoring model (td-AUC, Uno's C)",
        "permuted control: LASSO-Cox genes",
        "permuted control: LASSO-Cox image",
        "permuted control: stacked fusion: stacker",
        "discrete-time bins",
        "survival fusion ensemble: fit",
        "survival fusion ensemble: early stopping",
        "permuted control: survival fusion: fit",
    }
    assert expected <= set(ledger["steps"])
    for step, ids in ledger["steps"].items():
        assert set(ids) <= training, step
    # the selections, the scaling and the filters saw every training patient they could (not a subset by mistake)
    assert set(ledger["steps"]["clinical preprocessing"]) == training
    assert set(ledger["steps"]["neural fusion ensemble: early stopping"]) <= set(splits["validation"])
    assert not any("leaky" in step for step in ledger["steps"])  # section 8's demonstration stays out of the ledger


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_labels_every_patient_by_the_landmark_rule(cervical_os_run):
    """Each patient's (time, event, label), re-derived here independently: death by the horizon -> 1 (ST); followed
    beyond it -> 0 (LT); censored at or before it -> no label. Counting those censored patients as LT fails here."""
    audit = cervical_os_run["metrics"]["landmark_audit"]
    horizon = audit["horizon_days"]
    assert horizon == cervical_os_run["parameters"]["horizon_years"] * 365.25
    wrong = {}
    for patient, (time, event, label) in audit["patients"].items():
        expected = 1.0 if event and time <= horizon else 0.0 if time > horizon else None
        if label != expected:
            wrong[patient] = (time, event, label, expected)
    assert not wrong, f"{len(wrong)} patients labelled against the landmark rule, e.g. {list(wrong.items())[:3]}"
    assert any(label is None for _, _, label in audit["patients"].values())
    assert set(audit["patients"]) >= {p for ids in cervical_os_run["metrics"]["splits"].values() for p in ids}


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04")
def test_cervical_os_notebook_truncates_uno_where_patients_remain_followed(cervical_os_run):
    metrics = cervical_os_run["metrics"]
    times = {p: t for p, (t, _, _) in metrics["landmark_audit"]["patients"].items()}
    external = [times[p] for p in metrics["splits"]["external"]]
    training = [times[p] for p in metrics["splits"]["train"] + metrics["splits"]["validation"]]
    tau = metrics["uno_tau_days"]
    assert tau <= max(training)  # never beyond training follow-up, where the censoring model is unknown
    assert sum(t >= tau for t in external) >= max(10, 0.1 * len(external))
    assert sum(t >= tau for t in training) >= max(10, 0.1 * len(training))
    assert tau < max(external)  # truncated, not the longest external follow-up


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-04-real-layout")
def test_cervical_os_notebook_reads_a_fetched_tcga_cesc_folder(virtual_files, tmp_path):
    """data_source="tcga": the same cells read a folder made by `mmsurv fetch tcga-cesc` (from a local GDC stand-in)."""
    from mmsurv.io.gdc import read_sample_sheet

    cohort = virtual_files["cesc"]
    fetched = tmp_path / "tcga-cesc"
    _fetch_from_gdc_stand_in(cohort.gdc, read_sample_sheet(cohort.sample_sheet), (cohort.gdc / "clinical.tsv").read_text(), "tcga-cesc", fetched)
    parameters = {"data_source": "tcga", "data_dir": str(fetched), "n_permutations": 2, "n_stability": 10}
    metrics = _run_smoke("04", tmp_path / "results", parameters)[0]["metrics"]
    assert metrics["auc_external_fused"] > 0.55  # the planted signal is in the files, whoever reads them
    assert metrics["selection_recovery"] is None and metrics["censoring_shortcut_oracle_auc"] is None  # real data: no planted truth
    assert not any("oracle" in name for name in metrics["auc_table"])


@pytest.fixture(scope="module")
def cervical_mri_run(tmp_path_factory):
    metrics, folder = _run_smoke("05", tmp_path_factory.mktemp("results"))
    return {**metrics, "executed_notebook": str(folder / "05_cervical_recurrence_mri.ipynb")}


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_ladder_beats_clinical_and_its_permuted_control(cervical_mri_run):
    metrics = cervical_mri_run["metrics"]
    auc, permuted, oracle = metrics["auc_external"], metrics["auc_permuted"], metrics["oracle_auc_external"]
    assert set(auc) >= {"ConvNeXt", "ViT (dual path)", "MSM", "MSM-T", "MSM-TC", "clinical only", "text only"}
    # smoke seeds 0-7 (5 fused members; shuffled (time, event) pairs in the control): MSM-TC 0.837 / 0.843 / 0.861 / 0.844 / 0.759 /
    # 0.810 / 0.763 / 0.734, clinical only 0.643 / 0.687 / 0.713 / 0.711 / 0.684 / 0.675 / 0.634 / 0.604, oracle 0.901 / 0.902 / 0.913 /
    # 0.868 / 0.829 / 0.899 / 0.817 / 0.854; permuted 0.423 / 0.537 / 0.483 / 0.455 / 0.521 / 0.533 / 0.566 / 0.644, each the mean of 3
    # retrainings whose AUCs spread from 0.34 to 0.70 (a model fitted to shuffled labels still ranks by some mix of strongly
    # prognostic features, in a random direction; at seed 7 all three fell above 0.6). Smallest gaps: 0.075 to clinical (seed 4, a
    # hard external draw: the oracle's 0.829), 0.090 to the control (seed 7). Before this test's margins were checked beyond seed 3
    # they were 0.08 and 0.2, and failed at seeds 4, 6 and 7 (with 2 fused members, as smoke mode had then, also 0.03 to clinical at 4)
    assert auc["MSM-TC"] > auc["clinical only"] + 0.04
    assert auc["MSM-TC"] > permuted + 0.05
    assert abs(permuted - 0.5) < 0.25
    assert auc["MSM-TC"] < oracle + 0.05  # ~150 labelled external patients: no model beats the planted risk beyond noise
    assert metrics["delong_msm_tc_vs_clinical"]["difference"] == pytest.approx(auc["MSM-TC"] - auc["clinical only"], abs=1e-9)
    assert isinstance(metrics["attention_in_tumour"], float)


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_survival_native_model_keeps_the_censored_and_beats_its_permuted_control(cervical_mri_run):
    metrics, parameters = cervical_mri_run["metrics"], cervical_mri_run["parameters"]
    native = metrics["survival_native"]
    table = native["table"]
    model, oracle = table["MSM-TC, survival-native (every training patient)"], table["oracle (planted risk)"]
    permuted = table["permuted control (survival-native, mean)"]["uno_c"]
    # external Uno's C at smoke seeds 0-7: 0.782 / 0.769 / 0.735 / 0.777 / 0.688 / 0.756 / 0.688 / 0.726; its permuted control (the
    # mean of 3 survival heads on shuffled worlds) 0.452 / 0.580 / 0.572 / 0.507 / 0.527 / 0.522 / 0.526 / 0.619; the oracle 0.841 /
    # 0.844 / 0.758 / 0.831 / 0.763 / 0.842 / 0.809 / 0.811. The smallest gap to the control is 0.107 (seed 7); the model stayed below
    # the oracle at every seed, by 0.023 at seed 2 (and by 0.002 there with 2 fused members): ~160 external patients, so the bound
    # allows the noise of a Uno's C and catches only a model that beats the planted risk beyond it (a leak)
    assert model["uno_c"] > permuted + 0.05
    assert model["uno_c"] < oracle["uno_c"] + 0.05
    assert abs(permuted - 0.5) < 0.2
    assert native["permuted_control"]["n_permutations"] == parameters["n_permutations"]
    assert native["shuffled_worlds"] == parameters["n_permutations"]  # both controls read the same shuffled worlds: no MSM retrained twice
    for name in ("MSM-TC, survival-native (every training patient)", "clinical Cox"):
        assert 0 < table[name]["integrated_brier"] < 1 and 0 <= table[name]["d_calibration_p"] <= 1, name  # curves: both measures exist
    classifier = table["MSM-TC (classifier)"]
    assert classifier["d_calibration_p"] is None and classifier["integrated_brier"] is None and 0 < classifier["brier_at_horizon"] < 0.25
    # trained on every training patient, the ones censored before 3 years included, which the classifiers drop
    assert native["n_training_patients"] == len(metrics["splits"]["train"]) > native["n_training_labelled"]
    steps, trained_on = metrics["fit_ledger"]["steps"], metrics["trained_on"]
    assert set(steps["survival MSM-TC: fit"]) == set(trained_on["fit_all"]) > set(steps["MSM-TC: fit"])
    assert set(steps["survival MSM-TC: early stopping"]) == set(trained_on["tune_all"])
    assert set(steps["discrete-time bins"]) == set(metrics["splits"]["train"])
    assert len(native["bins_days"]) == 5 and native["bins_days"][0] == 0


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_attention_falls_on_the_tumour(cervical_mri_run):
    metrics = cervical_mri_run["metrics"]
    share = metrics["tumour_share_of_input"]
    # the dual-path ViT's attention rollout (tumour path) and the ConvNeXt's Grad-CAM, external patients. Smoke seeds 0-7: rollout
    # inside the tumour 0.208 / 0.184 / 0.190 / 0.279 / 0.199 / 0.194 / 0.249 / 0.186 (the same network untrained 0.168 / 0.143 /
    # 0.153 / 0.166 / 0.154 / 0.172 / 0.158 / 0.146), the tumour's share of the crop 0.153-0.163. Rollout through two layers is
    # diffuse: the excess is small. Grad-CAM 0.310 / 0.375 / 0.362 / 0.421 / 0.320 / 0.146 / 0.291 / 0.194: above the tumour's share
    # at seven seeds, below it at seed 5 (0.146 against 0.163). Seeds 8-10: rollout 0.248 / 0.178 / 0.163 (untrained 0.159 / 0.163 /
    # 0.185), Grad-CAM 0.316 / 0.325 / 0.210, share 0.156 / 0.159 / 0.169: at seed 10 the rollout fell below the share and below the
    # untrained network. Each read-out alone missed at one seed of eleven, never both at one seed: the test asks that the image
    # networks look at the tumour by at least one of them, and records each
    assert max(metrics["attention_in_tumour"], metrics["gradcam_in_tumour"]) > share
    assert 0 < metrics["attention_in_tumour"] < 1 and 0 < metrics["attention_in_tumour_untrained"] < 1 and 0 < metrics["gradcam_in_tumour"] < 1


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_text_features_read_parametrial_invasion_through_negation(cervical_mri_run):
    separation = cervical_mri_run["metrics"]["text_separation"]
    # scored on the external reports that contain the words "parametrial invasion", to affirm or to negate them ("no parametrial
    # invasion", "... is not seen"): the words alone cannot decide. Smoke seeds 0-2: AUC 0.988 / 0.995 / 0.995 on 116 / 87 / 107
    # such reports (78 / 62 / 73 of them negated)
    assert separation["n_negated_among_them"] > 20 and separation["n_reports_saying_parametrial_invasion"] > separation["n_negated_among_them"] + 10
    assert separation["auc_reports_saying_parametrial_invasion"] > 0.9


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_keeps_splits_apart(cervical_mri_run):
    metrics, parameters = cervical_mri_run["metrics"], cervical_mri_run["parameters"]
    splits = metrics["splits"]
    every = [p for ids in splits.values() for p in ids]
    assert len(every) == len(set(every))  # no patient in two splits
    trained = set(metrics["trained_on"]["fit"]) | set(metrics["trained_on"]["tune"])
    assert trained <= set(splits["train"]) and not set(metrics["trained_on"]["fit"]) & set(metrics["trained_on"]["tune"])
    fit_all, tune_all = set(metrics["trained_on"]["fit_all"]), set(metrics["trained_on"]["tune_all"])
    assert fit_all | tune_all == set(splits["train"]) and not fit_all & tune_all  # every training patient, the unlabelled ones too
    assert set(metrics["trained_on"]["fit"]) < fit_all and set(metrics["trained_on"]["tune"]) <= tune_all
    assert {p.split("-")[1] for p in splits["external"]} == {c[1:].zfill(2) for c in parameters["external_centres"]}
    assert metrics["auc_table"]["MSM-TC"]["n external"] < len(splits["external"])  # censored-before-horizon patients left out


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_fit_ledger_keeps_held_out_patients_out_of_every_fit(cervical_mri_run):
    """Every fitting step recorded what it saw; none saw an internal or external patient (a one-line leak fails here by construction:
    the report PCA fitted on the external reports, or the risk cut-off chosen on the external centre, stop the notebook at
    record_metrics with HeldOutLeakError, which _run_smoke reports)."""
    metrics = cervical_mri_run["metrics"]
    ledger, splits = metrics["fit_ledger"], metrics["splits"]
    check_ledger(ledger)
    assert sorted(ledger["held_out"]) == sorted(splits["internal"] + splits["external"])
    networks = ["ConvNeXt", "ViT (dual path)", "MSM", "MSM-T", "MSM-TC", "in-sample demo: MSM-TC"]
    everyone = ["survival MSM-TC", "permuted control: MSM", "permuted control: MSM-TC", "permuted control: survival MSM-TC"]
    expected = {f"{n}: {role}" for n in networks + everyone for role in ("fit", "early stopping")} | {
        "in-sample demo: image block standardisation",
        "report PCA",
        "text only: logistic regression",
        "text only: TF-IDF",
        "invasion probe",
        "invasion: TF-IDF",
        "image block: standardisation",
        "permuted control: image block standardisation",
        "clinical block: preprocessing",
        "clinical only: logistic regression",
        "Brier reference: training prevalence",
        "risk cut-off",
        "discrete-time bins",
        "permuted control: discrete-time bins",
        "clinical Cox",
        "censoring model (td-AUC, Uno's C)",
    }
    assert expected <= set(ledger["steps"]), expected - set(ledger["steps"])
    train = set(splits["train"])
    assert all(seen and set(seen) <= train for seen in ledger["steps"].values())
    fit, tune = set(metrics["trained_on"]["fit"]), set(metrics["trained_on"]["tune"])
    for network in networks:  # each network and fused ensemble trains on fit, early-stops on tune
        assert set(ledger["steps"][f"{network}: fit"]) == fit and set(ledger["steps"][f"{network}: early stopping"]) == tune, network
    # the survival-native model and every permuted retraining (whose shuffled outcomes label other patients) keep the same roles
    fit_all, tune_all = set(metrics["trained_on"]["fit_all"]), set(metrics["trained_on"]["tune_all"])
    for network in everyone:
        assert set(ledger["steps"][f"{network}: fit"]) <= fit_all and set(ledger["steps"][f"{network}: early stopping"]) <= tune_all, network
    assert set(ledger["steps"]["report PCA"]) <= train and len(ledger["steps"]["report PCA"]) > 0.8 * len(train)  # the training reports


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_fusion_stacks_on_cross_fitted_image_features(cervical_mri_run):
    """The fusion's image block for a training patient comes from an MSM that never saw that patient (issue 31, point 2)."""
    metrics, parameters = cervical_mri_run["metrics"], cervical_mri_run["parameters"]
    cross, steps = metrics["cross_fit"], metrics["fit_ledger"]["steps"]
    fit, tune = set(metrics["trained_on"]["fit"]), set(metrics["trained_on"]["tune"])
    folds = cross["folds"]
    assert set(folds) == fit | tune and set(folds.values()) == set(range(parameters["n_folds"]))
    for k in range(parameters["n_folds"]):  # fold k's MSM trained and early-stopped on everyone else, on no one of fold k
        left_out = {p for p, fold in folds.items() if fold == k}
        assert set(steps[f"MSM (fold {k + 1}): fit"]) == fit - left_out and set(steps[f"MSM (fold {k + 1}): early stopping"]) == tune - left_out
    # the MSM's logit on its fit patients, AUC: from the MSM that trained on them (in-sample) vs cross-fitted. Smoke seeds 0-7
    # (n_folds 2): 0.893 / 0.881 / 0.825 / 0.802 / 0.753 / 0.794 / 0.788 / 0.767 vs 0.830 / 0.810 / 0.702 / 0.723 / 0.556 / 0.714 /
    # 0.788 / 0.631. A fold model that had seen its fold would give the in-sample value. At seed 6 the MSM early-stopped at epoch 3,
    # before it fitted its patients at all, and there was no optimism to remove. Seeds 8-10: 0.872 / 0.816 / 0.787 vs 0.771 / 0.807 /
    # 0.655; at seed 9 the MSM stopped at epoch 7 and the gap was 0.010, so a margin of 0.03 failed there: for an MSM that trained past
    # epoch 3 the test asks for the sign, and the ledger check above is the exact one (no fold model saw its fold)
    logit = cross["logit_auc"]
    if metrics["best_epochs"]["MSM"] > 3:
        assert logit["in-sample"]["fit patients"] > logit["cross-fitted"]["fit patients"]
    assert logit["in-sample"]["internal patients"] == pytest.approx(logit["cross-fitted"]["internal patients"])  # one MSM for held-out
    # ... and the fusion was given the cross-fitted logit (its standardised image block ranks the fit patients as that logit does)
    assert cross["fusion_image_block_auc_fit"] == pytest.approx(logit["cross-fitted"]["fit patients"])
    # the demonstration is recorded, not asserted: stacking in-sample gave the image block a larger share of MSM-TC's mean |SHAP| on the
    # external patients at each of smoke seeds 0-7 (0.80 / 0.65 / 0.74 / 0.76 / 0.62 / 0.47 / 0.59 / 0.44 vs 0.54 / 0.62 / 0.71 / 0.75 /
    # 0.28 / 0.30 / 0.48 / 0.11), too little at seeds 1-3 to bound, and changed no external AUC significantly (0.829 / 0.836 /
    # 0.864 / 0.838 vs 0.837 / 0.843 / 0.861 / 0.844 at seeds 0-3, DeLong p 0.59 / 0.30 / 0.50 / 0.33; seeds 4-7 p 0.37 / 0.72 / 0.24 /
    # 0.09)
    stacking = cross["stacking"]
    assert set(stacking) == {"in-sample", "cross-fitted"} and all(0 < row["image share of mean |SHAP|"] < 1 for row in stacking.values())
    assert stacking["cross-fitted"]["AUC external"] == pytest.approx(metrics["auc_external"]["MSM-TC"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_ladder_is_tested_rung_by_rung_on_the_same_patients(cervical_mri_run):
    metrics = cervical_mri_run["metrics"]
    ladder, auc = metrics["delong_ladder"], metrics["auc_external"]
    assert set(ladder) == {"MSM vs ConvNeXt", "MSM vs ViT (dual path)", "MSM-T vs MSM", "MSM-TC vs MSM-T", "MSM-TC vs clinical only"}
    n_external = metrics["auc_table"]["MSM-TC"]["n external"]
    for key, row in ladder.items():
        a, b = key.split(" vs ")
        assert row["n"] == n_external, key  # paired: both models on every labelled external patient
        assert row["difference"] == pytest.approx(auc[a] - auc[b], abs=1e-9), key
        assert row["ci_low"] < row["difference"] < row["ci_high"], key
        assert 0 <= row["p_value"] <= row["p_holm"] <= 1 and row["significant"] == (row["p_holm"] < 0.05), key
    # the one step the cohort comes near to supporting: MSM-TC over clinical only. Smoke seeds 0-7 (5 fused members): difference
    # +0.194 / +0.156 / +0.148 / +0.133 / +0.075 / +0.134 / +0.129 / +0.131, DeLong p 0.0001 / 0.0002 / 0.003 / 0.001 / 0.059 / 0.031 /
    # 0.014 / 0.020 (Holm 0.0005 / 0.001 / 0.015 / 0.005 / 0.24 / 0.15 / 0.07 / 0.08). Significance held at seven seeds of eight, so the
    # sign is asserted and the p-value recorded (asserting p < 0.05 failed at seed 4, and at seed 7 with 2 fused members).
    # The adjacent image / fusion steps were not significant after Holm at any of these seeds, so nothing is asserted about them
    assert ladder["MSM-TC vs clinical only"]["difference"] > 0.04


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_shows_why_the_external_centre_is_easier(cervical_mri_run):
    """The markdown says the external centre C3 has the cleanest scanner: the measured noise table must say so too."""
    metrics = cervical_mri_run["metrics"]
    scanners = metrics["scanner_by_centre"]
    assert set(scanners) == {"C1", "C2", "C3"}
    # 10 patients per centre, smoke seeds 0 / 2 / 3: T2 noise 4.40 / 4.39 / 4.43 % of the body's median (C1), 5.88 / 5.86 / 5.97 (C2),
    # 3.46 / 3.53 / 3.43 (C3); DWI 16.5 / 16.6 / 16.4 (C1), 21.4 / 21.4 / 21.3 (C2), 13.2 / 13.3 / 13.3 (C3); pixels 3.0 / 3.0 / 2.25 mm.
    # Planted (mmsurv.virtual.mri_study): T2 4.4 / 5.8 / 3.6 %, DWI 16.7 / 21.7 / 13.3 %, C3's pixels 0.75 of the others'
    # (seed 1 was measured with an earlier median-absolute-deviation estimator: T2 4.6 / 6.1 / 3.7, DWI 17.0 / 21.4 / 14.1)
    for sequence in ("t2w", "dwi"):
        noise = {c: row[f"{sequence} noise (% of body median)"] for c, row in scanners.items()}
        assert min(noise, key=noise.get) == "C3" and noise["C3"] < 0.9 * min(noise["C1"], noise["C2"]), sequence
    assert scanners["C3"]["pixel (mm)"] < scanners["C1"]["pixel (mm)"]
    by_cohort = metrics["auc_by_cohort"]
    assert by_cohort["external"]["MSM-TC"] == pytest.approx(metrics["auc_external"]["MSM-TC"])
    assert set(by_cohort["internal"]) >= {"oracle (planted risk)", "MSM", "MSM-TC", "clinical only"}


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05")
def test_cervical_mri_prints_no_warning(cervical_mri_run):
    """A notebook of the kit prints no warning it could avoid (issue 31: scikit-learn's "X does not have valid feature names")."""
    assert not _warnings_printed(cervical_mri_run["executed_notebook"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("notebook-05-real-layout")
def test_cervical_mri_notebook_reads_a_study_folder(virtual_files, tmp_path):
    """data_source="folder": the same cells read a study exported in the documented layout, without the planted truth."""
    import shutil

    folder = tmp_path / "study"
    shutil.copytree(virtual_files["cesc_mri"].root, folder, ignore=shutil.ignore_patterns("truth.tsv", "cohort.json"))
    parameters = {"data_source": "folder", "data_dir": str(folder), "n_permutations": 1, "image_epochs": 15, "n_ensemble": 1}
    metrics = _run_smoke("05", tmp_path / "results", parameters)[0]["metrics"]
    assert metrics["auc_external"]["MSM-TC"] > 0.65  # the planted signal is in the files, whoever reads them
    assert metrics["text_separation"] == {} and metrics["oracle_auc_external"] is None  # no planted truth: no oracle, no probe
    check_ledger(metrics["fit_ledger"])
    assert "invasion probe" not in metrics["fit_ledger"]["steps"] and "MSM-TC: fit" in metrics["fit_ledger"]["steps"]
