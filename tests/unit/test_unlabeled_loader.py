"""UnlabeledPatchLoader gives exactly the patches of nnU-Net's own loader (nnUNetDataLoader) for the same random
state, with and without the segmentation (use_mask_for_norm), in 3D and 2D."""
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.label_handling.label_handling import LabelManager

from nnunetv2_dtc.dataloading.transforms import reads_segmentation, unlabeled_training_transforms
from nnunetv2_dtc.dataloading.unlabeled_loader import UnlabeledPatchLoader

CASE_SHAPE = (20, 26, 30)
OUTSIDE_MASK_SLICES = 5  # the first slices of every case lie outside nnU-Net's nonzero mask (-1)
NUM_CASES = 3
BATCH_SIZE = 2
LABELS = LabelManager({'background': 0, 'a': 1, 'b': 2}, regions_class_order=None)
LABELS_WITH_IGNORE = LabelManager({'background': 0, 'a': 1, 'ignore': 2}, regions_class_order=None)
# (patch, initial patch: larger for rotations); '3d' and '2d' initial patches are larger than the case along every
# axis, so every crop is padded; '3d_inside' crops fit inside the case
SETTINGS = {'3d': ((16, 20, 24), (24, 28, 32)), '2d': ((20, 24), (28, 34)), '3d_inside': ((10, 14, 18), (14, 18, 22))}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> nnUNetDatasetBlosc2:
    folder: Path = tmp_path_factory.mktemp('unlabeled_cases')
    rng = np.random.default_rng(0)
    for i in range(NUM_CASES):
        data = rng.normal(size=(1, *CASE_SHAPE)).astype(np.float32)
        segmentation = np.zeros((1, *CASE_SHAPE), dtype=np.int8)
        segmentation[:, :OUTSIDE_MASK_SLICES] = -1
        nnUNetDatasetBlosc2.save_case(data, segmentation, {'class_locations': {}}, str(folder / f'case_{i}'),
                                      chunks=data.shape, blocks=data.shape)
    return nnUNetDatasetBlosc2(str(folder))


def unlabeled_transforms(patch, use_mask_for_norm: bool):
    dimensions = len(patch)
    pipeline = nnUNetTrainer.get_training_transforms(
        patch, (-np.pi / 6, np.pi / 6), [[1] * dimensions, [0.5] * dimensions], tuple(range(dimensions)), False,
        use_mask_for_norm=[use_mask_for_norm], foreground_labels=[1, 2])
    return unlabeled_training_transforms(pipeline)


def batch_with_seed(loader, seed: int) -> dict:
    np.random.seed(seed)
    torch.manual_seed(seed)
    return loader.generate_train_batch()


@pytest.mark.parametrize('use_mask_for_norm', [False, True])
@pytest.mark.parametrize('setting', SETTINGS)
def test_patches_equal_those_of_nnunets_loader(dataset, setting, use_mask_for_norm):
    patch, initial_patch = SETTINGS[setting]
    transforms = unlabeled_transforms(patch, use_mask_for_norm)
    nnunet_loader = nnUNetDataLoader(dataset, BATCH_SIZE, initial_patch, patch, LABELS,
                                     oversample_foreground_percent=0.0, transforms=transforms)
    loader = UnlabeledPatchLoader(dataset, BATCH_SIZE, initial_patch, patch, LABELS, transforms)
    assert loader.reads_segmentation == reads_segmentation(transforms) == use_mask_for_norm

    for seed in range(4):
        reference = batch_with_seed(nnunet_loader, seed)
        batch = batch_with_seed(loader, seed)

        assert list(batch['keys']) == list(reference['keys'])
        assert batch['data'].shape == (BATCH_SIZE, 1, *patch) and batch['data'].dtype == torch.float32
        assert torch.equal(batch['data'], reference['data'])
        assert set(batch) == {'data', 'keys'}



def test_unlabelled_cases_are_cropped_at_random_when_the_dataset_has_an_ignore_label(dataset):
    """nnU-Net samples around annotated voxels when there is an ignore label; unlabelled cases have none."""
    patch, initial_patch = SETTINGS['3d']
    loader = UnlabeledPatchLoader(dataset, BATCH_SIZE, initial_patch, patch, LABELS_WITH_IGNORE,
                                  unlabeled_transforms(patch, use_mask_for_norm=False))

    batch = batch_with_seed(loader, 0)

    assert batch['data'].shape == (BATCH_SIZE, 1, *patch)
