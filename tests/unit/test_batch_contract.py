"""The DTC batch contract (dataloading/batch.py) on a real batch: a tiny dataset planned and preprocessed by nnU-Net's
own functions in this process, loaded through nnUNetTrainerDTC.get_dataloaders (augmentation in this process)."""
import contextlib
import io

import numpy as np
import pytest
import torch
from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprints, plan_experiments, preprocess

from helpers.nnunet_folders import NnUNetFolders
from nnunetv2_dtc import compute_sdf
from nnunetv2_dtc.dataloading.batch import dtc_targets, mixed_batch
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import UNLABELED_PREFIX, make_synthetic_dataset
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.unlabeled_handling.preprocess_unlabeled import preprocess_unlabeled
from nnunetv2_dtc.utilities.nnunet_paths import DEFAULT_PLANS_IDENTIFIER
from nnunetv2_dtc.utilities.files import read_json_or_none

DATASET_ID, DATASET_NAME = 995, 'Dataset995_DTCBatch'
CONFIGURATION = '3d_fullres'
SHAPE = (16, 16, 16)
FOREGROUND_LABELS = [1, 2]


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    folders = NnUNetFolders.create(tmp_path_factory.mktemp('nnunet'))
    with pytest.MonkeyPatch.context() as monkeypatch:
        folders.set_in(monkeypatch)
        make_synthetic_dataset(str(folders.raw), DATASET_ID, name='DTCBatch', num_labeled=2, num_unlabeled=2,
                               num_test=0, shape=SHAPE, num_foreground_labels=len(FOREGROUND_LABELS))
        with contextlib.redirect_stdout(io.StringIO()):
            extract_fingerprints([DATASET_ID], num_processes=1, verbose=False, show_progress_bar=False)
            plan_experiments([DATASET_ID])
            preprocess([DATASET_ID], configurations=(CONFIGURATION,), num_processes=(1,), show_progress_bar=False)
            preprocess_unlabeled(DATASET_ID, CONFIGURATION, num_processes=1)
        yield folders


def test_a_training_batch_holds_labelled_then_unlabelled_patches_and_the_sdf_of_the_augmented_labels(
        folders, monkeypatch):
    folders.set_in(monkeypatch)
    monkeypatch.setenv('nnUNet_n_proc_DA', '0')  # SingleThreadedAugmenter: the batch is built in this process
    plans = read_json_or_none(str(folders.preprocessed / DATASET_NAME / f'{DEFAULT_PLANS_IDENTIFIER}.json'))
    dataset_json = read_json_or_none(str(folders.preprocessed / DATASET_NAME / 'dataset.json'))
    trainer = nnUNetTrainerDTC({**plans, 'continue_training': False}, CONFIGURATION, 'all', dataset_json,
                               torch.device('cpu'))
    trainer.initialize()
    train_loader, _ = trainer.get_dataloaders()
    batch = next(train_loader)

    b = trainer.batch_size
    assert batch['data'].shape == (2 * b, 1, *trainer.configuration_manager.patch_size)
    assert [key.startswith(UNLABELED_PREFIX) for key in batch['keys']] == [False] * b + [True] * b
    targets = dtc_targets(batch, deep_supervision=True)
    assert targets.is_labeled.tolist() == [True] * b + [False] * b and targets.num_labeled == b
    assert len(targets.segmentation) == len(trainer._get_deep_supervision_scales())
    assert targets.segmentation[0].shape[0] == b
    assert targets.sdf.shape == (b, len(FOREGROUND_LABELS), *trainer.configuration_manager.patch_size)
    for labels, sdf in zip(targets.segmentation[0], targets.sdf):
        assert np.allclose(sdf.numpy(), compute_sdf(labels[0].numpy().astype(np.int16), FOREGROUND_LABELS),
                           atol=1e-6)
    assert (targets.sdf < 0).any() and (targets.sdf > 0).any()
    # the unlabelled patches are images of their own, not copies of the labelled ones
    assert not torch.equal(batch['data'][:b], batch['data'][b:])


def test_packing_and_unpacking_round_trip_without_deep_supervision():
    segmentation, sdf = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    labeled = {'data': torch.zeros(2, 1, 4, 4), 'target': [segmentation, sdf], 'keys': ['a', 'b']}
    unlabeled = {'data': torch.ones(3, 1, 4, 4), 'keys': ['u', 'v', 'w']}

    batch = mixed_batch(labeled, unlabeled)
    targets = dtc_targets(batch, deep_supervision=False)

    assert batch['data'].shape[0] == 5 and batch['keys'] == ['a', 'b', 'u', 'v', 'w']
    assert targets.segmentation is segmentation and targets.sdf is sdf
    assert targets.is_labeled.tolist() == [True, True, False, False, False]
    assert dtc_targets(mixed_batch(labeled, None), deep_supervision=False).is_labeled.tolist() == [True, True]
