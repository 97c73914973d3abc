"""Checks that run before or during training, on real trainer instances built from a tiny plan."""
import re

import numpy as np
import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from helpers.tiny_plans import tiny_trainer
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.dataloading.mixed_loader import split_global_batch_size
from nnunetv2_dtc.loss import DTCLoss
from nnunetv2_dtc.sdf import compute_sdf
from nnunetv2_dtc.trainers import nnUNetTrainerDTC_Xepochs as named_schedules
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC


def _trainer(nnunet_env, trainer_class=nnUNetTrainerDTC):
    return tiny_trainer(nnunet_env.preprocessed, trainer_class)


class _NegativeBeta(nnUNetTrainerDTC):
    sdf_loss_weight = -0.3


class _BadEverything(nnUNetTrainerDTC):
    level_set_sharpness = 0
    max_consistency_weight = float('nan')
    unlabeled_batch_size = 1.5


def test_negative_beta_is_rejected_when_training_starts(nnunet_env):
    trainer = _trainer(nnunet_env, _NegativeBeta)
    with pytest.raises(ValueError, match=r'_NegativeBeta: invalid DTC hyperparameters: sdf_loss_weight = -0.3 '
                                         r'must be >= 0'):
        trainer.initialize()
    assert trainer.network is None


def test_every_invalid_hyperparameter_is_named(nnunet_env):
    with pytest.raises(ValueError) as error:
        _trainer(nnunet_env, _BadEverything).initialize()
    for name in ('level_set_sharpness = 0 must be > 0', 'max_consistency_weight = nan is not a number',
                 'unlabeled_batch_size = 1.5'):
        assert name in str(error.value)


def test_level_set_channels_are_recorded_in_the_plans_the_model_folder_gets(nnunet_env):
    trainer = _trainer(nnunet_env)
    assert trainer.num_level_set_channels == 2
    assert trainer.plans_manager.plans['dtc_num_level_set_channels'] == 2


def test_rampup_spans_the_whole_training(nnunet_env):
    trainer = _trainer(nnunet_env)
    trainer.num_epochs, trainer.num_iterations_per_epoch = 10, 5
    assert trainer.consistency_weight_at(0) == pytest.approx(np.exp(-5))
    assert trainer.consistency_weight_at(25) == pytest.approx(np.exp(-5 * 0.25))
    assert trainer.consistency_weight_at(50) == pytest.approx(1.0)


def test_non_finite_loss_stops_naming_epoch_step_and_term(nnunet_env):
    trainer = _trainer(nnunet_env)
    trainer.current_epoch, trainer.iteration_in_epoch = 7, 4
    step = {'loss': np.float32(np.nan), 'supervised_loss': np.float32(0.5), 'sdf_loss': np.float32(np.inf),
            'consistency_loss': np.float32(0.1)}
    with pytest.raises(FloatingPointError, match=r'epoch 7, step 3: loss, sdf_loss') as error:
        trainer._stop_if_not_finite(step)
    assert 'checkpoint' in str(error.value) and '--c' in str(error.value)


@pytest.mark.parametrize('global_size,world,expected', [(4, 1, [4]), (4, 2, [2, 2]), (5, 2, [3, 2]),
                                                         (7, 4, [2, 2, 2, 1]), (2, 4, [1, 1, 0, 0])])
def test_unlabelled_batch_is_split_across_ranks_like_nnunets_labelled_batch(global_size, world, expected):
    per_rank = [split_global_batch_size(global_size, world, r) for r in range(world)]
    assert per_rank == expected and sum(per_rank) == global_size


def test_all_background_and_all_foreground_patches_give_finite_loss(nnunet_env):
    trainer = _trainer(nnunet_env)
    trainer.initialize()
    empty = np.zeros((16, 16, 16), dtype=np.int16)
    full = np.ones((16, 16, 16), dtype=np.int16)
    segmentation = torch.from_numpy(np.stack([empty, full]))[:, None].float()
    sdf = torch.from_numpy(np.stack([compute_sdf(empty, [1, 2]), compute_sdf(full, [1, 2])]))
    assert torch.isfinite(sdf).all() and sdf[0].eq(0).all() and sdf[1, 0].eq(-1).all()
    targets = DTCTargets([segmentation, segmentation[:, :, ::2, ::2, ::2]], sdf, torch.tensor([True, True, False]))
    assert isinstance(trainer.loss, DTCLoss)
    trainer.loss.consistency_weight = 1.0
    trainer.network.train()
    total = trainer.loss(trainer.network(torch.randn(3, 1, 16, 16, 16)), targets)
    assert torch.isfinite(total) and all(torch.isfinite(v) for v in trainer.loss.last_terms.values())


def test_vanilla_trainer_is_untouched_by_the_package(nnunet_env):
    trainer = _trainer(nnunet_env, nnUNetTrainer)
    trainer.initialize()
    assert not hasattr(trainer.loss, 'consistency_weight')
    assert type(trainer.network.decoder.seg_layers[-1]).__name__ == 'Conv3d'


NAMED_SCHEDULES = sorted(n for n in dir(named_schedules) if re.fullmatch(r'nnUNetTrainerDTC_\d+epochs', n))


@pytest.mark.parametrize('name', NAMED_SCHEDULES)
def test_named_schedules_train_for_the_epochs_in_their_name(nnunet_env, name):
    trainer = _trainer(nnunet_env, getattr(named_schedules, name))
    assert trainer.num_epochs == int(re.search(r'_(\d+)epochs', name).group(1))
    assert trainer.num_iterations_per_epoch == 250  # nnU-Net's, unchanged
