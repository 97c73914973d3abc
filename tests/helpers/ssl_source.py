"""The fully labelled source dataset of nnUNetv2_dtc_make_ssl_dataset's tests (the fixture `source` in conftest)."""
from pathlib import Path

from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset

SOURCE_ID, NEW_ID = 990, 991
SOURCE_NAME, NEW_NAME = 'Dataset990_DTCDemo', 'Dataset991_DTCDemoSSL'
NUM_CASES = 10
CASE_IDS = [f'dtc_{i:03d}' for i in range(NUM_CASES)]
SHAPE = (6, 6, 6)


def make_source(raw: Path) -> Path:
    """A fully labelled source dataset of NUM_CASES cases in the nnUNet_raw folder raw."""
    return Path(make_synthetic_dataset(str(raw), SOURCE_ID, num_labeled=NUM_CASES, num_unlabeled=0, num_test=0,
                                       shape=SHAPE))


def file_names(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())
