"""Issue #14's trainer variants: each changes one thing, checked by hand on tiny tensors or on a real trainer built
from a tiny plan; and the gradient-norm diagnostics against a direct autograd computation."""
import math

import numpy as np
import pytest
import torch
from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

from helpers.tiny_plans import tiny_plans_manager, tiny_trainer
from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTeacherTask, class_balanced_sdf_loss
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.gradient_norms import gradient_norms
from nnunetv2_dtc.loss import DTCLoss, present_classes
from nnunetv2_dtc.sdf import compute_sdf
from nnunetv2_dtc.trainers.nnUNetTrainerDTC import nnUNetTrainerDTC
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_BalancedSDF import nnUNetTrainerDTC_BalancedSDF, \
    nnUNetTrainerDTC_BalancedSDF_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_DiceOnly import nnUNetTrainerDTC_DiceOnly, \
    nnUNetTrainerDTC_DiceOnly_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_LevelSetTeacher import nnUNetTrainerDTC_LevelSetTeacher, \
    nnUNetTrainerDTC_LevelSetTeacher_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MaskedSDF import nnUNetTrainerDTC_MaskedSDF, \
    nnUNetTrainerDTC_MaskedSDF_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher import \
    nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher, nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30 import \
    nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30, nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MoreUnlabeled import MORE_UNLABELED_PATCHES_PER_LABELED, \
    nnUNetTrainerDTC_MoreUnlabeled
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_NegativeBoundarySDF import nnUNetTrainerDTC_NegativeBoundarySDF, \
    nnUNetTrainerDTC_NegativeBoundarySDF_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_NegativeBoundarySDF_SoftView import \
    nnUNetTrainerDTC_NegativeBoundarySDF_SoftView, nnUNetTrainerDTC_NegativeBoundarySDF_SoftView_LabeledOnly
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_ShortRamp import nnUNetTrainerDTC_ShortRamp, \
    nnUNetTrainerDTC_ShortRamp_LabeledOnly

K = 1500.0

def _trainer(nnunet_env, trainer_class):
    return tiny_trainer(nnunet_env.preprocessed, trainer_class)


def _dice_ce():
    return DeepSupervisionWrapper(DC_and_CE_loss({'batch_dice': False, 'smooth': 1e-5, 'do_bg': False, 'ddp': False},
                                                 {}, weight_ce=1, weight_dice=1, ignore_label=None,
                                                 dice_class=MemoryEfficientSoftDiceLoss), [1.0])


def test_present_classes_marks_exactly_the_all_zero_sdf_channels():
    segmentation = np.zeros((2, 6, 6), dtype=np.int16)
    segmentation[0, 2:4, 2:4] = 1  # sample 0: class 1 only
    segmentation[1] = 2  # sample 1: class 2 fills the patch
    segmentation[1, 0, 0] = 1  # and one voxel of class 1 (its SDF: 0 on the voxel, > 0 elsewhere)
    sdf = torch.from_numpy(np.stack([compute_sdf(s, [1, 2]) for s in segmentation]))
    assert present_classes(sdf)[:, :, 0, 0].tolist() == [[True, False], [True, True]]


def test_masked_sdf_loss_ignores_absent_classes_by_hand():
    """One labelled 1x4 patch, two classes: class 1 present (target [-1, 0, 1, 1] after normalising), class 2 absent
    (all-zero target). Level set [0, 0, 0, 0] and [0.5, 0.5, 0.5, 0.5]: plain MSE averages all 8 voxels, the masked
    loss only class 1's 4."""
    seg_logits = torch.zeros(1, 3, 1, 4)
    raw_level_set = torch.atanh(torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[0.5, 0.5, 0.5, 0.5]]]]))
    output = [torch.cat((seg_logits, raw_level_set), 1)]
    label = torch.tensor([[[[1, 1, 0, 0]]]]).float()
    sdf = torch.from_numpy(compute_sdf(label[0, 0].numpy().astype(np.int16), [1, 2]))[None]
    class_1 = sdf[0, 0, 0].tolist()
    assert sdf[0, 1].eq(0).all() and class_1[0] < 0 and class_1[1] == 0 and class_1[2] > 0
    targets = DTCTargets([label], sdf, torch.tensor([True]))
    expected_masked = sum(v ** 2 for v in class_1) / 4
    expected_plain = (sum(v ** 2 for v in class_1) + 4 * 0.25) / 8
    for mask, expected in ((True, expected_masked), (False, expected_plain)):
        loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, K, mask_absent_classes=mask)
        loss(output, targets)
        assert loss.last_terms['sdf_loss'].item() == pytest.approx(expected, rel=1e-5)


def test_masked_sdf_trainers_set_the_loss_option_and_the_ablation_drops_unlabelled_data(nnunet_env):
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_MaskedSDF, True),
                                     (nnUNetTrainerDTC_MaskedSDF_LabeledOnly, False)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert trainer.loss.mask_absent_classes and trainer.use_unlabeled_data is unlabeled
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC)
    trainer.initialize()
    assert not trainer.loss.mask_absent_classes


def test_dice_only_supervision_is_nnunets_dice_loss_without_ce(nnunet_env):
    for trainer_class in (nnUNetTrainerDTC_DiceOnly, nnUNetTrainerDTC_DiceOnly_LabeledOnly):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        wrapped = trainer.loss.segmentation_loss
        assert isinstance(wrapped, DeepSupervisionWrapper) and isinstance(wrapped.loss, MemoryEfficientSoftDiceLoss)
    default = _trainer(nnunet_env, nnUNetTrainerDTC)
    default.initialize()
    assert isinstance(default.loss.segmentation_loss.loss, DC_and_CE_loss)


def test_short_ramp_reaches_lambda_max_at_its_fraction_of_the_run(nnunet_env):
    for trainer_class in (nnUNetTrainerDTC_ShortRamp, nnUNetTrainerDTC_ShortRamp_LabeledOnly):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.num_epochs, trainer.num_iterations_per_epoch = 30, 10  # 300 iterations: the ramp ends at 80
        assert trainer.consistency_weight_at(0) == pytest.approx(math.exp(-5))
        assert trainer.consistency_weight_at(40) == pytest.approx(math.exp(-5 * 0.25))
        assert trainer.consistency_weight_at(80) == pytest.approx(1.0)
    default = _trainer(nnunet_env, nnUNetTrainerDTC)
    default.num_epochs, default.num_iterations_per_epoch = 30, 10
    assert default.consistency_weight_at(80) == pytest.approx(math.exp(-5 * (1 - 80 / 300) ** 2))


def test_more_unlabeled_draws_a_multiple_of_the_labelled_batch(nnunet_env):
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_MoreUnlabeled)
    trainer.batch_size = 3
    assert trainer._unlabeled_batch_size_here() == MORE_UNLABELED_PATCHES_PER_LABELED * 3
    default = _trainer(nnunet_env, nnUNetTrainerDTC)
    default.batch_size = 3
    assert default._unlabeled_batch_size_here() == 3


def test_level_set_teacher_keeps_the_loss_and_stops_the_consistency_gradient_at_the_level_set():
    """One labelled and one unlabelled 1x6 patch. The loss value is DTC's; the consistency's gradient reaches the
    segmentation logits exactly as in DTC (d/dp of (s - p)^2 does not depend on where s's gradient goes) and never the
    level set, whose only gradient is then the SDF loss's (labelled sample)."""
    torch.manual_seed(0)
    seg_logits, raw_level_set = torch.randn(2, 2, 1, 6), 0.01 * torch.randn(2, 1, 1, 6)
    label = torch.tensor([[[[1, 1, 0, 0, 0, 0]]]]).float()
    sdf = torch.from_numpy(compute_sdf(label[0, 0].numpy().astype(np.int16), [1]))[None]
    targets = DTCTargets([label], sdf, torch.tensor([True, False]))
    gradients = {}
    for name, task in (('dtc', None), ('teacher', LevelSetTeacherTask(K))):
        logits, level_set = seg_logits.clone().requires_grad_(), raw_level_set.clone().requires_grad_()
        loss = DTCLoss(_dice_ce(), 2, False, None, 0.3, K, task=task)
        loss.consistency_weight = 1.0
        total = loss([torch.cat((logits, level_set), 1)], targets)
        total.backward()
        gradients[name] = (total.item(), logits.grad.clone(), level_set.grad.clone())
    assert gradients['teacher'][0] == pytest.approx(gradients['dtc'][0], rel=1e-6)
    torch.testing.assert_close(gradients['teacher'][1], gradients['dtc'][1])
    assert gradients['teacher'][2][1].abs().max() == 0 and gradients['dtc'][2][1].abs().max() > 0
    tanh = torch.tanh(raw_level_set[0])
    sdf_gradient = 0.3 * 2 * (tanh - sdf[0]) * (1 - tanh ** 2) / 6
    torch.testing.assert_close(gradients['teacher'][2][0], sdf_gradient)


def test_level_set_teacher_trainers_build_the_teacher_task(nnunet_env):
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_LevelSetTeacher, True),
                                     (nnUNetTrainerDTC_LevelSetTeacher_LabeledOnly, False)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert isinstance(trainer.loss.task, LevelSetTeacherTask) and trainer.use_unlabeled_data is unlabeled
    assert type(nnUNetTrainerDTC.build_auxiliary_task()).__name__ == 'LevelSetTask'


def test_masked_sdf_level_set_teacher_leaves_an_absent_class_level_set_without_any_gradient():
    """One labelled 1x4 patch with class 1 present and class 2 absent, one unlabelled patch. In the combined variant
    the absent class's level set has no SDF loss (masked) and no consistency gradient (teacher): its gradient is 0.
    The teacher alone pulls it towards its all-zero target, masked DTC through the consistency; the present class's
    level set gets exactly its hand-computed SDF gradient, beta * 2 (tanh - sdf) (1 - tanh^2) / 4."""
    torch.manual_seed(0)
    seg_logits, raw_level_set = torch.randn(2, 3, 1, 4), 1e-3 * torch.randn(2, 2, 1, 4)  # k x near 1: not saturated
    label = torch.tensor([[[[1, 1, 0, 0]]]]).float()
    sdf = torch.from_numpy(compute_sdf(label[0, 0].numpy().astype(np.int16), [1, 2]))[None]
    targets = DTCTargets([label], sdf, torch.tensor([True, False]))
    gradients = {}
    for name, task, mask in (('combined', LevelSetTeacherTask(K), True), ('teacher', LevelSetTeacherTask(K), False),
                             ('masked', None, True)):
        level_set = raw_level_set.clone().requires_grad_()
        loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, K, mask_absent_classes=mask, task=task)
        loss.consistency_weight = 1.0
        loss([torch.cat((seg_logits, level_set), 1)], targets).backward()
        gradients[name] = level_set.grad
    assert gradients['combined'][:, 1].abs().max() == 0 and gradients['combined'][1].abs().max() == 0
    assert gradients['teacher'][0, 1].abs().max() > 0 and gradients['masked'][:, 1].abs().max() > 0
    tanh = torch.tanh(raw_level_set[0, 0])
    torch.testing.assert_close(gradients['combined'][0, 0], 0.3 * 2 * (tanh - sdf[0, 0]) * (1 - tanh ** 2) / 4)


def _initialized_masked_level_set_teacher(nnunet_env, trainer_class, unlabeled: bool):
    trainer = _trainer(nnunet_env, trainer_class)
    trainer.initialize()
    assert isinstance(trainer.loss.task, LevelSetTeacherTask) and trainer.loss.mask_absent_classes
    assert trainer.use_unlabeled_data is unlabeled
    return trainer


def test_masked_sdf_level_set_teacher_trainers_combine_both_options(nnunet_env):
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher, True),
                                     (nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_LabeledOnly, False)):
        _initialized_masked_level_set_teacher(nnunet_env, trainer_class, unlabeled)


def test_lambda30_teacher_ramps_the_consistency_up_to_30_and_changes_nothing_else(nnunet_env):
    """lambda(t) = 30 exp(-5 (1 - t/T)^2) by hand, 30 times the masked-SDF teacher's at every step; same task,
    masking and (for the ablation) no unlabelled data."""
    reference = _trainer(nnunet_env, nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher)
    total = reference.num_epochs * reference.num_iterations_per_epoch
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30, True),
                                     (nnUNetTrainerDTC_MaskedSDF_LevelSetTeacher_Lambda30_LabeledOnly, False)):
        trainer = _initialized_masked_level_set_teacher(nnunet_env, trainer_class, unlabeled)
        assert trainer.consistency_weight_at(total) == pytest.approx(30.0)
        assert trainer.consistency_weight_at(total // 2) == pytest.approx(30.0 * math.exp(-5 * 0.25))
        for iteration in (0, total // 3, total - 1):
            assert trainer.consistency_weight_at(iteration) == \
                pytest.approx(30.0 * reference.consistency_weight_at(iteration))


def test_negative_boundary_sdf_trainers_target_the_sdf_without_the_zeroed_boundary(nnunet_env):
    """The loader's SDF targets come from trainer.loss.task: by hand on a 1x6 row, -0.5 (not DTC's 0) on the inner
    boundary; the loss, lambda and sharpness stay DTC's."""
    segmentation = np.array([[[0, 1, 1, 1, 1, 0]]], dtype=np.int16)
    dtc = _trainer(nnunet_env, nnUNetTrainerDTC)
    dtc.initialize()
    np.testing.assert_allclose(dtc.loss.task.target(segmentation, [1])[0, 0, 0], [1, 0, -1, -1, 0, 1])
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_NegativeBoundarySDF, True),
                                     (nnUNetTrainerDTC_NegativeBoundarySDF_LabeledOnly, False)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert type(trainer.loss.task) is type(dtc.loss.task) and trainer.use_unlabeled_data is unlabeled
        np.testing.assert_allclose(trainer.loss.task.target(segmentation, [1])[0, 0, 0], [1, -0.5, -1, -1, -0.5, 1])
        assert (trainer.loss.task.sharpness, trainer.loss.sdf_weight, trainer.loss.mask_absent_classes) == \
            (dtc.loss.task.sharpness, dtc.loss.sdf_weight, dtc.loss.mask_absent_classes)
        assert trainer.consistency_weight_at(1234) == dtc.consistency_weight_at(1234)


def test_soft_view_uses_k_50_on_the_negative_boundary_target_by_hand(nnunet_env):
    """The consistency's level-set view and its gradient at a level set of +0.05 (one voxel outside, as measured), by
    hand: sigmoid(-50 * 0.05) = 0.0759 and d view / d raw = -50 v (1 - v) (1 - tanh^2), against DTC's k = 1500 whose
    view there is 2.7e-33 with no gradient left; the target stays the negative-boundary SDF."""
    segmentation = np.array([[[0, 1, 1, 1, 1, 0]]], dtype=np.int16)
    level_set = 0.05
    for trainer_class, unlabeled in ((nnUNetTrainerDTC_NegativeBoundarySDF_SoftView, True),
                                     (nnUNetTrainerDTC_NegativeBoundarySDF_SoftView_LabeledOnly, False)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert trainer.use_unlabeled_data is unlabeled
        np.testing.assert_allclose(trainer.loss.task.target(segmentation, [1])[0, 0, 0], [1, -0.5, -1, -1, -0.5, 1])
        raw = torch.full((1, 1, 1), math.atanh(level_set), dtype=torch.float64, requires_grad=True)
        view, _ = trainer.loss.task.consistency_views(raw, torch.zeros(1, 1, 1))
        expected = 1 / (1 + math.exp(50 * level_set))
        assert view.item() == pytest.approx(expected) and expected == pytest.approx(0.0759, abs=1e-4)
        view.sum().backward()
        assert raw.grad.item() == pytest.approx(-50 * expected * (1 - expected) * (1 - level_set ** 2))
    dtc_raw = torch.full((1, 1, 1), math.atanh(level_set), requires_grad=True)
    dtc_view, _ = nnUNetTrainerDTC_NegativeBoundarySDF.build_auxiliary_task().consistency_views(dtc_raw,
                                                                                                torch.zeros(1, 1, 1))
    dtc_view.sum().backward()
    assert dtc_view.item() < 1e-30 and abs(dtc_raw.grad.item()) < 1e-20


def test_class_balanced_sdf_loss_by_hand():
    """Sample 0: class 1 on a 1x6 row (DTC target [1, 0, -1, -1, 0, 1]), class 2 absent (all zeros); sample 1 all
    ignored. Level set 0.5 everywhere: class 1 inside (target <= 0) (0.25 + 2.25 + 2.25 + 0.25) / 4 = 1.25, outside
    0.25, balanced 0.75 (plain MSE 5.5 / 6); class 2 0.25 over its one group; sample 1 left out: (0.75 + 0.25) / 2."""
    target = torch.zeros(2, 2, 1, 6)
    target[0, 0, 0] = torch.tensor([1.0, 0, -1, -1, 0, 1])
    target[1] = target[0]
    level_set = torch.full_like(target, 0.5)
    valid = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    valid[1] = False
    assert class_balanced_sdf_loss(level_set[:1, :1], target[:1, :1]).item() == pytest.approx(0.75)
    assert class_balanced_sdf_loss(level_set, target, valid).item() == pytest.approx(0.5)


def _balanced_reference(level_set: np.ndarray, target: np.ndarray, valid: np.ndarray) -> float:
    """Slow reference: loop over samples and channels, mean over the non-empty groups, mean over units."""
    units = []
    for s in range(target.shape[0]):
        for c in range(target.shape[1]):
            errors, t, v = (level_set[s, c] - target[s, c]) ** 2, target[s, c], valid[s, 0]
            means = [errors[group & v].mean() for group in (t <= 0, t > 0) if (group & v).any()]
            if means:
                units.append(sum(means) / len(means))
    return sum(units) / len(units)


def test_class_balanced_sdf_loss_matches_a_loop_on_random_blobs():
    rng = np.random.default_rng(0)
    segmentation = np.zeros((3, 8, 9, 7), dtype=np.int16)
    segmentation[0, 2:5, 3:7, 1:4] = 1
    segmentation[1, 1:3, 1:3, 1:3] = 2
    segmentation[1, 5:8, 4:9, 2:6] = 1
    segmentation[2] = 2
    target = np.stack([compute_sdf(s, [1, 2]) for s in segmentation])
    level_set = np.tanh(rng.normal(size=target.shape)).astype(np.float32)
    valid = rng.random((3, 1, 8, 9, 7)) > 0.3
    loss = class_balanced_sdf_loss(torch.from_numpy(level_set), torch.from_numpy(target), torch.from_numpy(valid))
    assert loss.item() == pytest.approx(_balanced_reference(level_set, target, valid), rel=1e-5)
    plain = ((level_set - target) ** 2)[np.broadcast_to(valid, target.shape)].mean()
    assert abs(loss.item() - plain) > 0.01


def test_balanced_sdf_trainers_weigh_inside_and_outside_equally(nnunet_env):
    """DTCLoss of the trainers' task on one labelled 1x6 patch (level set 0.5, target by hand above): 0.75 against
    nnUNetTrainerDTC's plain 5.5 / 6; target, sharpness and lambda stay DTC's."""
    seg_logits = torch.zeros(1, 2, 1, 6)
    output = [torch.cat((seg_logits, torch.full((1, 1, 1, 6), math.atanh(0.5))), 1)]
    label = torch.tensor([[[[0, 1, 1, 1, 1, 0]]]]).float()
    dtc = _trainer(nnunet_env, nnUNetTrainerDTC)
    dtc.initialize()
    sdf = torch.from_numpy(dtc.loss.task.target(label[0, 0].numpy().astype(np.int16), [1]))[None]
    targets = DTCTargets([label], sdf, torch.tensor([True]))
    for trainer_class, unlabeled, expected in ((nnUNetTrainerDTC, True, 5.5 / 6),
                                               (nnUNetTrainerDTC_BalancedSDF, True, 0.75),
                                               (nnUNetTrainerDTC_BalancedSDF_LabeledOnly, False, 0.75)):
        trainer = _trainer(nnunet_env, trainer_class)
        trainer.initialize()
        assert trainer.use_unlabeled_data is unlabeled
        loss = DTCLoss(_dice_ce(), 2, False, None, 0.3, task=trainer.build_auxiliary_task())
        loss(output, targets)
        assert loss.last_terms['sdf_loss'].item() == pytest.approx(expected, rel=1e-5)
        assert (trainer.loss.task.sharpness, trainer.loss.sdf_weight) == (dtc.loss.task.sharpness, dtc.loss.sdf_weight)
        assert trainer.consistency_weight_at(1234) == dtc.consistency_weight_at(1234)


class _NoUnlabeledPatches(nnUNetTrainerDTC):
    unlabeled_patches_per_labeled = 0


def test_zero_unlabeled_patches_per_labeled_points_to_the_ablation_switch(nnunet_env):
    with pytest.raises(ValueError, match='unlabeled_patches_per_labeled = 0 must be an int >= 1.*use_unlabeled_data'):
        _trainer(nnunet_env, _NoUnlabeledPatches).initialize()


def _network():
    pm = tiny_plans_manager(num_level_set_channels=2)
    torch.manual_seed(0)
    return nnUNetTrainerDTC.build_network_architecture(pm, pm.get_configuration('tiny'), 1, 3, True).train()


def test_gradient_norms_equal_a_direct_autograd_computation_and_leave_training_unchanged():
    network = _network()
    loss = DTCLoss(_dice_ce(), 3, False, None, 0.3, K)
    loss.consistency_weight = 0.5
    torch.manual_seed(1)
    label = torch.randint(0, 3, (2, 1, 16, 16, 16)).float()
    sdf = torch.from_numpy(np.stack([compute_sdf(s[0].numpy().astype(np.int16), [1, 2]) for s in label]))
    targets = DTCTargets([label], sdf, torch.tensor([True, True, False]))
    data = torch.randn(3, 1, 16, 16, 16)
    parameters = list(network.parameters())

    loss.measure_gradients_of = parameters
    total = loss([network(data)[0]], targets)
    measured = loss.last_gradient_norms
    assert loss.measure_gradients_of is None  # one measurement per request
    total.backward()  # the graph survived the measurement
    trained_grads = [None if p.grad is None else p.grad.clone() for p in parameters]

    network.zero_grad()
    reference = DTCLoss(_dice_ce(), 3, False, None, 0.3, K)
    reference.consistency_weight = 0.5
    reference([network(data)[0]], targets).backward()
    assert sum(g is not None for g in trained_grads) > 10
    for with_measurement, without in zip(trained_grads, (p.grad for p in parameters)):
        assert (with_measurement is None) == (without is None)
        if without is not None:
            torch.testing.assert_close(with_measurement, without)

    output = network(data)[0]
    level_set = torch.tanh(output[:, 3:])
    probabilities = torch.softmax(output[:, :3], 1)[:, 1:]
    squared = (torch.sigmoid(-K * level_set) - probabilities) ** 2
    direct = {'supervised': _dice_ce()([output[:2, :3]], [label]),
              'sdf': 0.3 * ((level_set[:2] - sdf) ** 2).mean(),
              'consistency': 0.5 * squared.mean(),
              'consistency_unlabeled': 0.5 * squared[2:].sum() / squared.numel()}
    for name, term in direct.items():
        grads = torch.autograd.grad(term, parameters, retain_graph=True, allow_unused=True)
        expected = math.sqrt(sum(float((g ** 2).sum()) for g in grads if g is not None))
        assert measured[name] == pytest.approx(expected, rel=1e-4), name
    assert 0 < measured['consistency_unlabeled'] < measured['consistency']


def test_a_term_without_gradient_has_norm_zero():
    parameter = torch.nn.Parameter(torch.ones(3))
    norms = gradient_norms({'used': (parameter * 2).sum(), 'constant': torch.zeros(())}, [parameter])
    assert norms == {'used': pytest.approx(math.sqrt(12)), 'constant': 0.0}
