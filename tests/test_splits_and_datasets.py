"""Patient-level splits, and the real TCGA-CDR outcome table shipped with the kit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.datasets import load_tcga_outcomes, stage_group
from mmsurv.splits import check_no_patient_overlap, patient_split
from mmsurv.virtual.simulate import simulate_cohort


def test_split_holds_out_external_centre_and_stratifies():
    patients = simulate_cohort(800, seed=0).patients
    split = patient_split(patients, test_fraction=0.25, validation_fraction=0.15, external_centres=["C4"], seed=1)
    assert (split[patients.centre == "C4"] == "external").all()
    assert not (split[patients.centre != "C4"] == "external").any()
    internal = split != "external"
    fractions = split[internal].value_counts(normalize=True)
    assert fractions["test"] == pytest.approx(0.25, abs=0.02) and fractions["validation"] == pytest.approx(0.15, abs=0.02)
    event_rate = patients[internal].groupby(split[internal]).event.mean()
    assert event_rate.max() - event_rate.min() < 0.03


def test_no_patient_in_two_splits_at_tile_level():
    patients = simulate_cohort(100, seed=0).patients
    split = patient_split(patients, seed=0)
    tiles = patients.loc[patients.index.repeat(5), ["patient_id"]].assign(split=split.repeat(5).to_numpy())
    check_no_patient_overlap(tiles.split, tiles.patient_id)
    tiles.iloc[0, tiles.columns.get_loc("split")] = "test" if tiles.split.iloc[0] == "train" else "train"
    with pytest.raises(ValueError, match="more than one split"):
        check_no_patient_overlap(tiles.split, tiles.patient_id)


def test_split_rejects_duplicates_and_unknown_centres():
    patients = simulate_cohort(50, seed=0).patients
    with pytest.raises(ValueError, match="more than once"):
        patient_split(pd.concat([patients, patients.iloc[:1]]))
    with pytest.raises(ValueError, match="not found"):
        patient_split(patients, external_centres=["C9"])


def test_tcga_outcomes_load_cleanly():
    cesc = load_tcga_outcomes(["CESC"])
    assert 290 <= len(cesc) <= 308 and cesc.patient_id.is_unique
    assert set(cesc.event.unique()) <= {0, 1} and (cesc.time >= 0).all()
    assert cesc.stage.notna().mean() > 0.9  # CESC stage comes from the clinical (FIGO) column
    everyone = load_tcga_outcomes()
    assert set(everyone.project) == {"CESC", "BRCA", "LUAD", "LUSC"}
    assert sum(everyone.attrs["dropped"].values()) + len(everyone) == 2433


def test_tcga_bad_requests_raise():
    with pytest.raises(ValueError, match="unknown project"):
        load_tcga_outcomes(["GBM"])
    with pytest.raises(ValueError, match="endpoint"):
        load_tcga_outcomes(endpoint="EFS")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_tcga_outcomes(path="nowhere.tsv")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Stage IIIB", 3), ("Stage IB1", 1), ("Stage IV", 4), ("Stage IVA", 4), ("Stage II", 2), ("Stage X", np.nan), (np.nan, np.nan)],
)
def test_stage_group(text, expected):
    result = stage_group(text)
    assert (np.isnan(result) and np.isnan(expected)) or result == expected
