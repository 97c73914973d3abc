"""An exponential-moving-average copy of the network (Mean Teacher, Tarvainen & Valpola, NeurIPS 2017), whose
auxiliary output gives DTC's consistency a second view from a temporal ensemble of the student instead of the
student itself (nnUNetTrainerDTC_EMATeacher).

The update follows the mean-teacher code the DTC authors' group uses (SSL4MIS, `update_ema_variables`): after each
optimizer step, teacher = alpha * teacher + (1 - alpha) * student with alpha = min(1 - 1 / (step + 1), decay), so the
teacher follows the student closely in its first steps. Buffers are copied (nnU-Net's instance norms keep none)."""
import copy
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from nnunetv2_dtc.level_set_head import split_segmentation_and_auxiliary

DEFAULT_EMA_DECAY = 0.99  # SSL4MIS's --ema_decay default (the DTC authors' mean-teacher baselines)
# SSL4MIS's mean-teacher and uncertainty-aware mean-teacher scripts perturb the teacher's input with
# clamp(randn * 0.1, -0.2, 0.2) (on z-score normalised images, as nnU-Net's MRI normalisation gives)
DEFAULT_TEACHER_INPUT_NOISE_STD = 0.1
DEFAULT_TEACHER_INPUT_NOISE_CLIP = 0.2


def ema_alpha(step: int, decay: float) -> float:
    """The weight of the old teacher at update number `step` (0 for the first update: the teacher becomes the
    student)."""
    return min(1.0 - 1.0 / (step + 1), decay)


def with_clipped_gaussian_noise(data: torch.Tensor, std: float, clip: float) -> torch.Tensor:
    """data + clamp(N(0, std^2), -clip, clip), voxel by voxel (SSL4MIS's teacher-input perturbation)."""
    if std < 0 or clip < 0:
        raise ValueError(f'noise std and clip must be >= 0, got std {std}, clip {clip}')
    return data + torch.clamp(torch.randn_like(data) * std, -clip, clip)


def require_mirror_axes(mirror_axes: Optional[Sequence[int]]) -> None:
    """Refuses a configuration without mirror axes, so that a mirrored teacher fails when training starts rather than
    at its first step."""
    if not mirror_axes:
        raise ValueError('a mirrored teacher view needs mirror axes, but this configuration allows none '
                         '(inference_allowed_mirroring_axes is empty); use a teacher without a mirrored view, e.g. '
                         'nnUNetTrainerDTC_EMATeacherOnUnlabeled')


def random_mirror_dims(mirror_axes: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """A non-empty subset of nnU-Net's mirror axes (spatial, counted from 0), drawn uniformly from all of them, as the
    dims of a (batch, channel, *spatial) tensor."""
    require_mirror_axes(mirror_axes)
    subset = int(torch.randint(1, 2 ** len(mirror_axes), ()))
    return tuple(axis + 2 for bit, axis in enumerate(mirror_axes) if subset >> bit & 1)


class EMATeacher:
    """A frozen copy of `student` kept as an exponential moving average of its parameters."""

    def __init__(self, student: nn.Module, decay: float = DEFAULT_EMA_DECAY):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f'EMA decay must lie in [0, 1), got {decay}')
        self.network = copy.deepcopy(student)
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.decay = decay
        self.num_updates = 0

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        alpha = ema_alpha(self.num_updates, self.decay)
        for teacher_parameter, student_parameter in zip(self.network.parameters(), student.parameters()):
            teacher_parameter.mul_(alpha).add_(student_parameter.detach(), alpha=1.0 - alpha)
        for teacher_buffer, student_buffer in zip(self.network.buffers(), student.buffers()):
            teacher_buffer.copy_(student_buffer)
        self.num_updates += 1

    def state_dict(self) -> dict:
        return {'network_weights': self.network.state_dict(), 'num_updates': self.num_updates, 'decay': self.decay}

    def load_state_dict(self, state: dict) -> None:
        """Restores a teacher saved by state_dict(), so that a resumed training goes on averaging where it stopped."""
        self.network.load_state_dict(state['network_weights'])
        self.num_updates = int(state['num_updates'])

    @torch.no_grad()
    def auxiliary_output(self, data: torch.Tensor, num_segmentation_channels: int) -> torch.Tensor:
        """The teacher's raw auxiliary channels at full resolution (training mode, so that the head emits them)."""
        self.network.train()
        output = self.network(data)
        full_resolution = output[0] if isinstance(output, (list, tuple)) else output
        return split_segmentation_and_auxiliary(full_resolution, num_segmentation_channels)[1]
