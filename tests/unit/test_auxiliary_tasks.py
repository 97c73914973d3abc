"""The auxiliary-task plug-in: BoundaryTask's target and soft twin against brute-force references, its loss by hand,
its gradients, and LevelSetTask reproducing DTC's formula bit for bit."""
import itertools
import math

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from helpers.tiny_plans import tiny_plans_manager, tiny_trainer
from nnunetv2_dtc.auxiliary_tasks.boundary import BoundaryTask, boundary_band, class_balanced_bce, soft_boundary
from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.dataloading.transforms import AuxiliaryTargetTransform
from nnunetv2_dtc.loss import DTCLoss, consistency_squared_error_sum, sdf_loss
from nnunetv2_dtc.sdf import compute_sdf
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTCBoundary import nnUNetTrainerDTCBoundary, \
    nnUNetTrainerDTCBoundary_LabeledOnly

K = 1500.0

def brute_force_band(segmentation: np.ndarray, entry, width: int) -> np.ndarray:
    """1 where the window of half-width `width` around a voxel (clipped to the image) holds both the class and
    something else: one voxel at a time."""
    inside = np.isin(segmentation, entry) if isinstance(entry, tuple) else segmentation == entry
    out = np.zeros(segmentation.shape, dtype=np.float32)
    for index in itertools.product(*map(range, segmentation.shape)):
        window = inside[tuple(slice(max(i - width, 0), i + width + 1) for i in index)]
        out[index] = window.any() and not window.all()
    return out


def _random_labels(shape, seed, num_labels=3):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int16)
    for label in range(1, num_labels + 1):  # a few boxes per label, overlapping
        for _ in range(2):
            corner = [rng.integers(0, s - 2) for s in shape]
            size = [rng.integers(2, max(3, s // 2)) for s in shape]
            labels[tuple(slice(c, c + z) for c, z in zip(corner, size))] = label
    return labels


@pytest.mark.parametrize('shape', [(12, 10), (7, 9, 8)])
@pytest.mark.parametrize('width', [1, 2])
def test_boundary_band_equals_a_brute_force_reference(shape, width):
    segmentation = _random_labels(shape, seed=len(shape) + width)
    entries = [1, 2, 3, (1, 2)]  # three classes and a region
    band = boundary_band(segmentation, entries, width)
    assert band.dtype == np.float32 and band.shape == (4, *shape)
    for channel, entry in zip(band, entries):
        np.testing.assert_array_equal(channel, brute_force_band(segmentation, entry, width))
    assert band.any()


def test_an_absent_class_and_a_full_patch_have_no_boundary():
    empty = np.zeros((6, 6, 6), dtype=np.int16)
    assert not boundary_band(empty, [1], 1).any()
    assert not boundary_band(empty + 1, [1], 1).any()


@pytest.mark.parametrize('shape', [(12, 10), (7, 9, 8)])
@pytest.mark.parametrize('width', [1, 2])
def test_soft_boundary_of_an_exact_segmentation_is_its_target(shape, width):
    """A network whose two outputs are both exact has a consistency of 0."""
    segmentation = _random_labels(shape, seed=3)
    one_hot = np.stack([segmentation == label for label in (1, 2, 3)]).astype(np.float32)
    soft = soft_boundary(torch.from_numpy(one_hot)[None], width)[0].numpy()
    np.testing.assert_array_equal(soft, boundary_band(segmentation, [1, 2, 3], width))


def test_class_balanced_bce_by_hand():
    logits = torch.tensor([[[[0.0, 2.0, -1.0, 0.5]]]])
    target = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    probabilities = torch.sigmoid(logits)[0, 0, 0]
    # one positive of four: the positive weighs 3/4, each negative 1/4
    expected = -(0.75 * math.log(probabilities[0]) + 0.25 * sum(math.log(1 - p) for p in probabilities[1:])) / 4
    assert class_balanced_bce(logits, target, None).item() == pytest.approx(expected, rel=1e-6)
    valid = torch.tensor([[[[True, True, False, False]]]])  # two voxels: one positive, one negative
    expected_valid = -(0.5 * math.log(probabilities[0]) + 0.5 * math.log(1 - probabilities[1])) / 2
    assert class_balanced_bce(logits, target, valid).item() == pytest.approx(expected_valid, rel=1e-6)
    no_boundary = torch.zeros_like(target)
    expected_plain = -sum(math.log(1 - p) for p in probabilities) / 4
    assert class_balanced_bce(logits, no_boundary, None).item() == pytest.approx(expected_plain, rel=1e-6)


def _dice_ce():
    return DeepSupervisionWrapper(DC_and_CE_loss({'batch_dice': False, 'smooth': 1e-5, 'do_bg': False, 'ddp': False},
                                                 {}, weight_ce=1, weight_dice=1, ignore_label=None,
                                                 dice_class=MemoryEfficientSoftDiceLoss), [1.0])


def _network():
    pm = tiny_plans_manager(num_level_set_channels=2)
    torch.manual_seed(0)
    return nnUNetTrainerDTC.build_network_architecture(pm, pm.get_configuration('tiny'), 1, 3, True).train()


def _labels(n):
    torch.manual_seed(1)
    return torch.from_numpy(np.stack([_random_labels((16, 16, 16), seed=i, num_labels=2) for i in range(n)]))[:, None]


def test_boundary_consistency_and_loss_reach_both_outputs_and_the_encoder():
    network = _network()
    task = BoundaryTask()
    loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, task=task)
    loss.consistency_weight = 1.0
    label = _labels(2).float()
    target = torch.from_numpy(np.stack([task.target(s[0].numpy(), [1, 2]) for s in label]))
    targets = DTCTargets([label], target, torch.tensor([True, True, False]))
    output = network(torch.randn(3, 1, 16, 16, 16))
    total = loss([output[0]], targets)
    terms = loss.last_terms
    assert all(v.item() > 0 for v in terms.values())
    consistency_only = terms['consistency_loss']
    raw = output[0][:, 3:]
    views = (torch.sigmoid(raw), soft_boundary(torch.softmax(output[0][:, :3], 1)[:, 1:]))
    assert consistency_only.item() == pytest.approx(((views[0] - views[1]) ** 2).mean().item(), rel=1e-5)
    assert terms['sdf_loss'].item() == pytest.approx(class_balanced_bce(raw[:2], target, None).item(), rel=1e-5)
    total.backward()
    head = network.decoder.seg_layers[-1].conv.weight.grad
    assert head[:3].abs().sum() > 0 and head[3:].abs().sum() > 0
    assert network.encoder.stages[0][0].convs[0].conv.weight.grad.abs().sum() > 0


def test_boundary_consistency_alone_sends_gradient_to_both_outputs():
    network = _network()
    loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, task=BoundaryTask())
    loss.consistency_weight = 1.0
    unlabeled_only = DTCTargets([torch.zeros(0, 1, 16, 16, 16)], torch.zeros(0, 2, 16, 16, 16),
                                torch.zeros(2, dtype=torch.bool))
    loss([network(torch.randn(2, 1, 16, 16, 16))[0]], unlabeled_only).backward()
    head = network.decoder.seg_layers[-1].conv.weight.grad
    assert head[:3].abs().sum() > 0 and head[3:].abs().sum() > 0


@pytest.mark.parametrize('num_labeled', [0, 2, 3])
def test_level_set_task_reproduces_dtcs_formula_bit_for_bit(num_labeled):
    network = _network()
    label = _labels(num_labeled).float() if num_labeled else torch.zeros(0, 1, 16, 16, 16)
    sdf = torch.from_numpy(np.stack([compute_sdf(s[0].numpy().astype(np.int16), [1, 2]) for s in label])) \
        if num_labeled else torch.zeros(0, 2, 16, 16, 16)
    targets = DTCTargets([label], sdf, torch.arange(3) < num_labeled)
    output = network(torch.randn(3, 1, 16, 16, 16))[0]
    loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, task=LevelSetTask(K))
    loss.consistency_weight = 0.6
    total = loss([output], targets)

    level_set = torch.tanh(output[:, 3:])
    n = num_labeled
    consistency = (consistency_squared_error_sum(level_set[:n], output[:n, :3], False, K) / level_set.numel() +
                   consistency_squared_error_sum(level_set[n:], output[n:, :3], False, K) / level_set.numel())
    assert torch.equal(loss.last_terms['consistency_loss'], consistency.detach())
    if n:
        assert torch.equal(loss.last_terms['sdf_loss'], sdf_loss(level_set[:n].float(), sdf).detach())
        expected = _dice_ce()([output[:n, :3]], [label]) + 0.3 * sdf_loss(level_set[:n].float(), sdf) + \
            0.6 * consistency
        assert torch.equal(total.detach(), expected.detach())


def test_the_level_set_task_is_the_default_and_its_target_is_compute_sdf():
    assert isinstance(DTCLoss(_dice_ce(), 3, False, None, 0.3, K).task, LevelSetTask)
    segmentation = _random_labels((8, 8, 8), seed=5)
    np.testing.assert_array_equal(LevelSetTask().target(segmentation, [1, 2]), compute_sdf(segmentation, [1, 2]))


def test_masking_absent_classes_is_refused_for_a_task_whose_zero_target_is_not_absence():
    with pytest.raises(ValueError, match='BoundaryTask does not'):
        DTCLoss(_dice_ce(), 3, False, None, 0.3, mask_absent_classes=True, task=BoundaryTask())


def _trainer(nnunet_env, trainer_class):
    return tiny_trainer(nnunet_env.preprocessed, trainer_class)


def test_boundary_trainers_train_the_boundary_task(nnunet_env):
    for trainer_class, unlabeled in ((nnUNetTrainerDTCBoundary, True), (nnUNetTrainerDTCBoundary_LabeledOnly, False)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert isinstance(trainer.loss.task, BoundaryTask) and trainer.loss.task.width == 1
        assert trainer.use_unlabeled_data is unlabeled
    segmentation = {'segmentation': torch.from_numpy(_random_labels((8, 8, 8), seed=2))[None]}
    transform = AuxiliaryTargetTransform(BoundaryTask(), [1, 2])
    np.testing.assert_array_equal(transform.apply(dict(segmentation))['sdf'].numpy(),
                                  boundary_band(segmentation['segmentation'][0].numpy(), [1, 2], 1))


def test_boundary_schedules_train_the_boundary_task_for_the_epochs_in_their_name(nnunet_env):
    from nnunetv2_dtc.trainers.nnUNetTrainerDTCBoundary import nnUNetTrainerDTCBoundary_50epochs
    trainer = _trainer(nnunet_env, nnUNetTrainerDTCBoundary_50epochs)
    assert trainer.num_epochs == 50 and isinstance(trainer.build_auxiliary_task(), BoundaryTask)


class _NoWidth(nnUNetTrainerDTCBoundary):
    boundary_width = 0


def test_a_boundary_width_below_one_is_refused_when_training_starts(nnunet_env):
    with pytest.raises(ValueError, match='_NoWidth: boundary_width = 0 must be an int >= 1'):
        _trainer(nnunet_env, _NoWidth).initialize()
