"""nnUNetTrainerDTC_MultiScaleConsistency (issue #14, hypothesis 3): the consistency at every deep-supervision output,
checked by hand on tiny tensors and against a loop over blocks on random ones; the trainers' wiring."""
import pytest
import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper

from helpers.tiny_plans import tiny_trainer
from nnunetv2_dtc.auxiliary_tasks.boundary import BoundaryTask
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.loss import DTCLoss
from nnunetv2_dtc.multiscale_consistency_loss import MultiScaleConsistencyDTCLoss
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MultiScaleConsistency import nnUNetTrainerDTC_MultiScaleConsistency, \
    nnUNetTrainerDTC_MultiScaleConsistency_LabeledOnly

K = 1500.0


def _zero_loss(output, target):
    return torch.zeros(())


def _loss(loss_class, weights, **kwargs):
    loss = loss_class(DeepSupervisionWrapper(_zero_loss, weights), 2, False, None, 0.3, K, **kwargs)
    loss.consistency_weight = 1.0
    return loss


def _targets(num_labeled: int, batch_size: int, spatial, num_scales: int = 2) -> DTCTargets:
    label = torch.zeros(num_labeled, 1, *spatial)
    return DTCTargets([label] * num_scales, torch.zeros(num_labeled, 1, *spatial),
                      torch.tensor([True] * num_labeled + [False] * (batch_size - num_labeled)))


def test_consistency_at_two_scales_by_hand():
    """One labelled, one unlabelled 1x4 sample, one class, a 1x2 deep-supervision output, weights 1 and 0.5: the
    consistency is mean((view - p)^2) at full resolution plus 0.5 mean((pairwise mean of the view - p_low)^2), and
    the unlabelled sample's low-resolution output gets a gradient (none in plain DTC)."""
    full = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[2.0, 1.0, -1.0, -2.0]], [[-0.3, -0.3, 0.4, 0.4]]],
                         [[[0.0, 0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, -1.0]], [[-1.0, 0.0002, -0.0002, 1.0]]]],
                        requires_grad=True)
    low = torch.tensor([[[[0.0, 0.0]], [[1.0, -1.0]]], [[[0.0, 0.0]], [[-0.5, 0.5]]]], requires_grad=True)
    targets = _targets(1, 2, (1, 4))
    loss = _loss(MultiScaleConsistencyDTCLoss, [1.0, 0.5])
    loss([full, low], targets).backward()

    view = torch.sigmoid(-K * torch.tanh(full.detach()[:, 2:]))
    view_low = torch.stack([(view[..., 0] + view[..., 1]) / 2, (view[..., 2] + view[..., 3]) / 2], -1)
    p_full, p_low = torch.softmax(full.detach()[:, :2], 1)[:, 1:], torch.softmax(low.detach(), 1)[:, 1:]
    expected = ((view - p_full) ** 2).mean() + 0.5 * ((view_low - p_low) ** 2).mean()
    assert loss.last_terms['consistency_loss'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert low.grad[1].abs().max() > 0

    low.grad = None
    plain = _loss(DTCLoss, [1.0, 0.5])
    plain([full, low], targets).backward()
    assert plain.last_terms['consistency_loss'].item() == pytest.approx(((view - p_full) ** 2).mean().item())
    assert low.grad is None or low.grad.abs().max() == 0


def test_consistency_over_scales_matches_a_loop_over_blocks():
    """Random 3D outputs at 8^3, 4^3 and 2^3 with nnU-Net's normalised weights (the lowest 0): the view averaged
    over each 2^s block by loops."""
    generator = torch.Generator().manual_seed(0)
    weights = [1 / 1.5, 0.5 / 1.5, 0.0]
    outputs = [torch.randn(3, 3, 8, 8, 8, generator=generator)] + \
        [torch.randn(3, 2, n, n, n, generator=generator) for n in (4, 2)]
    outputs[0][:, 2:] *= 0.001  # level sets near 0, where the view is neither 0 nor 1
    loss = _loss(MultiScaleConsistencyDTCLoss, weights)
    loss(outputs, _targets(1, 3, (8, 8, 8), num_scales=3))

    view = torch.sigmoid(-K * torch.tanh(outputs[0][:, 2:]))
    expected = 0.0
    for weight, output in zip(weights[:2], outputs[:2]):
        p = torch.softmax(output[:, :2], 1)[:, 1:]
        block = 8 // output.shape[2]
        total = 0.0
        for b in range(3):
            for x in range(output.shape[2]):
                for y in range(output.shape[3]):
                    for z in range(output.shape[4]):
                        mean_view = view[b, 0, x * block:(x + 1) * block, y * block:(y + 1) * block,
                                         z * block:(z + 1) * block].mean()
                        total += float((mean_view - p[b, 0, x, y, z]) ** 2)
        expected += weight * total / p.numel()
    assert loss.last_terms['consistency_loss'].item() == pytest.approx(expected, rel=1e-5)


def test_multiscale_consistency_needs_a_level_set_task_and_the_full_resolution_output():
    with pytest.raises(ValueError, match='needs a level-set task'):
        _loss(MultiScaleConsistencyDTCLoss, [1.0, 0.5], task=BoundaryTask())
    with pytest.raises(ValueError, match='leave out the full-resolution output'):
        _loss(MultiScaleConsistencyDTCLoss, [0.0, 1.0])


def test_multiscale_trainers_take_the_deep_supervision_weights_of_their_segmentation_loss(nnunet_env):
    for trainer_class, uses_unlabeled in ((nnUNetTrainerDTC_MultiScaleConsistency, True),
                                          (nnUNetTrainerDTC_MultiScaleConsistency_LabeledOnly, False)):
        trainer = tiny_trainer(nnunet_env.preprocessed, trainer_class)
        trainer.initialize()
        assert type(trainer.loss) is MultiScaleConsistencyDTCLoss
        assert trainer.loss.scale_weights == trainer.loss.segmentation_loss.weight_factors
        assert trainer.use_unlabeled_data is uses_unlabeled
