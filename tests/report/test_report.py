"""The report says which data it was produced on, in words no one can miss."""
from ecgproto.report.markdown import data_banner, limitations

DATA = {"records": {"train": 1442, "val": 183, "test": 183}}


def test_banner_names_synthetic_data():
    banner = data_banner("synthetic", "", DATA, {"evaluated_on": "test folds 10"})
    assert banner.startswith("> **SYNTHETIC DATA.**") and "1,808 generated ECGs" in banner


def test_banner_names_real_data_and_warns_when_the_validation_fold_was_evaluated():
    banner = data_banner("folder", "/data/ptbxl", DATA, {"evaluated_on": "validation folds 9"})
    assert banner.startswith("> **REAL ECGs**") and "/data/ptbxl" in banner and "early-stopping" in banner
    assert "early-stopping" not in data_banner("folder", "/d", DATA, {"evaluated_on": "test folds 10"})


def test_limitations_name_excluded_codes_and_shared_sources():
    items = limitations("folder", {"labels_excluded": "3AVB PSVT"}, {"prototypes_sharing_a_source_ecg": 4})
    assert any("3AVB PSVT" in i for i in items) and any(i.startswith("4 prototypes") for i in items)
    assert not any("Synthetic" in i for i in items)
