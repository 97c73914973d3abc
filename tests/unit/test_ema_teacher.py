"""nnUNetTrainerDTC_EMATeacher (issue #14, hypothesis 12), nnUNetTrainerDTC_EMATeacherOnUnlabeled (hypothesis 13),
nnUNetTrainerDTC_NoisyEMATeacher (hypothesis 14) and nnUNetTrainerDTC_MirroredEMATeacher (hypothesis 15): the EMA
update by hand, the teacher-input noise's distribution, the mirror draws' distribution, the loss taking its
consistency view from the teacher's channels (of the whole batch, or of its unlabelled samples only), and real
training steps of the trainers built from a tiny plan."""
import math
import os
from collections import Counter

import numpy as np
import pytest
import torch
from batchgenerators.utilities.file_and_folder_operations import isfile, join

from helpers.tiny_plans import tiny_trainer
from nnunetv2_dtc.dataloading.batch import DTCTargets
from nnunetv2_dtc.ema_teacher import EMATeacher, ema_alpha, random_mirror_dims, with_clipped_gaussian_noise
from nnunetv2_dtc.loss import DTCLoss
from nnunetv2_dtc.sdf import compute_sdf
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacher import nnUNetTrainerDTC_EMATeacher, \
    nnUNetTrainerDTC_EMATeacher_LabeledOnly, teacher_checkpoint_path
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_EMATeacherOnUnlabeled import nnUNetTrainerDTC_EMATeacherOnUnlabeled
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_MirroredEMATeacher import nnUNetTrainerDTC_MirroredEMATeacher
from nnunetv2_dtc.trainers.nnUNetTrainerDTC_NoisyEMATeacher import nnUNetTrainerDTC_NoisyEMATeacher

K = 1500.0

def test_ema_alpha_starts_at_zero_and_is_capped_by_the_decay():
    assert [ema_alpha(step, 0.99) for step in range(4)] == [0.0, 0.5, pytest.approx(2 / 3), 0.75]
    assert ema_alpha(10_000, 0.99) == 0.99


def test_ema_teacher_update_by_hand():
    student = torch.nn.Linear(1, 1, bias=False)
    teacher = EMATeacher(student, decay=0.6)
    assert not teacher.network.weight.requires_grad
    values = [2.0, 4.0, 10.0]
    expected = []
    for step, value in enumerate(values):
        with torch.no_grad():
            student.weight.fill_(value)
        teacher.update(student)
        alpha = min(1 - 1 / (step + 1), 0.6)
        expected.append(value if step == 0 else alpha * expected[-1] + (1 - alpha) * value)
        assert teacher.network.weight.item() == pytest.approx(expected[-1])
    assert expected == pytest.approx([2.0, 3.0, 0.6 * 3.0 + 0.4 * 10.0])
    assert student.weight.item() == 10.0  # the student is never written


def test_ema_decay_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match='EMA decay must lie in'):
        EMATeacher(torch.nn.Linear(1, 1), decay=1.0)


def test_clipped_gaussian_noise_has_the_asked_spread_and_never_exceeds_the_clip():
    """Against the normal distribution: with std 0.1 and clip 0.2 a voxel is clipped with probability
    P(|z| > 2) = erfc(2 / sqrt(2)) = 0.0455, and without a clip the noise's standard deviation is 0.1."""
    torch.manual_seed(0)
    data = torch.linspace(-3, 3, 1_000_000).reshape(100, 100, 100)
    noise = with_clipped_gaussian_noise(data, 0.1, 0.2) - data
    assert noise.abs().max() <= 0.2 + 1e-6
    assert (noise.abs() > 0.2 - 1e-6).float().mean().item() == pytest.approx(math.erfc(2 / math.sqrt(2)), abs=2e-3)
    assert (with_clipped_gaussian_noise(data, 0.1, 10.0) - data).std().item() == pytest.approx(0.1, rel=0.01)
    assert torch.equal(with_clipped_gaussian_noise(data, 0.0, 0.2), data)
    with pytest.raises(ValueError, match='noise std and clip must be >= 0'):
        with_clipped_gaussian_noise(data, -0.1, 0.2)


@pytest.mark.parametrize('mirror_axes, tensor_dims', [((0, 1, 2), (2, 3, 4)), ((0, 1), (2, 3)), ((1, 2), (3, 4))])
def test_random_mirror_dims_draws_every_non_empty_subset_of_the_mirror_axes_equally_often(mirror_axes, tensor_dims):
    """7000 draws: each of the 2^n - 1 non-empty subsets of the axes, shifted past batch and channel, about equally
    often (within 5 * sqrt(expected), a little looser than 5 binomial standard deviations, sqrt(7000 * 1/7 * 6/7) = 29
    draws for three axes), the empty one never."""
    torch.manual_seed(0)
    draws = 7000
    counts = Counter(random_mirror_dims(mirror_axes) for _ in range(draws))
    subsets = {tuple(d for bit, d in enumerate(tensor_dims) if s >> bit & 1) for s in range(1, 2 ** len(tensor_dims))}
    assert set(counts) == subsets
    expected = draws / len(subsets)
    assert all(abs(count - expected) < 5 * math.sqrt(expected) for count in counts.values())


@pytest.mark.parametrize('mirror_axes', [None, ()])
def test_random_mirror_dims_without_mirror_axes_is_refused(mirror_axes):
    with pytest.raises(ValueError, match='needs mirror axes'):
        random_mirror_dims(mirror_axes)


def _one_labelled_one_unlabelled():
    """Segmentation logits of one labelled and one unlabelled 1x4 sample (one class), the labelled one's SDF target,
    its DTCTargets, and a DTCLoss (beta 0.3, lambda 1) whose supervised term is 0."""
    seg_logits = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[2.0, 1.0, -1.0, -2.0]]],
                               [[[0.0, 0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, -1.0]]]], requires_grad=True)
    label = torch.tensor([[[[1, 1, 0, 0]]]]).float()
    sdf = torch.from_numpy(compute_sdf(label[0, 0].numpy().astype(np.int16), [1]))[None]
    loss = DTCLoss(lambda output, target: torch.zeros(()), 2, False, None, 0.3, K)
    loss.consistency_weight = 1.0
    return seg_logits, sdf, DTCTargets(label, sdf, torch.tensor([True, False])), loss


def test_loss_takes_the_consistency_view_from_the_teacher_and_trains_the_segmentation_only():
    """One labelled and one unlabelled 1x4 sample, one class. The consistency is
    mean((sigmoid(-k tanh(teacher)) - p)^2) over both samples; the student's level set gets the SDF loss's gradient
    only (none on the unlabelled sample); the teacher's channels are used once."""
    seg_logits, sdf, targets, loss = _one_labelled_one_unlabelled()
    student_raw = torch.full((2, 1, 1, 4), 0.1, requires_grad=True)
    teacher_raw = torch.tensor([[[[-1.0, -0.001, 0.001, 1.0]]], [[[-1.0, 1.0, 1.0, 1.0]]]])
    loss.teacher_auxiliary = teacher_raw
    total = loss([torch.cat((seg_logits, student_raw), 1)], targets)

    probabilities = torch.softmax(seg_logits.detach(), 1)[:, 1:]
    expected = ((torch.sigmoid(-K * torch.tanh(teacher_raw)) - probabilities) ** 2).mean()
    assert loss.last_terms['consistency_loss'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.teacher_auxiliary is None
    total.backward()
    tanh = torch.tanh(student_raw.detach()[0])
    torch.testing.assert_close(student_raw.grad[0], 0.3 * 2 * (tanh - sdf[0]) * (1 - tanh ** 2) / 4)
    assert student_raw.grad[1].abs().max() == 0 and seg_logits.grad[1].abs().max() > 0

    loss.teacher_auxiliary = teacher_raw[:1]
    with pytest.raises(RuntimeError, match='must see the same batch'):
        loss([torch.cat((seg_logits, student_raw), 1)], targets)


def test_loss_takes_the_teachers_view_of_the_unlabelled_samples_only_when_told():
    """The same two samples: the labelled one's consistency uses the student's own level set (with its gradient, as
    plain DTC), the unlabelled one's the teacher's channels, which then cover that sample only."""
    seg_logits, sdf, targets, loss = _one_labelled_one_unlabelled()
    student_raw = torch.tensor([[[[-0.001, -0.0005, 0.0005, 0.001]]], [[[0.1, 0.1, 0.1, 0.1]]]], requires_grad=True)
    teacher_raw = torch.tensor([[[[-1.0, 1.0, 1.0, 1.0]]]])
    loss.teacher_views_labeled = False
    loss.teacher_auxiliary = teacher_raw
    total = loss([torch.cat((seg_logits, student_raw), 1)], targets)

    probabilities = torch.softmax(seg_logits.detach(), 1)[:, 1:]
    views = torch.cat((torch.tanh(student_raw.detach()[:1]), torch.tanh(teacher_raw)))
    expected = ((torch.sigmoid(-K * views) - probabilities) ** 2).mean()
    assert loss.last_terms['consistency_loss'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.teacher_auxiliary is None
    total.backward()
    tanh = torch.tanh(student_raw.detach()[0])
    sdf_gradient_alone = 0.3 * 2 * (tanh - sdf[0]) * (1 - tanh ** 2) / 4
    assert (student_raw.grad[0] - sdf_gradient_alone).abs().max() > 1e-3  # the consistency reaches the level set
    assert student_raw.grad[1].abs().max() == 0 and seg_logits.grad[1].abs().max() > 0

    loss.teacher_auxiliary = torch.cat((teacher_raw, teacher_raw))
    with pytest.raises(RuntimeError, match='must see the same batch'):
        loss([torch.cat((seg_logits, student_raw), 1)], targets)


def _trainer(nnunet_env, trainer_class):
    trainer = tiny_trainer(nnunet_env.preprocessed, trainer_class)
    trainer.initialize()
    return trainer


def _batch(num_labeled: int = 1, num_unlabeled: int = 1) -> dict:
    generator = torch.Generator().manual_seed(0)
    label = torch.zeros(num_labeled, 1, 16, 16, 16)
    label[:, :, 4:10, 4:10, 4:10] = 1
    label[:, :, 10:13, 4:10, 4:10] = 2
    sdf = torch.from_numpy(np.stack([compute_sdf(s[0].numpy().astype(np.int16), [1, 2]) for s in label]))
    return {'data': torch.randn(num_labeled + num_unlabeled, 1, 16, 16, 16, generator=generator),
            'target': [label, label[:, :, ::2, ::2, ::2], sdf],
            'is_labeled': torch.tensor([True] * num_labeled + [False] * num_unlabeled), 'keys': []}


def _parameters(network):
    return [p.detach().clone() for p in network.parameters()]


def test_ema_teacher_trainer_step_uses_the_teachers_view_then_updates_the_teacher(nnunet_env):
    torch.manual_seed(0)
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_EMATeacher)
    assert nnUNetTrainerDTC_EMATeacher_LabeledOnly.use_unlabeled_data is False
    trainer.start_teacher()
    with torch.no_grad():
        for parameter in trainer.teacher.network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    batch = _batch()
    trainer.network.train()
    with torch.no_grad():
        student_output = trainer.network(batch['data'])[0]
        teacher_output = trainer.teacher.network(batch['data'])[0]
    probabilities = torch.softmax(student_output[:, :3], 1)[:, 1:]

    def consistency(output):
        return ((torch.sigmoid(-K * torch.tanh(output[:, 3:])) - probabilities) ** 2).mean().item()

    assert abs(consistency(teacher_output) - consistency(student_output)) > 1e-3
    teacher_before = _parameters(trainer.teacher.network)
    trainer.train_step(batch)
    assert trainer.loss.last_terms['consistency_loss'].item() == pytest.approx(consistency(teacher_output), rel=1e-4)
    for before, student, teacher in zip(teacher_before, trainer.network.parameters(),
                                        trainer.teacher.network.parameters()):
        torch.testing.assert_close(teacher, student.detach())  # the first update copies the student
        assert not teacher.requires_grad
    assert any(not torch.equal(b, t) for b, t in zip(teacher_before, trainer.teacher.network.parameters()))

    teacher_before, student_before = _parameters(trainer.teacher.network), _parameters(trainer.network)
    trainer.train_step(batch)
    for teacher_old, student, teacher in zip(teacher_before, trainer.network.parameters(),
                                             trainer.teacher.network.parameters()):
        torch.testing.assert_close(teacher, 0.5 * teacher_old + 0.5 * student.detach())
    assert any(not torch.equal(b, s) for b, s in zip(student_before, trainer.network.parameters()))


def test_ema_teacher_is_checkpointed_beside_nnunets_checkpoint_and_restored_on_resume(nnunet_env):
    """What `nnUNetv2_train --c` does: load_checkpoint, then on_train_start starts the teacher. A resumed teacher must be
    the saved average (not a fresh copy of the student) and go on counting its updates; checkpoint_final gets none, and
    the latest one's goes with checkpoint_latest.pth at the end of training."""
    torch.manual_seed(0)
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_EMATeacher)
    trainer.start_teacher()
    trainer.network.train()
    for _ in range(3):
        trainer.train_step(_batch())
    latest = join(trainer.output_folder, 'checkpoint_latest.pth')
    trainer.save_checkpoint(latest)
    saved_teacher, saved_student = _parameters(trainer.teacher.network), _parameters(trainer.network)
    assert any(not torch.equal(t, s) for t, s in zip(saved_teacher, saved_student))
    assert isfile(teacher_checkpoint_path(latest)) and teacher_checkpoint_path(latest).endswith(
        'checkpoint_latest_ema_teacher.pth')

    resumed = _trainer(nnunet_env, nnUNetTrainerDTC_EMATeacher)
    resumed.load_checkpoint(latest)
    resumed.start_teacher()
    assert resumed.teacher.num_updates == 3
    for saved, restored in zip(saved_teacher, resumed.teacher.network.parameters()):
        torch.testing.assert_close(restored, saved, rtol=0, atol=0)
    for saved, restored in zip(saved_student, resumed.network.parameters()):
        torch.testing.assert_close(restored, saved, rtol=0, atol=0)

    os.remove(teacher_checkpoint_path(latest))
    without_teacher = _trainer(nnunet_env, nnUNetTrainerDTC_EMATeacher)
    without_teacher.load_checkpoint(latest)
    without_teacher.start_teacher()
    assert without_teacher.teacher.num_updates == 0
    for student, teacher in zip(without_teacher.network.parameters(), without_teacher.teacher.network.parameters()):
        torch.testing.assert_close(teacher, student.detach(), rtol=0, atol=0)

    trainer.save_checkpoint(latest)
    trainer.on_train_end()
    assert isfile(join(trainer.output_folder, 'checkpoint_final.pth'))
    assert not isfile(latest) and not isfile(teacher_checkpoint_path(latest))
    assert not isfile(teacher_checkpoint_path(join(trainer.output_folder, 'checkpoint_final.pth')))


def test_teacher_on_unlabelled_trainer_step_views_unlabelled_patches_through_the_teacher(nnunet_env):
    torch.manual_seed(0)
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_EMATeacherOnUnlabeled)
    trainer.start_teacher()
    with torch.no_grad():
        for parameter in trainer.teacher.network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    batch = _batch(num_labeled=1, num_unlabeled=1)
    assert torch.equal(trainer.teacher_input(batch['data'], batch['is_labeled']), batch['data'][1:])
    trainer.network.train()
    with torch.no_grad():
        student_output = trainer.network(batch['data'])[0]
        teacher_output = trainer.teacher.network(batch['data'][1:])[0]
    probabilities = torch.softmax(student_output[:, :3], 1)[:, 1:]
    level_sets = {'student': student_output[:, 3:], 'mixed': torch.cat((student_output[:1, 3:], teacher_output[:, 3:]))}
    consistency = {name: ((torch.sigmoid(-K * torch.tanh(ls)) - probabilities) ** 2).mean().item()
                   for name, ls in level_sets.items()}
    assert abs(consistency['mixed'] - consistency['student']) > 1e-3
    trainer.train_step(batch)
    assert trainer.loss.last_terms['consistency_loss'].item() == pytest.approx(consistency['mixed'], rel=1e-4)
    for student, teacher in zip(trainer.network.parameters(), trainer.teacher.network.parameters()):
        torch.testing.assert_close(teacher, student.detach())  # the first update copies the student


def test_noisy_teacher_trainer_step_views_a_noisy_copy_of_the_unlabelled_patches(nnunet_env):
    """The teacher's input is the unlabelled half plus noise within the clip; the step's consistency equals the one
    computed by hand from the teacher's output on that same noisy copy (the same random draw), not on the clean one."""
    torch.manual_seed(0)
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_NoisyEMATeacher)
    trainer.start_teacher()
    batch = _batch(num_labeled=1, num_unlabeled=1)
    torch.manual_seed(1)
    noisy = trainer.teacher_input(batch['data'], batch['is_labeled'])
    assert noisy.shape == batch['data'][1:].shape
    difference = (noisy - batch['data'][1:]).abs()
    assert difference.max() <= trainer.teacher_input_noise_clip + 1e-6 and difference.mean() > 0.05
    trainer.network.train()
    with torch.no_grad():
        student_output = trainer.network(batch['data'])[0]
        teacher_views = {'noisy': trainer.teacher.network(noisy)[0],
                         'clean': trainer.teacher.network(batch['data'][1:])[0]}
    probabilities = torch.softmax(student_output[:, :3], 1)[:, 1:]
    consistency = {name: ((torch.sigmoid(-K * torch.tanh(torch.cat((student_output[:1, 3:], view[:, 3:])))) -
                           probabilities) ** 2).mean().item() for name, view in teacher_views.items()}
    assert abs(consistency['noisy'] - consistency['clean']) > 1e-4
    torch.manual_seed(1)
    trainer.train_step(batch)
    assert trainer.loss.last_terms['consistency_loss'].item() == pytest.approx(consistency['noisy'], rel=1e-4)


def test_mirrored_teacher_trainer_step_views_the_mirrored_unlabelled_patches_mirrored_back(nnunet_env):
    """The teacher sees the unlabelled half mirrored along the drawn axes and its level set is mirrored back: the step's
    consistency equals the one computed by hand with numpy's flips of the same draw, and differs from a teacher that
    sees the unmirrored patches and from one whose view is not mirrored back."""
    torch.manual_seed(0)
    trainer = _trainer(nnunet_env, nnUNetTrainerDTC_MirroredEMATeacher)
    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    assert tuple(trainer.inference_allowed_mirroring_axes) == (0, 1, 2)
    trainer.start_teacher()
    batch = _batch(num_labeled=1, num_unlabeled=1)
    torch.manual_seed(3)
    dims = random_mirror_dims(trainer.inference_allowed_mirroring_axes)
    unlabelled = batch['data'][1:].numpy()
    mirrored = torch.from_numpy(np.flip(unlabelled, dims).copy())
    trainer.network.train()
    with torch.no_grad():
        student_output = trainer.network(batch['data'])[0]
        teacher_of_mirrored = trainer.teacher.network(mirrored)[0][:, 3:].numpy()
        teacher_views = {'mirrored back': torch.from_numpy(np.flip(teacher_of_mirrored, dims).copy()),
                         'not mirrored back': torch.from_numpy(teacher_of_mirrored),
                         'unmirrored input': trainer.teacher.network(batch['data'][1:])[0][:, 3:]}
    probabilities = torch.softmax(student_output[:, :3], 1)[:, 1:]
    consistency = {name: ((torch.sigmoid(-K * torch.tanh(torch.cat((student_output[:1, 3:], view)))) -
                           probabilities) ** 2).mean().item() for name, view in teacher_views.items()}
    tolerance = 1e-4 * consistency['mirrored back']  # the step's comparison below
    assert abs(consistency['mirrored back'] - consistency['not mirrored back']) > 10 * tolerance
    assert abs(consistency['mirrored back'] - consistency['unmirrored input']) > 10 * tolerance
    torch.manual_seed(3)
    trainer.train_step(batch)
    assert trainer.loss.last_terms['consistency_loss'].item() == pytest.approx(consistency['mirrored back'], rel=1e-4)
