"""3d_lowres with ResEnc plans through the real CLIs: nnU-Net's ResEnc M planner (a small GPU memory target, so that
the tiny volumes get a 3d_lowres configuration), unlabelled preprocessing, nnUNetv2_train, nnUNetv2_predict; and the
cascade's clear refusal."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from helpers.nnunet_folders import NnUNetFolders, run_console_script
from nnunetv2_dtc.dataset_conversion.synthetic_dataset import make_synthetic_dataset
from nnunetv2_dtc.generated_trainers import write_schedule_trainer
from nnunetv2_dtc.trainer_dir import environment_with_trainers
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

DATASET_ID = 993
DATASET_NAME = 'Dataset993_DTCLowRes'
PLANNER, PLANS = 'nnUNetPlannerResEncM', 'DTCTestResEncM'
# nnU-Net plans 3d_lowres only when the 3d_fullres patch covers little of the image: with 64^3 volumes, a 0.05 GB
# memory target gives a 28x24x24 patch, 3 stages, and a 40^3 3d_lowres (0.01 GB for 32^3 volumes gave 2 stages,
# where nnU-Net's own nnUNetTrainer already logs a NaN loss)
SHAPE, GPU_MEMORY_TARGET_GB = (64, 64, 64), 0.05
CONFIGURATION = '3d_lowres'

pytestmark = pytest.mark.slow  # subprocesses of nnU-Net's commands


@pytest.fixture(scope='module')
def lowres(tmp_path_factory):
    root = tmp_path_factory.mktemp('dtc_lowres')
    folders = NnUNetFolders.create(root / 'nnunet')
    raw = Path(make_synthetic_dataset(str(folders.raw), DATASET_ID, name='DTCLowRes', num_labeled=2,
                                      num_unlabeled=2, num_test=1, shape=SHAPE))
    run_console_script(folders, ['nnUNetv2_plan_and_preprocess'], '-d', DATASET_ID, '-pl', PLANNER,
                       '-gpu_memory_target', GPU_MEMORY_TARGET_GB, '-overwrite_plans_name', PLANS,
                       '-c', CONFIGURATION, '-np', 1)
    run_console_script(folders, ['nnUNetv2_dtc_preprocess_unlabeled'], '-d', DATASET_ID, '-c', CONFIGURATION,
                       '-p', PLANS, '-np', 1)
    # the final validation of 3d_lowres also exports 3d_fullres inputs for the cascade; it is covered for 3d_fullres
    trainer = write_schedule_trainer(str(root / 'trainers'), nnUNetTrainerDTC, 1, 2, 1, seed=0,
                                     final_validation=False)
    environment = environment_with_trainers({}, str(root / 'trainers'))
    train = run_console_script(folders, ['nnUNetv2_train'], DATASET_ID, CONFIGURATION, 'all', '-p', PLANS,
                               '-tr', trainer, '-device', 'cpu', environment=environment)
    plans = json.loads((folders.preprocessed / DATASET_NAME / f'{PLANS}.json').read_text())
    return folders, raw, trainer, environment, plans, train


def test_resenc_lowres_plans_are_what_the_test_is_about(lowres):
    _, _, _, _, plans, _ = lowres
    configuration = plans['configurations'][CONFIGURATION]
    assert configuration['architecture']['network_class_name'].endswith('ResidualEncoderUNet')
    assert configuration['spacing'][0] > plans['configurations']['3d_fullres']['spacing'][0]


def test_lowres_resenc_training_learns_through_every_dtc_term(lowres):
    folders, _, trainer, _, _, train = lowres
    fold = folders.results / DATASET_NAME / f'{trainer}__{PLANS}__{CONFIGURATION}' / 'fold_all'
    checkpoint = torch.load(fold / 'checkpoint_final.pth', map_location='cpu', weights_only=False)
    weights = checkpoint['network_weights']
    last_head = max(int(m.group(1)) for m in map(re.compile(r'decoder\.seg_layers\.(\d+)\.conv\.weight').match,
                                                 weights) if m)
    assert weights[f'decoder.seg_layers.{last_head}.conv.weight'].shape[0] == 2 + 1  # 2 classes, 1 level set
    assert any(k.startswith('encoder.stages.0.blocks') for k in weights)  # residual encoder blocks
    for key in ('dtc_supervised_losses', 'dtc_sdf_losses', 'dtc_consistency_losses', 'dtc_consistency_weights'):
        assert len(checkpoint['logging'][key]) == 1 and np.isfinite(checkpoint['logging'][key][0])
    assert checkpoint['logging']['dtc_sdf_losses'][0] > 0


def test_lowres_prediction_has_the_input_geometry(lowres, tmp_path):
    folders, raw, trainer, environment, _, _ = lowres
    run_console_script(folders, ['nnUNetv2_predict'], '-i', raw / 'imagesTs', '-o', tmp_path, '-d', DATASET_ID,
                       '-c', CONFIGURATION, '-p', PLANS, '-f', 'all', '-tr', trainer, '-device', 'cpu',
                       '--disable_tta', '-npp', 0, '-nps', 0, environment=environment)
    (image_file,) = sorted((raw / 'imagesTs').glob('*_0000.nii.gz'))
    prediction = sitk.ReadImage(str(tmp_path / image_file.name.replace('_0000.nii.gz', '.nii.gz')))
    assert prediction.GetSize() == sitk.ReadImage(str(image_file)).GetSize() == SHAPE
    assert set(np.unique(sitk.GetArrayFromImage(prediction))) <= {0, 1}


def test_the_cascade_is_refused_with_the_configurations_that_work(lowres):
    folders, _, trainer, environment, plans, _ = lowres
    assert '3d_cascade_fullres' in plans['configurations']
    result = run_console_script(folders, ['nnUNetv2_train'], DATASET_ID, '3d_cascade_fullres', 'all', '-p', PLANS,
                                '-tr', trainer, '-device', 'cpu', check=False, environment=environment)
    assert result.returncode != 0
    assert 'does not support cascaded configurations (3d_cascade_fullres)' in result.stderr
    assert 'Train 3d_fullres, 3d_lowres or 2d instead' in result.stderr
