"""benchmarks/teacher_view_perturbation.py: its perturbations undo in the image's frame (a 2D configuration's mirrors
within each slice), a model that answers every mirror image alike shows no change, and the consistency figures by
hand on a 1x4 image."""
import sys
from pathlib import Path

import pytest
import torch

from nnunetv2_dtc.auxiliary_tasks.level_set import LevelSetTask
from nnunetv2_dtc.ema_teacher import DEFAULT_TEACHER_INPUT_NOISE_CLIP

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
from teacher_view_perturbation import case_measures, perturbations  # noqa: E402

K = 1500.0


def test_perturbations_are_the_noise_and_every_mirror_and_each_undoes_in_the_image_frame():
    torch.manual_seed(0)
    data = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    found = perturbations((0, 1, 2), 3)
    assert [p.name for p in found[1:]] == ['mirror (0,)', 'mirror (1,)', 'mirror (2,)', 'mirror (0, 1)',
                                           'mirror (0, 2)', 'mirror (1, 2)', 'mirror (0, 1, 2)']
    assert torch.equal(found[1].perturb(data), data.flip(1))
    assert torch.equal(found[-1].perturb(data), data.flip(1, 2, 3))
    for perturbation in found[1:]:
        assert not torch.equal(perturbation.perturb(data), data)
        assert torch.equal(perturbation.restore(perturbation.perturb(data)), data)
    slices = perturbations((0, 1), 2)  # a 2D configuration's case: a stack of slices, mirrored within each slice
    assert torch.equal(slices[1].perturb(data), data.flip(2)) and torch.equal(slices[3].perturb(data), data.flip(2, 3))
    noisy = found[0].perturb(data)
    assert 0 < (noisy - data).abs().max() <= DEFAULT_TEACHER_INPUT_NOISE_CLIP + 1e-6
    assert torch.equal(found[0].restore(noisy), noisy)


def _pointwise_model(data: torch.Tensor) -> torch.Tensor:
    """Logits (background, class, level set) of each voxel from its own value only: answers mirror images alike."""
    return torch.cat((torch.zeros_like(data), 4 * data, -data))


def test_a_model_that_answers_mirror_images_alike_shows_no_change_and_one_that_does_not_shows_some():
    data = torch.tensor([[[[-1.0, -0.5, 0.5, 2.0]]]])[0]  # (channels 1, 1, 4): a 2D image of 1x4
    mirrors = perturbations((0, 1), 2)[1:]
    alike = case_measures(_pointwise_model, LevelSetTask(K), 2, False, data, mirrors)
    for values in alike.values():
        assert values['view change'] == 0 and values['segmentation change'] == 0
        assert values['consistency ratio'] == pytest.approx(1.0)

    ramp = torch.arange(4, dtype=torch.float32)

    def position_dependent(x):
        return _pointwise_model(x) + torch.stack((torch.zeros(1, 4), ramp[None], ramp[None]))

    differs = case_measures(position_dependent, LevelSetTask(K), 2, False, data, mirrors)
    assert differs['mirror (0,)']['view change'] == 0  # a size-1 axis: its mirror is the image itself
    assert differs['mirror (1,)']['view change'] > 0.1 and differs['mirror (1,)']['segmentation change'] > 0.01


def test_consistency_by_hand_on_a_1x4_image():
    """p = sigmoid(4x) (a two-channel softmax), level set tanh(-x + position): clean, tanh([1, 1.5, 1.5, 1]) > 0, so
    the view sigmoid(-k * level set) is 0 everywhere; mirrored and back, the position term comes reversed,
    tanh([4, 2.5, 0.5, -2]), and the view is (0, 0, 0, 1) at k = 1500."""
    data = torch.tensor([[[-1.0, -0.5, 0.5, 2.0]]])
    ramp = torch.tensor([0.0, 1.0, 2.0, 3.0])

    def position_dependent(x):
        return torch.cat((torch.zeros_like(x), 4 * x, -x + ramp))

    measures = case_measures(position_dependent, LevelSetTask(K), 2, False, data, perturbations((0, 1), 2)[2:3])
    p = torch.sigmoid(4 * data[0, 0])
    expected_clean = float((p ** 2).mean())
    expected = float(((torch.tensor([0.0, 0.0, 0.0, 1.0]) - p) ** 2).mean())
    assert measures['mirror (1,)']['consistency'] == pytest.approx(expected, rel=1e-5)
    assert measures['mirror (1,)']['consistency ratio'] == pytest.approx(expected / expected_clean, rel=1e-5)
    assert measures['mirror (1,)']['view change'] == pytest.approx(1.0)  # one voxel, 0 against 1
    assert measures['mirror (1,)']['segmentation change'] == 0
