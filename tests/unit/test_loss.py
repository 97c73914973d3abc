"""DTC's loss terms, ramp-up and their gradients, on nnU-Net's real loss and network classes."""
import math

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from helpers.tiny_plans import tiny_plans_manager
from nnunetv2_dtc.dataloading.batch import DTCTargets, dtc_targets
from nnunetv2_dtc.level_set_head import split_segmentation_and_level_set
from nnunetv2_dtc.loss import DTCLoss, consistency_squared_error_sum, sdf_loss, sigmoid_rampup_weight
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC

K = 1500.0


def mean_consistency(level_set: torch.Tensor, seg_logits: torch.Tensor, has_regions: bool) -> torch.Tensor:
    """DTC's consistency term of one batch, as DTCLoss forms it."""
    return consistency_squared_error_sum(level_set, seg_logits, has_regions, K) / level_set.numel()


def test_rampup_matches_dtc_formula():
    assert sigmoid_rampup_weight(0, 100, 1.0) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup_weight(50, 100, 1.0) == pytest.approx(math.exp(-5 * 0.25))
    assert sigmoid_rampup_weight(100, 100, 2.0) == pytest.approx(2.0)
    assert sigmoid_rampup_weight(250, 100, 2.0) == pytest.approx(2.0)  # clipped after the ramp
    assert sigmoid_rampup_weight(-3, 100, 1.0) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup_weight(7, 0, 0.7) == pytest.approx(0.7)  # no ramp-up
    values = [sigmoid_rampup_weight(t, 40, 1.0) for t in range(41)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_consistency_matches_a_hand_computation_softmax_and_sigmoid():
    rng = np.random.default_rng(0)
    level_set = rng.uniform(-0.01, 0.01, (2, 2, 3, 3)).astype(np.float32)
    logits = rng.normal(size=(2, 3, 3, 3)).astype(np.float32)
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.mean((1 / (1 + np.exp(K * level_set)) - softmax[:, 1:]) ** 2)
    got = mean_consistency(torch.from_numpy(level_set), torch.from_numpy(logits), False)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    region_logits = logits[:, :2]
    expected_regions = np.mean((1 / (1 + np.exp(K * level_set)) - 1 / (1 + np.exp(-region_logits))) ** 2)
    got_regions = mean_consistency(torch.from_numpy(level_set), torch.from_numpy(region_logits), True)
    assert got_regions.item() == pytest.approx(expected_regions, rel=1e-5)


def test_consistency_is_float32_for_half_inputs():
    level_set = torch.zeros(1, 1, 4, 4, dtype=torch.float16)
    logits = torch.zeros(1, 2, 4, 4, dtype=torch.float16)
    assert mean_consistency(level_set, logits, False).dtype == torch.float32


def test_sdf_loss_excludes_invalid_voxels():
    level_set = torch.tensor([[[0.5, -0.5, 0.0]]])
    target = torch.tensor([[[0.0, 0.0, 1.0]]])
    assert sdf_loss(level_set, target).item() == pytest.approx((0.25 + 0.25 + 1) / 3)
    valid = torch.tensor([[[True, True, False]]])
    assert sdf_loss(level_set, target, valid).item() == pytest.approx(0.25)


def _segmentation_loss(regions: bool, ignore_label=None):
    if regions:
        loss = DC_and_BCE_loss({}, {'batch_dice': False, 'do_bg': True, 'smooth': 1e-5, 'ddp': False},
                               use_ignore_label=ignore_label is not None, dice_class=MemoryEfficientSoftDiceLoss)
    else:
        loss = DC_and_CE_loss({'batch_dice': False, 'smooth': 1e-5, 'do_bg': False, 'ddp': False}, {},
                              weight_ce=1, weight_dice=1, ignore_label=ignore_label,
                              dice_class=MemoryEfficientSoftDiceLoss)
    return DeepSupervisionWrapper(loss, [2 / 3, 1 / 3])


def _network(num_segmentation_channels=3, num_level_set_channels=2):
    pm = tiny_plans_manager(num_level_set_channels=num_level_set_channels)
    torch.manual_seed(0)
    network = nnUNetTrainerDTC.build_network_architecture(pm, pm.get_configuration('tiny'), 1,
                                                          num_segmentation_channels, True)
    return network.train()


def _targets(num_labeled: int, num_total: int, ignore_label=None):
    torch.manual_seed(1)
    full = torch.randint(0, 3, (num_labeled, 1, 16, 16, 16)).float()
    if ignore_label is not None:
        full[:, :, :4] = ignore_label
    segmentation = [full, full[:, :, ::2, ::2, ::2]]
    sdf = torch.rand(num_labeled, 2, 16, 16, 16) * 2 - 1
    is_labeled = torch.arange(num_total) < num_labeled
    return DTCTargets(segmentation, sdf, is_labeled)


def test_total_is_the_weighted_sum_and_gradients_reach_both_outputs():
    network = _network()
    loss = DTCLoss(_segmentation_loss(False), 3, False, None, sdf_weight=0.3, level_set_sharpness=K)
    loss.consistency_weight = 0.25
    targets = _targets(2, 4)
    output = network(torch.randn(4, 1, 16, 16, 16))
    total = loss(output, targets)
    t = loss.last_terms
    assert total.item() == pytest.approx((t['supervised_loss'] + 0.3 * t['sdf_loss']
                                          + 0.25 * t['consistency_loss']).item(), rel=1e-6)
    assert all(v.item() > 0 for v in t.values())
    # the supervised term is nnU-Net's own loss on the labelled samples, unchanged
    seg_only = [output[0][:2, :3], output[1][:2]]
    assert t['supervised_loss'].item() == pytest.approx(_segmentation_loss(False)(seg_only,
                                                                                  targets.segmentation).item())
    total.backward()
    head_grad = network.decoder.seg_layers[-1].conv.weight.grad
    assert head_grad[:3].abs().sum() > 0  # segmentation output
    assert head_grad[3:].abs().sum() > 0  # level-set output
    assert network.encoder.stages[0][0].convs[0].conv.weight.grad.abs().sum() > 0


def test_sdf_term_reaches_only_the_level_set_output():
    network = _network()
    output = network(torch.randn(2, 1, 16, 16, 16))
    _, level_set = split_segmentation_and_level_set(output[0], 3)
    sdf_loss(level_set, _targets(2, 2).sdf).backward()
    head_grad = network.decoder.seg_layers[-1].conv.weight.grad
    assert head_grad[:3].abs().sum() == 0 and head_grad[3:].abs().sum() > 0


def test_a_batch_of_only_unlabelled_samples_trains_through_consistency():
    network = _network()
    loss = DTCLoss(_segmentation_loss(False), 3, False, None, sdf_weight=0.3, level_set_sharpness=K)
    loss.consistency_weight = 1.0
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    unlabeled_only = DTCTargets([torch.zeros(0, 1, 16, 16, 16), torch.zeros(0, 1, 8, 8, 8)],
                                torch.zeros(0, 2, 16, 16, 16), torch.zeros(3, dtype=torch.bool))
    total = loss(network(torch.randn(3, 1, 16, 16, 16)), unlabeled_only)
    assert loss.last_terms['supervised_loss'].item() == 0 and loss.last_terms['sdf_loss'].item() == 0
    assert total.item() == pytest.approx(loss.last_terms['consistency_loss'].item())
    total.backward()
    optimizer.step()
    changed = [k for k, v in network.state_dict().items() if not torch.equal(v, before[k])]
    assert any('seg_layers.1.conv' in k for k in changed)
    assert any(k.startswith('encoder') for k in changed)


def test_ignore_label_voxels_take_no_part_in_the_sdf_term():
    network = _network()
    loss = DTCLoss(_segmentation_loss(False, ignore_label=3), 3, False, 3, sdf_weight=0.3, level_set_sharpness=K)
    targets = _targets(2, 2, ignore_label=3)
    output = network(torch.randn(2, 1, 16, 16, 16))
    loss(output, targets)
    _, level_set = split_segmentation_and_level_set(output[0], 3)
    annotated = (targets.segmentation[0] != 3).expand(-1, 2, -1, -1, -1)
    expected = ((level_set - targets.sdf) ** 2)[annotated].mean()
    assert loss.last_terms['sdf_loss'].item() == pytest.approx(expected.item(), rel=1e-5)


def test_plain_targets_give_exactly_nnunets_loss():
    network = _network().eval()
    loss = DTCLoss(_segmentation_loss(False), 3, False, None, sdf_weight=0.3, level_set_sharpness=K)
    with torch.no_grad():
        output = network(torch.randn(2, 1, 16, 16, 16))
        targets = _targets(2, 2).segmentation
        assert loss(output, targets).item() == _segmentation_loss(False)(output, targets).item()


def test_labelled_samples_must_come_first():
    with pytest.raises(ValueError, match='labelled samples first'):
        DTCTargets([], torch.zeros(1), torch.tensor([False, True])).num_labeled


@pytest.mark.parametrize('num_labeled', [0, 1, 2, 3])
def test_split_loss_and_gradients_equal_a_sliced_reference(num_labeled):
    """DTCLoss splits the batch and channels with `split` for speed; loss and gradients must be the plain formula's."""
    network = _network()
    loss = DTCLoss(_segmentation_loss(False), 3, False, None, sdf_weight=0.3, level_set_sharpness=K)
    loss.consistency_weight = 0.6
    targets = _targets(num_labeled, 3)
    output = [o.detach().requires_grad_() for o in network(torch.randn(3, 1, 16, 16, 16))]
    reference_output = [o.detach().clone().requires_grad_() for o in output]

    loss(output, targets).backward()

    full = reference_output[0]
    level_set = torch.tanh(full[:, 3:])
    consistency = ((torch.sigmoid(-K * level_set) - torch.softmax(full[:, :3], 1)[:, 1:]) ** 2).mean()
    reference = 0.6 * consistency
    if num_labeled:
        reference = reference + _segmentation_loss(False)([full[:num_labeled, :3], reference_output[1][:num_labeled]],
                                                          targets.segmentation) \
            + 0.3 * ((level_set[:num_labeled] - targets.sdf) ** 2).mean()
    reference.backward()
    assert loss.last_terms['consistency_loss'].item() == pytest.approx(consistency.item(), rel=1e-5)
    for fast, slow in zip(output, reference_output):
        torch.testing.assert_close(fast.grad, slow.grad, rtol=1e-4, atol=1e-9)


def test_dtc_targets_of_a_loader_batch_with_and_without_deep_supervision():
    full, half = torch.zeros(2, 1, 8, 8, 8), torch.zeros(2, 1, 4, 4, 4)
    sdf, is_labeled = torch.rand(2, 1, 8, 8, 8), torch.tensor([True, True, False])
    with_scales = dtc_targets({'target': [full, half, sdf], 'is_labeled': is_labeled}, deep_supervision=True)
    assert isinstance(with_scales.segmentation, list) and len(with_scales.segmentation) == 2
    assert with_scales.segmentation[1] is half and with_scales.sdf is sdf
    plain = dtc_targets({'target': [full, sdf], 'is_labeled': is_labeled}, deep_supervision=False)
    assert plain.segmentation is full and plain.sdf is sdf and plain.num_labeled == 2
