"""The fit ledger (which patients each fitting step saw), the functions that feed it, and the id-keyed ensemble helpers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmsurv import stats
from mmsurv.controls import reorder_by_id
from mmsurv.fusion import fit_fusion_ensemble, predict_ensemble
from mmsurv.ledger import FitLedger, HeldOutLeakError, check_ledger, ledger_leaks
from mmsurv.models import ct_cnn
from mmsurv.pathology import tile_targets
from mmsurv.radiology.ct_prognosis import fit_clinical_forest, fit_cube_classifier
from mmsurv.record import record_metrics
from mmsurv.tabular import clinical_pipeline, fit_on_training


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    ids = [f"P{i:02d}" for i in range(40)]
    frame = pd.DataFrame(rng.normal(size=(40, 3)), index=ids, columns=["a", "b", "c"])
    frame["time"] = rng.exponential(365, size=40) + 1
    frame["event"] = rng.integers(0, 2, size=40)
    return frame


def test_a_step_that_saw_a_held_out_patient_is_named():
    ledger = FitLedger(held_out=["P9", "P8"])
    assert ledger.record("scaler", ["P1", "P2"]) == ["P1", "P2"]
    ledger.record("model", ["P1"])
    ledger.record("model", ["P3"])  # a second member of the same step adds to it
    assert ledger.as_dict()["steps"]["model"] == ["P1", "P3"]
    ledger.check()
    ledger.record("cut-off", ["P1", "P9"])
    assert ledger.leaks() == {"cut-off": ["P9"]}
    with pytest.raises(HeldOutLeakError, match="cut-off: 1 held-out patient"):
        ledger.check()
    assert ledger_leaks(json.loads(json.dumps(ledger.as_dict()))) == {"cut-off": ["P9"]}  # the metrics.json form


def test_units_are_mapped_to_their_patients():
    ledger = FitLedger(held_out=["TCGA-AA-0002"], patient_of=lambda unit: unit[:12])
    ledger.record("pipeline", ["TCGA-AA-0001-01", "TCGA-AA-0001-11"])
    assert ledger.steps["pipeline"] == ["TCGA-AA-0001"] and not ledger.leaks()
    ledger.record("pipeline", ["TCGA-AA-0002-11"])  # the held-out patient's normal sample is still the held-out patient
    assert ledger.leaks() == {"pipeline": ["TCGA-AA-0002"]}


def test_fit_records_the_index_of_what_the_estimator_was_given(table):
    from sklearn.linear_model import LogisticRegression

    ledger = FitLedger(held_out=table.index[30:])
    ledger.fit("logistic", LogisticRegression(), table.loc[table.index[:20], ["a", "b"]], table["event"].iloc[:20])
    assert ledger.steps["logistic"] == sorted(table.index[:20])
    with pytest.raises(TypeError, match="indexed by id"):
        ledger.fit("logistic", LogisticRegression(), table[["a", "b"]].to_numpy(), table["event"])
    with pytest.raises(ValueError, match="fitted on no one"):
        ledger.record("empty", [])


def test_fitting_functions_record_what_they_really_used(table):
    train, held = list(table.index[:30]), list(table.index[30:])
    ledger = FitLedger(held_out=held)
    fit_on_training(clinical_pipeline(["a", "b"], []), table[["a", "b"]], train, ledger=ledger, step="clinical pipeline")
    stats.fit_cox(table.loc[train, ["time", "event", "a"]], "time", "event", ledger=ledger)
    stats.frequent_features((table[["a", "b"]] > 0).astype(int), train, 2, ledger=ledger)
    risk = pd.Series(table["a"].to_numpy(), index=table.index)
    stats.fit_risk_cutoff(risk.loc[train], ledger=ledger)
    assert set(ledger.steps) == {"clinical pipeline", "Cox model", "feature filter", "risk cut-off"}
    ledger.check()
    stats.fit_risk_cutoff(risk, ledger=ledger)  # the cut-off chosen on everyone: caught
    assert ledger.leaks() == {"risk cut-off": sorted(held)}
    with pytest.raises(TypeError, match="Series indexed by patient"):
        stats.fit_risk_cutoff(risk.to_numpy(), ledger=ledger)


def test_record_metrics_refuses_a_leaky_ledger_and_writes_a_clean_one(tmp_path):
    ledger = FitLedger(held_out=["P2"])
    ledger.record("scaler", ["P1"])
    path = record_metrics(tmp_path / "ok", metrics={"x": 1}, headline={}, parameters={"seed": 0}, ledger=ledger)
    written = json.loads(path.read_text())["metrics"]["fit_ledger"]
    assert written == {"held_out": ["P2"], "steps": {"scaler": ["P1"]}}
    check_ledger(written)
    ledger.record("scaler", ["P2"])
    with pytest.raises(HeldOutLeakError):
        record_metrics(tmp_path / "leak", metrics={}, headline={}, parameters={"seed": 0}, ledger=ledger)
    assert not (tmp_path / "leak" / "metrics.json").exists()


def test_reorder_by_id_keeps_the_index_and_moves_pairs_whole(table):
    outcomes = table[["time", "event"]].iloc[:5]
    order = np.array([4, 3, 2, 1, 0])
    shuffled = reorder_by_id(outcomes, order)
    assert list(shuffled.index) == list(outcomes.index)
    assert shuffled.iloc[0].tolist() == outcomes.iloc[4].tolist()  # (time, event) travel together
    with pytest.raises(ValueError, match="permutation"):
        reorder_by_id(outcomes, np.array([0, 0, 1, 2, 3]))


def test_ensemble_reads_labels_by_id_whatever_the_order_of_the_ids(table):
    rng = np.random.default_rng(1)
    blocks = {"x": table[["a", "b", "c"]]}
    labels = pd.Series((table["a"] + 0.3 * rng.normal(size=len(table)) > 0).astype(float), index=table.index)
    labels.iloc[:3] = np.nan  # unlabelled: left out of training
    fit_ids, stop_ids, held = list(table.index[:24]), list(table.index[24:32]), list(table.index[32:])
    ledger = FitLedger(held_out=held)
    options = {"model_options": {"embed_dim": 4, "hidden": 8}, "epochs": 30, "members": 2, "seed": 3}
    first = predict_ensemble(fit_fusion_ensemble(blocks, labels, fit_ids, stop_ids, ledger=ledger, **options), blocks, held)
    second = predict_ensemble(fit_fusion_ensemble(blocks, labels, fit_ids[::-1], stop_ids, **options), blocks, held)
    assert list(first.index) == held and np.corrcoef(first, second)[0, 1] > 0.9  # same labels for the same patients
    assert set(ledger.steps) == {"fused ensemble: fit", "fused ensemble: early stopping"}
    assert not set(ledger.steps["fused ensemble: fit"]) & set(table.index[:3])  # unlabelled patients never trained it
    with pytest.raises(ValueError, match="both train and early-stop"):
        fit_fusion_ensemble(blocks, labels, fit_ids, fit_ids[-4:], **options)
    with pytest.raises(KeyError, match="no label entry"):
        fit_fusion_ensemble(blocks, labels.iloc[5:], fit_ids, stop_ids, **options)


def test_cube_classifier_and_clinical_forest_record_whom_they_fitted_on_in_a_fit_ledger():
    rng = np.random.default_rng(0)
    labels = np.tile([0.0, 1.0], 20)
    cubes = rng.normal(0.3, 0.02, size=(40, 14, 14, 14)).astype(np.float32)
    ids = [f"P{i}" for i in range(40)]
    ledger = FitLedger(held_out=ids[30:])
    train = pd.Series(labels[:20], index=ids[:20])
    tune = pd.Series(labels[20:30], index=ids[20:30])
    history = fit_cube_classifier(
        ct_cnn("narrow", seed=0), (cubes[:20], train), (cubes[20:30], tune), side=12, epochs=1, seed=0, progress=False, ledger=ledger, step="CNN"
    )
    assert history.samples == {"train": ids[:20], "validation": ids[20:30]}  # labels indexed by patient name the patients
    assert ledger.steps == {"CNN: fit": sorted(ids[:20]), "CNN: early stopping": sorted(ids[20:30])}
    # early stopping on held-out patients is a leak the ledger names
    fit_cube_classifier(
        ct_cnn("narrow", seed=0),
        (cubes[:20], train),
        (cubes[30:], pd.Series(labels[30:], index=ids[30:])),
        side=12,
        epochs=1,
        seed=0,
        progress=False,
        ledger=ledger,
        step="leaky CNN",
    )
    assert set(ledger.leaks()) == {"leaky CNN: early stopping"}
    with pytest.raises(HeldOutLeakError, match="leaky CNN: early stopping"):
        ledger.check()
    with pytest.raises(ValueError, match="patient_ids"):  # arrays name no patients: the ledger cannot record them
        fit_cube_classifier(
            ct_cnn("narrow", seed=0), (cubes[:20], labels[:20]), (cubes[20:30], labels[20:30]), side=12, epochs=1, progress=False, ledger=ledger
        )
    frame = pd.DataFrame({"patient_id": ids[:20], "age": rng.normal(60, 5, 20), "stage": ["I", "II"] * 10})
    fit_clinical_forest(frame, labels[:20], numeric=["age"], categorical=["stage"], n_trees=5, ledger=ledger, step="forest")
    assert ledger.steps["forest"] == sorted(ids[:20])


def test_tile_targets_record_their_reference_patients():
    targets = pd.DataFrame({"score": [1.0, 2.0, 3.0, 4.0]}, index=["A", "B", "C", "D"])
    tiles = pd.DataFrame({"patient_id": ["A", "A", "B", "C", "D"]})
    ledger = FitLedger(held_out=["D"])
    values = tile_targets(tiles, targets, reference=pd.Index(["A", "B", "C"]), ledger=ledger)
    assert values.shape == (5, 1) and ledger.steps == {"target standardisation": ["A", "B", "C"]}
    tile_targets(tiles, targets, reference=targets.index, ledger=ledger, step="leaky standardisation")
    assert ledger.leaks() == {"leaky standardisation": ["D"]}
