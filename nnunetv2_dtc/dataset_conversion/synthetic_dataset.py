"""A tiny nnU-Net v2 raw dataset of bright ellipsoids in noise, with unlabelled images, for the demo and the tests."""
import shutil
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk
from batchgenerators.utilities.file_and_folder_operations import join, maybe_mkdir_p, save_json

from nnunetv2_dtc.unlabeled_handling.folders import UNLABELED_IMAGES_FOLDER_NAME

FILE_ENDING = '.nii.gz'
# nnU-Net's normalisation follows the channel name: any name but 'CT' gives a z-score per image, which moves an
# ellipsoid's normalised intensity with its size (a large one raises the image mean); 'CT' gives one dataset-wide
# normalisation from the labelled foreground, the same for every case
CHANNEL_NAME = 'MRI'
LABELED_PREFIX = 'dtc_'
UNLABELED_PREFIX = 'dtc_u'
TEST_PREFIX = 'dtc_ts'

# intensities in units of the noise level: label L has mean L * FOREGROUND_STEP over a background of mean 0, so a
# tiny network separates the labels by intensity after a few dozen iterations
FOREGROUND_STEP = 1.0
NOISE_STD = 0.15
# each ellipsoid semi-axis is this fraction of the image size along its axis; label L uses the range shrunk by
# LABEL_SHRINK ** (L - 1), so a later (smaller) blob cannot hide an earlier one completely
RADIUS_FRACTION_RANGE = (0.18, 0.3)
LABEL_SHRINK = 0.6
MIN_RADIUS_VOXELS = 1.5


@dataclass(frozen=True)
class SyntheticStyle:
    """How hard the cases are: the noise level and the ellipsoid sizes of the labelled cases and of the others
    (unlabelled and test). The default is the demo's easy set: one size range for every case, little noise."""
    noise_std: float = NOISE_STD
    radius_fraction_range: Tuple[float, float] = RADIUS_FRACTION_RANGE
    labeled_radius_fraction_range: Optional[Tuple[float, float]] = None  # None: radius_fraction_range
    channel_name: str = CHANNEL_NAME  # dataset.json's, which picks nnU-Net's normalisation

    def radius_range(self, labeled: bool) -> Tuple[float, float]:
        if labeled and self.labeled_radius_fraction_range is not None:
            return self.labeled_radius_fraction_range
        return self.radius_fraction_range


EASY_STYLE = SyntheticStyle()

# independent random streams per group, so that changing one count leaves the other groups' cases unchanged
LABELED_STREAM, UNLABELED_STREAM, TEST_STREAM = 0, 1, 2


def make_synthetic_dataset(raw_root: str, dataset_id: int = 990, name: str = 'DTCDemo', num_labeled: int = 4,
                           num_unlabeled: int = 8, num_test: int = 3, shape: Sequence[int] = (24, 24, 24),
                           spacing: Sequence[float] = (1.0, 1.0, 1.0), seed: int = 0,
                           num_foreground_labels: int = 1, style: SyntheticStyle = EASY_STYLE) -> str:
    """Writes `raw_root/DatasetXXX_name` with imagesTr/labelsTr, imagesUnlabeled, imagesTs/labelsTs and dataset.json
    and returns its path. `shape` and `spacing` are in numpy array order (as nnU-Net reads them, z-y-x for a
    3d image). The same arguments always give the same files; subfolders from an earlier call are replaced."""
    dataset_folder = join(raw_root, f'Dataset{dataset_id:03d}_{name}')
    groups = (
        ('imagesTr', 'labelsTr', LABELED_PREFIX, num_labeled, LABELED_STREAM),
        (UNLABELED_IMAGES_FOLDER_NAME, None, UNLABELED_PREFIX, num_unlabeled, UNLABELED_STREAM),
        ('imagesTs', 'labelsTs', TEST_PREFIX, num_test, TEST_STREAM),
    )
    for images_folder, labels_folder, prefix, count, stream in groups:
        for folder in (images_folder, labels_folder):
            if folder is not None:
                shutil.rmtree(join(dataset_folder, folder), ignore_errors=True)
                maybe_mkdir_p(join(dataset_folder, folder))
        for index in range(count):
            rng = np.random.default_rng([seed, stream, index])
            image, labels = _random_case(rng, tuple(shape), num_foreground_labels, style.noise_std,
                                         style.radius_range(labels_folder == 'labelsTr'))
            case_id = f'{prefix}{index:03d}'
            _write(image.astype(np.float32), join(dataset_folder, images_folder, f'{case_id}_0000{FILE_ENDING}'),
                   spacing)
            if labels_folder is not None:
                _write(labels, join(dataset_folder, labels_folder, case_id + FILE_ENDING), spacing)

    save_json({
        'channel_names': {'0': style.channel_name},
        'labels': {'background': 0, **{f'label_{i}': i for i in range(1, num_foreground_labels + 1)}},
        'numTraining': num_labeled,
        'file_ending': FILE_ENDING,
        'name': name,
        'description': 'Synthetic ellipsoids for nnunetv2-dtc demos and tests',
    }, join(dataset_folder, 'dataset.json'), sort_keys=False)
    return dataset_folder


def _random_case(rng: np.random.Generator, shape: Tuple[int, ...], num_foreground_labels: int, noise_std: float,
                 radius_fraction_range: Tuple[float, float]) -> Tuple[np.ndarray, np.ndarray]:
    labels = np.zeros(shape, dtype=np.uint8)
    grid = np.indices(shape, dtype=np.float32)
    for label in range(1, num_foreground_labels + 1):
        shrink = LABEL_SHRINK ** (label - 1)
        radii = [max(MIN_RADIUS_VOXELS, rng.uniform(*radius_fraction_range) * shrink * size) for size in shape]
        centre = [rng.uniform(r, size - 1 - r) if size - 1 > 2 * r else (size - 1) / 2
                  for r, size in zip(radii, shape)]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
        labels[inside] = label
    image = labels * FOREGROUND_STEP + rng.normal(0, noise_std, shape)
    return image, labels


def _write(array: np.ndarray, filename: str, spacing: Sequence[float]) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in reversed(spacing)])
    sitk.WriteImage(image, filename, True)
