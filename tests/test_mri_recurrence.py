"""Notebook 05's pieces: the MRI study reader, two-scale 2.5D inputs, the networks and their maps,
the report encoder and negation check, SHAP values of a fused model."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

from mmsurv.io import DataFormatError, DataWarning
from mmsurv.io.mri_study import read_mri_study, read_sequence
from mmsurv.radiology.mri_networks import RecurrenceNet, convnext_gradcam, share_inside, vit_attention_rollout
from mmsurv.radiology.mri_slices import MriSliceDataset, prepare_mri_inputs, slice_stack


@pytest.fixture(scope="module")
def study(virtual_files):
    return read_mri_study(virtual_files["cesc_mri"].root)


def test_study_reader_lists_patients_files_and_missing_modalities(study, virtual_files):
    truth = virtual_files["cesc_mri"].truth.set_index("patient_id")
    assert len(study.clinical) == len(truth) == 445 and set(study.clinical["centre"]) == {"C1", "C2", "C3"}
    available = study.availability()
    assert available["mri"].all()
    assert (available["dwi"] == truth["has_dwi"]).all() and (available["report"] == truth["has_report"]).all()
    assert 0.8 < available["report"].mean() < 0.97 and 0.8 < available["dwi"].mean() < 0.97
    assert study.reports.isna().sum() == (~truth["has_report"]).sum()
    assert np.allclose(study.clinical["rfs_days"], truth["rfs_days"], atol=2)  # months with one decimal: within two days


def _copy_study(study, folder):
    shutil.copytree(study.folder, folder, ignore=shutil.ignore_patterns("truth.tsv", "cohort.json", "mri"))
    return folder


def test_study_reader_names_the_file_and_the_problem(study, tmp_path):
    with pytest.raises(DataFormatError, match="no such study folder"):
        read_mri_study(tmp_path / "absent")
    folder = _copy_study(study, tmp_path / "study")
    table = pd.read_csv(folder / "clinical.csv")
    table.drop(columns="rfs_months").to_csv(folder / "clinical.csv", index=False)
    with pytest.raises(DataFormatError, match=r"clinical\.csv: missing column"):
        read_mri_study(folder)
    table.assign(recurrence=table["recurrence"].replace({1: 2})).to_csv(folder / "clinical.csv", index=False)
    with pytest.raises(DataFormatError, match="recurrence must be 0 or 1"):
        read_mri_study(folder)
    unknown = table.copy()
    unknown.loc[:4, "recurrence"] = np.nan  # unknown status: left out, with a warning, never counted as "no recurrence"
    unknown.to_csv(folder / "clinical.csv", index=False)
    with pytest.warns(DataWarning, match="5 patient"):
        again = read_mri_study(folder)
    assert len(again.clinical) == len(table) - 5 and again.availability()["mri"].sum() == 0  # no mri/ folder copied: no images
    table.assign(recurrence=np.nan).to_csv(folder / "clinical.csv", index=False)
    with pytest.raises(DataFormatError, match="no patient has both"):
        read_mri_study(folder)


def test_two_scale_inputs_follow_the_tumour_and_the_planted_diffusion(study, virtual_files, tmp_path):
    truth = virtual_files["cesc_mri"].truth.set_index("patient_id")
    ids = list(study.clinical.index[:40])
    files = study.files.loc[ids].to_dict("index")
    inputs = prepare_mri_inputs(files, cache_dir=tmp_path, progress=False)
    assert inputs.tumour.shape == inputs.context.shape == (40, 6, 32, 32) and inputs.masks.shape == (40, 2, 32, 32)
    assert (inputs.has_dwi == truth.loc[ids, "has_dwi"].to_numpy()).all()
    assert not inputs.tumour[~inputs.has_dwi][:, 3:].any()  # no diffusion sequence: zeros in its channels
    # the tight crop shows the tumour larger than the wide one, and bigger tumours fill more of it
    assert (inputs.masks[:, 0].mean(axis=(1, 2)) > inputs.masks[:, 1].mean(axis=(1, 2))).all()
    assert spearmanr(inputs.masks[:, 0].mean(axis=(1, 2)), truth.loc[ids, "tumour_diameter_mm"]).statistic > 0.7
    # after normalisation inside the body, the tumour's diffusion brightness follows the planted restriction across centres
    has = inputs.has_dwi
    brightness = [inputs.tumour[i, 4][inputs.masks[i, 0]].mean() for i in np.flatnonzero(has)]
    restriction = truth.loc[np.array(ids)[has], "diffusion_restriction"].to_numpy()
    assert spearmanr(brightness, restriction).statistic > 0.6
    # and the centres' scanners (diffusion gains 1.3 / 0.8 / 1.1, noise 1.0 / 1.3 / 0.8) no longer show: brightness per unit of
    # restriction agrees (1.91 / 1.96 / 1.96 at seed 0; 1.6x apart unnormalised; 1.46x apart scaled by the body's IQR, which measures noise)
    per_centre = pd.Series(np.asarray(brightness) / restriction).groupby(study.clinical.loc[np.array(ids)[has], "centre"].to_numpy()).mean()
    assert per_centre.max() / per_centre.min() < 1.15
    again = prepare_mri_inputs(files, cache_dir=tmp_path, progress=False)  # read back from the cache
    assert np.array_equal(again.tumour, inputs.tumour) and again.patient_ids == inputs.patient_ids
    batch = MriSliceDataset(inputs, np.zeros(40), augment=True, seed=1)[0]
    assert batch["inputs"]["tumour"].shape == (6, 32, 32)


def test_bad_volumes_are_reported_by_file(study, tmp_path):
    patient = study.clinical.index[0]
    paths = dict(study.files.loc[patient])
    t2, mask = read_sequence(paths["t2w"]), read_sequence(paths["tumour_mask"])
    with pytest.raises(ValueError, match="tumour mask is empty"):
        slice_stack(t2, None, mask.with_array(np.zeros_like(mask.array)))
    truncated = tmp_path / "t2w.nii.gz"
    truncated.write_bytes(open(paths["t2w"], "rb").read()[:500])
    with pytest.raises(DataFormatError, match="t2w.nii.gz"):
        prepare_mri_inputs({patient: dict(paths, t2w=str(truncated))}, progress=False)


@pytest.mark.parametrize("branches", [("convnext",), ("vit",), ("convnext", "vit")])
def test_recurrence_networks_and_their_maps(branches):
    torch.manual_seed(0)
    model = RecurrenceNet(branches)
    batch = {"tumour": torch.randn(3, 6, 32, 32), "context": torch.randn(3, 6, 32, 32)}
    assert model(batch).shape == (3, 1) and model.embed(batch).shape == (3, 8)
    if "vit" in branches:
        rollout = vit_attention_rollout(model.vit.tumour_path, batch["tumour"])
        assert rollout.shape == (3, 8, 8) and torch.allclose(rollout.sum(dim=(1, 2)), torch.ones(3))
    if "convnext" in branches:
        cam = convnext_gradcam(model, batch)
        assert cam.shape == (3, 32, 32) and float(cam.min()) >= 0 and float(cam.max()) <= 1 + 1e-6
    else:
        with pytest.raises(ValueError, match="no ConvNeXt"):
            convnext_gradcam(model, batch)


def test_share_inside_a_mask():
    maps = torch.zeros(1, 4, 4)
    maps[0, :2, :2] = 1.0
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, :4, :] = True  # the top half, pooled onto the map's 4 x 4 grid
    assert share_inside(maps, mask).item() == pytest.approx(1.0)
    assert share_inside(torch.ones(1, 4, 4), mask).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="non-empty subset"):
        RecurrenceNet(("resnet",))


class _CountingEncoder:
    mmsurv_name = "counting"

    def __init__(self):
        self.calls = 0

    def encode(self, texts, **_):
        self.calls += len(texts)
        return np.array([[len(t), t.count("no")] for t in texts], dtype=float)


def test_report_embeddings_are_cached_and_skip_missing_reports(tmp_path):
    from mmsurv.text import embed_reports

    reports = pd.Series({"A": "no invasion", "B": np.nan, "C": "invasion"})
    encoder = _CountingEncoder()
    first = embed_reports(reports, encoder, cache_dir=tmp_path)
    assert list(first.index) == ["A", "C"] and encoder.calls == 2
    second = embed_reports(pd.Series({"C": "invasion", "D": "no nodes"}), encoder, cache_dir=tmp_path)
    assert encoder.calls == 3  # only the new report is embedded
    assert np.array_equal(second.loc["C"], first.loc["C"])


def test_bundled_sentence_encoder_loads_offline_and_reads_meaning(tmp_path):
    from mmsurv.text import embed_reports, load_report_encoder

    encoder = load_report_encoder()
    vectors = embed_reports(
        pd.Series(["There is parametrial invasion.", "Tumour extends into the parametrium.", "The bladder is unremarkable."]), encoder
    ).to_numpy()
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # real weights: paraphrases sit closer than unrelated findings
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_report_encoder(tmp_path)


def test_fusion_shap_values_add_up_to_the_logit():
    from mmsurv.fusion import MultimodalDataset, MultimodalModel, fusion_shap_values, shap_by_modality

    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(40)]
    blocks = {"image": pd.DataFrame(rng.normal(size=(40, 3)), index=ids), "text": pd.DataFrame(rng.normal(size=(30, 2)), index=ids[:30])}
    dataset = MultimodalDataset(blocks, ids, rng.integers(0, 2, 40).astype(float))
    torch.manual_seed(0)
    model = MultimodalModel(dataset.block_features, n_outputs=1, embed_dim=4, hidden=8).eval()
    explanation = fusion_shap_values(model, dataset, dataset, max_background=20)
    assert explanation.values.shape == (30, 5) and explanation.sample_ids == ids[:30]  # only samples with every modality
    inputs = {"image": torch.tensor(blocks["image"].loc[ids[:30]].to_numpy(), dtype=torch.float32)}
    inputs["text"] = torch.tensor(blocks["text"].to_numpy(), dtype=torch.float32)
    inputs["mask"] = torch.ones(30, 2)
    with torch.no_grad():
        logit = model(inputs)[:, 0].numpy()
    assert np.allclose(explanation.values.sum(axis=1) + explanation.base_values, logit, atol=1e-4)  # SHAP's efficiency
    grouped = shap_by_modality(explanation)
    assert list(grouped.columns) == ["image", "text"] and np.allclose(grouped.sum(axis=1), explanation.values.sum(axis=1))
